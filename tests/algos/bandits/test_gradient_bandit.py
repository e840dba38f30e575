"""Figure 2.5 of Sutton & Barto (2nd ed.): the gradient bandit with and without a baseline, q* ~ N(4, 1)."""

import csv

import numpy as np
import pytest

from rlsuite.algos.bandits import gradient_bandit
from rlsuite.errors import ConfigError


def late_optimal(run, last=100):
    with (run.dir / "metrics.csv").open() as f:
        return np.mean([float(row["bandit/optimal_action"]) for row in csv.DictReader(f)][-last:])


@pytest.mark.slow
def test_figure_2_5_baseline_matters_on_the_offset_testbed():
    config = dict(seed=0, env="bandit-10-offset4", step_size=0.1)
    with_baseline = late_optimal(gradient_bandit.train(gradient_bandit.Config(baseline=True, **config), "b", quiet=True))
    without = late_optimal(gradient_bandit.train(gradient_bandit.Config(baseline=False, **config), "n", quiet=True))
    assert 75 < with_baseline < 92  # the book: about 80%
    assert 35 < without < 62  # the book: about half
    assert with_baseline > without + 20


def test_small_run_learns_something():
    run = gradient_bandit.train(gradient_bandit.Config(seed=0, runs=500, steps=200, step_size=0.4), "s", quiet=True)
    assert late_optimal(run, 50) > 30  # uniform choice would be 10%


def test_config_errors():
    for bad in (dict(step_size=0.0), dict(step_size=-0.1), dict(runs=0)):
        with pytest.raises(ConfigError):
            gradient_bandit.Config(**bad)
