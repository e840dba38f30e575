"""Epsilon-greedy action-value methods (Sutton & Barto 2nd ed., Sections 2.2-2.6).

The box "A simple bandit algorithm" (p. 32), run for `runs` independent testbeds at once:

    Q(a) <- Q_1, N(a) <- 0
    loop:  A <- argmax_a Q(a) with probability 1 - epsilon (ties at random), else a random arm
           R <- bandit(A);  N(A) <- N(A) + 1
           Q(A) <- Q(A) + StepSize [R - Q(A)]          (Eq. 2.4)

StepSize is 1/N(A) (sample average, Eq. 2.3) or a constant alpha (`step_size`, the exponential
recency-weighted average of Eq. 2.5/2.6). `initial_value` Q_1 = 5 with epsilon = 0 and alpha = 0.1
gives the optimistic greedy agent of Figure 2.3.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from rlsuite.algos.bandits import ACTS_ON, NO_POLICY, ActionValues, BanditConfig, Testbed, bandit_loop, check_step_size
from rlsuite.core.run import Run
from rlsuite.core.spec import AlgorithmSpec
from rlsuite.errors import check
from rlsuite.ops import bandits as ops


@dataclasses.dataclass(frozen=True)
class Config(BanditConfig):
    epsilon: float = 0.1
    """Probability of pulling a uniformly random arm instead of the greedy one (0: greedy)."""
    step_size: float | None = None
    """Constant step size alpha in (0, 1]; None for the sample average 1/N(A)."""
    initial_value: float = 0.0
    """Initial estimate Q_1(a) of every arm (e.g. 5 for optimistic initial values, Figure 2.3)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(0 <= self.epsilon <= 1, f"epsilon must be in [0, 1], got {self.epsilon}.")
        check_step_size(self.step_size)



def update(values: ActionValues, A: np.ndarray, R: np.ndarray, config: Config) -> ActionValues:
    """N(A) <- N(A) + 1;  Q(A) <- Q(A) + StepSize [R - Q(A)]  (Eq. 2.4)."""
    return values.update(A, R, config.step_size)


def train(config: Config, run_dir=None, **options: Any) -> Run:
    """Run the epsilon-greedy agent on config.runs testbeds for config.steps pulls each."""
    testbed = Testbed("epsilon_greedy", config)
    shape = (config.runs, testbed.k)
    with bandit_loop("epsilon_greedy", config, testbed, run_dir, **options) as loop:
        values = loop.start(lambda: ActionValues(np.full(shape, float(config.initial_value)), np.zeros(shape)))
        while loop.running():
            A = ops.epsilon_greedy(values.Q, config.epsilon, testbed.rng)
            R = testbed.pull(A)
            values = update(values, A, R, config)
            loop.record(1, testbed.metrics(), state=values)
        return loop.finish()


SPEC = AlgorithmSpec(
    name="epsilon_greedy",
    family="bandit",
    summary="epsilon-greedy action values: sample-average or constant step, optimistic initial values",
    config=Config,
    train=train,
    acts_on=ACTS_ON,
    no_policy_reason=NO_POLICY,
    budget_field="steps",
)
preset = SPEC.preset
