"""Tabular methods (Sutton & Barto ch. 4-8).

Dynamic programming (ch. 4): policy_evaluation, policy_iteration, value_iteration. They solve the
env's model (`rlsuite.envs.tabular.FiniteMDP`) with `rlsuite.ops.dp`, one sweep (or one round of
policy iteration) per Loop iteration; what they share is here, so each algorithm file reads like
its box in the book: `DPConfig`, `DP_PRESETS` (the discount of each book example), `build_mdp`,
`Solution` (the tables a run exports) and `dp_loop` / `sweep_until_converged` / `finish_dp`
(the run around the sweeps).
Model-free control (ch. 5-8): mc_control, sarsa, expected_sarsa, q_learning, double_q_learning,
dyna_q, driven by rlsuite.rollout.tabular.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rlsuite.core import config as configs
from rlsuite.core.config import Budget, Schedule
from rlsuite.core.loop import Figure, Loop
from rlsuite.core.run import Run
from rlsuite.core.spec import ActsOn
from rlsuite.envs.resolver import require, resolve
from rlsuite.errors import check
from rlsuite.ops import dp
from rlsuite.rollout.tabular import save_tables

DP_ACTS_ON = ActsOn("mdp", observations=("Discrete",), actions=("Discrete",))
NOT_RESUMABLE = (
    "{algo} runs are not resumable: dynamic programming solves the model in one go (seconds) and keeps no "
    "checkpoint. To solve it again (say with a larger max_iterations or another tol), start a new run: "
    "`rlsuite train {algo} --config {run}/config.yaml --run-dir NEW_DIR`, or replace this one with --overwrite."
)


@dataclasses.dataclass(frozen=True)
class DPConfig(configs.BaseConfig):
    """Fields of every DP method."""

    env: str = "FrozenLake-v1"
    """Gymnasium id of an env exposing a toy-text model `P` (FrozenLake-v1, FrozenLake8x8-v1,
    CliffWalking-v1, Taxi-v4, GridWorld4x4-v0, GridWorld5x5-v0, WindyGridWorld-v0, DynaMaze-v0)."""
    gamma: float = 0.99
    """Discount factor in [0, 1]; 1 only for episodic tasks (see rlsuite.ops.dp)."""
    tol: float = 1e-8
    """Guaranteed max-norm error of the values (gamma < 1); residual threshold for gamma = 1."""
    max_iterations: int = 100_000
    """Give up (status 'not_converged') after this many sweeps (policy iteration: rounds)."""
    is_slippery: bool | None = None
    """FrozenLake / CliffWalkingSlippery kwarg; None keeps the env's default."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(0.0 <= self.gamma <= 1.0, f"gamma must be in [0, 1], got {self.gamma}.")
        check(self.tol > 0, f"tol must be > 0, got {self.tol}.")
        check(self.max_iterations >= 1, f"max_iterations must be >= 1, got {self.max_iterations}.")


DP_PRESETS: dict[str, dict[str, Any]] = {
    "GridWorld5x5-v0": {"gamma": 0.9},
    "DynaMaze-v0": {"gamma": 0.95},
    "GridWorld4x4-v0": {"gamma": 1.0},
    "WindyGridWorld-v0": {"gamma": 1.0},
}
"""env id -> preset of policy_iteration and value_iteration: the discount of the book's example."""


def build_mdp(algo: str, config: DPConfig):
    """The FiniteMDP of config.env (clear errors for unknown ids and envs without a model)."""
    from rlsuite.envs.tabular import FiniteMDP

    kwargs = {} if config.is_slippery is None else {"is_slippery": config.is_slippery}
    require(resolve(config.env, **kwargs), algo, DP_ACTS_ON)
    return FiniteMDP.from_gymnasium(config.env, **kwargs)


class Solution:
    """The tables a DP run is solving for, updated in place as it sweeps; exported as v.npy,
    q.npy and policy.npy (greedy in q unless the method keeps its own policy)."""

    def __init__(self, mdp, gamma: float):
        self.mdp, self.gamma = mdp, gamma
        self.v = np.zeros(mdp.n_states)
        self.policy: np.ndarray | None = None

    def q(self) -> np.ndarray:
        return dp.q_from_v(self.mdp, self.v, self.gamma)

    def greedy(self) -> np.ndarray:
        return self.policy if self.policy is not None else dp.greedy_policy(self.q())

    def export(self, directory: Path) -> None:
        q = self.q()
        save_tables(directory, v=self.v, q=q, policy=self.policy if self.policy is not None else dp.greedy_policy(q))


def dp_loop(algo: str, config: DPConfig, solution: Solution, budget: Budget, run_dir=None, **options: Any) -> Loop:
    """The Loop of a DP run: one metrics row per iteration, no checkpoints, convergence curve."""
    curve = ("max_change", "error_bound") if budget.unit == "sweeps" and config.gamma < 1 else ("max_change",)
    return Loop(algo, config, run_dir, budget=budget, schedule=Schedule(log_every=1), export=solution.export,
                resumable=False, figures={"curve.png": Figure(curve, logy=True)}, **options)


def sweep_until_converged(algo: str, config: DPConfig, solution: Solution, sweep: Callable[[np.ndarray], np.ndarray], run_dir=None, **options: Any) -> Run:
    """V <- sweep(V), one sweep per Loop iteration, until ||V_{k+1} - V_k|| < theta, the
    threshold that guarantees the error bound of rlsuite.ops.dp (or max_iterations); then finish."""
    theta = dp.stopping_threshold(config.gamma, config.tol)
    converged = False
    with dp_loop(algo, config, solution, Budget(config.max_iterations, "sweeps"), run_dir, **options) as loop:
        while not converged and loop.running():
            v = sweep(solution.v)
            delta = float(np.max(np.abs(v - solution.v)))
            solution.v, converged = v, delta < theta
            loop.record(1, dp.sweep_metrics(config.gamma, delta))
        return finish_dp(loop, solution, converged)


def finish_dp(loop: Loop, solution: Solution, converged: bool) -> Run:
    """Draw values.png (grid worlds), say how it went, and finish the run."""
    from rlsuite.envs import gridworlds

    mdp, config = solution.mdp, loop.config
    if mdp.shape is not None and loop.recorder.writes:
        moves = gridworlds.FROZEN_LAKE_MOVES if config.env.startswith("FrozenLake") else gridworlds.KING_MOVES + (gridworlds.STAY,)
        gridworlds.plot_values(solution.v, mdp.shape, solution.greedy(), loop.figure_path("values.png"),
                               title=f"{loop.algo}: V and greedy policy", walls=mdp.walls, moves=moves)
    if not loop.quiet and not loop.interrupted:
        note = "" if converged else f" WITHOUT meeting tol={config.tol} (raise max_iterations)"
        print(f"{loop.algo} on {mdp.name}: {loop.step} {loop.budget.unit}{note}; max |V| = {np.max(np.abs(solution.v)):.4g}")
    return loop.finish(status=None if converged else "not_converged")
