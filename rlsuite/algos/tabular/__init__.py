"""Tabular methods (Sutton & Barto ch. 4-8).

Dynamic programming (ch. 4): policy_evaluation, policy_iteration, value_iteration. They solve the
env's model (`rlsuite.envs.tabular.FiniteMDP`) with `rlsuite.ops.dp`; the run-directory plumbing
they share (build the model, write metrics/model/plots) is `DPConfig` and `record_dp_run` below,
kept here so each algorithm file reads like its box in the book; so are `DP_PRESETS`, the discount
of each book example that policy and value iteration solve.
Model-free control (ch. 5-8): mc_control, sarsa, expected_sarsa, q_learning, double_q_learning, dyna_q.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from rlsuite.core import checkpoint, config as configs, run as runs
from rlsuite.core.errors import check
from rlsuite.core.logging import CSVLog


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
    """Give up (status 'not converged') after this many iterations."""
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


def build_mdp(config: DPConfig):
    """The FiniteMDP of config.env (clear errors for unknown ids and non-tabular envs)."""
    from rlsuite.envs.tabular import FiniteMDP

    kwargs = {} if config.is_slippery is None else {"is_slippery": config.is_slippery}
    return FiniteMDP.from_gymnasium(config.env, **kwargs)


class TabularPolicy:
    """Acts with a table of actions: predict(states) -> policy[states]."""

    def __init__(self, policy: np.ndarray):
        self.policy = np.asarray(policy, dtype=np.int64)

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        return self.policy[np.asarray(obs).astype(np.int64)]


def load_tabular_policy(payload: dict[str, Any]) -> TabularPolicy:
    return TabularPolicy(payload["policy"])


def record_dp_run(algo: str, config: DPConfig, mdp, run: runs.RunDir, v: np.ndarray, policy: np.ndarray, history: list[dict[str, float]], converged: bool, quiet: bool, q: np.ndarray | None = None) -> runs.Run:
    """Write metrics.csv, model.pt, curve.png, values.png (grids) and run.yaml's final status."""
    import gymnasium as gym

    log = CSVLog(run.metrics_file)
    for row in history:
        log.write({"step": row["iteration"], **row})
    checkpoint.save(
        {
            "observation_space": gym.spaces.Discrete(mdp.n_states),
            "action_space": gym.spaces.Discrete(mdp.n_actions),
            "config": configs.to_dict(config),
            "v": np.asarray(v),
            "q": None if q is None else np.asarray(q),
            "policy": np.asarray(policy, dtype=np.int64),
            "converged": converged,
        },
        run.model_file,
    )
    plot_convergence(history, run.curve_file, f"{algo} on {config.env} (gamma={config.gamma})")
    if mdp.shape is not None:
        from rlsuite.envs import gridworlds

        moves = gridworlds.FROZEN_LAKE_MOVES if config.env.startswith("FrozenLake") else gridworlds.KING_MOVES + (gridworlds.STAY,)
        gridworlds.plot_values(v, mdp.shape, policy, run.path / "values.png", title=f"{algo}: V and greedy policy", walls=mdp.walls, moves=moves)
    iterations = int(history[-1]["iteration"]) if history else 0
    run.write_meta(status="finished" if converged else "not_converged", step=iterations)
    if not quiet:
        note = "" if converged else f" WITHOUT meeting tol={config.tol} (raise max_iterations)"
        print(f"{algo} on {mdp.name}: {iterations} iterations{note}; max |V| = {np.max(np.abs(v)):.4g}; run dir {run.path}")
    return runs.Run(dir=run.path, algo=algo, config=config, step=iterations, interrupted=not converged)


def plot_convergence(history: list[dict[str, float]], out: Path, title: str) -> Path:
    """max |V_{k+1} - V_k| per iteration on a log axis (and the error bound when there is one)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.8), dpi=110)
    k = [row["iteration"] for row in history]
    for key, label in (("max_change", "max |V_k+1 - V_k|"), ("error_bound", "bound on max |V - V_target|")):
        values = np.array([row.get(key, np.nan) for row in history], dtype=float)
        values = np.where(values > 0, values, np.nan)
        if np.isfinite(values).any():
            ax.plot(k, values, marker="o" if len(k) < 30 else None, ms=3, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return Path(out)
