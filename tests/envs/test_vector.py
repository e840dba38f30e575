import gymnasium as gym
import numpy as np

from rlsuite.envs.vector import finished_episodes, make_vector_env


def test_native_vector_cartpole_and_sync_fallback():
    cartpole = make_vector_env("CartPole-v1", 3)
    assert type(cartpole.unwrapped).__name__ == "CartPoleVectorEnv"
    pendulum = make_vector_env("Pendulum-v1", 2)
    assert isinstance(pendulum.unwrapped, gym.vector.SyncVectorEnv)
    cartpole.close()
    pendulum.close()


def test_episode_statistics_are_raw_even_with_reward_normalization():
    envs = make_vector_env("CartPole-v1", 4, normalize_reward=True)
    envs.reset(seed=0)
    returns, lengths, scaled = [], [], []
    for _ in range(200):
        _, reward, _, _, info = envs.step(np.zeros(4, dtype=np.int64))  # always push left: short episodes
        scaled.append(reward)
        r, n = finished_episodes(info)
        returns += r
        lengths += n
    assert returns and returns == lengths  # CartPole pays 1 per step: raw return equals length
    assert not np.allclose(np.concatenate(scaled)[np.concatenate(scaled) != 0], 1.0)  # while training rewards are scaled
