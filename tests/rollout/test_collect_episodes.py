"""collect_episodes: one whole episode per sub-env, on envs whose observation is their clock."""

import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlsuite.rollout.collect import collect_episodes

sys.path.insert(0, str(Path(__file__).parent))
import test_collect  # noqa: E402


class Clock(test_collect.Clock):
    """obs = [t]; reward = t + 1 (so a sum tells which steps were counted); terminates at
    t == terminate_at (or is cut by a time limit when registered with one)."""

    observation_space = gym.spaces.Box(0, 1000, (1,), np.float32)

    def step(self, action):
        obs, _, terminated, truncated, info = super().step(action)
        return obs, float(self.t), terminated, truncated, info


ValueIsClock = test_collect.ValueIsClock


@pytest.fixture
def clocks():
    gym.register("ClockTerminates-v0", entry_point=Clock, kwargs={"terminate_at": 3})
    gym.register("ClockTruncates-v0", entry_point=Clock, kwargs={"terminate_at": 99}, max_episode_steps=4)
    gym.register("ClockRunsOn-v0", entry_point=Clock, kwargs={"terminate_at": 99})
    yield
    for env_id in ("ClockTerminates-v0", "ClockTruncates-v0", "ClockRunsOn-v0"):
        gym.registry.pop(env_id)


def vector(*env_ids):
    return gym.vector.SyncVectorEnv([lambda env_id=env_id: gym.make(env_id) for env_id in env_ids])


def test_one_episode_per_env_with_masks_up_to_each_end(clocks):
    # Env 0 terminates after 3 steps, env 1 is cut by its 4-step limit: T is the longer, 4.
    envs = vector("ClockTerminates-v0", "ClockTruncates-v0")
    batch, (returns, lengths) = collect_episodes(envs, ValueIsClock(), seed=0)
    assert batch.rewards.shape == (4, 2)
    assert batch.valid.T.tolist() == [[True, True, True, False], [True, True, True, True]]
    # Both episodes start from a reset: the observations acted on are t = 0, 1, 2, (3). Env 0's row
    # 3 is whatever it was stepped from after its end (not valid, not counted).
    assert batch.obs[:3, :, 0].T.tolist() == [[0.0, 1.0, 2.0], [0.0, 1.0, 2.0]] and batch.obs[3, 1, 0] == 3.0
    assert batch.values[:3].T.tolist() == [[0.0, 1.0, 2.0], [0.0, 1.0, 2.0]]
    # Rewards t + 1 on the episode's steps, 0 after env 0's end (its env stepped on and was paid).
    assert batch.rewards.T.tolist() == [[1.0, 2.0, 3.0, 0.0], [1.0, 2.0, 3.0, 4.0]]
    # Env 0: terminated at t = 2 only; done there and on the row after its end (a reward-to-go
    # read backwards stops there). Env 1: truncated, so done at t = 3 but never terminated.
    assert batch.terminated.T.tolist() == [[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
    assert batch.done.T.tolist() == [[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 1.0]]
    # Episodes: returns 1 + 2 + 3 = 6 and 1 + 2 + 3 + 4 = 10, lengths 3 and 4, env by env.
    assert returns == [6.0, 10.0] and lengths == [3, 4]
    assert int(batch.valid.sum()) == sum(lengths)
    assert batch.next_value.tolist() == [0.0, 0.0]  # whole episodes: nothing after them to bootstrap
    assert batch.actions.dtype == torch.long and batch.logprobs.shape == (4, 2)
    envs.close()


def test_every_call_starts_fresh_episodes(clocks):
    # The second call resets instead of continuing from where the envs stopped (env 0 would
    # otherwise be inside an autoreset): the same masks and returns.
    envs = vector("ClockTruncates-v0", "ClockTerminates-v0")
    first = collect_episodes(envs, ValueIsClock(), seed=0)
    second = collect_episodes(envs, ValueIsClock())
    assert first[1] == second[1] == ([10.0, 6.0], [4, 3])
    assert torch.equal(first[0].valid, second[0].valid) and torch.equal(first[0].obs, second[0].obs)
    envs.close()


def test_max_steps_cuts_a_long_episode_as_truncated(clocks):
    # Env 0 terminates after 3 steps; env 1 never ends by itself and is cut after max_steps = 8.
    # Meanwhile env 0 steps on in lock step: row 3 is its reset transition, rows 4-6 a new episode
    # (rewards 1, 2, 3, terminated at row 6), row 7 another reset; none of it may show.
    envs = vector("ClockTerminates-v0", "ClockRunsOn-v0")
    batch, (returns, lengths) = collect_episodes(envs, ValueIsClock(), seed=0, max_steps=8)
    assert batch.rewards.shape == (8, 2)
    assert lengths == [3, 8] and returns == [6.0, 36.0]  # 1 + ... + 8 = 36
    assert batch.valid.T.tolist() == [[True] * 3 + [False] * 5, [True] * 8]
    assert batch.terminated[:, 1].tolist() == [0.0] * 8  # cut, not terminal: a critic would bootstrap
    assert batch.done[:, 1].tolist() == [0.0] * 7 + [1.0]
    assert batch.rewards[:, 0].tolist() == [1.0, 2.0, 3.0] + [0.0] * 5
    assert batch.terminated[:, 0].tolist() == [0.0, 0.0, 1.0] + [0.0] * 5
    assert batch.done[:, 0].tolist() == [0.0, 0.0, 1.0] + [1.0] * 5
    envs.close()


def test_a_seeded_reset_repeats_and_an_unseeded_one_moves_on():
    # CartPole's start state is drawn from the reset seed; action 0 always, so the rollout is a
    # function of the seed alone.
    envs = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")] * 2)
    first, first_episodes = collect_episodes(envs, ValueIsClock(), seed=7)
    unseeded, _ = collect_episodes(envs, ValueIsClock())
    again, again_episodes = collect_episodes(envs, ValueIsClock(), seed=7)
    other, _ = collect_episodes(envs, ValueIsClock(), seed=8)
    assert torch.equal(first.obs, again.obs) and torch.equal(first.valid, again.valid) and first_episodes == again_episodes
    assert not torch.equal(first.obs[0], unseeded.obs[0]) and not torch.equal(first.obs[0], other.obs[0])
    assert not torch.equal(first.obs[0, 0], first.obs[0, 1])  # the sub-envs get different seeds
    envs.close()
