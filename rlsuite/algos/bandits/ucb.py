"""Upper-confidence-bound action selection (Sutton & Barto 2nd ed., Section 2.7, Eq. 2.10):

    A_t = argmax_a [ Q_t(a) + c sqrt(ln t / N_t(a)) ]

An arm with N_t(a) = 0 is a maximizing action, so every arm is tried once first (ties at random).
Q is the sample average (Eq. 2.3), or a constant-alpha average with `step_size`.
Figure 2.4: c = 2 beats epsilon-greedy (epsilon = 0.1) on the 10-armed testbed after the first steps.
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

SUMMARY = "upper-confidence-bound action selection"


@dataclasses.dataclass(frozen=True)
class Config(BanditConfig):
    c: float = 2.0
    """Degree of exploration c > = 0 of Eq. 2.10 (0: greedy after every arm was tried once)."""
    step_size: float | None = None
    """Constant step size alpha in (0, 1]; None for the sample average 1/N(A)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.c >= 0, f"c must be >= 0, got {self.c}.")
        check_step_size(self.step_size)


PRESETS: dict[str, dict[str, Any]] = {}
preset = functools.partial(configs.with_preset, Config, PRESETS)  # preset(env=None, **overrides) -> Config
HAS_POLICY = False  # the result is the learning curve; rlsuite.load() has nothing to load
load_policy = no_policy


def train(config: Config, run_dir=None, *, overwrite: bool = False, resume: bool = False, quiet: bool = False, callbacks=()) -> runs.Run:
    """Run the UCB agent on config.runs testbeds for config.steps pulls each."""
    with Session("ucb", config, run_dir, overwrite=overwrite, resume=resume, quiet=quiet, callbacks=callbacks) as s:
        rows = np.arange(config.runs)
        Q = np.zeros((config.runs, s.k))
        N = np.zeros((config.runs, s.k))
        for t in s.steps():
            A = ops.argmax_random_ties(ops.ucb_scores(Q, N, t, config.c), s.rng)
            R = s.pull(A)
            N[rows, A] += 1
            alpha = 1.0 / N[rows, A] if config.step_size is None else config.step_size
            Q[rows, A] = ops.incremental_update(Q[rows, A], R, alpha)
        return s.finish()
