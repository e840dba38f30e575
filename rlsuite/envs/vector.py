"""Gymnasium vector environments with episode statistics, plus checks that run before training.

Gymnasium's own vectorized implementation is used where an env has one (CartPole), and
`SyncVectorEnv` otherwise. Autoreset is Gymnasium's default NEXT_STEP mode: the step after an
episode ends is a reset transition, which collectors mark invalid.
"""

from __future__ import annotations

import gymnasium as gym

from rlsuite.envs.resolver import check_env_id


def make_vector_env(
    env_id: str,
    num_envs: int,
    *,
    normalize_reward: bool = False,
    gamma: float = 0.99,
    mode: str | None = None,
    default_time_limit: int | None = None,
) -> gym.vector.VectorEnv:
    """num_envs copies of env_id with episode statistics (recorded before any reward scaling).

    default_time_limit cuts episodes of envs registered without a time limit of their own, so
    that evaluating a policy that walks in circles (say, a greedy table into a wall) ends.
    """
    name = check_env_id(env_id)
    limit = {}
    if default_time_limit is not None and gym.spec(name).max_episode_steps is None:
        limit, mode = {"max_episode_steps": default_time_limit}, "sync"
    envs = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode, **limit)
    envs = gym.wrappers.vector.RecordEpisodeStatistics(envs)
    if normalize_reward:
        envs = gym.wrappers.vector.NormalizeReward(envs, gamma=gamma)
    return envs


def finished_episodes(info: dict) -> tuple[list[float], list[int]]:
    """Returns and lengths of the episodes that ended this step, from RecordEpisodeStatistics."""
    if "_episode" not in info:
        return [], []
    mask = info["_episode"]
    return info["episode"]["r"][mask].tolist(), info["episode"]["l"][mask].tolist()
