"""The Python API: make a config, train, resume, open a run, load a trained policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rlsuite.core import config as configs, registry
from rlsuite.core.run import Run, RunDir
from rlsuite.errors import ConfigError, InputError, RLSuiteError, RunDirError


def make_config(algo: str, env: str | None = None, config_file: str | Path | None = None, **overrides: Any):
    """algo's config: defaults < preset for env < YAML file < overrides."""
    spec = registry.spec(algo)
    from_file = configs.load_yaml(config_file) if config_file else {}
    key = "task" if "task" in configs.field_names(spec.config) else "env"
    env = overrides.get(key) or overrides.get("env") or env or from_file.get(key)
    overrides = {k: v for k, v in overrides.items() if k != "env"} if key == "task" else overrides
    base = spec.preset(env) if env else spec.preset()
    return configs.from_dict(spec.config, {**from_file, **({key: env} if env else {}), **overrides}, base=base)


def train(algo: str, env: str | None = None, *, run_dir=None, overwrite: bool = False, quiet: bool = False, callbacks=(), **overrides: Any) -> Run:
    """Train `algo` with its preset for `env` and any config overrides, e.g. train("ppo", "CartPole-v1", seed=2).
    `callbacks` are called with the Loop after every iteration (`loop.step`, `loop.request_stop()`)."""
    config = make_config(algo, env, **overrides)
    return registry.spec(algo).train(config, run_dir, overwrite=overwrite, quiet=quiet, callbacks=callbacks)


def sweep(algo: str, env: str | None = None, *, grid: dict[str, Any], seeds: int = 3, sweep_dir: str | Path | None = None,
          overwrite: bool = False, ray_address: str | None = None, metric: str | None = None, mode: str = "max",
          max_concurrent: int | None = None, config_file: str | Path | None = None, quiet: bool = False, **overrides: Any):
    """Train every combination of `grid`'s values (field -> list of values, or a 'v1,v2' string)
    with `seeds` seeds each (seed, seed + 1, ...; seed=1 unless given) as Ray Tune trials, e.g.
    sweep("ppo", "CartPole-v1", grid={"learning_rate": [1e-3, 3e-4]}, total_steps=50_000).
    Every trial is a run directory in the sweep directory (default sweeps/ALGO-ENV), next to
    summary.csv (settings ranked by their mean final evaluation), trials.csv and curves.png.
    Returns a SweepResult; a failed trial is listed there, not raised. Needs rlsuite[ray]."""
    from rlsuite.scale.sweep import run_sweep

    base = make_config(algo, env, config_file=config_file, **overrides)
    return run_sweep(algo, base, grid, seeds=seeds, sweep_dir=sweep_dir, overwrite=overwrite, ray_address=ray_address,
                     metric=metric, mode=mode, max_concurrent=max_concurrent, fixed=overrides, quiet=quiet)


def resume(run_dir: str | Path, *, quiet: bool = False, budget: int | None = None, **overrides: Any) -> Run:
    """Continue a run from its checkpoint, optionally with a larger budget (`budget=` or the
    budget field by name, e.g. total_steps=200_000). Nothing else may change."""
    run = RunDir(Path(run_dir))
    spec = registry.spec(run.meta()["algo"])
    if not spec.resumable:
        raise RunDirError(spec.not_resumable_reason.format(run=run.path, algo=spec.name))
    others = set(overrides) - {spec.budget_field}
    if others:
        raise ConfigError(f"resume changes only the budget ({spec.budget_field}); {', '.join(sorted(others))} cannot change. Train a new run for other settings.")
    if budget is not None:
        overrides = {spec.budget_field: budget}
    config = configs.from_dict(spec.config, overrides, base=configs.from_dict(spec.config, run.load_config_dict()))
    return spec.train(config, run.path, resume=True, quiet=quiet)


def open_run(run_dir: str | Path) -> Run:
    """An existing run directory as a Run: its config, status and tables (metrics, evaluations, ...)."""
    run = RunDir(Path(run_dir))
    meta = run.meta()
    spec = registry.spec(meta["algo"])
    config = configs.from_dict(spec.config, run.load_config_dict())
    return Run(run.path, spec.name, config, int(meta.get("step", 0)), str(meta.get("status", "?")), str(meta.get("unit", "env steps")))


