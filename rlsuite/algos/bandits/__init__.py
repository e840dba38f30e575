"""Bandit agents (Sutton & Barto 2nd ed., chapter 2), each simulated over many runs at once.

What the four agent modules share lives here: the config fields every bandit experiment has
(`BanditConfig`, `check_step_size`), the bookkeeping of a bandit run (`Session`): the run
directory, the vectorized testbed, per-step metrics, curves; and `no_policy`, their
`load_policy`. The agents' math is in each module and in `rlsuite.ops.bandits`.

A bandit run writes, per step t (averaged over the `runs` independent runs):
`bandit/average_reward`, `bandit/optimal_action` (% of runs whose arm had the highest q*),
`bandit/regret` (mean of q*(a*) - q*(A_t)) and `bandit/cumulative_regret`; plus `curve.png`
(average reward) and `optimal_action.png`. There is no policy to save: the book's curves are the result.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NoReturn

import gymnasium as gym
import numpy as np

from rlsuite.core import config as configs
from rlsuite.core import plotting
from rlsuite.core import run as runs
from rlsuite.core.errors import RLSuiteError, UnsupportedEnvError, check
from rlsuite.core.logging import CSVLog
from rlsuite.envs import bandits as testbeds
from rlsuite.envs.vector import check_env_id

NO_POLICY = "bandit runs have no policy; see metrics.csv and curve.png"
OPTIMAL_ACTION_PNG = "optimal_action.png"
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


def no_policy(payload: Any) -> NoReturn:
    """`load_policy` of every bandit agent: a bandit run's result is its curves (HAS_POLICY = False)."""
    raise RLSuiteError(NO_POLICY)


def make_testbed(config: BanditConfig) -> testbeds.BanditVectorEnv:
    """config.runs independent testbeds as one vector env, checked to be a k-armed bandit."""
    check_env_id(config.env)
    spec = gym.spec(config.env)
    if spec.vector_entry_point != "rlsuite.envs.bandits:BanditVectorEnv":
        raise UnsupportedEnvError(
            f"bandit agents need a k-armed testbed, but {config.env} is not one. Use one of: {', '.join(testbeds.IDS)}."
        )
    kwargs = {} if config.arms is None else {"k": config.arms}
    return gym.make_vec(config.env, num_envs=config.runs, **kwargs)


class Session:
    """One bandit run from start to finish:

        with Session("ucb", config, run_dir, ...) as s:
            for t in s.steps():            # t = 1, 2, ..., config.steps
                A = ...                    # [runs] arms
                R = s.pull(A)              # [runs] rewards; metrics recorded
            return s.finish()

    `callbacks` are called after every step with the session (`.step`, `.request_stop()`).
    """

    def __init__(self, algo: str, config: BanditConfig, run_dir=None, *, overwrite: bool = False, resume: bool = False,
                 quiet: bool = False, callbacks: Iterable[Callable[[Session], None]] = ()):
        if resume:
            raise RLSuiteError(f"bandit runs are not resumable (no checkpoint; a run takes about a second): train again with `rlsuite train {algo}`.")
        self.t0 = time.perf_counter()
        self.algo, self.config, self.quiet, self.callbacks = algo, config, quiet, list(callbacks)
        self.envs = make_testbed(config)
        self.run = runs.prepare(algo, config, run_dir, overwrite=overwrite, resume=False)
        self.envs.reset(seed=config.seed)
        # The agent's randomness is a stream separate from the testbed's, both fixed by the seed.
        self.rng = np.random.default_rng([config.seed, 1])
        self.k = self.envs.single_action_space.n
        self.reward_kind = self.envs.reward
        self.step = 0
        self.interrupted = False
        self._stop = False
        n = config.steps
        self._reward, self._optimal, self._regret = np.zeros(n), np.zeros(n), np.zeros(n)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            status = "aborted" if exc_type is KeyboardInterrupt else "failed"
            self.run.write_meta(status=status, error=f"{exc_type.__name__}: {exc}")
        self.envs.close()

    def steps(self) -> Iterator[int]:
        for t in range(1, self.config.steps + 1):
            if self._stop:
                self.interrupted = True
                return
            yield t

    def request_stop(self) -> None:
        self._stop = True

    def pull(self, actions: np.ndarray) -> np.ndarray:
        """Pull arm actions[i] in run i; records the step's metrics and returns the rewards."""
        _, rewards, _, _, info = self.envs.step(actions)
        i = self.step
        self._reward[i] = rewards.mean()
        # Ties in q* (e.g. the equal start of a non-stationary testbed) count as optimal.
        self._optimal[i] = 100.0 * np.mean(info["regret"] == 0.0)
        self._regret[i] = info["regret"].mean()
        self.step += 1
        for callback in self.callbacks:
            callback(self)
        return rewards

    def finish(self) -> runs.Run:
        """Write metrics.csv, curve.png and optimal_action.png; return the Run."""
        n = self.step
        train_seconds = time.perf_counter() - self.t0
        log = CSVLog(self.run.metrics_file)
        columns = zip(self._reward[:n].tolist(), self._optimal[:n].tolist(), self._regret[:n].tolist(), np.cumsum(self._regret[:n]).tolist())
        for t, values in enumerate(columns, start=1):
            log.write({"step": t, **dict(zip(METRICS, values))})
        title = f"{self.algo} on {self.config.env}: {self.config.runs:,} runs"
        plotting.plot_runs([self.run.path], self.run.curve_file, title=title, metric=METRICS[0])
        plotting.plot_runs([self.run.path], self.run.path / OPTIMAL_ACTION_PNG, title=title, metric=METRICS[1])
        status = "interrupted" if self.interrupted else "finished"
        self.run.write_meta(status=status, step=n)
        total = time.perf_counter() - self.t0
        timing = {"train_seconds": train_seconds, "eval_seconds": 0.0, "checkpoint_seconds": 0.0, "total_seconds": total}
        if not self.quiet:
            last = slice(max(0, n - max(1, n // 10)), n)
            print(f"{self.algo} on {self.config.env}: {self.config.runs:,} runs x {n:,} steps in {train_seconds:.2f}s; "
                  f"last {last.stop - last.start} steps: average reward {self._reward[last].mean():.3f}, "
                  f"optimal action {self._optimal[last].mean():.1f}%")
        return runs.Run(self.run.path, self.algo, self.config, [], timing, n, self.interrupted)

