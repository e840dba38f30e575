"""Policy iteration (Sutton & Barto 2nd ed., section 4.3, box on p. 80).

    1. Initialization: pi(s) arbitrary
    2. Policy evaluation: V <- v_pi                                              (eq. 4.5)
    3. Policy improvement: pi(s) <- argmax_a sum_{s', r} p(s', r | s, a) [r + gamma V(s')]
       If pi changed anywhere, go to 2; else stop and return V ~ v_*, pi ~ pi_*

One evaluation and improvement per Loop iteration. Evaluation is exact (a linear solve, up to
1,000 states by default) or iterative to `tol`, warm-started from the previous V. Improvement
keeps the current action on ties, up to the evaluation error (the fix of Exercise 4.4), so it
cannot cycle between equally good actions. With gamma = 1, pi starts as a policy that terminates.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from rlsuite.algos.tabular import DP_ACTS_ON, DP_PRESETS, NOT_RESUMABLE, DPConfig, Solution, build_mdp, dp_loop, finish_dp
from rlsuite.core.config import Budget
from rlsuite.core.run import Run
from rlsuite.core.spec import AlgorithmSpec
from rlsuite.ops import dp
from rlsuite.rollout.tabular import load_greedy


@dataclasses.dataclass(frozen=True)
class PolicyIterationConfig(DPConfig):
    evaluation: Literal["auto", "exact", "iterative"] = "auto"
    """How step 2 computes v_pi: 'exact' (dense linear solve), 'iterative' (to tol) or 'auto'
    (exact up to 1,000 states)."""


def train(config: PolicyIterationConfig, run_dir=None, **options: Any) -> Run:
    """Run policy iteration on config.env's model; write the run directory."""
    mdp = build_mdp("policy_iteration", config)
    dp.check_solvable(mdp, config.gamma)  # before the run dir exists
    exact = mdp.n_states <= dp.EXACT_MAX_STATES if config.evaluation == "auto" else config.evaluation == "exact"
    solution = Solution(mdp, config.gamma)
    solution.policy = dp.initial_policy(mdp, config.gamma)
    stable = False
    with dp_loop("policy_iteration", config, solution, Budget(config.max_iterations, "iterations"), run_dir, **options) as loop:
        while not stable and loop.running():
            solution.v, _, improved, row = dp.policy_iteration_step(mdp, solution.policy, solution.v, config.gamma, config.tol, exact)
            solution.policy, stable = improved, row["policy_changes"] == 0
            loop.record(1, row)
        return finish_dp(loop, solution, stable)


SPEC = AlgorithmSpec(
    name="policy_iteration",
    family="dp",
    summary="policy iteration: evaluation and greedy improvement until stable",
    config=PolicyIterationConfig,
    presets=DP_PRESETS,
    train=train,
    load=load_greedy,
    acts_on=DP_ACTS_ON,
    budget_field="max_iterations",
    resumable=False,
    not_resumable_reason=NOT_RESUMABLE,
)
preset = SPEC.preset
