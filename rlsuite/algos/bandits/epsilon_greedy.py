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
import functools
from typing import Any

import numpy as np

from rlsuite.algos.bandits import BanditConfig, Session, check_step_size, no_policy
from rlsuite.core import config as configs
from rlsuite.core import run as runs
from rlsuite.core.errors import check
from rlsuite.ops import bandits as ops

SUMMARY = "epsilon-greedy action values: sample-average or constant step, optimistic initial values"


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


PRESETS: dict[str, dict[str, Any]] = {}
preset = functools.partial(configs.with_preset, Config, PRESETS)  # preset(env=None, **overrides) -> Config
HAS_POLICY = False  # the result is the learning curve; rlsuite.load() has nothing to load
load_policy = no_policy


def train(config: Config, run_dir=None, *, overwrite: bool = False, resume: bool = False, quiet: bool = False, callbacks=()) -> runs.Run:
    """Run the epsilon-greedy agent on config.runs testbeds for config.steps pulls each."""
    with Session("epsilon_greedy", config, run_dir, overwrite=overwrite, resume=resume, quiet=quiet, callbacks=callbacks) as s:
        rows = np.arange(config.runs)
        Q = np.full((config.runs, s.k), float(config.initial_value))
        N = np.zeros((config.runs, s.k))
        for _ in s.steps():
            A = ops.epsilon_greedy(Q, config.epsilon, s.rng)
            R = s.pull(A)
            N[rows, A] += 1
            alpha = 1.0 / N[rows, A] if config.step_size is None else config.step_size
            Q[rows, A] = ops.incremental_update(Q[rows, A], R, alpha)
        return s.finish()
