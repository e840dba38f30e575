"""What the multi-agent benchmarks share: the random team they are measured against."""

from __future__ import annotations

import numpy as np

from rlsuite.envs.evaluation import run_team_episodes
from rlsuite.envs.multiagent import MultiAgentVectorEnv


def random_team(env_id: str, episodes: int, seed: int) -> float:
    """Mean team return of `episodes` episodes in which every agent acts uniformly at random."""
    envs = MultiAgentVectorEnv(env_id, episodes)
    rng = np.random.default_rng(seed)
    actions = int(envs.spaces.action_space.n)
    try:
        team, _, _ = run_team_episodes(lambda obs: rng.integers(0, actions, obs.shape[:2]), envs, seed=10_000 + seed)
    finally:
        envs.close()
    return float(team.mean())
