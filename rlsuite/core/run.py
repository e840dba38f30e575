"""The run directory: one folder per training run, holding everything it produced.

    runs/ppo-CartPole-v1-seed1/
        run.yaml        algorithm, status, steps done, rlsuite version
        config.yaml     the resolved config (re-usable with --config)
        metrics.csv     averaged training metrics every log_every steps
        eval.csv        one row per evaluation (step, mean, std, min, max, episodes)
        tb/             TensorBoard event files
        checkpoint.pt   latest resumable checkpoint (atomic)
        model.pt        final policy, loadable with rlsuite.load(run_dir)
        curve.png       learning curve
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rlsuite.core import checkpoint, config as configs
from rlsuite.core.errors import RunDirError

RUNS_ROOT = Path("runs")


def default_run_dir(algo: str, config: configs.BaseConfig) -> Path:
    env = getattr(config, "env", None)
    name = f"{algo}-{env}-seed{config.seed}" if env else f"{algo}-seed{config.seed}"
    return RUNS_ROOT / name.replace("/", "_")


@dataclass
class RunDir:
    """Paths of a run directory and its small metadata file."""

    path: Path

    @property
    def config_file(self) -> Path:
        return self.path / "config.yaml"

    @property
    def meta_file(self) -> Path:
        return self.path / "run.yaml"

    @property
    def checkpoint_file(self) -> Path:
        return self.path / "checkpoint.pt"

    @property
    def model_file(self) -> Path:
        return self.path / "model.pt"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def eval_file(self) -> Path:
        return self.path / "eval.csv"

    @property
    def curve_file(self) -> Path:
        return self.path / "curve.png"

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / "tb"

    def meta(self) -> dict[str, Any]:
        if not self.meta_file.is_file():
            raise RunDirError(f"{self.path} is not an rlsuite run directory (no run.yaml). Give the folder `rlsuite train` created.")
        return yaml.safe_load(self.meta_file.read_text()) or {}

    def write_meta(self, **values: Any) -> None:
        meta = self.meta() if self.meta_file.is_file() else {}
        meta.update(values)
        checkpoint.atomic_write_bytes(yaml.safe_dump(meta, sort_keys=False).encode(), self.meta_file)

    def load_config(self, config_cls: type) -> Any:
        return configs.from_dict(config_cls, configs.load_yaml(self.config_file))


def prepare(algo: str, config: configs.BaseConfig, run_dir: str | Path | None, *, overwrite: bool, resume: bool) -> RunDir:
    """Create (or, when resuming, check) the run directory before any work starts."""
    import rlsuite

    run = RunDir(Path(run_dir) if run_dir is not None else default_run_dir(algo, config))
    if resume:
        meta = run.meta()
        if meta.get("algo") != algo:
            raise RunDirError(f"{run.path} holds a {meta.get('algo')!r} run, not {algo!r}.")
        if not run.checkpoint_file.is_file():
            raise RunDirError(f"{run.path} has no checkpoint.pt to resume from; start a new run with `rlsuite train`.")
    else:
        if run.path.exists() and not run.path.is_dir():
            raise RunDirError(f"{run.path} exists and is not a directory; choose another --run-dir.")
        if run.path.exists() and any(run.path.iterdir()):
            if not overwrite:
                raise RunDirError(
                    f"run directory {run.path} already exists. Use --overwrite to replace it, "
                    f"`rlsuite resume {run.path}` to continue it, or --run-dir to choose another."
                )
            if not run.meta_file.is_file():
                raise RunDirError(f"refusing to overwrite {run.path}: it is not an rlsuite run directory.")
            shutil.rmtree(run.path)
        run.path.mkdir(parents=True, exist_ok=True)
        run.write_meta(algo=algo, status="running", step=0, rlsuite_version=rlsuite.__version__)
    configs.save_yaml(config, run.config_file)
    return run


@dataclass
class Run:
    """What `train` returns: where the run lives and how it went."""

    dir: Path
    algo: str
    config: Any
    evaluations: list[tuple[int, float]] = field(default_factory=list)
    timing: dict[str, float] = field(default_factory=dict)
    step: int = 0
    interrupted: bool = False

    @property
    def final_eval(self) -> float | None:
        return self.evaluations[-1][1] if self.evaluations else None

    @property
    def policy(self):
        from rlsuite.core.api import load

        return load(self.dir)

    def summary(self) -> str:
        config = dataclasses.asdict(self.config)
        env = config.get("env", "")
        state = "interrupted" if self.interrupted else "finished"
        score = f": evaluation mean return {self.final_eval:.1f}" if self.final_eval is not None else ""
        return f"{self.algo} on {env} {state} at step {self.step:,}{score}"
