"""Figures 2.2 and 2.3 of Sutton & Barto (2nd ed.): 2,000 runs x 1,000 steps of the 10-armed testbed."""

import csv

import numpy as np
import pytest

from rlsuite.algos.bandits import epsilon_greedy
from rlsuite.errors import ConfigError


def curve(run, column):
    with (run.dir / "metrics.csv").open() as f:
        return np.array([float(row[column]) for row in csv.DictReader(f)])


def late(run, column, last=100):
    return curve(run, column)[-last:].mean()


def train(name, **fields):
    return epsilon_greedy.train(epsilon_greedy.Config(seed=0, **fields), name, quiet=True)


@pytest.mark.slow
def test_figure_2_2_epsilon_greedy_on_the_10_armed_testbed():
    greedy, small, large = train("g", epsilon=0.0), train("s", epsilon=0.01), train("l", epsilon=0.1)
    reward = {name: late(run, "bandit/average_reward") for name, run in [("greedy", greedy), ("0.01", small), ("0.1", large)]}
    # The book: greedy levels off near 1.0, epsilon 0.01 near 1.3 and still rising, 0.1 near 1.4.
    assert 0.9 < reward["greedy"] < 1.15
    assert 1.15 < reward["0.01"] < 1.4
    assert 1.28 < reward["0.1"] < 1.5
    assert reward["0.1"] > reward["0.01"] + 0.02 > reward["greedy"] + 0.12
    rising = curve(small, "bandit/average_reward")
    assert rising[-100:].mean() > rising[400:500].mean() + 0.04
    optimal = {name: late(run, "bandit/optimal_action") for name, run in [("greedy", greedy), ("0.01", small), ("0.1", large)]}
    assert 28 < optimal["greedy"] < 45  # greedy finds the best arm in about a third of the runs
    assert 72 < optimal["0.1"] < 88 and optimal["0.1"] > optimal["0.01"] > optimal["greedy"]


@pytest.mark.slow
def test_figure_2_3_optimistic_initial_values():
    optimistic = train("o", epsilon=0.0, step_size=0.1, initial_value=5.0)
    realistic = train("r", epsilon=0.1, step_size=0.1, initial_value=0.0)
    late_opt, late_real = late(optimistic, "bandit/optimal_action"), late(realistic, "bandit/optimal_action")
    assert 78 < late_opt < 93 and 68 < late_real < 84
    assert late_opt > late_real + 4
    # The optimistic agent's early spike: after trying every arm once (step 11) it often picks the best.
    assert curve(optimistic, "bandit/optimal_action")[8:14].max() > 35


def test_sample_average_agent_small_run_and_config_errors():
    run = train("tiny", runs=50, steps=30)
    assert len(curve(run, "bandit/average_reward")) == 30
    for bad in (dict(epsilon=-0.1), dict(epsilon=1.5), dict(step_size=0.0), dict(step_size=-0.5), dict(runs=0), dict(arms=0), dict(steps=0)):
        with pytest.raises(ConfigError):
            epsilon_greedy.Config(**bad)


def test_single_arm_always_optimal():
    run = train("one", runs=20, steps=5, arms=1)
    assert (curve(run, "bandit/optimal_action") == 100).all() and (curve(run, "bandit/regret") == 0).all()
