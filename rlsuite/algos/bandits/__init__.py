"""Bandit agents (Sutton & Barto 2nd ed., chapter 2), each simulated over many runs at once.

What the four agent modules share lives here: the config fields every bandit experiment has
(`BanditConfig`, `check_step_size`), the `Testbed` (the runs' vectorized k-armed bandits, the
agent's random stream and what every run earned, as one checkpoint part) and `bandit_loop`, the
Loop of a bandit run. The agents' math is in each module and in `rlsuite.ops.bandits`.

A bandit run writes, per step t (averaged over the `runs` independent runs):
`bandit/average_reward`, `bandit/optimal_action` (% of runs whose arm had the highest q*),
`bandit/regret` (mean of q*(a*) - q*(A_t)) and `bandit/cumulative_regret`; plus `curve.png`
(average reward), `optimal_action.png`, and model/curves.npz: the per-run arrays `rewards`,
`optimal` and `regret` [runs, steps] (so standard errors can be computed; `Run.curves`).
There is no policy to load: the book's curves are the result.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from rlsuite.core import config as configs
from rlsuite.core.config import Budget, Schedule
from rlsuite.core.loop import Figure, Loop
from rlsuite.core.spec import ActsOn
from rlsuite.envs.resolver import require, resolve
from rlsuite.errors import check
from rlsuite.ops import bandits as ops

NO_POLICY = "bandit runs have no policy to load: their result is the learning curves (metrics.csv, curve.png, and per run Run.curves)."
ACTS_ON = ActsOn("bandit")
METRICS = ("bandit/average_reward", "bandit/optimal_action", "bandit/regret", "bandit/cumulative_regret")


@dataclasses.dataclass(frozen=True)
class BanditConfig(configs.BaseConfig):
    """Fields of every bandit experiment: which testbed, how many runs, how many steps."""

    env: str = "bandit-10"
    """Bandit testbed id: bandit-10, bandit-10-offset4, bandit-10-nonstationary or bandit-10-bernoulli."""
    runs: int = 2000
    """Independent runs (each with its own testbed), simulated at once; curves average over them."""
    steps: int = 1000
    """Arm pulls per run."""
    arms: int | None = None
    """Number of arms k (None: the testbed's own, 10 for the bandit-10 ids)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.runs >= 1, f"runs must be >= 1, got {self.runs}.")
        check(self.steps >= 1, f"steps must be >= 1, got {self.steps}.")
        check(self.arms is None or self.arms >= 1, f"a bandit needs at least one arm: arms must be >= 1 (or None), got {self.arms}.")


def check_step_size(step_size: float | None) -> None:
    """A `step_size` field: a constant alpha in (0, 1], or None for the sample average 1/N(A)."""
    check(step_size is None or 0 < step_size <= 1, f"step_size must be in (0, 1], or None for sample averages; got {step_size}.")


@dataclasses.dataclass(frozen=True)
class ActionValues:
    """The sample-average (or constant-step) estimates of epsilon_greedy and ucb."""

    Q: np.ndarray
    """[runs, k] estimates Q(a)."""
    N: np.ndarray
    """[runs, k] pulls N(a) of each arm."""

    def update(self, A: np.ndarray, R: np.ndarray, step_size: float | None) -> ActionValues:
        """N(A) <- N(A) + 1;  Q(A) <- Q(A) + StepSize [R - Q(A)]  (Eq. 2.4)."""
        return ActionValues(*ops.sample_average_step(self.Q, self.N, A, R, step_size))


class Testbed:
    """config.runs independent testbeds as one vector env, the agent's random stream (separate
    from the testbeds', both fixed by the seed), and every run's reward, optimality and regret
    per step. A checkpoint part; exported as model/curves.npz."""

    def __init__(self, algo: str, config: BanditConfig):
        require(resolve(config.env), algo, ACTS_ON)
        kwargs = {} if config.arms is None else {"k": config.arms}
        self.envs = gym.make_vec(config.env, num_envs=config.runs, **kwargs)
        self.envs.reset(seed=config.seed)
        self.rng = np.random.default_rng([config.seed, 1])
        self.k = int(self.envs.single_action_space.n)
        self.reward_kind = self.envs.reward
        self.t = 0
        self.rewards = np.zeros((config.steps, config.runs), np.float32)
        self.optimal = np.zeros((config.steps, config.runs), bool)
        self.regret = np.zeros((config.steps, config.runs), np.float32)
        self.cumulative_regret = 0.0

    def pull(self, actions: np.ndarray) -> np.ndarray:
        """Pull arm actions[i] in run i; records the step and returns the rewards."""
        _, rewards, _, _, info = self.envs.step(actions)
        t = self.t
        self.rewards[t], self.regret[t] = rewards, info["regret"]
        # Ties in q* (e.g. the equal start of a non-stationary testbed) count as optimal.
        self.optimal[t] = info["regret"] == 0.0
        self.cumulative_regret += float(info["regret"].mean())
        self.t += 1
        return rewards

    def metrics(self) -> dict[str, float]:
        """The last step's averages over runs (the book's curves)."""
        t = self.t - 1
        values = (float(self.rewards[t].mean()), 100.0 * float(self.optimal[t].mean()), float(self.regret[t].mean()), self.cumulative_regret)
        return dict(zip(METRICS, values))

    def state_dict(self) -> dict[str, Any]:
        import cloudpickle

        return {"envs": cloudpickle.dumps(self.envs), "rng": self.rng, "t": self.t, "cumulative_regret": self.cumulative_regret,
                "rewards": self.rewards[: self.t], "optimal": self.optimal[: self.t], "regret": self.regret[: self.t]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        import cloudpickle

        t = state["t"]
        if t > len(self.rewards) or state["rewards"].shape[1:] != self.rewards.shape[1:]:
            raise ValueError(f"the checkpoint holds {state['rewards'].shape[1]} runs x {t} steps, this config {self.rewards.shape[1]} x {len(self.rewards)}")
        self.envs.close()
        self.envs, self.rng, self.t, self.cumulative_regret = cloudpickle.loads(state["envs"]), state["rng"], t, state["cumulative_regret"]
        self.rewards[:t], self.optimal[:t], self.regret[:t] = state["rewards"], state["optimal"], state["regret"]

    def export(self, directory: Path) -> None:
        t = self.t
        np.savez(directory / "curves.npz", rewards=self.rewards[:t].T, optimal=self.optimal[:t].T, regret=self.regret[:t].T)

    def close(self) -> None:
        self.envs.close()


def bandit_loop(algo: str, config: BanditConfig, testbed: Testbed, run_dir=None, **options: Any) -> Loop:
    """The Loop of a bandit run: a budget of `steps` pulls, one metrics row per pull."""
    return Loop(
        algo, config, run_dir, budget=Budget(config.steps, "pulls"), schedule=Schedule(log_every=1),
        parts={"testbed": testbed}, export=testbed.export,
        figures={"curve.png": Figure(("bandit/average_reward",)), "optimal_action.png": Figure(("bandit/optimal_action",))},
        **options,
    )
