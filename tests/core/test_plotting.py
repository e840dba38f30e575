import csv

import pytest

from rlsuite.errors import RLSuiteError
from rlsuite.core.plotting import group_labels, plot_runs, read_curve


def fake_run(root, name, algo="ppo", seed=1, gamma=0.99, evals=((100, 1.0), (200, 3.0)), unit="env steps"):
    run = root / name
    run.mkdir()
    (run / "run.yaml").write_text(f"algo: {algo}\nunit: {unit}\n")
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


def test_x_axis_is_the_budget_unit_and_several_metrics_share_a_plot(tmp_path):
    import matplotlib.pyplot as plt

    ppo_run = fake_run(tmp_path, "p", unit="env steps")
    dp_run = fake_run(tmp_path, "d", algo="value_iteration", unit="sweeps")
    captured = {}
    original = plt.Axes.set_xlabel

    def spy(ax, label, *args, **kwargs):
        captured["x"] = label
        return original(ax, label, *args, **kwargs)

    plt.Axes.set_xlabel = spy
    try:
        plot_runs([dp_run], tmp_path / "log.png", metric=["losses/value_loss", "losses/value_loss"], logy=True)
        assert captured["x"] == "sweeps"
        plot_runs([ppo_run], tmp_path / "p.png")
        assert captured["x"] == "env steps"
        plot_runs([ppo_run, dp_run], tmp_path / "both.png")
        assert captured["x"] == "step"
    finally:
        plt.Axes.set_xlabel = original


def test_evaluation_headline_is_the_first_eval_column(tmp_path):
    run = fake_run(tmp_path, "a")
    (run / "eval.csv").write_text("step,accuracy,loss\n10,0.25,3\n20,0.5,2\n")
    steps, values, label = read_curve(run)
    assert steps.tolist() == [10, 20] and values.tolist() == [0.25, 0.5] and label == "evaluation accuracy"
