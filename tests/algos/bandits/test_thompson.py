"""Thompson sampling on Bernoulli and Gaussian testbeds, against epsilon-greedy."""

import csv

import numpy as np
import pytest

from rlsuite.algos.bandits import epsilon_greedy, thompson
from rlsuite.errors import ConfigError, UnsupportedEnvError


def column(run, name):
    with (run.dir / "metrics.csv").open() as f:
        return np.array([float(row[name]) for row in csv.DictReader(f)])


@pytest.mark.slow
def test_beta_bernoulli_thompson_has_lower_regret_than_epsilon_greedy():
    ts = thompson.train(thompson.Config(seed=0, env="bandit-10-bernoulli"), "ts", quiet=True)
    eg = epsilon_greedy.train(epsilon_greedy.Config(seed=0, env="bandit-10-bernoulli", epsilon=0.1), "eg", quiet=True)
    ts_regret, eg_regret = column(ts, "bandit/cumulative_regret")[-1], column(eg, "bandit/cumulative_regret")[-1]
    assert ts_regret < 0.6 * eg_regret
    # Regret that grows like log t: the second half adds much less than the first.
    cumulative = column(ts, "bandit/cumulative_regret")
    assert cumulative[-1] - cumulative[499] < 0.5 * cumulative[499]


@pytest.mark.slow
def test_gaussian_thompson_on_the_10_armed_testbed():
    ts = thompson.train(thompson.Config(seed=0), "ts", quiet=True)
    eg = epsilon_greedy.train(epsilon_greedy.Config(seed=0, epsilon=0.1), "eg", quiet=True)
    assert column(ts, "bandit/average_reward")[-100:].mean() > column(eg, "bandit/average_reward")[-100:].mean() + 0.05


def test_cumulative_regret_is_the_running_sum():
    run = thompson.train(thompson.Config(seed=0, env="bandit-10-bernoulli", runs=100, steps=50), "r", quiet=True)
    np.testing.assert_allclose(column(run, "bandit/cumulative_regret"), np.cumsum(column(run, "bandit/regret")))


def test_bernoulli_likelihood_on_gaussian_rewards_is_refused():
    with pytest.raises(UnsupportedEnvError, match="likelihood gaussian"):
        thompson.train(thompson.Config(likelihood="bernoulli", runs=10, steps=5), "x", quiet=True)


def test_config_errors():
    for bad in (dict(prior_alpha=0.0), dict(prior_beta=-1.0), dict(prior_std=0.0), dict(runs=0)):
        with pytest.raises(ConfigError):
            thompson.Config(**bad)
