"""Policy iteration (Sutton & Barto 2nd ed., section 4.3, box on p. 80).

    1. Initialization: pi(s) arbitrary
    2. Policy evaluation: V <- v_pi                                              (eq. 4.5)
    3. Policy improvement: pi(s) <- argmax_a sum_{s', r} p(s', r | s, a) [r + gamma V(s')]
       If pi changed anywhere, go to 2; else stop and return V ~ v_*, pi ~ pi_*

Evaluation is exact (a linear solve, up to 1,000 states by default) or iterative to `tol`, warm-started from
the previous V. Improvement keeps the current action on ties (the fix of Exercise 4.4), so it
cannot cycle between equally good actions. With gamma = 1, pi starts as a policy that terminates.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from rlsuite.algos.tabular import DP_PRESETS, DPConfig, build_mdp, load_tabular_policy, record_dp_run
from rlsuite.core import run as runs
from rlsuite.ops import dp

SUMMARY = "policy iteration: evaluation and greedy improvement until stable"
PRESETS = DP_PRESETS


@dataclasses.dataclass(frozen=True)
class Config(DPConfig):
    evaluation: Literal["auto", "exact", "iterative"] = "auto"
    """How step 2 computes v_pi: 'exact' (dense linear solve), 'iterative' (to tol) or 'auto'
    (exact up to 1,000 states)."""


def train(config: Config, run_dir=None, *, overwrite: bool = False, resume: bool = False, quiet: bool = False, callbacks=()) -> runs.Run:
    """Run policy iteration on config.env's model; write the run directory."""
    mdp = build_mdp(config)
    dp.check_solvable(mdp, config.gamma)  # before the run dir exists
    run = runs.prepare("policy_iteration", config, run_dir, overwrite=overwrite, resume=False)
    exact = None if config.evaluation == "auto" else config.evaluation == "exact"
    result = dp.policy_iteration(mdp, config.gamma, config.tol, config.max_iterations, exact=exact)
    return record_dp_run("policy_iteration", config, mdp, run, result.v, result.policy, result.history, result.converged, quiet, q=result.q)


def load_policy(payload: dict[str, Any]):
    """The final (stable) policy: `.predict(states) -> actions`."""
    return load_tabular_policy(payload)
