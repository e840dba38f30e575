"""CartPole whose process dies at its CRASH_AT-th step, once per test: the first env to get
there creates the marker file (atomically) and exits; every other, and the learner process
(it evaluates on the same id), carries on. Stands for a simulator that crashes its worker."""

import os

import gymnasium as gym
from gymnasium.envs.classic_control import CartPoleEnv

CRASH_AT = 100


class CrashingCartPoleEnv(CartPoleEnv):
    steps = 0

    def step(self, action):
        self.steps += 1
        marker, learner = os.environ.get("RLSUITE_TEST_CRASH_MARKER"), os.environ.get("RLSUITE_TEST_LEARNER_PID")
        if marker and self.steps == CRASH_AT and str(os.getpid()) != learner:
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                pass
            else:
                os._exit(1)
        return super().step(action)


if "CrashingCartPole-v1" not in gym.registry:
    gym.register("CrashingCartPole-v1", entry_point=f"{__name__}:CrashingCartPoleEnv", max_episode_steps=500)
