from pathlib import Path

import numpy as np
import pytest

import rlsuite
from rlsuite.errors import ConfigError, RunDirError, UnsupportedEnvError
from rlsuite.core.run import RunDir

OPTIMAL_FROZEN_LAKE = [0, 3, 3, 3, 0, 0, 0, 0, 3, 1, 0, 0, 0, 2, 1, 0]
"""Optimal actions on FrozenLake-v1 (gamma 0.99), with don't-care entries at holes and the goal."""


@pytest.mark.parametrize("algo", ["value_iteration", "policy_iteration", "policy_evaluation"])
def test_train_writes_a_complete_run_dir(algo, tmp_path):
    run = rlsuite.train(algo, "FrozenLake-v1", run_dir=tmp_path / algo, quiet=True, gamma=0.99)
    for name in ("config.yaml", "run.yaml", "metrics.csv", "model/v.npy", "model/q.npy", "model/policy.npy", "curve.png", "values.png"):
        assert (run.dir / name).is_file(), name
    assert RunDir(run.dir).meta()["status"] == "finished"
    policy = rlsuite.load(run.dir)
    action = policy.act(0)
    assert int(action) in range(4)
    if algo != "policy_evaluation":
        holes_and_goal = {5, 7, 11, 12, 15}
        acts = policy.act(np.arange(16))
        assert [int(a) for s, a in enumerate(acts) if s not in holes_and_goal] == [a for s, a in enumerate(OPTIMAL_FROZEN_LAKE) if s not in holes_and_goal]


def test_policy_iteration_metrics_count_policy_changes(tmp_path):
    import csv

    run = rlsuite.train("policy_iteration", "Taxi-v4", run_dir=tmp_path / "pi", quiet=True, gamma=0.99)
    rows = list(csv.DictReader((run.dir / "metrics.csv").open()))
    assert float(rows[-1]["policy_changes"]) == 0 and float(rows[0]["policy_changes"]) > 0


def test_continuous_env_is_rejected(tmp_path):
    with pytest.raises(UnsupportedEnvError, match="exposes no transition table P"):
        rlsuite.train("value_iteration", "CartPole-v1", run_dir=tmp_path / "x", quiet=True)
    assert not (tmp_path / "x").exists()


def test_bad_gamma(tmp_path):
    with pytest.raises(ConfigError):
        rlsuite.train("value_iteration", "FrozenLake-v1", run_dir=tmp_path / "a", quiet=True, gamma=1.5)
    with pytest.raises(ConfigError, match="episodic"):
        rlsuite.train("policy_iteration", "GridWorld5x5-v0", run_dir=tmp_path / "b", quiet=True, gamma=1.0)
    assert not (tmp_path / "b").exists()


def test_cli_value_iteration(tmp_path):
    from rlsuite import cli

    code = cli.main(["train", "value_iteration", "--env", "FrozenLake-v1", "--gamma", "0.99", "--run-dir", str(tmp_path / "cli")])
    assert code in (0, None)
    assert (tmp_path / "cli" / "model" / "v.npy").is_file()


def test_the_readme_figure_4_1_command_converges_to_the_book_values(capsys):
    from rlsuite import cli

    assert cli.main(["train", "policy_evaluation", "--env", "GridWorld4x4-v0", "--run-dir", "fig41"]) == 0
    v = rlsuite.load("fig41").v.reshape(4, 4)
    book = [[0, -14, -20, -22], [-14, -18, -20, -20], [-20, -20, -18, -14], [-22, -20, -14, 0]]  # Figure 4.1, k = infinity
    np.testing.assert_allclose(v, book, atol=0.05)
    assert RunDir(Path("fig41")).meta()["status"] == "finished"


def test_undiscounted_policy_iteration_on_frozen_lake_keeps_tied_actions(tmp_path):
    run = rlsuite.train("policy_iteration", "FrozenLake-v1", run_dir=tmp_path / "pi", quiet=True, gamma=1.0)
    vi = rlsuite.train("value_iteration", "FrozenLake-v1", run_dir=tmp_path / "vi", quiet=True, gamma=1.0, tol=1e-10)
    assert run.status == "finished"
    np.testing.assert_allclose(rlsuite.load(run.dir).v, rlsuite.load(vi.dir).v, atol=1e-6)


def test_a_dp_run_refuses_resume_without_pointing_back_at_resume(tmp_path):
    from rlsuite import cli

    run = rlsuite.train("value_iteration", "FrozenLake-v1", run_dir=tmp_path / "vi", quiet=True)
    with pytest.raises(RunDirError, match="not resumable") as info:
        rlsuite.resume(run.dir)
    message = str(info.value)
    assert "rlsuite resume" not in message and f"--config {run.dir}/config.yaml" in message and "--overwrite" in message
    assert cli.main(["resume", str(run.dir)]) == 2
