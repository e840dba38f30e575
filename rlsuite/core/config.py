"""Frozen, typed configs: one dataclass per algorithm, read by the CLI and saved with every run.

Precedence when a config is built: dataclass defaults < the algorithm's preset for the env <
a YAML file < explicit overrides (command-line flags or keyword arguments).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from rlsuite.errors import ConfigError, check, suggest

C = TypeVar("C", bound="BaseConfig")


SEED_LIMIT = 2**32
"""Seeds must be below this: NumPy's legacy global seed (and many envs) take 32-bit seeds."""
DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")

BUDGET_UNITS = ("env steps", "episodes", "sweeps", "iterations", "pulls", "optimizer steps", "tokens", "prompts")


@dataclasses.dataclass(frozen=True)
class Budget:
    """How long a run trains: `total` units of `unit` (env steps, sweeps, optimizer steps, ...)."""

    total: int
    unit: str

    def __post_init__(self) -> None:
        check(self.unit in BUDGET_UNITS, f"budget unit must be one of {', '.join(BUDGET_UNITS)}; got {self.unit!r}.")
        check(self.total > 0, f"the budget must be > 0 {self.unit}, got {self.total}.")


@dataclasses.dataclass(frozen=True)
class Schedule:
    """When the loop evaluates, checkpoints and writes metrics, in budget units (0: never on a
    count). Checkpoints are also taken every `checkpoint_seconds` of wall-clock, so a killed
    run loses at most that much work, and always at the end and on Ctrl-C or SIGTERM."""

    eval_every: int = 0
    checkpoint_every: int = 0
    checkpoint_seconds: float = 60.0
    log_every: int = 1
    eval_at_start: bool = False
    """Also evaluate before the first update (the starting point of a fine-tuning curve)."""


@dataclasses.dataclass(frozen=True)
class BaseConfig:
    """Fields every run has."""

    seed: int = 1
    """Seed for Python, NumPy, torch and the environments (0 <= seed < 2**32)."""

    def __post_init__(self) -> None:
        check(0 <= self.seed < SEED_LIMIT, f"seed must be in [0, 2**32 - 1], got {self.seed}.")


