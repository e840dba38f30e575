"""A stand-in for a simulator: CartPole-v1 whose every step also sleeps STEP_SECONDS, so stepping
the env, not the learner, is what a worker spends its time on. Imported by id
`bench._slow_env:SlowCartPole-v1` (Gymnasium imports the module, which registers the env), which
works in rlsuite, in its Ray workers and in RLlib's env runners alike, with the repository root
on PYTHONPATH."""

from __future__ import annotations

import time

import gymnasium as gym
from gymnasium.envs.classic_control import CartPoleEnv

STEP_SECONDS = 0.001


class SlowCartPoleEnv(CartPoleEnv):
    def step(self, action):
        time.sleep(STEP_SECONDS)
        return super().step(action)


if "SlowCartPole-v1" not in gym.registry:
    gym.register("SlowCartPole-v1", entry_point=f"{__name__}:SlowCartPoleEnv", max_episode_steps=500, reward_threshold=475.0)
