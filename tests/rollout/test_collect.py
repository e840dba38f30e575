"""Collection under Gymnasium's NEXT_STEP autoreset, on an env whose observation is its clock."""

import gymnasium as gym
import numpy as np
import torch

from rlsuite.envs.vector import make_vector_env
from rlsuite.rollout.buffers import Rollout
from rlsuite.rollout.collect import collect_rollout, collect_transitions
from rlsuite.rollout.replay import ReplayBuffer
from rlsuite.rollout.step import EnvCursor


class Clock(gym.Env):
    """obs = [t]; reward = 1; terminates at t == 3 (env 0) or is truncated by a 4-step limit."""

    observation_space = gym.spaces.Box(0, 10, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, terminate_at=3):
        self.terminate_at = terminate_at

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self.t += 1
        return np.array([self.t], np.float32), 1.0, self.t == self.terminate_at, False, {}


class ValueIsClock:
    """An agent whose value is the observation itself, so stored values can be read off."""

    def observe(self, obs, update_stats):
        return torch.as_tensor(obs, dtype=torch.float32)

    def act(self, obs):
        n = obs.shape[0]
        return torch.zeros(n, dtype=torch.long), torch.zeros(n), obs[:, 0].clone()

    def value(self, obs):
        return obs[:, 0].clone()

    def env_action(self, action):
        return action.numpy()


def test_masks_bootstrap_values_and_episode_statistics():
    gym.register("ClockTerminates-v0", entry_point=Clock, kwargs={"terminate_at": 3})
    gym.register("ClockTruncates-v0", entry_point=Clock, kwargs={"terminate_at": 99}, max_episode_steps=4)
    try:
        terminating = make_vector_env("ClockTerminates-v0", 1, mode="sync")
        truncating = make_vector_env("ClockTruncates-v0", 1, mode="sync")
        for envs, end, terminal in ((terminating, 3, 1.0), (truncating, 4, 0.0)):
            rollout = Rollout.allocate(6, 1, (1,), (), torch.long, "cpu")
            cursor = EnvCursor.reset(envs, seed=0)
            (returns, lengths), after = collect_rollout(envs, ValueIsClock(), rollout, cursor)
            assert after.obs[0, 0] == rollout.obs[-1, 0, 0] + 1 and not cursor.prev_done.any()
            obs = rollout.obs[:, 0, 0].tolist()
            # Episode: obs 0..end-1 are acted on, obs `end` is the final observation, then the
            # step taken from it is the reset transition (invalid), then a new episode starts at 0.
            assert obs[: end + 2] == [*range(end), float(end), 0.0]
            assert rollout.done[end - 1, 0] == 1 and rollout.terminated[end - 1, 0] == terminal
            assert not rollout.valid[end, 0] and rollout.valid[: end, 0].all() and rollout.valid[end + 1 :, 0].all()
            # V(s_{t+1}) at the last step of the episode is the value of the final observation.
            assert rollout.next_values[end - 1, 0] == end
            assert returns == [float(end)] and lengths == [end]
            envs.close()
    finally:
        gym.registry.pop("ClockTerminates-v0")
        gym.registry.pop("ClockTruncates-v0")


def test_replay_collection_keeps_terminated_apart_from_truncated_and_flags_resets():
    gym.register("ClockTruncates-v0", entry_point=Clock, kwargs={"terminate_at": 99}, max_episode_steps=4)
    gym.register("ClockTerminates-v0", entry_point=Clock, kwargs={"terminate_at": 3})
    try:
        for env_id, end, terminal in (("ClockTruncates-v0", 4, False), ("ClockTerminates-v0", 3, True)):
            envs = make_vector_env(env_id, 1, mode="sync")
            buffer = ReplayBuffer(16, 1, (1,), ())
            (returns, lengths), cursor = collect_transitions(envs, EnvCursor.reset(envs, seed=0), lambda obs: np.zeros(1, np.int64), buffer, 6)
            assert returns == [float(end)] and lengths == [end]
            rows = slice(0, 6)
            assert buffer.obs[rows, 0, 0].tolist() == [*range(end), float(end), *range(6 - end - 1)]
            assert buffer.next_obs[end - 1, 0, 0] == end  # the final observation, to bootstrap from when truncated
            assert buffer.terminated[end - 1, 0] == terminal and buffer.truncated[end - 1, 0] == (not terminal)
            assert buffer.valid[rows, 0].tolist() == [True] * end + [False] + [True] * (6 - end - 1)
            assert len(buffer) == 5
            envs.close()
    finally:
        gym.registry.pop("ClockTerminates-v0")
        gym.registry.pop("ClockTruncates-v0")
