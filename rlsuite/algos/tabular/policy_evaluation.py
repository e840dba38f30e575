"""Iterative policy evaluation (Sutton & Barto 2nd ed., section 4.1, box on p. 75).

    Input pi, the policy to be evaluated
    Loop:
        Delta <- 0
        Loop for each s in S:
            V(s) <- sum_a pi(a|s) sum_{s', r} p(s', r | s, a) [r + gamma V(s')]    (eq. 4.5)
            Delta <- max(Delta, |v - V(s)|)
    until Delta < theta

The policy is the equiprobable random one (as in Example 4.1 / Figure 4.1). Sweeps are
synchronous; theta = tol (1 - gamma) / gamma guarantees max_s |V(s) - v_pi(s)| < tol.
model.pt holds v_pi and the policy greedy w.r.t. it (one step of policy improvement, section 4.2),
which is what `rlsuite.load(run).act(state)` returns.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rlsuite.algos.tabular import DPConfig, build_mdp, load_tabular_policy, record_dp_run
from rlsuite.core import run as runs
from rlsuite.ops import dp

SUMMARY = "iterative policy evaluation of a fixed (default: uniform random) policy"
PRESETS: dict[str, dict[str, Any]] = {
    "GridWorld4x4-v0": {"gamma": 1.0},
    "GridWorld5x5-v0": {"gamma": 0.9},
}


@dataclasses.dataclass(frozen=True)
class Config(DPConfig):
    """Evaluation of the equiprobable random policy."""


def train(config: Config, run_dir=None, *, overwrite: bool = False, resume: bool = False, quiet: bool = False, callbacks=()) -> runs.Run:
    """Compute v_pi of the uniform random policy on config.env's model; write the run directory."""
    mdp = build_mdp(config)
    dp.check_gamma(config.gamma)
    pi = dp.uniform_policy(mdp)
    if config.gamma == 1.0:
        dp.policy_evaluation(mdp, pi, 1.0, config.tol, max_iterations=1)  # raises early if pi never terminates
    run = runs.prepare("policy_evaluation", config, run_dir, overwrite=overwrite, resume=False)
    try:
        v, history = dp.policy_evaluation(mdp, pi, config.gamma, config.tol, config.max_iterations)
        converged = True
    except dp.NotConvergedError:
        v, history = dp.policy_evaluation(mdp, pi, config.gamma, float("inf"), config.max_iterations)
        converged = False
    q = dp.q_from_v(mdp, v, config.gamma)
    return record_dp_run("policy_evaluation", config, mdp, run, v, dp.greedy_policy(q), history, converged, quiet, q=q)


def load_policy(payload: dict[str, Any]):
    """The policy greedy w.r.t. v_pi: `.predict(states) -> actions`."""
    return load_tabular_policy(payload)
