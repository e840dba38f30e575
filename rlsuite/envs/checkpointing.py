"""Environments as checkpoint parts (rlsuite.core.loop): state_dict pickles the wrapped env (its
RNGs, simulator state, episode statistics), load_state_dict swaps the saved one in, so a resumed
run continues mid-episode exactly as an uninterrupted one would."""

from __future__ import annotations

import warnings
from typing import Any

import cloudpickle
import gymnasium as gym


def _pickle(env: Any) -> dict[str, Any]:
    try:
        return {"env": cloudpickle.dumps(env)}
    except Exception as exc:  # e.g. an AsyncVectorEnv holds subprocesses
        warnings.warn(f"the environments cannot be pickled ({exc}); checkpoints will load as policies but cannot be resumed", stacklevel=3)
        return {"env": None}


def _unpickle(state: dict[str, Any]) -> Any:
    if state["env"] is None:
        raise ValueError("this checkpoint holds no environment state (the envs could not be pickled), so it cannot be resumed")
    return cloudpickle.loads(state["env"])


class PickledEnvState:
    """The state_dict / load_state_dict of an env wrapper: the wrapped env, pickled whole."""

    env: Any

    def state_dict(self) -> dict[str, Any]:
        return _pickle(self.env)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        restored = _unpickle(state)
        self.env.close()
        self.env = restored


class CheckpointableEnvs(PickledEnvState, gym.vector.VectorWrapper):
    """A vector env that is a checkpoint part."""


class CheckpointableEnv(PickledEnvState):
    """A single env as a checkpoint part, holding it as `.env` rather than wrapping it: the
    tabular methods step `.env` directly, since a wrapper layer costs them ~7% of a step."""

    def __init__(self, env: gym.Env):
        self.env = env

    def close(self) -> None:
        self.env.close()
