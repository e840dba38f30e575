"""Value iteration (Sutton & Barto 2nd ed., section 4.4, box on p. 83).

    Loop:
        Delta <- 0
        Loop for each s in S:
            V(s) <- max_a sum_{s', r} p(s', r | s, a) [r + gamma V(s')]        (eq. 4.10)
            Delta <- max(Delta, |v - V(s)|)
    until Delta < theta
    Output the deterministic policy pi(s) = argmax_a sum_{s', r} p(s', r | s, a) [r + gamma V(s')]

Sweeps are synchronous and vectorized. theta is not a free knob here: it is set from `tol` as
tol (1 - gamma) / gamma, which guarantees max_s |V(s) - v_*(s)| < tol (see rlsuite.ops.dp).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rlsuite.algos.tabular import DP_PRESETS, DPConfig, build_mdp, load_tabular_policy, record_dp_run
from rlsuite.core import run as runs
from rlsuite.ops import dp

SUMMARY = "value iteration with a max-error stopping bound"
PRESETS = DP_PRESETS


@dataclasses.dataclass(frozen=True)
class Config(DPConfig):
    """Value iteration: the fields of every DP method (env, gamma, tol, max_iterations, ...)."""


def train(config: Config, run_dir=None, *, overwrite: bool = False, resume: bool = False, quiet: bool = False, callbacks=()) -> runs.Run:
    """Solve config.env's model for v_* and its greedy policy; write the run directory."""
    mdp = build_mdp(config)
    dp.check_solvable(mdp, config.gamma)  # before the run dir exists
    run = runs.prepare("value_iteration", config, run_dir, overwrite=overwrite, resume=False)
    result = dp.value_iteration(mdp, config.gamma, config.tol, config.max_iterations)
    return record_dp_run("value_iteration", config, mdp, run, result.v, result.policy, result.history, result.converged, quiet, q=result.q)


def load_policy(payload: dict[str, Any]):
    """The greedy policy w.r.t. the computed v_*: `.predict(states) -> actions`."""
    return load_tabular_policy(payload)
