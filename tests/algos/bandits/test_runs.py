"""What a bandit run leaves behind, through the Python API and the CLI, and the errors users see."""

import csv
from pathlib import Path

import numpy as np
import pytest
import yaml

import rlsuite
from rlsuite.algos.bandits import METRICS, NO_POLICY, epsilon_greedy, gradient_bandit, thompson, ucb
from rlsuite.cli import main
from rlsuite.errors import RLSuiteError, RunDirError, UnknownNameError, UnsupportedEnvError

MODULES = [epsilon_greedy, ucb, gradient_bandit, thompson]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_run_directory_pieces(module):
    run = module.train(module.Config(seed=3, runs=40, steps=25), "run", quiet=True)
    assert run.dir == Path("run") and run.step == 25 and not run.interrupted
    for name in ("config.yaml", "run.yaml", "metrics.csv", "curve.png", "optimal_action.png"):
        assert (run.dir / name).is_file(), name
    meta = yaml.safe_load((run.dir / "run.yaml").read_text())
    assert meta["status"] == "finished" and meta["step"] == 25 and meta["unit"] == "pulls"
    with (run.dir / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == list(range(1, 26))
    assert {"bandit/average_reward", "bandit/optimal_action", "bandit/regret", "bandit/cumulative_regret"} <= set(rows[0])
    assert all(0 <= float(r["bandit/optimal_action"]) <= 100 for r in rows)
    with pytest.raises(RLSuiteError, match="bandit runs have no policy"):
        rlsuite.load(run.dir)
    assert module.SPEC.family == "bandit" and module.SPEC.load is None


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_per_run_curves_average_to_the_logged_curve(module):
    run = module.train(module.Config(seed=3, runs=40, steps=25), "run", quiet=True)
    curves = run.curves
    assert curves["rewards"].shape == curves["optimal"].shape == curves["regret"].shape == (40, 25)
    np.testing.assert_allclose(curves["rewards"].mean(axis=0), run.metrics["bandit/average_reward"], rtol=1e-6)
    np.testing.assert_allclose(100 * curves["optimal"].mean(axis=0), run.metrics["bandit/optimal_action"])
    np.testing.assert_allclose(np.cumsum(curves["regret"].mean(axis=0)), run.metrics["bandit/cumulative_regret"], rtol=1e-5)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_interrupted_then_resumed_equals_uninterrupted(module):
    config = module.Config(seed=4, runs=30, steps=40)
    whole = module.train(config, "whole", quiet=True)
    cut = module.train(config, "cut", quiet=True, callbacks=[lambda loop: loop.step == 17 and loop.request_stop()])
    assert cut.interrupted and cut.step == 17
    resumed = rlsuite.resume("cut", quiet=True)
    assert resumed.step == 40 and resumed.status == "finished"
    for key in ("rewards", "optimal", "regret"):
        np.testing.assert_array_equal(whole.curves[key], resumed.curves[key], err_msg=key)
    for column in METRICS:
        np.testing.assert_array_equal(whole.metrics[column], resumed.metrics[column], err_msg=column)


def test_same_seed_same_curve_and_refuses_overwrite():
    first = ucb.train(ucb.Config(seed=5, runs=30, steps=20), "a", quiet=True)
    second = ucb.train(ucb.Config(seed=5, runs=30, steps=20), "b", quiet=True)
    for column in METRICS:
        np.testing.assert_array_equal(first.metrics[column], second.metrics[column])
    with pytest.raises(RunDirError, match="already exists"):
        ucb.train(ucb.Config(seed=5, runs=30, steps=20), "a", quiet=True)


def test_cli_train_and_plot_several_agents(capsys):
    assert main(["train", "ucb", "--env", "bandit-10", "--runs", "200", "--steps", "60", "--run-dir", "u", "--quiet"]) == 0
    assert main(["train", "epsilon_greedy", "--epsilon", "0.1", "--runs", "200", "--steps", "60", "--run-dir", "e1", "--quiet"]) == 0
    assert main(["train", "epsilon_greedy", "--epsilon", "0", "--runs", "200", "--steps", "60", "--run-dir", "e0", "--quiet"]) == 0
    config = yaml.safe_load(Path("u/config.yaml").read_text())
    assert config["runs"] == 200 and config["steps"] == 60 and config["env"] == "bandit-10"
    assert main(["plot", "u", "e1", "e0", "--metric", "bandit/average_reward", "--out", "fig.png"]) == 0
    assert Path("fig.png").stat().st_size > 1000


def test_cli_bad_values_exit_2(capsys):
    assert main(["train", "epsilon_greedy", "--epsilon", "1.5", "--run-dir", "x"]) == 2
    assert "epsilon must be in [0, 1]" in capsys.readouterr().err
    assert main(["train", "ucb", "--c", "-1", "--run-dir", "x"]) == 2
    assert main(["train", "ucb", "--runs", "0", "--run-dir", "x"]) == 2
    assert main(["train", "ucb", "--arms", "0", "--run-dir", "x"]) == 2
    assert main(["train", "gradient_bandit", "--step-size", "0", "--run-dir", "x"]) == 2
    assert not Path("x").exists()


def test_errors_before_any_work():
    with pytest.raises(UnsupportedEnvError, match="bandit-10-offset4"):
        ucb.train(ucb.Config(env="CartPole-v1"), "c", quiet=True)
    with pytest.raises(UnknownNameError, match="Did you mean"):
        ucb.train(ucb.Config(env="bandit-11"), "c", quiet=True)
    with pytest.raises(RunDirError, match="not an rlsuite run directory"):
        ucb.train(ucb.Config(), "c", resume=True, quiet=True)
    assert not Path("c").exists()


def test_load_of_a_bandit_run_is_a_clear_error():
    run = epsilon_greedy.train(epsilon_greedy.Config(runs=10, steps=5), "r", quiet=True)
    with pytest.raises(RLSuiteError):
        rlsuite.load(run.dir)
    assert NO_POLICY.startswith("bandit runs have no policy")


def test_callback_can_stop_a_run_early():
    def stop_at_ten(session):
        if session.step == 10:
            session.request_stop()

    run = ucb.train(ucb.Config(runs=10, steps=50), "r", quiet=True, callbacks=[stop_at_ten])
    assert run.interrupted and run.step == 10
    assert yaml.safe_load((run.dir / "run.yaml").read_text())["status"] == "interrupted"


def test_api_train_by_name_and_arms_override():
    run = rlsuite.train("gradient_bandit", "bandit-10-nonstationary", runs=20, steps=10, arms=3, quiet=True)
    assert run.config.arms == 3 and run.config.env == "bandit-10-nonstationary"
