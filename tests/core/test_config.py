import dataclasses

import pytest

from rlsuite.algos.deep import ppo
from rlsuite.core import config as configs
from rlsuite.errors import ConfigError


def test_unknown_field_suggests_the_close_name():
    with pytest.raises(ConfigError, match="unknown config field 'learnig_rate'.*Did you mean: learning_rate"):
        configs.from_dict(ppo.PPOConfig, {"learnig_rate": 1e-3})


def test_yaml_strings_are_coerced_to_field_types(tmp_path):
    # PyYAML reads 1e-3 (no dot) as a string; the config must still get a float.
    path = tmp_path / "c.yaml"
    path.write_text("learning_rate: 1e-3\nhidden_sizes: [32, 32]\nanneal_lr: 'false'\nnum_envs: 4\nnum_steps: 16\nminibatch_size: 32\n")
    config = configs.from_dict(ppo.PPOConfig, configs.load_yaml(path))
    assert config.learning_rate == pytest.approx(1e-3)
    assert config.hidden_sizes == (32, 32)
    assert config.anneal_lr is False
    assert config.batch_size == 64


@pytest.mark.parametrize(
    "values, message",
    [
        ({"learning_rate": -1.0}, "learning_rate must be > 0"),
        ({"minibatch_size": 100}, "minibatch_size 100 must divide the batch"),
        ({"gamma": 1.5}, r"gamma must be in \[0, 1\]"),
        ({"num_envs": 0}, "num_envs must be >= 1"),
        ({"total_steps": 0}, "total_steps must be > 0"),
        ({"num_envs": "four"}, "num_envs must be of type int"),
        ({"num_envs": 2.5}, "num_envs must be of type int"),
        ({"num_envs": "2.5"}, "num_envs must be of type int"),  # a flag or YAML string, never truncated to 2
        ({"objective": "trpo"}, "objective must be one of 'clip', 'kl'"),
        ({"device": "tpu"}, "device must be"),
    ],
)
def test_invalid_values_are_rejected_with_the_reason(values, message):
    with pytest.raises(ConfigError, match=message):
        configs.from_dict(ppo.PPOConfig, values)


def test_precedence_defaults_preset_overrides():
    assert ppo.PPOConfig().update_epochs == 10
    tuned = ppo.preset("CartPole-v1")
    assert tuned.update_epochs == 20 and tuned.gamma == 0.98
    assert ppo.preset("CartPole-v1", gamma=0.9).gamma == 0.9
    # An env without a preset gets the dataclass defaults.
    assert ppo.preset("MountainCar-v0").update_epochs == 10


def test_yaml_round_trip(tmp_path):
    config = ppo.preset("Pendulum-v1", seed=7)
    (tmp_path / "c.yaml").write_bytes(configs.dump_yaml(config))
    assert configs.from_dict(ppo.PPOConfig, configs.load_yaml(tmp_path / "c.yaml")) == config


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ppo.PPOConfig().seed = 3  # type: ignore[misc]


def test_malformed_yaml_is_a_config_error(tmp_path):
    (tmp_path / "bad.yaml").write_text("learning_rate: [1, \n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        configs.load_yaml(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        configs.load_yaml(tmp_path / "list.yaml")


def test_checkpoints_are_frequent_by_default():
    """A run killed outright loses at most about a minute of work."""
    assert ppo.PPOConfig().checkpoint_minutes <= 1.0 and configs.TrainConfig().checkpoint_minutes <= 1.0
    assert ppo.PPOConfig().schedule.checkpoint_seconds <= 60.0
