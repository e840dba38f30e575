"""Iterative policy evaluation (Sutton & Barto 2nd ed., section 4.1, box on p. 75).

    Input pi, the policy to be evaluated
    Loop:
        Delta <- 0
        Loop for each s in S:
            V(s) <- sum_a pi(a|s) sum_{s', r} p(s', r | s, a) [r + gamma V(s')]    (eq. 4.5)
            Delta <- max(Delta, |v - V(s)|)
    until Delta < theta

The policy is the equiprobable random one (as in Example 4.1 / Figure 4.1). Sweeps are
synchronous, one per Loop iteration; theta = tol (1 - gamma) / gamma guarantees
max_s |V(s) - v_pi(s)| < tol. The run exports v_pi, q_pi and the policy greedy w.r.t. them (one
step of policy improvement, section 4.2), which is what `rlsuite.load(run).act(state)` returns.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rlsuite.algos.tabular import DP_ACTS_ON, NOT_RESUMABLE, DPConfig, Solution, build_mdp, sweep_until_converged
from rlsuite.core.run import Run
from rlsuite.core.spec import AlgorithmSpec
from rlsuite.ops import dp
from rlsuite.rollout.tabular import load_greedy

PRESETS: dict[str, dict[str, Any]] = {
    "GridWorld4x4-v0": {"gamma": 1.0},
    "GridWorld5x5-v0": {"gamma": 0.9},
}


@dataclasses.dataclass(frozen=True)
class PolicyEvaluationConfig(DPConfig):
    """Evaluation of the equiprobable random policy."""


def train(config: PolicyEvaluationConfig, run_dir=None, **options: Any) -> Run:
    """Compute v_pi of the uniform random policy on config.env's model; write the run directory."""
    mdp = build_mdp("policy_evaluation", config)
    pi = dp.uniform_policy(mdp)
    dp.require_terminating(mdp, pi, config.gamma)  # gamma = 1 needs pi to end episodes; before the run dir exists
    P_pi, r_pi = dp.policy_model(mdp, pi)
    solution = Solution(mdp, config.gamma)
    expectation_sweep = lambda v: dp.expectation_sweep(P_pi, r_pi, v, config.gamma)  # noqa: E731  (eq. 4.5)
    return sweep_until_converged("policy_evaluation", config, solution, expectation_sweep, run_dir, **options)


SPEC = AlgorithmSpec(
    name="policy_evaluation",
    family="dp",
    summary="iterative policy evaluation of a fixed (default: uniform random) policy",
    config=PolicyEvaluationConfig,
    presets=PRESETS,
    train=train,
    load=load_greedy,
    acts_on=DP_ACTS_ON,
    budget_field="max_iterations",
    resumable=False,
    not_resumable_reason=NOT_RESUMABLE,
)
preset = SPEC.preset
