"""The Python API: tables from a run, policies with input checks, tables of tabular runs."""

import shutil

import numpy as np
import pytest

import rlsuite
from rlsuite.errors import ConfigError, InputError

TINY_PPO = dict(total_steps=512, num_envs=2, num_steps=64, minibatch_size=64, update_epochs=1, eval_every=256, eval_episodes=2)


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory):
    return rlsuite.train("ppo", "CartPole-v1", run_dir=tmp_path_factory.mktemp("ppo") / "run", quiet=True, **TINY_PPO)


def test_runs_expose_their_logs_as_tables(ppo_run):
    opened = rlsuite.open_run(ppo_run.dir)
    assert opened.algo == "ppo" and opened.config == ppo_run.config and opened.status == "finished" and opened.step == 512
    evaluations = opened.evaluations
    assert evaluations["step"].tolist() == [256, 512] and evaluations["mean_return"].dtype == np.float64
    assert opened.final_eval == evaluations["mean_return"][-1]
    assert {"step", "losses/policy_loss", "charts/episodic_return"} <= set(opened.metrics)
    episodes = opened.episodes
    assert len(episodes) > 5 and set(episodes) == {"step", "return", "length"}
    np.testing.assert_array_equal(episodes["return"], episodes["length"])  # CartPole pays 1 per step
    assert "rows" in repr(evaluations)


@pytest.mark.parametrize(
    "obs, message",
    [
        (np.zeros(3, np.float32), "got shape (3,)"),
        (np.zeros((2, 5), np.float32), "got shape (2, 5)"),
        (0.5, "got shape ()"),
        (np.array([0.0, np.nan, 0.0, 0.0]), "NaN or infinity"),
        ("left", "dtype <U4"),
        ([[1, 2], [3]], "got a ragged list"),
    ],
)
def test_policy_act_says_what_it_expects(ppo_run, obs, message):
    policy = rlsuite.load(ppo_run.dir)
    with pytest.raises(InputError, match="expects one observation of shape \\(4,\\) or a batch of shape \\(N, 4\\)|NaN") as info:
        policy.act(obs)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_policy_act_on_one_observation_and_a_batch(ppo_run):
    policy = rlsuite.load(ppo_run.dir)
    assert policy.act(np.zeros(4)) in (0, 1) and policy.act([0.0, 0.0, 0.0, 0.0]) in (0, 1)
    assert policy.act(np.zeros((3, 4), np.float64)).shape == (3,)


def test_an_exported_model_folder_loads_on_its_own(ppo_run, tmp_path):
    shutil.copytree(ppo_run.dir / "model", tmp_path / "exported")
    policy = rlsuite.load(tmp_path / "exported")
    assert policy.algo == "ppo" and policy.config == ppo_run.config
    obs = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    np.testing.assert_array_equal(policy.act(obs), rlsuite.load(ppo_run.dir).act(obs))


def test_tabular_and_dp_policies_expose_their_tables(tmp_path):
    dp_run = rlsuite.train("value_iteration", "FrozenLake-v1", run_dir=tmp_path / "vi", quiet=True)
    policy = rlsuite.load(dp_run.dir)
    assert policy.v.shape == (16,) and policy.q.shape == (16, 4) and policy.table.shape == (16,)
    np.testing.assert_array_equal(policy.act(np.arange(16)), policy.table)
    np.testing.assert_allclose(policy.v, policy.q.max(axis=1), atol=1e-6)
    q_run = rlsuite.train("q_learning", "CliffWalking-v1", run_dir=tmp_path / "q", quiet=True, total_steps=2000)
    q_policy = rlsuite.load(q_run.dir)
    assert q_policy.q.shape == (48, 4)
    with pytest.raises(AttributeError, match="no 'v' table"):
        q_policy.v
    with pytest.raises(InputError, match="states in \\[0, 48\\)"):
        q_policy.act(48)
    with pytest.raises(InputError, match="integer states"):
        q_policy.act(1.5)
    assert len(q_run.episodes) > 0 and q_run.episodes["return"].max() <= -13


def test_resume_changes_only_the_budget(ppo_run):
    with pytest.raises(ConfigError, match="resume changes only the budget \\(total_steps\\); gamma cannot change"):
        rlsuite.resume(ppo_run.dir, gamma=0.5)
