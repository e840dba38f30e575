import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rlsuite.errors import ConfigError
from rlsuite.envs import bandits
from rlsuite.envs.bandits import BanditEnv, BanditVectorEnv

IDS = ["bandit-10", "bandit-10-offset4", "bandit-10-nonstationary", "bandit-10-bernoulli"]


@pytest.mark.parametrize("env_id", IDS)
def test_single_env_passes_gymnasium_checker(env_id):
    env = gym.make(env_id)
    check_env(env.unwrapped)
    obs, info = env.reset(seed=3)
    assert obs == 0 and 0 <= info["optimal_action"] < 10
    _, reward, terminated, truncated, info = env.step(2)
    assert not terminated and not truncated and {"optimal_action", "regret"} <= set(info)


@pytest.mark.parametrize("env_id", IDS)
def test_make_vec_gives_the_numpy_vector_env(env_id):
    envs = gym.make_vec(env_id, num_envs=7)
    assert isinstance(envs, BanditVectorEnv) and envs.num_envs == 7 and envs.single_action_space.n == 10
    obs, info = envs.reset(seed=0)
    assert obs.shape == (7,) and info["optimal_action"].shape == (7,)
    _, rewards, terminated, truncated, info = envs.step(np.zeros(7, dtype=np.int64))
    assert rewards.shape == (7,) and not terminated.any() and not truncated.any()


def test_stationary_testbed_distribution_and_rewards():
    envs = BanditVectorEnv(num_envs=4000)
    envs.reset(seed=0)
    q = envs.q_star.copy()
    assert q.mean() == pytest.approx(0.0, abs=0.03) and q.std() == pytest.approx(1.0, abs=0.02)
    actions = np.arange(4000) % 10
    _, rewards, _, _, info = envs.step(actions)
    noise = rewards - q[np.arange(4000), actions]
    assert noise.mean() == pytest.approx(0.0, abs=0.05) and noise.std() == pytest.approx(1.0, abs=0.04)
    np.testing.assert_array_equal(info["optimal_action"], q.argmax(1))
    np.testing.assert_allclose(info["regret"], q.max(1) - q[np.arange(4000), actions])
    np.testing.assert_array_equal(envs.q_star, q)  # stationary: q* never moves


def test_offset_testbed_mean():
    envs = gym.make_vec("bandit-10-offset4", num_envs=3000)
    envs.reset(seed=1)
    assert envs.q_star.mean() == pytest.approx(4.0, abs=0.03)


def test_nonstationary_random_walk():
    envs = gym.make_vec("bandit-10-nonstationary", num_envs=3000)
    envs.reset(seed=2)
    assert (envs.q_star == 0.0).all()  # all q*(a) start out equal
    before = envs.q_star.copy()
    _, rewards, _, _, info = envs.step(np.zeros(3000, dtype=np.int64))
    assert (info["regret"] == 0).all()  # pulled while all arms were equal
    step = envs.q_star - before
    assert step.mean() == pytest.approx(0.0, abs=0.001) and step.std() == pytest.approx(0.01, rel=0.03)


def test_bernoulli_rewards_match_arm_probabilities():
    envs = gym.make_vec("bandit-10-bernoulli", num_envs=5)
    envs.reset(seed=4)
    p = envs.q_star.copy()
    assert ((p >= 0) & (p <= 1)).all()
    rewards = np.stack([envs.step(np.full(5, 3))[1] for _ in range(4000)])
    assert set(np.unique(rewards)) <= {0.0, 1.0}
    np.testing.assert_allclose(rewards.mean(0), p[:, 3], atol=0.03)


def test_seeding_reproduces_testbed_and_rewards():
    a, b = BanditVectorEnv(num_envs=5), BanditVectorEnv(num_envs=5)
    a.reset(seed=11)
    b.reset(seed=11)
    np.testing.assert_array_equal(a.q_star, b.q_star)
    np.testing.assert_array_equal(a.step(np.ones(5, int))[1], b.step(np.ones(5, int))[1])
    b.reset(seed=12)
    assert not np.array_equal(a.q_star, b.q_star)
    single = BanditEnv()
    single.reset(seed=11)
    first = single.q_star.copy()
    single.reset(seed=11)
    np.testing.assert_array_equal(single.q_star, first)


def test_truncation_and_next_step_autoreset():
    envs = BanditVectorEnv(num_envs=3, steps=2)
    envs.reset(seed=0)
    first_testbed = envs.q_star.copy()
    truncs = [envs.step(np.zeros(3, int))[3].copy() for _ in range(2)]
    assert not truncs[0].any() and truncs[1].all()
    _, rewards, _, truncated, _ = envs.step(np.zeros(3, int))  # the reset step
    assert (rewards == 0).all() and not truncated.any()
    assert not np.array_equal(envs.q_star, first_testbed)
    single = gym.make("bandit-10", steps=3)
    single.reset(seed=0)
    assert [single.step(0)[3] for _ in range(3)] == [False, False, True]


def test_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="at least one arm"):
        gym.make("bandit-10", k=0)
    with pytest.raises(ConfigError, match="at least one arm"):
        gym.make_vec("bandit-10", num_envs=2, k=0)
    with pytest.raises(ConfigError, match="reward must be one of"):
        BanditEnv(reward="poisson")
    with pytest.raises(ConfigError, match="at least one run"):
        BanditVectorEnv(num_envs=0)


def test_ids_are_documented():
    for env_id in bandits.IDS:
        assert env_id in bandits.__doc__ and env_id in gym.registry