class Policy:
    """A trained policy: `act(obs)` maps one observation (or a batch) to env actions.

    Tabular and DP runs also expose their tables: `policy.q` (action values), `policy.v`
    (state values, DP runs) and `policy.table` (the greedy action of every state).
    """

    def __init__(self, algo: str, agent: Any, config: Any):
        self.algo, self.agent, self.config = algo, agent, config
        self.observation_space, self.action_space = agent.observation_space, agent.action_space

    def act(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        obs, single = self._check(obs)
        actions = self.agent.predict(obs[None] if single else obs, deterministic=deterministic)
        return actions[0] if single else actions

    def _check(self, obs: Any) -> tuple[np.ndarray, bool]:
        space = self.observation_space
        shape = tuple(space.shape)
        discrete = shape == () and hasattr(space, "n")
        kind = "integer state" if discrete else f"{np.dtype(space.dtype).name} vector"
        expected = (f"one observation of shape {shape} or a batch of shape (N, {', '.join(map(str, shape))})" if shape
                    else "one state (an integer) or a 1-D batch of states")
        where = f"({kind}s of {getattr(self.config, 'env', 'the env')}'s observation space {space})"
        try:
            array = np.asarray(obs)
        except ValueError:  # ragged nested lists
            raise InputError(f"Policy.act expects {expected} {where}; got a ragged {type(obs).__name__}.") from None
        if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            raise InputError(f"Policy.act expects {expected} {where}; got {type(obs).__name__} of dtype {array.dtype}.")
        if array.shape == shape:
            single = True
        elif array.ndim == len(shape) + 1 and array.shape[1:] == shape and array.shape[0] >= 1:
            single = False
        else:
            raise InputError(f"Policy.act expects {expected} {where}; got shape {array.shape}.")
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            raise InputError(f"Policy.act got NaN or infinity in the observation; expects finite values {where}.")
        if discrete:
            if np.issubdtype(array.dtype, np.floating) and not np.all(array == np.round(array)):
                raise InputError(f"Policy.act expects integer states {where}; got {array!r}.")
            if array.min(initial=space.start) < space.start or array.max(initial=space.start) >= space.start + space.n:
                raise InputError(f"Policy.act expects states in [{space.start}, {space.start + space.n}) {where}; got {array!r}.")
            array = array.astype(np.int64)
        return array, single

    def _table(self, name: str) -> np.ndarray:
        tables = getattr(self.agent, "tables", {})
        if name not in tables:
            raise AttributeError(f"a {self.algo} policy has no {name!r} table (it has: {', '.join(tables) or 'none'}).")
        return tables[name]

    q = property(lambda self: self._table("q"), doc="Action values Q[s, a] (tabular and DP runs).")
    v = property(lambda self: self._table("v"), doc="State values V[s] (DP runs).")
    table = property(lambda self: self._table("policy"), doc="The action the policy takes in each state.")

    def __repr__(self) -> str:
        return f"Policy({self.algo} on {getattr(self.config, 'env', '?')})"


def load(path: str | Path) -> Any:
    """The policy of a run directory (its model/, or its newest checkpoint's when the run was cut
    short), or of an exported model folder copied elsewhere: a Policy, or for language-model runs
    a TextPolicy (`answer("What is 7 * 8 - 5?")`, `.model`, `.tokenizer`)."""
    path = Path(path)
    describe = path / "rlsuite.yaml"
    if describe.is_file():
        saved = yaml.safe_load(describe.read_text())
        algo, config_dict, model_dir = saved["algo"], saved["config"], path
    else:
        run = RunDir(path)
        algo = run.meta()["algo"]
        model_dir = run.policy_dir()
        config_dict = run.load_config_dict()
    spec = registry.spec(algo)
    if spec.load is None:
        raise RLSuiteError(spec.no_policy_reason)
    if model_dir is None:
        raise RunDirError(f"{path} holds no policy yet: the run saved neither model/ nor a checkpoint. Train it (longer) first.")
    config = configs.from_dict(spec.config, config_dict)
    try:
        agent = spec.load(config, model_dir)
    except RLSuiteError:
        raise
    except Exception as exc:  # a truncated or foreign file in model/
        raise RunDirError(f"the policy in {model_dir} is corrupt or unreadable ({type(exc).__name__}: {exc}); retrain, or restore it from a copy.") from None
    if spec.family == "llm":
        return agent  # a TextPolicy: answer(question), with .model and .tokenizer
    return Policy(spec.name, agent, config)
