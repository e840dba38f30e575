"""The training loop every algorithm shares: progress, logging, evaluation, checkpoints, Ctrl-C.

An algorithm owns its math; this owns the bookkeeping around it:

    with TrainingLoop(run, config, modules={...}, make_envs=..., act=..., export=...) as loop:
        carry = loop.begin(lambda envs: {"obs": envs.reset(seed=config.seed)[0]})
        while loop.running():
            ...collect, update, keep mutable state in `carry`...
            loop.record(steps, metrics, episodes)
        return loop.finish()

Checkpoints are taken only between iterations, so a resumed run continues exactly where the
saved one stopped: same parameters, optimizer moments, RNG streams and environment states.
"""

from __future__ import annotations

import math
import signal
import threading
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import cloudpickle
import numpy as np
import torch

from rlsuite.core import checkpoint, config as configs, plotting
from rlsuite.core.errors import CheckpointError, NonFiniteError
from rlsuite.core.evaluation import ActFn, run_episodes
from rlsuite.core.logging import MetricsLogger
from rlsuite.core.run import Run, RunDir
from rlsuite.core.seeding import derive_seed, resolve_device, rng_state, seed_everything, set_rng_state, set_threads


def setup_torch(config: configs.TrainConfig) -> torch.device:
    """Seed every RNG and set threads before any network is built, so init is reproducible."""
    set_threads(config.torch_threads)
    seed_everything(config.seed)
    return resolve_device(config.device)


