"""Gymnasium vector environments with episode statistics, plus checks that run before training.

Gymnasium's own vectorized implementation is used where an env has one (CartPole), and
`SyncVectorEnv` otherwise. Autoreset is Gymnasium's default NEXT_STEP mode: the step after an
episode ends is a reset transition, which collectors mark invalid.
"""

from __future__ import annotations

import gymnasium as gym
from gymnasium import spaces

from rlsuite.core.errors import UnknownNameError, UnsupportedEnvError, suggest


def check_env_id(env_id: str) -> None:
    if env_id not in gym.registry:
        raise UnknownNameError(f"unknown environment {env_id!r}.{suggest(env_id, gym.registry)} Run `rlsuite list` to see environments.")


def env_spaces(env_id: str) -> tuple[spaces.Space, spaces.Space]:
    """(observation_space, action_space) of env_id, checked to exist and to be constructible."""
    check_env_id(env_id)
    try:
        env = gym.make(env_id)
    except gym.error.DependencyNotInstalled as exc:
        raise UnknownNameError(f"environment {env_id!r} needs an extra package: {exc}") from None
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


def require_spaces(algo: str, env_id: str, obs_space: spaces.Space, action_space: spaces.Space, *, observations=(spaces.Box,), actions=(spaces.Discrete, spaces.Box)) -> None:
    """Raise UnsupportedEnvError unless the spaces are of the kinds the algorithm handles."""
    if not isinstance(obs_space, observations) or (isinstance(obs_space, spaces.Box) and len(obs_space.shape) != 1):
        kinds = " or ".join(k.__name__ for k in observations)
        raise UnsupportedEnvError(
            f"{algo} needs a flat {kinds} observation space, but {env_id} has {obs_space}. "
            "Wrap the env (e.g. gymnasium.wrappers.FlattenObservation) or pick another algorithm."
        )
    if not isinstance(action_space, actions):
        kinds = " or ".join(k.__name__ for k in actions)
        raise UnsupportedEnvError(f"{algo} handles {kinds} action spaces, but {env_id} has {action_space}. See `rlsuite list` for algorithms that fit.")


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
    check_env_id(env_id)
    limit = {}
    if default_time_limit is not None and gym.spec(env_id).max_episode_steps is None:
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
