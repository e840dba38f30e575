"""Upper-confidence-bound action selection (Sutton & Barto 2nd ed., Section 2.7, Eq. 2.10):

    A_t = argmax_a [ Q_t(a) + c sqrt(ln t / N_t(a)) ]

An arm with N_t(a) = 0 is a maximizing action, so every arm is tried once first (ties at random).
Q is the sample average (Eq. 2.3), or a constant-alpha average with `step_size`.
Figure 2.4: c = 2 beats epsilon-greedy (epsilon = 0.1) on the 10-armed testbed after the first steps.
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
    c: float = 2.0
    """Degree of exploration c >= 0 of Eq. 2.10 (0: greedy after every arm was tried once)."""
    step_size: float | None = None
    """Constant step size alpha in (0, 1]; None for the sample average 1/N(A)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.c >= 0, f"c must be >= 0, got {self.c}.")
        check_step_size(self.step_size)


def select(values: ActionValues, t: int, c: float, rng: np.random.Generator) -> np.ndarray:
    """A_t = argmax_a [Q_t(a) + c sqrt(ln t / N_t(a))] (Eq. 2.10), untried arms first, ties at random."""
    return ops.argmax_random_ties(ops.ucb_scores(values.Q, values.N, t, c), rng)


def update(values: ActionValues, A: np.ndarray, R: np.ndarray, config: Config) -> ActionValues:
    """N(A) <- N(A) + 1;  Q(A) <- Q(A) + StepSize [R - Q(A)]  (Eq. 2.4)."""
    return values.update(A, R, config.step_size)


def train(config: Config, run_dir=None, **options: Any) -> Run:
    """Run the UCB agent on config.runs testbeds for config.steps pulls each."""
    testbed = Testbed("ucb", config)
    shape = (config.runs, testbed.k)
    with bandit_loop("ucb", config, testbed, run_dir, **options) as loop:
        values = loop.start(lambda: ActionValues(np.zeros(shape), np.zeros(shape)))
        while loop.running():
            A = select(values, loop.step + 1, config.c, testbed.rng)
            R = testbed.pull(A)
            values = update(values, A, R, config)
            loop.record(1, testbed.metrics(), state=values)
        return loop.finish()


SPEC = AlgorithmSpec(
    name="ucb",
    family="bandit",
    summary="upper-confidence-bound action selection",
    config=Config,
    train=train,
    acts_on=ACTS_ON,
    no_policy_reason=NO_POLICY,
    budget_field="steps",
)
preset = SPEC.preset
