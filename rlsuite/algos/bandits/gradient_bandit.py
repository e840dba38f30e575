"""Gradient bandit algorithm (Sutton & Barto 2nd ed., Section 2.8).

Preferences H_t(a) give a soft-max policy pi_t(a) = e^{H_t(a)} / sum_b e^{H_t(b)} (Eq. 2.11);
after pulling A_t and receiving R_t (Eq. 2.12):

    H_{t+1}(A_t) = H_t(A_t) + alpha (R_t - Rbar_t) (1 - pi_t(A_t))
    H_{t+1}(a)   = H_t(a)   - alpha (R_t - Rbar_t) pi_t(a)          for all a != A_t

Rbar_t, the baseline, is the average of the rewards up through and including time t (or 0 with
`baseline=False`). Figure 2.5: on the +4 testbed (bandit-10-offset4) the baseline matters a lot.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np

from rlsuite.algos.bandits import BanditConfig, Session, no_policy
from rlsuite.core import config as configs
from rlsuite.core import run as runs
from rlsuite.core.errors import check
from rlsuite.ops import bandits as ops

SUMMARY = "gradient bandit (softmax preferences), with or without a reward baseline"


@dataclasses.dataclass(frozen=True)
class Config(BanditConfig):
    step_size: float = 0.1
    """Step size alpha > 0 of the preference update (Eq. 2.12)."""
    baseline: bool = True
    """Subtract the average reward Rbar_t from R_t (False: Rbar_t = 0)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.step_size > 0, f"step_size must be > 0, got {self.step_size}.")


PRESETS: dict[str, dict[str, Any]] = {}
preset = functools.partial(configs.with_preset, Config, PRESETS)  # preset(env=None, **overrides) -> Config
HAS_POLICY = False  # the result is the learning curve; rlsuite.load() has nothing to load
load_policy = no_policy


def train(config: Config, run_dir=None, *, overwrite: bool = False, resume: bool = False, quiet: bool = False, callbacks=()) -> runs.Run:
    """Run the gradient bandit on config.runs testbeds for config.steps pulls each."""
    with Session("gradient_bandit", config, run_dir, overwrite=overwrite, resume=resume, quiet=quiet, callbacks=callbacks) as s:
        H = np.zeros((config.runs, s.k))
        R_bar = np.zeros(config.runs)
        for t in s.steps():
            pi = ops.softmax_policy(H)
            A = ops.sample_categorical(pi, s.rng)
            R = s.pull(A)
            if config.baseline:
                R_bar = ops.incremental_update(R_bar, R, 1.0 / t)
            H = ops.gradient_bandit_update(H, pi, A, R, R_bar, config.step_size)
        return s.finish()
