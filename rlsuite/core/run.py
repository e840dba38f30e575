"""The run directory: one folder per training run, holding everything it produced.

    runs/ppo-CartPole-v1-seed1/
        run.yaml        format, algorithm, status, step, budget and its unit, the files written
        config.yaml     the resolved config (re-usable with --config)
        metrics.csv     averaged training metrics every log_every budget units
        eval.csv        one row per evaluation: step and what the algorithm's evaluate() returned
        episodes.csv    one row per finished training episode (Gymnasium runs)
        events.log      what happened besides training (a Ray worker restarted, ...), one line each
        tb/             TensorBoard event files
        checkpoints/    ckpt-NNNNNN/: the latest resumable checkpoint (see rlsuite.core.checkpoint)
        model/          the final artifact (rlsuite.load reads it, or the checkpoint's copy)
        curve.png       the learning curve; some algorithms add figures (values.png, ...)
        .lock           locked by the process writing the run

This module reads run directories (`RunDir`, `Run`); `rlsuite.core.recorder` writes them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rlsuite.core import checkpoint
from rlsuite.core.tables import Table, read_table
from rlsuite.errors import RunDirError

RUNS_ROOT = Path("runs")
RUN_FORMAT = "rlsuite-run-v2"
STANDARD_FILES = ("run.yaml", "config.yaml", "metrics.csv", "eval.csv", "episodes.csv", "events.log", "tb", "checkpoints", "model", "curve.png")
"""What every run may write; `--overwrite` deletes these and the extra files run.yaml lists."""
LEGACY_FILES = ("checkpoint.pt", "model.pt")
"""Files of run directories written by rlsuite 0.1, also removed by --overwrite."""


def experiment_name(algo: str, config: Any) -> str:
    """ALGO-ENV (or ALGO-TASK, or ALGO), safe as a folder name: what runs and sweeps are named by."""
    env = getattr(config, "env", None) or (Path(config.task).stem if getattr(config, "task", None) else None)
    return (f"{algo}-{env}" if env else algo).replace("/", "_")


def default_run_dir(algo: str, config: Any) -> Path:
    return RUNS_ROOT / f"{experiment_name(algo, config)}-seed{config.seed}"


@dataclass(frozen=True)
class RunDir:
    """The paths of a run directory and its metadata file."""

    path: Path

    config_file = property(lambda self: self.path / "config.yaml")
    meta_file = property(lambda self: self.path / "run.yaml")
    metrics_file = property(lambda self: self.path / "metrics.csv")
    eval_file = property(lambda self: self.path / "eval.csv")
    episodes_file = property(lambda self: self.path / "episodes.csv")
    events_file = property(lambda self: self.path / "events.log")
    tensorboard_dir = property(lambda self: self.path / "tb")
    checkpoints_dir = property(lambda self: self.path / "checkpoints")
    model_dir = property(lambda self: self.path / "model")
    curve_file = property(lambda self: self.path / "curve.png")
    lock_file = property(lambda self: self.path / ".lock")

    def meta(self) -> dict[str, Any]:
        """run.yaml as a dict; RunDirError when it is missing or corrupt."""
        if not self.meta_file.is_file():
            raise RunDirError(f"{self.path} is not an rlsuite run directory (no run.yaml). Give the folder `rlsuite train` created.")
        try:
            meta = yaml.safe_load(self.meta_file.read_text())
        except (yaml.YAMLError, UnicodeDecodeError, OSError) as exc:
            raise RunDirError(f"{self.meta_file} is corrupt ({type(exc).__name__}); the run cannot be identified. "
                              "Restore it from a copy, or start a new run in another --run-dir.") from None
        if not isinstance(meta, dict) or not isinstance(meta.get("algo"), str):
            raise RunDirError(f"{self.meta_file} is corrupt (no algorithm recorded); restore it from a copy, or start a new run in another --run-dir.")
        return meta

    def is_run(self) -> bool:
        """True when run.yaml proves an rlsuite run wrote this folder (any version)."""
        try:
            meta = self.meta()
        except RunDirError:
            return False
        return meta.get("format") == RUN_FORMAT or "rlsuite_version" in meta

    def latest_checkpoint(self) -> Path | None:
        return checkpoint.latest_checkpoint(self.checkpoints_dir)

    def policy_dir(self) -> Path | None:
        """Where the policy of this run lives: model/ when the run finished, else the newest
        checkpoint's model/ (a run killed before its end), else None."""
        if self.model_dir.is_dir():
            return self.model_dir
        latest = self.latest_checkpoint()
        if latest is not None and (latest / "model").is_dir():
            return latest / "model"
        return None

    def load_config_dict(self) -> dict[str, Any]:
        from rlsuite.core.config import load_yaml

        return load_yaml(self.config_file)


@dataclass
class Run:
    """A run directory as Python values: what `train` returns and `rlsuite.open_run` reads.

    The tables (`metrics`, `evaluations`, `episodes`) are read from the CSV files on access, as
    column name -> NumPy array; `curves` holds per-run arrays an algorithm saved (bandits).
    """

    dir: Path
    algo: str
    config: Any
    step: int = 0
    status: str = "finished"
    unit: str = "env steps"
    timing: dict[str, float] = field(default_factory=dict)

    @property
    def interrupted(self) -> bool:
        return self.status == "interrupted"

    @property
    def metrics(self) -> Table:
        return read_table(RunDir(self.dir).metrics_file)

    @property
    def evaluations(self) -> Table:
        return read_table(RunDir(self.dir).eval_file)

    @property
    def episodes(self) -> Table:
        return read_table(RunDir(self.dir).episodes_file)

    def _headline(self) -> tuple[str, float] | None:
        """(first metric, its last value) of the evaluations, e.g. ("mean_return", 500.0)."""
        evaluations = self.evaluations
        name = next((c for c in evaluations if c != "step"), None)
        return (name, float(evaluations[name][-1])) if name is not None and len(evaluations[name]) else None

    @property
    def final_eval(self) -> float | None:
        """The headline (first) metric of the last evaluation, e.g. the mean return."""
        headline = self._headline()
        return headline[1] if headline else None

    @property
    def curves(self) -> dict[str, Any]:
        """Per-run arrays the algorithm exported as model/curves.npz (bandits: [runs, steps])."""
        import numpy as np

        path = RunDir(self.dir).model_dir / "curves.npz"
        if not path.is_file():
            return {}
        with np.load(path) as data:
            return {key: data[key] for key in data.files}

    def summary(self) -> str:
        config = dataclasses.asdict(self.config)
        env = config.get("env") or config.get("task", "")
        score = ""
        headline = self._headline()
        if headline is not None:
            score = f": evaluation {headline[0].replace('_', ' ')} {headline[1]:.4g}"
        else:  # no evaluation (bandits, DP): the last value of the first metric
            metrics = self.metrics
            first = next((c for c in metrics if c != "step" and not c.startswith("charts/")), None)
            if first is not None and len(metrics[first]):
                score = f": last {first} {metrics[first][-1]:.4g}"
        return f"{self.algo} on {env} {self.status} after {self.step:,} {self.unit}{score}"
