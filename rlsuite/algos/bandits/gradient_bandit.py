"""Gradient bandit algorithm (Sutton & Barto 2nd ed., Section 2.8).

Preferences H_t(a) give a soft-max policy pi_t(a) = e^{H_t(a)} / sum_b e^{H_t(b)} (Eq. 2.11);
after pulling A_t and receiving R_t (Eq. 2.12):

    H_{t+1}(A_t) = H_t(A_t) + alpha (R_t - Rbar_t) (1 - pi_t(A_t))
    H_{t+1}(a)   = H_t(a)   - alpha (R_t - Rbar_t) pi_t(a)          for all a != A_t

Rbar_t is the baseline (0 with `baseline=False`). Two conventions exist, chosen by `baseline_mean`:
- "through_t" (the default): the average of the rewards up through and including time t, as in
  the first edition's text and the code behind the book's Figure 2.5, so R_t is in its own baseline;
- "before_t": eq. 2.12 as printed in the 2018 second edition, the average of the rewards up to
  but not including time t, with Rbar_1 = R_1.
Both reproduce Figure 2.5: on the +4 testbed (bandit-10-offset4) the baseline matters a lot.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np

from rlsuite.algos.bandits import ACTS_ON, NO_POLICY, BanditConfig, Testbed, bandit_loop
from rlsuite.core.run import Run
from rlsuite.core.spec import AlgorithmSpec
from rlsuite.errors import check
from rlsuite.ops import bandits as ops


@dataclasses.dataclass(frozen=True)
class Config(BanditConfig):
    step_size: float = 0.1
    """Step size alpha > 0 of the preference update (Eq. 2.12)."""
    baseline: bool = True
    """Subtract the average reward Rbar_t from R_t (False: Rbar_t = 0)."""
    baseline_mean: Literal["through_t", "before_t"] = "through_t"
    """Rbar_t averages the rewards through time t ('through_t', the figures' convention) or
    before t ('before_t', eq. 2.12 of the 2018 edition, with Rbar_1 = R_1)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.step_size > 0, f"step_size must be > 0, got {self.step_size}.")


@dataclasses.dataclass(frozen=True)
class Preferences:
    H: np.ndarray
    """[runs, k] preferences H_t(a)."""
    rewards_mean: np.ndarray
    """[runs] mean of the rewards received so far (R_1 ... R_{t-1} before step t)."""


def update(prefs: Preferences, pi: np.ndarray, A: np.ndarray, R: np.ndarray, t: int, config: Config) -> Preferences:
    """Eq. 2.12 after step t (pulling A_t ~ pi_t and receiving R_t), with the baseline convention
    of config.baseline_mean; returns the preferences and reward mean for step t + 1."""
    through_t = ops.incremental_update(prefs.rewards_mean, R, 1.0 / t)
    if not config.baseline:
        baseline = 0.0
    elif config.baseline_mean == "through_t":
        baseline = through_t
    else:
        baseline = R if t == 1 else prefs.rewards_mean
    return Preferences(ops.gradient_bandit_update(prefs.H, pi, A, R, baseline, config.step_size), through_t)


def train(config: Config, run_dir=None, **options: Any) -> Run:
    """Run the gradient bandit on config.runs testbeds for config.steps pulls each."""
    testbed = Testbed("gradient_bandit", config)
    with bandit_loop("gradient_bandit", config, testbed, run_dir, **options) as loop:
        prefs = loop.start(lambda: Preferences(np.zeros((config.runs, testbed.k)), np.zeros(config.runs)))
        while loop.running():
            pi = ops.softmax_policy(prefs.H)
            A = ops.sample_categorical(pi, testbed.rng)
            R = testbed.pull(A)
            prefs = update(prefs, pi, A, R, loop.step + 1, config)
            loop.record(1, testbed.metrics(), state=prefs)
        return loop.finish()


SPEC = AlgorithmSpec(
    name="gradient_bandit",
    family="bandit",
    summary="gradient bandit (softmax preferences), with or without a reward baseline",
    config=Config,
    train=train,
    acts_on=ACTS_ON,
    no_policy_reason=NO_POLICY,
    budget_field="steps",
)
preset = SPEC.preset
