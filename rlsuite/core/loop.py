"""The loop every algorithm shares: a clock and a bookkeeper that knows no Gymnasium.

An algorithm owns its loop body and its math; the Loop owns what surrounds them:

    with Loop("ppo", config, run_dir, budget=config.budget, schedule=config.schedule,
              parts={"agent": agent, "optimizer": optimizer, "envs": envs},
              evaluate=evaluator, export=save_policy, **options) as loop:
        state = loop.start(lambda: State(...))          # or the checkpoint's state, on resume
        while loop.running():                           # evaluations and checkpoints fall due here
            ...collect, update; build the new state...
            loop.record(steps, metrics, episodes=episodes, state=state)
        return loop.finish()

It takes:
- a `Budget` with a unit (env steps, episodes, sweeps, optimizer steps, tokens, ...);
- named `parts` to checkpoint, each a `state_dict` object (modules, optimizers) or one that
  saves itself into a directory (`DirectoryPart`: a replay buffer's arrays, a pretrained model).
  A part not listed (a frozen reference model) is not checkpointed. A part with `attach(loop)`
  (Ray workers, which report restarts through `note`) is attached when the Loop opens;
- the algorithm's explicit `state` (any picklable value; typically a frozen dataclass that the
  loop body rebuilds each iteration): handed over with each `record`, saved with checkpoints;
- `evaluate(step) -> dict[str, float]` (episode returns for Gym, accuracy for text, ...); the
  first key is the headline shown in the progress bar and the curve;
- `export(dir)`, which writes the final artifact (files in a directory); it also goes into every
  checkpoint, so a run killed before its end still loads as a policy;
- `is_main_process`: other processes (accelerate, Ray) train along but write nothing;
- `agree(this process's flag) -> every process's`: under several processes, when a checkpoint
  falls due by time (each process's clock differs), so that all save at the same step.

Checkpoints are taken only between iterations, so a resumed run continues exactly where the
saved one stopped: same parameters, optimizer moments, RNG streams and environment states.
Ctrl-C and SIGTERM stop after the current iteration with a checkpoint; a second Ctrl-C aborts.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar

import numpy as np

from rlsuite.core import checkpoint, config as configs
from rlsuite.core.checkpoint import DirectoryPart, StatefulPart
from rlsuite.core.config import Budget, Schedule
from rlsuite.core.progress import make_progress
from rlsuite.core.recorder import NullRecorder, Recorder, check_run_dir_path, describe_export
from rlsuite.core.run import Run, default_run_dir
from rlsuite.core.seeding import rng_state, set_rng_state
from rlsuite.errors import CheckpointError, ConfigError, NonFiniteError, RunDirError

S = TypeVar("S")
NO_STATE = object()


class Figure(NamedTuple):
    """A learning-curve PNG drawn from the run's logs at the end: metrics.csv columns (none:
    the evaluation headline, or the training episode return when there is no evaluation)."""

    metrics: tuple[str, ...] = ()
    logy: bool = False


class Episodes(NamedTuple):
    """Episodes that ended during an iteration: their undiscounted returns and lengths."""

    returns: list[float]
    lengths: list[int]


class Loop(Generic[S]):
    def __init__(
        self,
        algo: str,
        config: Any,
        run_dir: str | Path | None = None,
        *,
        budget: Budget,
        schedule: Schedule = Schedule(),
        parts: Mapping[str, StatefulPart | DirectoryPart] | None = None,
        evaluate: Callable[[int], dict[str, float]] | None = None,
        export: Callable[[Path], None] | None = None,
        resumable: bool = True,
        figures: Mapping[str, Figure] | None = None,
        is_main_process: bool = True,
        resume: bool = False,
        overwrite: bool = False,
        quiet: bool = False,
        callbacks: Iterable[Callable[[Loop], None]] = (),
        agree: Callable[[bool], bool] = bool,
    ):
        self.algo, self.config, self.budget, self.schedule = algo, config, budget, schedule
        self.parts = dict(parts or {})
        self.evaluate_fn, self.export_fn, self.resumable = evaluate, export, resumable
        self.figures = dict(figures if figures is not None else {"curve.png": Figure()})
        self.quiet = quiet or not is_main_process
        self.callbacks = list(callbacks)
        self.agree = agree
        self.step = 0
        self.evaluations: list[tuple[int, dict[str, float]]] = []
        self.status = "running"
        self._state: Any = NO_STATE
        self._stop_signal: str | None = None
        self._window: dict[str, list[float]] = defaultdict(list)
        self._episodes: tuple[list[float], list[int]] = ([], [])
        self._window_start = (0, 0.0)  # (step, time) where the metrics being averaged began
        self._seconds: dict[str, float] = defaultdict(float)
        self._previous_handlers: dict[int, Any] = {}
        self._progress = None
        self._closed = False
        opened = time.perf_counter()
        for name, part in self.parts.items():
            if not isinstance(part, (DirectoryPart, StatefulPart)):
                raise TypeError(f"part {name!r} has neither state_dict/load_state_dict nor save_to/load_from")
        check_run_dir_path(run_dir)
        path = Path(run_dir) if run_dir is not None else default_run_dir(algo, config)
        self.recorder: Recorder = NullRecorder(path)
        try:
            self._restored_state = self._open(path, resume, overwrite, is_main_process)
        except BaseException:
            self._close()  # nothing written: a failed resume leaves the run as it was
            raise
        self._t0 = time.perf_counter()  # training time is counted from here; opening the run is setup
        self._seconds["setup"] = self._t0 - opened
        self._next_eval = self._next_multiple(schedule.eval_every)
        self._next_checkpoint = self._next_multiple(schedule.checkpoint_every)
        self._next_log = self._next_multiple(schedule.log_every)
        self._last_checkpoint_time = time.perf_counter()
        self._window_start = (self._window_start[0], time.perf_counter())
        for part in self.parts.values():  # e.g. Ray workers, which report their restarts through note()
            attach = getattr(part, "attach", None)
            if callable(attach):
                attach(self)

    def _open(self, path: Path, resume: bool, overwrite: bool, is_main_process: bool) -> Any:
        """Create or reopen the run directory (restoring the checkpoint on resume), then begin it."""
        if is_main_process:
            self.recorder = Recorder.reopen(path, self.algo) if resume else Recorder.create(path, self.algo, overwrite=overwrite)
        restored = self._restore() if resume else None  # every process restores; only the main one writes
        self.recorder.begin(self.config, self.budget, self.step if resume else None)
        return restored

    @property
    def run_dir(self) -> Path:
        return self.recorder.path

    # --- life cycle ---------------------------------------------------------------------------
    def __enter__(self) -> Loop[S]:
        self._install_signal_handlers()
        self._progress = make_progress(self, quiet=self.quiet)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and self.status == "running":
            self.status = "aborted" if exc_type is KeyboardInterrupt else "failed"
            try:
                self.recorder.set_status(self.status, error=f"{exc_type.__name__}: {exc}")
            except OSError:
                pass  # e.g. the disk is full: the error being raised says more than we could
        self._close()

    def start(self, initial: Callable[[], S]) -> S:
        """The algorithm's explicit state: the checkpoint's on resume, otherwise initial()."""
        state = initial() if self._restored_state is None else self._restored_state
        self._state = state
        if self._restored_state is None and self.schedule.eval_at_start:
            self.evaluate()
        return state

    def running(self) -> bool:
        """True while budget is left; runs the evaluations and checkpoints that fall due."""
        if self.step >= self._next_eval:
            self.evaluate()
            self._next_eval = self._next_multiple(self.schedule.eval_every)
        if self._stop_signal is not None:
            self.status = "interrupted"
            self.save_checkpoint()
            return False
        overdue = time.perf_counter() - self._last_checkpoint_time >= self.schedule.checkpoint_seconds
        due = self.step >= self._next_checkpoint or self.agree(overdue)
        if due and self.step < self.budget.total:
            self.save_checkpoint()
        return self.step < self.budget.total

    def record(self, amount: int, metrics: Mapping[str, float] = {}, *, episodes: Episodes | None = None, state: Any = NO_STATE) -> None:
        """Advance the clock by `amount` budget units and take one iteration's metrics (averaged
        over log_every), the episodes that ended (returns, lengths) and the new explicit state.
        NaN or infinity in a metric stops the run, keeping the last good checkpoint."""
        for key, value in metrics.items():
            value = float(value)
            if not math.isfinite(value):
                self._raise_non_finite(key, value)
            self._window[key].append(value)
        if episodes is not None and len(episodes[0]):
            self._episodes[0].extend(float(r) for r in episodes[0])
            self._episodes[1].extend(int(n) for n in episodes[1])
        if state is not NO_STATE:
            self._state = state
        self.step += amount
        if self.step >= self._next_log:
            self._flush_metrics()
        if self._progress is not None:
            self._progress.update(self)
        for callback in self.callbacks:
            callback(self)

    def note(self, message: str) -> None:
        """An event worth keeping besides the metrics (a rollout worker restarted, say): printed
        unless quiet, and appended to the run's events.log."""
        self.recorder.log_event(self.step, message)
        if not self.quiet:
            print(f"{self.algo}: {message}", flush=True)

    def request_stop(self, reason: str = "request") -> None:
        """Stop after the current iteration with a resumable checkpoint (what Ctrl-C does)."""
        self._stop_signal = reason

    @property
    def interrupted(self) -> bool:
        return self.status == "interrupted"

    def figure_path(self, name: str) -> Path:
        """Where an algorithm draws an extra figure (e.g. values.png); --overwrite removes it."""
        return self.recorder.figure_path(name)

    def finish(self, status: str | None = None) -> Run:
        """Final evaluation, checkpoint, export and learning curve; returns the Run.

        `status` overrides "finished" for a run that ended on its own terms (e.g. "not_converged").
        """
        if not self.interrupted:
            if self.evaluate_fn is not None and (not self.evaluations or self.evaluations[-1][0] != self.step):
                self.evaluate()
            self.status = status or "finished"
            if self.resumable:
                self.save_checkpoint()
        if not (self.interrupted and self.resumable):  # else the partial window waits in the checkpoint
            self._flush_metrics()
        start = time.perf_counter()
        if self.export_fn is not None:
            self.recorder.export(self.export_fn, self.algo, self.config, self.step)
        if self.recorder.writes:
            from rlsuite.core.plotting import plot_runs

            self.recorder.flush()  # the figures read the CSV files
            for name, figure in self.figures.items():
                plot_runs([self.run_dir], self.recorder.figure_path(name), metric=list(figure.metrics) or None, logy=figure.logy)
        self._seconds["export"] += time.perf_counter() - start
        self.recorder.set_status(self.status, step=self.step)
        looped = time.perf_counter() - self._t0
        spent = self._seconds["eval"] + self._seconds["checkpoint"] + self._seconds["export"]
        timing = {
            "train_seconds": looped - spent,
            "eval_seconds": self._seconds["eval"],
            "checkpoint_seconds": self._seconds["checkpoint"],
            "export_seconds": self._seconds["export"],
            "setup_seconds": self._seconds["setup"],
            "total_seconds": self._seconds["setup"] + looped,
        }
        self._close()
        return Run(self.run_dir, self.algo, self.config, self.step, self.status, self.budget.unit, timing)

    # --- evaluation and checkpoints -----------------------------------------------------------
    def evaluate(self) -> dict[str, float] | None:
        if self.evaluate_fn is None:
            return None
        start = time.perf_counter()
        row = {key: float(value) for key, value in self.evaluate_fn(self.step).items()}
        self.evaluations.append((self.step, row))
        self.recorder.log_eval(self.step, row)
        self._seconds["eval"] += time.perf_counter() - start
        return row

    def save_checkpoint(self) -> None:
        if not self.resumable:
            return
        start = time.perf_counter()
        stateful = {name: part for name, part in self.parts.items() if not isinstance(part, DirectoryPart)}
        directories = {name: part for name, part in self.parts.items() if isinstance(part, DirectoryPart)}
        payload = {
            "algo": self.algo,
            "config": configs.to_dict(self.config),
            "step": self.step,
            "status": self.status,
            "evaluations": self.evaluations,
            # The metrics averaged since the last row, so a resumed run writes the rows an
            # uninterrupted one would.
            "window": (dict(self._window), self._episodes, self._window_start[0]),
            "rng": rng_state(),
            "parts": {name: part.state_dict() for name, part in stateful.items()},
            "state": None if self._state is NO_STATE else self._state,
        }
        try:
            self.recorder.save_checkpoint(payload, directories, self._export_described if self.export_fn is not None else None)
        except OSError as exc:
            saved = self.recorder.meta.get("checkpoint_step")
            kept = f"the previous checkpoint (step {saved:,}) is intact" if saved is not None else "no earlier checkpoint exists"
            raise RunDirError(f"could not save a checkpoint in {self.run_dir} ({exc.strerror or exc}); {kept}. Free some space and resume.") from None
        self._last_checkpoint_time = time.perf_counter()
        self._next_checkpoint = self._next_multiple(self.schedule.checkpoint_every)
        self._seconds["checkpoint"] += time.perf_counter() - start

    def _export_described(self, directory: Path) -> None:
        self.export_fn(directory)
        describe_export(directory, self.algo, self.config, self.step)

    def _restore(self) -> Any:
        path = self.recorder.run.latest_checkpoint()
        payload = checkpoint.load_state(path)
        step = int(payload["step"])
        if self.budget.total < step:
            raise ConfigError(f"the new budget ({self.budget.total:,} {self.budget.unit}) is below the {step:,} {self.budget.unit} this run has done; give a larger one.")
        if self.budget.total == step and payload.get("status") == "finished":
            raise ConfigError(f"{self.run_dir} already finished at {step:,} {self.budget.unit}; pass a larger budget (e.g. --total-steps) to train on.")
        try:
            for name, part in self.parts.items():
                if isinstance(part, DirectoryPart):
                    part.load_from(path / name)
                else:
                    part.load_state_dict(payload["parts"][name])
        except (KeyError, RuntimeError, ValueError, OSError) as exc:
            raise CheckpointError(
                f"{path} does not match this config ({type(exc).__name__}: {exc}). "
                "Resume with the run's own config; only the budget may change."
            ) from None
        set_rng_state(payload["rng"])
        window, self._episodes, window_start = payload["window"]
        self._window = defaultdict(list, window)
        self._window_start = (window_start, 0.0)
        self.step = step
        self.evaluations = [(int(s), dict(row)) for s, row in payload["evaluations"]]
        return payload["state"]

    def _raise_non_finite(self, key: str, value: float) -> None:
        saved = self.recorder.meta.get("checkpoint_step")
        kept = f"the last good checkpoint (step {saved:,}) is kept in {self.run_dir / 'checkpoints'}" if saved is not None else "no checkpoint had been saved yet"
        raise NonFiniteError(
            f"training diverged: {key} became {value} at step {self.step:,}; {kept}. "
            "Lower the learning rate, enable gradient clipping or normalization, and check the reward scale."
        )

    # --- helpers ------------------------------------------------------------------------------
    def _next_multiple(self, every: int) -> float:
        if every <= 0:
            return math.inf
        return (self.step // every + 1) * every

    def _flush_metrics(self) -> None:
        returns, lengths = self._episodes
        if not self._window and not returns:
            return
        steps, started = self._window_start
        now = time.perf_counter()
        row = {key: float(np.mean(values)) for key, values in self._window.items()}
        if returns:
            row["charts/episodic_return"] = float(np.mean(returns))
            row["charts/episodic_length"] = float(np.mean(lengths))
            self.recorder.log_episodes(self.step, returns, lengths)
        row[f"charts/{self.budget.unit.replace(' ', '_')}_per_second"] = (self.step - steps) / max(now - started, 1e-9)
        self.recorder.log_metrics(self.step, row)
        self._window.clear()
        self._episodes = ([], [])
        self._window_start = (self.step, now)
        self._next_log = self._next_multiple(self.schedule.log_every)

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def handler(signum, frame):
            name = signal.Signals(signum).name
            if self._stop_signal is not None and signum == signal.SIGINT:  # second Ctrl-C: stop at once
                raise KeyboardInterrupt
            self._stop_signal = name
            if not self.quiet:
                print(f"\n{name}: saving a resumable checkpoint after this iteration (Ctrl-C again to abort).", flush=True)

        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous_handlers[signum] = signal.signal(signum, handler)

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._progress is not None:
            self._progress.close()
            self._progress = None
        for signum, previous in self._previous_handlers.items():
            signal.signal(signum, previous)
        self._previous_handlers.clear()
        # Parts and the evaluator with a close() (environments, mostly) are closed here.
        for resource in [*self.parts.values(), self.evaluate_fn]:
            close = getattr(resource, "close", None)
            if callable(close):
                close()
        self.recorder.close()
