"""The one writer of run directories, for every family (layout: rlsuite.core.run).

A `Recorder` holds an exclusive lock on its run directory for the life of the run, so a second
process (a second `resume`, an `--overwrite` of a live run) gets a clear error instead of
interleaving rows or deleting files under a live process. Every file is written atomically.
`--overwrite` deletes only what run.yaml proves an rlsuite run wrote, and only those files.
Processes other than the main one (under accelerate or Ray) get a `NullRecorder`: no writes.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from rlsuite.core import checkpoint, config as configs
from rlsuite.core.logging import CSVLog, TensorBoardLog
from rlsuite.core.run import LEGACY_FILES, RUN_FORMAT, STANDARD_FILES, RunDir
from rlsuite.errors import RunDirError, RunInUseError


def _os_error(path: Path, exc: OSError, doing: str) -> RunDirError:
    reasons = {
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.ENOSPC: "the disk is full",
        errno.ENOTDIR: "a part of the path is a file, not a directory",
        errno.EDQUOT: "the disk quota is exceeded",
    }
    reason = reasons.get(exc.errno, exc.strerror or str(exc))
    return RunDirError(f"cannot {doing} {path}: {reason}. Choose a writable --run-dir (or free some space).")


class RunLock:
    """An exclusive advisory lock on run_dir/.lock, released when the process ends (even by SIGKILL)."""

    def __init__(self, run: RunDir):
        self.run = run
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.run.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise _os_error(self.run.path, exc, "lock the run directory") from None
        try:
            _lock(fd)
        except OSError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise RunInUseError(
                f"run directory {self.run.path} is in use by another rlsuite process (pid {holder}). "
                "Wait for it to finish or stop it (Ctrl-C saves a checkpoint), or choose another --run-dir."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None


def _lock(fd: int) -> None:
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except ImportError:  # Windows
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)


def remove_path(target: Path) -> None:
    """Delete a file, a symlink (not what it points to) or a directory tree, if there."""
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif target.exists() or target.is_symlink():
        target.unlink()


def check_run_dir_path(path: Path | str | None) -> None:
    if path is not None and str(path).strip() == "":
        raise RunDirError("--run-dir is empty; give a folder name (or leave it out for runs/ALGO-ENV-seedN).")


class Recorder:
    """Writes one run directory. Create with `Recorder.create` (new run) or `Recorder.reopen`
    (resume); then `begin` once the run's state is ready, the log_* methods while it trains,
    `save_checkpoint`, `export`, `set_status` and finally `close`."""

    writes = True

    def __init__(self, run: RunDir, lock: RunLock, meta: dict[str, Any]):
        self.run, self.lock, self.meta = run, lock, meta
        self.extra_files: list[str] = list(meta.get("files", []))
        self.metrics = self.evals = self.episodes = None
        self.tensorboard = None

    @property
    def path(self) -> Path:
        return self.run.path

    # --- opening ------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: Path, algo: str, *, overwrite: bool) -> Recorder:
        """A new run directory at path (created, or an old run in it cleared with overwrite)."""
        check_run_dir_path(path)
        run = RunDir(Path(path))
        if run.path.exists() and not run.path.is_dir():
            raise RunDirError(f"{run.path} exists and is not a directory; choose another --run-dir.")
        lock = RunLock(run)
        if run.path.is_dir() and any(p.name != ".lock" for p in run.path.iterdir()):
            if not overwrite:
                raise RunDirError(
                    f"run directory {run.path} already exists. Use --overwrite to replace it, "
                    f"`rlsuite resume {run.path}` to continue it, or --run-dir to choose another."
                )
            if not run.is_run():
                raise RunDirError(f"refusing to overwrite {run.path}: it is not an rlsuite run directory (no valid run.yaml).")
            lock.acquire()
            try:
                cls._clear(run)
            except OSError as exc:
                lock.release()
                raise _os_error(run.path, exc, "clear the old run in") from None
        else:
            try:
                run.path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise _os_error(run.path, exc, "create the run directory") from None
            lock.acquire()
        return cls(run, lock, {"format": RUN_FORMAT, "algo": algo})

    @staticmethod
    def _clear(run: RunDir) -> None:
        """Delete the files an rlsuite run writes, and nothing else."""
        names = set(STANDARD_FILES) | set(LEGACY_FILES) | set(run.meta().get("files", []))
        for name in names:
            remove_path(run.path / name)
        checkpoint.remove_leftovers(run.path)

    @classmethod
    def reopen(cls, path: Path, algo: str) -> Recorder:
        """An existing run to resume: locked and checked, nothing written yet."""
        check_run_dir_path(path)
        run = RunDir(Path(path))
        meta = run.meta()
        if meta.get("algo") != algo:
            raise RunDirError(f"{run.path} holds a {meta.get('algo')!r} run, not {algo!r}.")
        lock = RunLock(run)
        lock.acquire()
        if run.latest_checkpoint() is None:
            lock.release()
            raise RunDirError(f"{run.path} has no checkpoint to resume from; start a new run with `rlsuite train {algo}`.")
        return cls(run, lock, meta)

    # --- writing ------------------------------------------------------------------------------
    def begin(self, config: Any, budget: configs.Budget, resume_step: int | None) -> None:
        """Write config.yaml and run.yaml and open the logs (truncated to resume_step on resume)."""
        import rlsuite

        try:
            checkpoint.remove_leftovers(self.path)
            checkpoint.remove_leftovers(self.run.checkpoints_dir)
            checkpoint.atomic_write_bytes(configs.dump_yaml(config), self.run.config_file)
            self.write_meta(status="running", step=resume_step or 0, budget=budget.total, unit=budget.unit,
                            rlsuite_version=rlsuite.__version__, pid=os.getpid())
            self.metrics = CSVLog(self.run.metrics_file, resume_step)
            self.evals = CSVLog(self.run.eval_file, resume_step)
            self.episodes = CSVLog(self.run.episodes_file, resume_step)
        except OSError as exc:
            raise _os_error(self.path, exc, "write to") from None
        self.tensorboard = TensorBoardLog(self.run.tensorboard_dir, resume_step)

    def write_meta(self, **values: Any) -> None:
        self.meta.update(values, files=self.extra_files)
        checkpoint.atomic_write_bytes(yaml.safe_dump(self.meta, sort_keys=False).encode(), self.run.meta_file)

    def log_metrics(self, step: int, row: dict[str, float]) -> None:
        self.metrics.write({"step": step, **row})
        self.tensorboard.log(step, row)

    def log_eval(self, step: int, row: dict[str, float]) -> None:
        self.evals.write({"step": step, **row})
        self.tensorboard.log(step, row, prefix="eval/")

    def log_episodes(self, step: int, returns: list[float], lengths: list[int]) -> None:
        for episode_return, length in zip(returns, lengths):
            self.episodes.write({"step": step, "return": episode_return, "length": length})

    def log_event(self, step: int, message: str) -> None:
        """One line in events.log, appended and flushed at once: events are rare and are what
        someone reads after a run went strangely, so none is kept back in a buffer."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime())
        try:
            with open(self.run.events_file, "a") as file:
                file.write(f"{stamp} step {step}: {message}\n")
        except OSError as exc:
            raise _os_error(self.path, exc, "write to") from None

    def flush(self) -> None:
        for log in (self.metrics, self.evals, self.episodes, self.tensorboard):
            if log is not None:
                log.flush()

    def save_checkpoint(self, payload: dict[str, Any], directory_parts: dict, export: Callable[[Path], None] | None) -> None:
        self.flush()
        checkpoint.write_checkpoint(self.run.checkpoints_dir, payload, directory_parts, export)
        self.write_meta(step=payload["step"], checkpoint_step=payload["step"])

    def export(self, export: Callable[[Path], None], algo: str, config: Any, step: int) -> None:
        """The final artifact: model/ replaced atomically, with an rlsuite.yaml saying what it is."""
        with checkpoint.new_directory(self.run.model_dir) as tmp:
            export(tmp)
            describe_export(tmp, algo, config, step)

    def figure_path(self, name: str) -> Path:
        """Where to draw a figure; a non-standard name is remembered so --overwrite removes it."""
        if name not in self.extra_files and name not in STANDARD_FILES:
            self.extra_files.append(name)
        return self.path / name

    def set_status(self, status: str, **values: Any) -> None:
        self.write_meta(status=status, **values)

    def close(self) -> None:
        for log in (self.metrics, self.evals, self.episodes, self.tensorboard):
            if log is not None:
                log.close()
        self.metrics = self.evals = self.episodes = self.tensorboard = None
        self.lock.release()


def describe_export(directory: Path, algo: str, config: Any, step: int) -> None:
    """rlsuite.yaml in an export or checkpoint model/ folder, so `rlsuite.load` can read the
    folder on its own (copied elsewhere, without its run directory)."""
    text = yaml.safe_dump({"algo": algo, "step": step, "config": configs.to_dict(config)}, sort_keys=False)
    checkpoint.atomic_write_bytes(text.encode(), directory / "rlsuite.yaml")


class NullRecorder(Recorder):
    """The recorder of processes that are not the main one: they train but write nothing."""

    writes = False

    def __init__(self, path: Path | None = None):
        self.run, self.meta, self.extra_files = RunDir(Path(path or ".")), {}, []
        self.lock = None

    def begin(self, config, budget, resume_step) -> None: ...
    def write_meta(self, **values) -> None: ...
    def log_metrics(self, step, row) -> None: ...
    def log_eval(self, step, row) -> None: ...
    def log_episodes(self, step, returns, lengths) -> None: ...
    def log_event(self, step, message) -> None: ...
    def flush(self) -> None: ...
    def save_checkpoint(self, payload, directory_parts, export) -> None: ...
    def export(self, export, algo, config, step) -> None: ...
    def close(self) -> None: ...
