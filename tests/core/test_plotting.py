import csv

import pytest

from rlsuite.core.errors import RLSuiteError
from rlsuite.core.plotting import group_labels, plot_runs, read_curve, x_label


def fake_run(root, name, algo="ppo", seed=1, gamma=0.99, evals=((100, 1.0), (200, 3.0))):
    run = root / name
    run.mkdir()
    (run / "run.yaml").write_text(f"algo: {algo}\n")
    (run / "config.yaml").write_text(f"env: CartPole-v1\nseed: {seed}\ngamma: {gamma}\n")
    with (run / "eval.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "mean_return"])
        writer.writerows(evals)
    with (run / "metrics.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "losses/value_loss"])
        writer.writerows([(100, 0.5), (200, 0.25)])
    return run


def test_seeds_are_pooled_and_other_differences_are_labelled(tmp_path):
    a = fake_run(tmp_path, "a", seed=1)
    b = fake_run(tmp_path, "b", seed=2)
    c = fake_run(tmp_path, "c", seed=1, gamma=0.9)
    labels = group_labels([a, b, c])
    assert labels[a] == labels[b] == "ppo CartPole-v1 gamma=0.99"
    assert labels[c] == "ppo CartPole-v1 gamma=0.9"
    out = plot_runs([a, b, c], tmp_path / "p.png")
    assert out.stat().st_size > 1000


def test_metric_column_and_missing_column(tmp_path):
    run = fake_run(tmp_path, "a")
    steps, values, label = read_curve(run, "losses/value_loss")
    assert steps.tolist() == [100, 200] and values.tolist() == [0.5, 0.25] and label == "losses/value_loss"
    with pytest.raises(RLSuiteError, match="no column 'nope'"):
        read_curve(run, "nope")


def test_x_axis_follows_the_algorithm_family(tmp_path):
    ppo_run = fake_run(tmp_path, "p", algo="ppo")
    bandit_run = fake_run(tmp_path, "b", algo="ucb")
    dp_run = fake_run(tmp_path, "d", algo="value_iteration")
    assert x_label([ppo_run]) == "environment steps"
    assert x_label([bandit_run]) == "step (pulls per run)"
    assert x_label([dp_run]) == "iteration (sweeps)"
    assert x_label([ppo_run, bandit_run]) == "step"
    assert plot_runs([dp_run], tmp_path / "log.png", logy=True).stat().st_size > 1000
