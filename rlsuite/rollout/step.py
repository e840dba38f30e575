"""One step of a Gymnasium vector env, as every collector takes it.

Autoreset is Gymnasium's NEXT_STEP mode: the step that ends an episode returns the episode's
final observation, and the following step of that sub-env is a reset transition (its action is
ignored, its reward is 0) that carries no experience: `valid` is False for it. `terminated`
(a terminal state: its value is 0) and `truncated` (a time limit: bootstrap from the final
observation) are kept apart everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlsuite.core.loop import Episodes
from rlsuite.envs.vector import finished_episodes


@dataclass(frozen=True)
class EnvCursor:
    """Where the training envs stand between steps: what a checkpoint must hold besides the envs."""

    obs: np.ndarray
    """[N, ...] the current observations."""
    prev_done: np.ndarray
    """[N] bool: the sub-env's last step ended an episode, so its next step is a reset transition."""

    @classmethod
    def reset(cls, envs, seed: int) -> EnvCursor:
        obs, _ = envs.reset(seed=seed)
        return cls(obs, np.zeros(envs.num_envs, dtype=bool))


@dataclass(frozen=True)
class VectorStep:
    """The N transitions (s_t, a_t, r_t, s_{t+1}) of one vector step."""

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_obs: np.ndarray
    """The final observation of an episode that ended here (bootstrap from it when truncated)."""
    terminated: np.ndarray
    truncated: np.ndarray
    valid: np.ndarray
    """False for reset transitions (see the module docstring)."""
    episodes: Episodes
    """Returns and lengths of the episodes that ended at this step."""

    @property
    def done(self) -> np.ndarray:
        return self.terminated | self.truncated


def vector_step(envs, cursor: EnvCursor, actions: np.ndarray) -> tuple[VectorStep, EnvCursor]:
    """Step every sub-env with `actions`; returns the transitions and the new cursor."""
    next_obs, rewards, terminated, truncated, info = envs.step(actions)
    step = VectorStep(cursor.obs, actions, rewards, next_obs, terminated, truncated, ~cursor.prev_done, Episodes(*finished_episodes(info)))
    return step, EnvCursor(next_obs, terminated | truncated)
