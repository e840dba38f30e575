import gymnasium as gym
import numpy as np
import pytest

from rlsuite.core.errors import UnknownNameError, UnsupportedEnvError
from rlsuite.envs.vector import check_env_id, env_spaces, finished_episodes, make_vector_env, require_spaces


def test_unknown_env_suggests_close_ids():
    with pytest.raises(UnknownNameError, match="Did you mean: Pendulum-v1"):
        check_env_id("Pendulm-v1")


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


def test_require_spaces_messages():
    obs, act = env_spaces("FrozenLake-v1")
    with pytest.raises(UnsupportedEnvError, match="flat Box observation space"):
        require_spaces("ppo", "FrozenLake-v1", obs, act)
    box = gym.spaces.Box(-1, 1, (2,))
    with pytest.raises(UnsupportedEnvError, match="handles Discrete action spaces"):
        require_spaces("dqn", "X-v0", box, box, actions=(gym.spaces.Discrete,))