@dataclasses.dataclass(frozen=True)
class TrainConfig(BaseConfig):
    """Fields every run that trains on a Gymnasium environment for a budget of env steps has."""

    env: str = "CartPole-v1"
    """Gymnasium environment id (see `rlsuite list`)."""
    total_steps: int = 100_000
    """Environment steps to train for, summed over parallel environments."""
    eval_every: int = 10_000
    """Evaluate the deterministic policy every this many steps (0: only at the end)."""
    eval_episodes: int = 10
    """Episodes per evaluation, run at once as one vector env on a separate seed."""
    checkpoint_every: int = 0
    """Also save a resumable checkpoint every this many steps (0: by time only)."""
    checkpoint_minutes: float = 1.0
    """Save a resumable checkpoint at least this often (and always at the end, on Ctrl-C and SIGTERM)."""
    log_every: int = 2_000
    """Write averaged training metrics every this many steps."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.total_steps > 0, f"total_steps must be > 0, got {self.total_steps}.")
        check(self.eval_every >= 0, f"eval_every must be >= 0 (0 evaluates only at the end), got {self.eval_every}.")
        check(self.eval_episodes >= 1, f"eval_episodes must be >= 1, got {self.eval_episodes}.")
        check(self.checkpoint_every >= 0, f"checkpoint_every must be >= 0, got {self.checkpoint_every}.")
        check(self.checkpoint_minutes > 0, f"checkpoint_minutes must be > 0, got {self.checkpoint_minutes}.")
        check(self.log_every > 0, f"log_every must be > 0, got {self.log_every}.")

    @property
    def budget(self) -> Budget:
        return Budget(self.total_steps, "env steps")

    @property
    def schedule(self) -> Schedule:
        return Schedule(self.eval_every, self.checkpoint_every, 60.0 * self.checkpoint_minutes, self.log_every)


@dataclasses.dataclass(frozen=True)
class TorchConfig(TrainConfig):
    """TrainConfig plus where torch runs: the fields of every neural-network algorithm."""

    device: str = "auto"
    """'auto' (CUDA when available), 'cpu', 'cuda', 'cuda:N' or 'mps'."""
    torch_threads: int = 1
    """Threads torch may use on CPU (0: torch's default). One is fastest for small networks."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.torch_threads >= 0, f"torch_threads must be >= 0, got {self.torch_threads}.")
        check(
            DEVICE_PATTERN.fullmatch(self.device) is not None,
            f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' (N a GPU index) or 'mps', got {self.device!r}.",
        )


@dataclasses.dataclass(frozen=True)
class WorkersConfig:
    """Where experience is collected (a mixin: the configs of the algorithms that can use Ray
    rollout workers inherit it and call check_workers)."""

    backend: typing.Literal["local", "ray"] = "local"
    """'local': this process steps the envs. 'ray': num_workers Ray actors, each with its share of the envs and a copy of the policy."""
    num_workers: int = 1
    """Ray rollout workers (backend 'ray'); the envs are split evenly between them."""
    ray_address: str | None = None
    """Ray cluster to join (backend 'ray'): None starts a local Ray instance; 'auto' joins the one `ray start` left on this machine; HOST:PORT a remote head."""
    max_worker_restarts: int = 3
    """Rollout workers that die (a crashed simulator, a lost node) are restarted this many times in all, then the run stops with a checkpoint."""


def check_workers(config) -> None:
    check(config.num_workers >= 1, f"num_workers must be >= 1, got {config.num_workers}.")
    check(config.max_worker_restarts >= 0, f"max_worker_restarts must be >= 0, got {config.max_worker_restarts}.")
    if config.backend == "local":
        check(config.num_workers == 1, f"num_workers={config.num_workers} needs --backend ray (the local backend steps the envs in this process).")
    else:
        check(config.num_envs % config.num_workers == 0,
              f"num_envs ({config.num_envs}) must be a multiple of num_workers ({config.num_workers}): each Ray worker steps num_envs / num_workers envs.")


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def to_dict(config: BaseConfig) -> dict[str, Any]:
    """Plain YAML-friendly dict (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def _coerce(name: str, value: Any, annotation: Any) -> Any:
    """Convert a YAML value to the field's type; YAML reads '1e-3' as a string, for instance."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None:
            return None
        return _coerce(name, value, options[0])
    if origin is tuple:
        args = typing.get_args(annotation)
        if not isinstance(value, (list, tuple)):
            value = [value]
        return tuple(_coerce(name, v, args[0]) for v in value)
    if origin is typing.Literal:
        allowed = typing.get_args(annotation)
        if value not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}.")
        return value
    try:
        if annotation is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                return value.lower() in ("true", "1", "yes")
            return bool(value)
        if annotation is int:
            number = float(value) if isinstance(value, str) else value  # '1e5' from YAML or a flag
            if isinstance(number, float) and not number.is_integer():
                raise ValueError(value)  # never truncate '0.5' to 0
            return int(number)
        if annotation is float:
            return float(value)
        if annotation is str:
            return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be of type {annotation.__name__}; got {value!r}.") from None
    return value


def from_dict(cls: type[C], values: dict[str, Any], base: C | None = None) -> C:
    """Build cls from a mapping, rejecting unknown keys with a suggestion."""
    known = field_names(cls)
    for key in values:
        if key not in known:
            raise ConfigError(f"unknown config field {key!r} for {cls.__name__}.{suggest(key, known)}")
    hints = typing.get_type_hints(cls)
    coerced = {k: _coerce(k, v, hints[k]) for k, v in values.items()}
    if base is not None:
        return dataclasses.replace(base, **coerced)
    return cls(**coerced)


def override(config: C, **overrides: Any) -> C:
    """A copy of config with some fields replaced (validated like the original)."""
    return from_dict(type(config), overrides, base=config)


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config file {path} is a directory; give a YAML file of field: value lines.")
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not a text file (it is binary); give a YAML file of field: value lines.") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}.") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of field: value, got {type(data).__name__}.")
    return data


def dump_yaml(config: BaseConfig) -> bytes:
    return yaml.safe_dump(to_dict(config), sort_keys=False).encode()


def with_preset(cls: type[C], presets: dict[str, dict[str, Any]], env: str | None = None, *, key: str = "env", **overrides: Any) -> C:
    """cls's defaults, then the preset tuned for env (the value of field `key`), then overrides."""
    env = env or getattr(cls(), key)
    values = {**presets.get(env, {}), key: env, **overrides}
    return from_dict(cls, values)
