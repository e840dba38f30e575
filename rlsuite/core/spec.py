"""The contract between an algorithm file and the rest of rlsuite.

Each algorithm file declares one `SPEC = AlgorithmSpec(...)` (or `SPECS = (...)` when one file
holds a family of variants registered under their own names, as the policy-gradient ladder does);
the registry, the CLI and the Python API read it and nothing else, so no caller probes an
algorithm module for attributes.

    train(config, run_dir=None, *, resume=False, overwrite=False, quiet=False, callbacks=(),
          is_main_process=True) -> Run        (the keyword options are the Loop's)
    load(config, model_dir) -> agent          (what export() wrote, as an object with
                                               predict(obs, deterministic) and its spaces)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlsuite.core import config as configs

FAMILIES = ("bandit", "dp", "tabular", "deep", "marl", "llm")
ENV_KINDS = ("gymnasium", "bandit", "mdp", "pettingzoo", "text")


@dataclass(frozen=True)
class ActsOn:
    """The environments an algorithm trains on: a kind (ENV_KINDS) and, for Gymnasium-like kinds,
    the space classes it handles by name ("Box" observations are flat vectors)."""

    kind: str
    observations: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ENV_KINDS:
            raise ValueError(f"ActsOn.kind must be one of {ENV_KINDS}, got {self.kind!r}")

    def describe(self) -> str:
        spaces = []
        if self.observations:
            spaces.append(f"{'/'.join(self.observations)} observations")
        if self.actions:
            spaces.append(f"{'/'.join(self.actions)} actions")
        return f"{self.kind} envs" + (f" with {' and '.join(spaces)}" if spaces else "")


@dataclass(frozen=True)
class AlgorithmSpec:
    name: str
    family: str
    summary: str
    config: type
    train: Callable[..., Any]
    acts_on: ActsOn
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    load: Callable[[Any, Path], Any] | None = None
    """None when a run has no policy to load (bandits: the curves are the result)."""
    no_policy_reason: str = ""
    budget_field: str = "total_steps"
    """The config field holding the budget; `rlsuite resume --budget N` sets it."""
    resumable: bool = True
    not_resumable_reason: str = ""

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {self.family!r}")

    def preset(self, env: str | None = None, **overrides: Any) -> Any:
        """The config: defaults, then the preset tuned for env (if any), then overrides. Presets
        are keyed by the config's `env` field, or by `task` for language-model algorithms."""
        key = next((k for k in ("env", "task") if k in configs.field_names(self.config)), None)
        if key is None:
            return configs.from_dict(self.config, overrides)
        return configs.with_preset(self.config, dict(self.presets), env, key=key, **overrides)
