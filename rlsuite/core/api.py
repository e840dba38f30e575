"""The Python API: make a config, train, load a trained policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rlsuite.core import checkpoint, config as configs, registry
from rlsuite.core.errors import RunDirError
from rlsuite.core.run import Run, RunDir


def make_config(algo: str, env: str | None = None, config_file: str | Path | None = None, **overrides: Any):
    """algo's config: defaults < preset for env < YAML file < overrides."""
    module = registry.get(algo)
    from_file = configs.load_yaml(config_file) if config_file else {}
    env = overrides.get("env") or env or from_file.get("env")
    base = configs.with_preset(module.Config, getattr(module, "PRESETS", {}), env) if hasattr(module.Config, "env") else module.Config()
    return configs.from_dict(module.Config, {**from_file, **({"env": env} if env else {}), **overrides}, base=base)


def train(algo: str, env: str | None = None, *, run_dir=None, overwrite: bool = False, quiet: bool = False, **overrides: Any) -> Run:
    """Train `algo` with its preset for `env` and any config overrides, e.g. train("ppo", "CartPole-v1", seed=2)."""
    config = make_config(algo, env, **overrides)
    return registry.get(algo).train(config, run_dir, overwrite=overwrite, quiet=quiet)


def resume(run_dir: str | Path, *, quiet: bool = False, **overrides: Any) -> Run:
    """Continue a run from its checkpoint, optionally with a larger total_steps."""
    run = RunDir(Path(run_dir))
    algo = run.meta().get("algo")
    module = registry.get(algo)
    config = configs.from_dict(module.Config, overrides, base=run.load_config(module.Config))
    return module.train(config, run.path, resume=True, quiet=quiet)


class Policy:
    """A trained policy: `act(obs)` maps one observation (or a batch) to env actions."""

    def __init__(self, algo: str, agent: Any, config: Any, observation_space: Any, action_space: Any):
        self.algo, self.agent, self.config = algo, agent, config
        self.observation_space, self.action_space = observation_space, action_space

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        obs = np.asarray(obs)
        single = obs.shape == self.observation_space.shape
        actions = self.agent.predict(obs[None] if single else obs, deterministic=deterministic)
        return actions[0] if single else actions

    def __repr__(self) -> str:
        return f"Policy({self.algo} on {getattr(self.config, 'env', '?')})"


def load(run_dir: str | Path) -> Policy:
    """Load the final policy of a run directory (model.pt, or the checkpoint if the run was cut short)."""
    run = RunDir(Path(run_dir))
    algo = run.meta().get("algo")
    module = registry.get(algo)
    if not getattr(module, "HAS_POLICY", True):
        return module.load_policy(None)  # raises the algorithm's own explanation
    if not run.model_file.is_file() and not run.checkpoint_file.is_file():
        raise RunDirError(f"{run.path} has neither model.pt nor checkpoint.pt: the run saved nothing yet.")
    payload = checkpoint.load(run.model_file if run.model_file.is_file() else run.checkpoint_file, "model")
    agent = module.load_policy(payload)
    config = configs.from_dict(module.Config, payload["config"])
    return Policy(algo, agent, config, payload["observation_space"], payload["action_space"])
