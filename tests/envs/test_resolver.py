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


def test_a_module_prefixed_id_imports_the_module_that_registers_it(tmp_path, monkeypatch):
    """'module:EnvName-v0', as gym.make reads it: a user's own env with no change to rlsuite."""
    (tmp_path / "my_envs_for_rlsuite.py").write_text(
        "import gymnasium as gym\n"
        "if 'MyPole-v0' not in gym.registry:\n"
        "    gym.register('MyPole-v0', entry_point='gymnasium.envs.classic_control:CartPoleEnv', max_episode_steps=50)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    info = resolve("my_envs_for_rlsuite:MyPole-v0")
    assert info.kind == "gymnasium" and info.max_episode_steps == 50
    from rlsuite.envs.vector import make_vector_env

    assert make_vector_env("my_envs_for_rlsuite:MyPole-v0", 2).num_envs == 2
    with pytest.raises(UnknownNameError, match="cannot import module 'no_such_module_here'.*PYTHONPATH"):
        resolve("no_such_module_here:MyPole-v0")
    with pytest.raises(UnknownNameError, match="unknown environment 'MyPol-v0'. Did you mean: MyPole-v0"):
        resolve("my_envs_for_rlsuite:MyPol-v0")
    gym.registry.pop("MyPole-v0")
