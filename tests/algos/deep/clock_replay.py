"""A replay phase drawn from a two-step episode that ends by termination or by a time limit,
shared by the DQN and C51 tests of bootstrapping."""

import gymnasium as gym
import numpy as np
import torch

from rlsuite.envs.vector import make_vector_env
from rlsuite.rollout import offpolicy
from rlsuite.rollout.collect import collect_transitions
from rlsuite.rollout.replay import ReplayBuffer
from rlsuite.rollout.step import EnvCursor

OBS = gym.spaces.Box(-10, 10, (2,), np.float32)
ACTIONS = gym.spaces.Discrete(2)


class Clock(gym.Env):
    """obs = [t, 0]; reward 1; ends at t == 2, terminated or (with a 2-step limit) truncated."""

    observation_space = OBS
    action_space = ACTIONS

    def __init__(self, terminate: bool = True):
        self.terminate = terminate

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0, 0.0], np.float32), {}

    def step(self, action):
        self.t += 1
        return np.array([self.t, 0.0], np.float32), 1.0, self.terminate and self.t == 2, False, {}


def clock_phase(terminate: bool, config):
    """One gradient phase's batch from a buffer filled by: steps 0 -> 1 and 1 -> 2 (the episode's
    end), the reset transition, then 0 -> 1 again, all with action 0."""
    env_id = f"TestClock{'Terminates' if terminate else 'Truncates'}-v0"
    gym.register(env_id, entry_point=Clock, kwargs={"terminate": terminate}, max_episode_steps=None if terminate else 2)
    try:
        envs = make_vector_env(env_id, 1, mode="sync")
        buffer = ReplayBuffer(16, 1, OBS.shape, ())
        collect_transitions(envs, EnvCursor.reset(envs, seed=0), lambda obs: np.zeros(1, np.int64), buffer, 4)
        envs.close()
    finally:
        gym.registry.pop(env_id)
    return offpolicy.sample_phase(buffer, np.random.default_rng(0), 1, config, torch.device("cpu"))
