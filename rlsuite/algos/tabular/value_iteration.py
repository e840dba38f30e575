"""Value iteration (Sutton & Barto 2nd ed., section 4.4, box on p. 83).

    Loop:
        Delta <- 0
        Loop for each s in S:
            V(s) <- max_a sum_{s', r} p(s', r | s, a) [r + gamma V(s')]        (eq. 4.10)
            Delta <- max(Delta, |v - V(s)|)
    until Delta < theta
    Output the deterministic policy pi(s) = argmax_a sum_{s', r} p(s', r | s, a) [r + gamma V(s')]

Sweeps are synchronous and vectorized, one per Loop iteration. theta is not a free knob here:
it is set from `tol` as tol (1 - gamma) / gamma, which guarantees max_s |V(s) - v_*(s)| < tol
(see rlsuite.ops.dp).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rlsuite.algos.tabular import DP_ACTS_ON, DP_PRESETS, NOT_RESUMABLE, DPConfig, Solution, build_mdp, sweep_until_converged
from rlsuite.core.run import Run
from rlsuite.core.spec import AlgorithmSpec
from rlsuite.ops import dp
from rlsuite.rollout.tabular import load_greedy


@dataclasses.dataclass(frozen=True)
class ValueIterationConfig(DPConfig):
    """Value iteration: the fields of every DP method (env, gamma, tol, max_iterations, ...)."""


def train(config: ValueIterationConfig, run_dir=None, **options: Any) -> Run:
    """Solve config.env's model for v_* and its greedy policy; write the run directory."""
    mdp = build_mdp("value_iteration", config)
    dp.check_solvable(mdp, config.gamma)  # before the run dir exists
    solution = Solution(mdp, config.gamma)
    optimality_sweep = lambda v: dp.optimality_sweep(mdp, v, config.gamma)  # noqa: E731  (eq. 4.10)
    return sweep_until_converged("value_iteration", config, solution, optimality_sweep, run_dir, **options)


SPEC = AlgorithmSpec(
    name="value_iteration",
    family="dp",
    summary="value iteration with a max-error stopping bound",
    config=ValueIterationConfig,
    presets=DP_PRESETS,
    train=train,
    load=load_greedy,
    acts_on=DP_ACTS_ON,
    budget_field="max_iterations",
    resumable=False,
    not_resumable_reason=NOT_RESUMABLE,
)
preset = SPEC.preset
