import gymnasium as gym
import numpy as np
import pytest

from rlsuite.core.spec import ActsOn
from rlsuite.envs.resolver import check_env_id, require, resolve
from rlsuite.errors import UnknownNameError, UnsupportedEnvError

BOX_DISCRETE = ActsOn("gymnasium", observations=("Box",), actions=("Discrete", "Box"))
TABULAR = ActsOn("gymnasium", observations=("Discrete",), actions=("Discrete",))


def test_unknown_env_suggests_close_ids():
    with pytest.raises(UnknownNameError, match="Did you mean: Pendulum-v1"):
        check_env_id("Pendulm-v1")


def test_kinds_spaces_and_models():
    cartpole = resolve("CartPole-v1")
    assert cartpole.kind == "gymnasium" and not cartpole.has_model and cartpole.max_episode_steps == 500
    assert cartpole.observation_space.shape == (4,) and cartpole.action_space.n == 2
    lake = resolve("FrozenLake-v1")
    assert lake.has_model and lake.observation_space.n == 16
    assert resolve("GridWorld4x4-v0").has_model
    bandit = resolve("bandit-10")
    assert bandit.kind == "bandit" and bandit.action_space.n == 10


def test_require_messages():
    require(resolve("CartPole-v1"), "ppo", BOX_DISCRETE)
    with pytest.raises(UnsupportedEnvError, match="flat Box observation space"):
        require(resolve("FrozenLake-v1"), "ppo", BOX_DISCRETE)
    with pytest.raises(UnsupportedEnvError, match="handles Discrete action spaces.*ppo"):
        require(resolve("Pendulum-v1"), "dqn", ActsOn("gymnasium", observations=("Box",), actions=("Discrete",)))
    with pytest.raises(UnsupportedEnvError, match="tabular method and needs a Discrete observation"):
        require(resolve("CartPole-v1"), "q_learning", TABULAR)
    with pytest.raises(UnsupportedEnvError, match="exposes no transition table P"):
        require(resolve("CartPole-v1"), "value_iteration", ActsOn("mdp", ("Discrete",), ("Discrete",)))
    with pytest.raises(UnsupportedEnvError, match="needs a k-armed testbed"):
        require(resolve("CartPole-v1"), "ucb", ActsOn("bandit"))
    with pytest.raises(UnsupportedEnvError, match="bandit testbed; use a bandit algorithm"):
        require(resolve("bandit-10"), "q_learning", TABULAR)


class ImageObs(gym.Env):
    observation_space = gym.spaces.Box(0, 255, (4, 4, 3), np.uint8)
    action_space = gym.spaces.Discrete(2)


def test_image_observations_need_flattening():
    gym.register("ImageObsTest-v0", entry_point=ImageObs)
    try:
        with pytest.raises(UnsupportedEnvError, match="FlattenObservation"):
            require(resolve("ImageObsTest-v0"), "ppo", BOX_DISCRETE)
    finally:
        gym.registry.pop("ImageObsTest-v0")
