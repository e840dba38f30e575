"""Figure 2.4 of Sutton & Barto (2nd ed.): UCB (c = 2) against epsilon-greedy (0.1)."""

import csv

import numpy as np
import pytest

from rlsuite.algos.bandits import epsilon_greedy, ucb
from rlsuite.errors import ConfigError


def curve(run, column):
    with (run.dir / "metrics.csv").open() as f:
        return np.array([float(row[column]) for row in csv.DictReader(f)])


@pytest.mark.slow
def test_figure_2_4_ucb_beats_epsilon_greedy():
    u = ucb.train(ucb.Config(seed=0, c=2.0), "ucb", quiet=True)
    e = epsilon_greedy.train(epsilon_greedy.Config(seed=0, epsilon=0.1), "eps", quiet=True)
    ucb_reward, eps_reward = curve(u, "bandit/average_reward"), curve(e, "bandit/average_reward")
    assert 1.4 < ucb_reward[-100:].mean() < 1.6
    assert ucb_reward[-100:].mean() > eps_reward[-100:].mean() + 0.05
    assert ucb_reward[200:].mean() > eps_reward[200:].mean()
    # Step 11: every arm has been tried once, and most runs jump to the best-looking arm (the spike).
    assert ucb_reward[10] > ucb_reward[9] + 0.3


def test_first_k_steps_try_every_arm_once():
    # With one run per testbed and k steps, every arm is pulled once: optimal action is taken at
    # exactly one of the first k steps in every run, so the k per-step percentages sum to 100.
    run = ucb.train(ucb.Config(seed=0, runs=300, steps=10, c=2.0), "u", quiet=True)
    assert curve(run, "bandit/optimal_action").sum() == pytest.approx(100.0)


def test_config_errors():
    for bad in (dict(c=-1.0), dict(step_size=0.0), dict(runs=0), dict(arms=0)):
        with pytest.raises(ConfigError):
            ucb.Config(**bad)