class TrainingLoop:
    def __init__(
        self,
        run: RunDir,
        algo: str,
        config: configs.TrainConfig,
        *,
        modules: dict[str, Any],
        make_envs: Callable[[], Any],
        make_eval_envs: Callable[[int], Any],
        act: ActFn,
        export: Callable[[], dict[str, Any]],
        resume: bool = False,
        quiet: bool = False,
        callbacks: Iterable[Callable[[TrainingLoop], None]] = (),
    ):
        self.run, self.algo, self.config = run, algo, config
        self.modules, self.make_envs, self.make_eval_envs = modules, make_envs, make_eval_envs
        self.act, self.export, self.resume, self.quiet = act, export, resume, quiet
        self.callbacks = list(callbacks)
        self.step = 0
        self.evaluations: list[tuple[int, float]] = []
        self.envs = None
        self.eval_envs = None
        self.carry: dict[str, Any] = {}
        self.interrupted = False
        self._stop_requested = False
        self._window: dict[str, list[float]] = defaultdict(list)
        self._episodes: list[float] = []
        self._episode_lengths: list[float] = []
        self._seconds = defaultdict(float)
        self._window_start = (0, time.perf_counter())
        self._previous_handler = None
        self._progress = None
        self.logger: MetricsLogger | None = None

    # --- life cycle ---------------------------------------------------------------------------
    def __enter__(self) -> TrainingLoop:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            status = "failed" if exc_type is not KeyboardInterrupt else "aborted"
            self.run.write_meta(status=status, error=f"{exc_type.__name__}: {exc}")
        self._close()

    def begin(self, reset_carry: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
        """Start fresh or restore everything from checkpoint.pt; returns the carry.

        `reset_carry(envs)` resets the new envs and returns the env-dependent part of the carry
        (e.g. the current observations). Other state the algorithm keeps in the carry is saved
        and restored with it.
        """
        self._t0 = time.perf_counter()
        if self.resume:
            self._restore(checkpoint.load(self.run.checkpoint_file), reset_carry)
        else:
            self.envs = self.make_envs()
            self.carry = reset_carry(self.envs)
        self.logger = MetricsLogger(
            self.run.metrics_file, self.run.eval_file, self.run.tensorboard_dir, resume_step=self.step if self.resume else None
        )
        self._next_eval = self._next_multiple(self.config.eval_every)
        self._next_checkpoint = self._next_multiple(self.config.checkpoint_every)
        self._next_log = self.step + self.config.log_every
        self._window_start = (self.step, time.perf_counter())
        self._install_sigint()
        self._start_progress()
        return self.carry

    def running(self) -> bool:
        """True while there is budget left; runs due evaluations and checkpoints in between."""
        if self.step >= self._next_eval:
            self.evaluate()
            self._next_eval = self._next_multiple(self.config.eval_every)
        if self.step >= self._next_checkpoint:
            self.save_checkpoint()
            self._next_checkpoint = self._next_multiple(self.config.checkpoint_every)
        if self._stop_requested:
            self.interrupted = True
            self.save_checkpoint()
            return False
        return self.step < self.config.total_steps

    def record(self, steps: int, metrics: dict[str, float], episode_returns=(), episode_lengths=()) -> None:
        """Count `steps` env steps and take one iteration's metrics; stops on NaN or infinity."""
        for key, value in metrics.items():
            if not math.isfinite(value):
                self._raise_non_finite(key, value)
            self._window[key].append(value)
        self._episodes.extend(float(r) for r in episode_returns)
        self._episode_lengths.extend(float(n) for n in episode_lengths)
        self.step += steps
        if self.step >= self._next_log:
            self._flush_metrics()
        if self._progress is not None:
            self._progress.update(self._task, completed=min(self.step, self.config.total_steps))
        for callback in self.callbacks:
            callback(self)

    def request_stop(self) -> None:
        """Stop after the current iteration with a resumable checkpoint (what Ctrl-C does)."""
        self._stop_requested = True

    def finish(self) -> Run:
        """Final evaluation, checkpoint, model and learning curve; returns the Run."""
        if not self.interrupted:
            if not self.evaluations or self.evaluations[-1][0] != self.step:
                self.evaluate()
            self.save_checkpoint()
        self._flush_metrics()
        checkpoint.save({"algo": self.algo, "config": configs.to_dict(self.config), "step": self.step, **self.export()}, self.run.model_file)
        start = time.perf_counter()
        plotting.plot_runs([self.run.path], self.run.curve_file)
        self._seconds["plot"] += time.perf_counter() - start
        status = "interrupted" if self.interrupted else "finished"
        self.run.write_meta(status=status, step=self.step)
        total = time.perf_counter() - self._t0
        timing = {
            "train_seconds": total - self._seconds["eval"] - self._seconds["checkpoint"] - self._seconds["plot"],
            "eval_seconds": self._seconds["eval"],
            "checkpoint_seconds": self._seconds["checkpoint"],
            "total_seconds": total,
        }
        self._close()
        return Run(self.run.path, self.algo, self.config, list(self.evaluations), timing, self.step, self.interrupted)

    # --- evaluation and checkpoints -----------------------------------------------------------
    def evaluate(self) -> float:
        start = time.perf_counter()
        if self.eval_envs is None:
            self.eval_envs = self.make_eval_envs(self.config.eval_episodes)
        seed = derive_seed(self.config.seed, "eval", len(self.evaluations))
        with torch.inference_mode():
            returns, lengths = run_episodes(self.act, self.eval_envs, seed)
        mean = float(returns.mean())
        self.evaluations.append((self.step, mean))
        self.logger.log_eval(self.step, returns, lengths)
        self._seconds["eval"] += time.perf_counter() - start
        if self._progress is not None:
            self._progress.update(self._task, eval=f"{mean:.1f} ± {returns.std():.1f}")
        return mean

    def save_checkpoint(self) -> None:
        start = time.perf_counter()
        try:
            envs = cloudpickle.dumps(self.envs)
        except Exception:  # an AsyncVectorEnv holds processes; resume then reseeds instead
            envs = None
        payload = {
            "algo": self.algo,
            "config": configs.to_dict(self.config),
            "step": self.step,
            "modules": {name: module.state_dict() for name, module in self.modules.items()},
            "rng": rng_state(),
            "envs": envs,
            "carry": self.carry,
            "evaluations": self.evaluations,
        }
        checkpoint.save(payload, self.run.checkpoint_file)
        self.run.write_meta(step=self.step, checkpoint_step=self.step)
        self._seconds["checkpoint"] += time.perf_counter() - start

    def _restore(self, payload: dict[str, Any], reset_carry: Callable[[Any], dict[str, Any]]) -> None:
        try:
            for name, module in self.modules.items():
                module.load_state_dict(payload["modules"][name])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(
                f"{self.run.checkpoint_file} does not match this config ({exc}). "
                "Resume with the run's own config; only budgets like --total-steps may change."
            ) from None
        set_rng_state(payload["rng"])
        self.step = payload["step"]
        self.evaluations = [tuple(e) for e in payload["evaluations"]]
        self.carry = payload["carry"]
        if payload["envs"] is not None:
            self.envs = cloudpickle.loads(payload["envs"])
        else:
            # Envs that cannot be pickled (subprocess-based ones) restart from a reset: training
            # continues correctly, but not bit-for-bit like an uninterrupted run.
            warnings.warn("the environments could not be saved; resuming from freshly reset ones", stacklevel=2)
            self.envs = self.make_envs()
            self.carry = {**self.carry, **reset_carry(self.envs)}

    def _raise_non_finite(self, key: str, value: float) -> None:
        saved = self.run.meta().get("checkpoint_step")
        kept = f"the last good checkpoint (step {saved:,}) is kept in {self.run.checkpoint_file}" if saved is not None else "no checkpoint had been saved yet"
        raise NonFiniteError(
            f"training diverged: {key} became {value} at step {self.step:,}; {kept}. "
            "Lower learning_rate, enable gradient clipping or normalization, and check the reward scale."
        )

    # --- helpers ------------------------------------------------------------------------------
    def _next_multiple(self, every: int) -> float:
        if every <= 0:
            return math.inf
        return (self.step // every + 1) * every

    def _flush_metrics(self) -> None:
        if not self._window and not self._episodes:
            return
        steps, started = self._window_start
        now = time.perf_counter()
        row = {key: float(np.mean(values)) for key, values in self._window.items()}
        if self._episodes:
            row["charts/episodic_return"] = float(np.mean(self._episodes))
            row["charts/episodic_length"] = float(np.mean(self._episode_lengths))
        row["charts/steps_per_second"] = (self.step - steps) / max(now - started, 1e-9)
        self.logger.log(self.step, row)
        self._window.clear()
        self._episodes.clear()
        self._episode_lengths.clear()
        self._window_start = (self.step, now)
        self._next_log = self.step + self.config.log_every

    def _install_sigint(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def handler(signum, frame):
            if self._stop_requested:  # second Ctrl-C: stop at once
                raise KeyboardInterrupt
            self._stop_requested = True
            if not self.quiet:
                print("\nCtrl-C: saving a resumable checkpoint after this iteration (press again to abort).", flush=True)

        self._previous_handler = signal.signal(signal.SIGINT, handler)

    def _start_progress(self) -> None:
        if self.quiet:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn(f"[bold]{self.algo}[/] {getattr(self.config, 'env', '')}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("steps"),
            TextColumn("eval {task.fields[eval]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            refresh_per_second=4,
        )
        self._progress.start()
        last = f"{self.evaluations[-1][1]:.1f}" if self.evaluations else "-"
        self._task = self._progress.add_task("train", total=self.config.total_steps, completed=self.step, eval=last)

    def _close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if self._previous_handler is not None:
            signal.signal(signal.SIGINT, self._previous_handler)
            self._previous_handler = None
        if self.logger is not None:
            self.logger.close()
            self.logger = None
        for envs in (self.envs, self.eval_envs):
            if envs is not None:
                envs.close()
        self.envs = self.eval_envs = None
