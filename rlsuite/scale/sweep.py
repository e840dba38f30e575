"""Hyperparameter sweeps on Ray Tune: every (setting, seed) pair is one rlsuite run.

    rlsuite sweep q_learning --env CliffWalking-v1 --grid alpha=0.1,0.5 --seeds 3

A setting is one point of the grid (the cartesian product of the --grid flags); each setting
trains once per seed as a Ray Tune trial calling `rlsuite.api.train`, so every trial leaves an
ordinary run directory that `rlsuite eval`, `resume` and `plot` read. The sweep directory holds:

    sweeps/q_learning-CliffWalking-v1/
        sweep.yaml                 what was swept (algorithm, grid, seeds, metric) and its trials
        alpha=0.1-seed1/ ...       one run directory per trial
        summary.csv                one row per setting, best first: mean, std, min, max over seeds
        trials.csv                 one row per trial: its final value, status and error
        curves.png                 learning curves per setting: mean over seeds and min-max band
        tune/                      Ray Tune's own records of the trials

The grid and the fixed fields are checked here, before Ray starts, so a typo costs no cluster
time. Ray is imported only when a sweep runs (rlsuite.scale.runtime).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import itertools
import logging
import math
import os
import time
import types
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rlsuite.core import config as configs
from rlsuite.errors import ConfigError, RLSuiteError, RunDirError, RunInUseError, suggest

SWEEPS_ROOT = Path("sweeps")
SWEEP_FORMAT = "rlsuite-sweep-v1"
SWEEP_FILES = ("sweep.yaml", "summary.csv", "trials.csv", "curves.png", "tune")
"""What a sweep writes besides its trials' run directories; --overwrite deletes only these and those."""
EXIT_TRIALS_FAILED = 1
"""Exit status of a sweep that finished with some trials failed (the summary lists them); a
sweep stopped by Ctrl-C exits with rlsuite's EXIT_INTERRUPTED (4)."""
FINISHED = ("finished", "not_converged")
"""run.yaml statuses of a run that used its whole budget (DP stopping at max_iterations included)."""
NOT_SWEEPABLE = {
    "seed": "seeds are set by --seeds (N seeds starting at --seed, default 1)",
    "env": "presets differ per environment; run one sweep per environment",
    "task": "presets differ per task; run one sweep per task",
}


# --- the grid --------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Setting:
    """One point of the grid: its name (also the prefix of its trials' run directories), the
    swept values and the full config they give (seed still the base one)."""

    name: str
    values: dict[str, Any]
    config: Any


def parse_grid_flags(flags: Iterable[str]) -> dict[str, list[str]]:
    """`--grid FIELD=V1,V2` flags as {field: [texts]}; dashes in FIELD read as underscores,
    like the train command's flags."""
    grid: dict[str, list[str]] = {}
    for flag in flags:
        key, sep, values = flag.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ConfigError(f"--grid takes FIELD=V1,V2,... (e.g. --grid learning-rate=1e-3,3e-4); got {flag!r}.")
        if key in grid:
            raise ConfigError(f"--grid {key} is given twice; list all its values in one flag: --grid {key}=V1,V2,...")
        texts = [v.strip() for v in values.split(",")]
        if any(not t for t in texts):
            raise ConfigError(f"--grid {flag!r} has an empty value; separate values by single commas, e.g. {key}=0.1,0.5.")
        grid[key] = texts
    return grid


def _parse_text(field: str, text: str, annotation: Any) -> Any:
    """A command-line value as the field's type, read the way `rlsuite train` reads flags:
    'none' for optional fields, space-separated items for tuples ('64 64'). The rest of the
    conversion (numbers, bools, choices) is rlsuite.core.config's, applied by override()."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        if text.lower() in ("none", "null"):
            return None
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _parse_text(field, text, options[0])
    if origin is tuple:
        return text.split()
    if annotation is int:
        # refused here too, so the message names the --grid entry rather than the config field alone
        try:
            number = float(text)
        except ValueError:
            return text  # not a number: the coercion's own message names the type
        if not number.is_integer():
            raise ConfigError(f"{field} must be an integer; got {text!r}.")
        return int(number)
    return text


def _value_name(value: Any) -> str:
    """How a value reads in a setting's name and directory: '64x64' for a tuple, no '/'."""
    text = "x".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    return "_".join(text.replace(os.sep, "_").split())


def plan(base: Any, grid: Mapping[str, str | Sequence[Any]], fixed: Iterable[str] = ()) -> list[Setting]:
    """The settings of a sweep: the cartesian product of the grid's values applied to `base`
    (a config). Values may be typed (from Python) or text (from the command line: a list of
    strings, or one 'v1,v2' string). Every setting's config is built and validated here, so a
    bad field or value is one ConfigError naming it, before any trial starts. `fixed` are the
    fields set for every trial (flags or keyword arguments); sweeping one of them is refused."""
    cls = type(base)
    known = configs.field_names(cls)
    hints = typing.get_type_hints(cls)
    fixed = {name.replace("-", "_") for name in fixed}
    axes: list[list[tuple[str, Any, str]]] = []  # per field: (field, value, its text in names)
    for raw_key, values in grid.items():
        key = raw_key.replace("-", "_")
        if key in NOT_SWEEPABLE:
            raise ConfigError(f"--grid {raw_key}: {key} cannot be swept; {NOT_SWEEPABLE[key]}.")
        if key not in known:
            raise ConfigError(f"--grid {raw_key}: {cls.__name__} has no config field {key!r}.{suggest(key, known)} "
                              "`rlsuite train ALGO --help` lists the fields.")
        if key in fixed:
            raise ConfigError(f"{key} is both fixed (--{key.replace('_', '-')} VALUE) and swept (--grid {raw_key}=...); drop one of them.")
        if isinstance(values, str):
            values = [v.strip() for v in values.split(",")]
        if isinstance(values, (bytes, Mapping)) or not isinstance(values, Sequence) or len(values) == 0:
            raise ConfigError(f"--grid {raw_key}: give a non-empty list of values, e.g. {key}=V1,V2; got {values!r}.")
        axis, seen = [], {}
        for value in values:
            try:
                typed = _parse_text(key, value, hints[key]) if isinstance(value, str) else value
                typed = getattr(configs.override(base, **{key: typed}), key)  # coerced and range-checked
            except RLSuiteError as exc:
                raise ConfigError(f"--grid {raw_key}={value}: {exc}") from None
            if typed in seen:
                raise ConfigError(f"--grid {raw_key} lists the value {seen[typed]!r} twice (as {value!r}); list each value once.")
            seen[typed] = value
            # names keep the user's spelling (3e-4 stays 3e-4) except for tuples, always 64x64
            axis.append((key, typed, _value_name(value if isinstance(value, str) and not isinstance(typed, tuple) else typed)))
        axes.append(axis)
    settings, names = [], {}
    for point in itertools.product(*axes):
        values = {key: typed for key, typed, _ in point}
        name = ",".join(f"{key}={text}" for key, _, text in point) or "base"
        if name in names:
            raise ConfigError(f"two settings would share the name {name!r} ({names[name]} and {values}); write the values differently.")
        names[name] = values
        try:
            config = configs.override(base, **values)  # checks between fields (e.g. batch sizes) see the combination
        except RLSuiteError as exc:
            raise ConfigError(f"the grid's setting {name} is not a valid config: {exc}") from None
        settings.append(Setting(name, values, config))
    return settings


def seed_list(base_seed: int, count: int) -> list[int]:
    """`--seeds N`: N consecutive seeds starting at the config's seed (1 unless --seed is given)."""
    if count < 1:
        raise ConfigError(f"--seeds must be >= 1 (the number of seeds per setting), got {count}.")
    last = base_seed + count - 1
    if last >= configs.SEED_LIMIT:
        raise ConfigError(f"--seed {base_seed} with --seeds {count} runs past the largest seed, 2**32 - 1; start lower.")
    return list(range(base_seed, base_seed + count))


def trial_name(setting: str, seed: int) -> str:
    return f"{setting}-seed{seed}"


def default_sweep_dir(algo: str, config: Any) -> Path:
    from rlsuite.core.run import experiment_name

    return SWEEPS_ROOT / experiment_name(algo, config)


# --- reading finished trials -------------------------------------------------------------------
@dataclasses.dataclass
class Trial:
    """One (setting, seed) run of a sweep and how it ended: 'finished' (or DP's 'not_converged'),
    'failed' (error says why), or 'interrupted' (the sweep was stopped before it finished)."""

    setting: str
    seed: int
    run_dir: Path
    status: str = "pending"
    final: float | None = None
    label: str | None = None
    """What `final` is (e.g. 'evaluation mean return'), read with it."""
    error: str | None = None
    reported: bool = False
    """Ray Tune got the trial's final report: it finished on whichever node ran it."""

    @property
    def ok(self) -> bool:
        return self.status in FINISHED and self.final is not None

    @property
    def interrupted(self) -> bool:
        return self.status == "interrupted"


def final_value(run_dir: Path, metric: str | None = None) -> tuple[float, str]:
    """(last value, its label) of the curve `rlsuite plot` draws for this run: by default the
    evaluation headline in eval.csv (e.g. mean_return), else `metric` (a metrics.csv or eval.csv
    column). RLSuiteError when the run recorded none."""
    from rlsuite.core.plotting import read_curve

    steps, values, label = read_curve(run_dir, metric)
    if not len(values):
        raise RLSuiteError(f"{run_dir} recorded no {metric or 'evaluation'} to rank by"
                           + ("" if metric else " (algorithms without evaluations, like the bandits, need --metric COLUMN, e.g. bandit/average_reward)") + ".")
    return float(values[-1]), label


def read_trial(trial: Trial, metric: str | None = None) -> Trial:
    """Fill in a trial's status and final value from its run directory; an error Tune reported
    (trial.error) stands as it is."""
    from rlsuite.core.run import RunDir

    if trial.error is not None:
        trial.status = "failed"
        return trial
    run = RunDir(trial.run_dir)
    if not run.meta_file.is_file():
        if trial.reported:
            trial.status, trial.error = "failed", (f"no run directory at {trial.run_dir} on this machine (on a cluster, the sweep "
                                                   "directory must be on a file system every node mounts at the same path).")
        else:
            trial.status, trial.error = "interrupted", "never started: the sweep was stopped first; rerun the sweep with --overwrite."
        return trial
    try:
        meta = run.meta()
    except RLSuiteError as exc:
        trial.status, trial.error = "failed", str(exc)
        return trial
    status = str(meta.get("status", "?"))
    if status in ("running", "interrupted") and not trial.reported:  # its process was stopped with the sweep
        how = (f"`rlsuite resume {trial.run_dir}` continues it from its last checkpoint" if run.latest_checkpoint() is not None
               else "it had saved no checkpoint yet: rerun the sweep with --overwrite")
        trial.status, trial.error = "interrupted", f"stopped at step {meta.get('step', 0)} when the sweep was interrupted; {how}."
        return trial
    trial.status = status
    if status not in FINISHED:
        trial.error = str(meta.get("error") or f"the run ended with status {status!r}.")
        return trial
    try:
        trial.final, trial.label = final_value(trial.run_dir, metric)
    except RLSuiteError as exc:
        trial.status, trial.error = "failed", str(exc)
    return trial


@dataclasses.dataclass
class SettingSummary:
    """The final values of one setting's seeds: mean, sample std (n - 1; NaN for one seed),
    min and max over the seeds that finished; `failed` counts the others (one error each)."""

    setting: str
    values: dict[str, Any]
    finals: list[float]
    errors: list[str] = dataclasses.field(default_factory=list)

    n = property(lambda self: len(self.finals))
    failed = property(lambda self: len(self.errors))
    mean = property(lambda self: float(np.mean(self.finals)) if self.finals else math.nan)
    std = property(lambda self: float(np.std(self.finals, ddof=1)) if len(self.finals) > 1 else math.nan)
    min = property(lambda self: float(np.min(self.finals)) if self.finals else math.nan)
    max = property(lambda self: float(np.max(self.finals)) if self.finals else math.nan)


def summarize(settings: Sequence[Setting], trials: Sequence[Trial], mode: str = "max") -> list[SettingSummary]:
    """One summary per setting, best mean first ('max': highest; 'min': lowest); settings with
    no finished seed come last, in grid order."""
    if mode not in ("max", "min"):
        raise ConfigError(f"mode must be 'max' (higher is better) or 'min' (lower is better), got {mode!r}.")
    summaries = {s.name: SettingSummary(s.name, dict(s.values), []) for s in settings}
    for trial in trials:
        summary = summaries[trial.setting]
        if trial.ok:
            summary.finals.append(trial.final)
        else:
            summary.errors.append(f"seed {trial.seed}: {trial.error or trial.status}")
    sign = -1.0 if mode == "max" else 1.0
    return sorted(summaries.values(), key=lambda s: (not s.finals, sign * s.mean if s.finals else 0.0))


def _number(value: float, digits: int = 6) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.{digits}g}"


def write_summary(path: Path, summaries: Sequence[SettingSummary]) -> Path:
    """summary.csv: rank, setting, one column per swept field, mean, std, min, max, n, failed, error."""
    keys = list(dict.fromkeys(k for s in summaries for k in s.values))
    rows = []
    for rank, s in enumerate(summaries, 1):
        values = [_value_name(s.values[k]) if isinstance(s.values.get(k), (list, tuple)) else s.values.get(k, "") for k in keys]
        rows.append([rank, s.setting, *values, *map(_number, (s.mean, s.std, s.min, s.max)), s.n, s.failed, "; ".join(s.errors)])
    return _write_csv(path, ["rank", "setting", *keys, "mean", "std", "min", "max", "n", "failed", "error"], rows)


def write_trials(path: Path, trials: Sequence[Trial]) -> Path:
    return _write_csv(path, ["setting", "seed", "status", "final", "run_dir", "error"],
                      [[t.setting, t.seed, t.status, _number(t.final), t.run_dir.name, t.error or ""] for t in trials])


def _write_csv(path: Path, header: list, rows: Iterable[list]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return _write_text(path, buffer.getvalue())


def _write_text(path: Path, text: str) -> Path:
    from rlsuite.core.checkpoint import atomic_write_bytes

    atomic_write_bytes(text.encode(), path)
    return path


def plot_sweep(trials: Sequence[Trial], out: Path, title: str, metric: str | None = None) -> Path | None:
    """curves.png: `rlsuite plot`'s figure of the finished trials (seeds of a setting pooled
    into a mean line and a min-max band). None when no trial finished."""
    from rlsuite.core.plotting import plot_runs

    run_dirs = [t.run_dir for t in trials if t.ok]
    return plot_runs(run_dirs, out, title=title, metric=metric) if run_dirs else None


def summary_table(summaries: Sequence[SettingSummary], title: str):
    """The summary as a rich Table, in the order given (best first)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(title), title_justify="left")
    for column in ("#", "setting", "mean", "std", "min", "max", "n", "failed"):
        table.add_column(column, justify="left" if column == "setting" else "right")
    for rank, s in enumerate(summaries, 1):
        failed = f"[red]{s.failed}[/]" if s.failed else "0"
        table.add_row(str(rank), escape(s.setting), *(_number(v, 4) or "-" for v in (s.mean, s.std, s.min, s.max)), str(s.n), failed)
    return table


# --- the sweep directory -----------------------------------------------------------------------
def check_sweep_dir(path: Path, overwrite: bool) -> None:
    """Refuse a folder that holds anything but a sweep's leftovers, unless --overwrite and
    sweep.yaml proves a sweep wrote it (mirroring how `train` treats run directories)."""
    if path.exists() and not path.is_dir():
        raise RunDirError(f"{path} exists and is not a directory; choose another --dir.")
    if path.is_dir() and any(p.name != ".lock" for p in path.iterdir()):
        if not overwrite:
            raise RunDirError(f"sweep directory {path} already exists. Use --overwrite to replace it, or --dir to choose another.")
        if _read_manifest(path) is None:
            raise RunDirError(f"refusing to overwrite {path}: it is not an rlsuite sweep directory (no valid sweep.yaml).")


def _read_manifest(path: Path) -> dict | None:
    try:
        manifest = yaml.safe_load((path / "sweep.yaml").read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("format") == SWEEP_FORMAT else None


@contextlib.contextmanager
def locked_sweep_dir(path: Path, overwrite: bool) -> Iterator[None]:
    """Create (or, with overwrite, clear) the sweep directory and hold its lock while the sweep
    runs, so a second sweep into the same folder is refused instead of mixing trials."""
    from rlsuite.core.recorder import RunLock
    from rlsuite.core.run import RunDir

    check_sweep_dir(path, overwrite)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"cannot create the sweep directory {path}: {exc.strerror or exc}. Choose a writable --dir.") from None
    lock = RunLock(RunDir(path))
    try:
        lock.acquire()
    except RunInUseError:
        holder = (path / ".lock").read_text(errors="replace").strip() or "?"
        raise RunDirError(f"sweep directory {path} is in use by another rlsuite process (pid {holder}); "
                          "wait for it to finish, or choose another --dir.") from None
    try:
        manifest = _read_manifest(path)
        if manifest is not None:  # check_sweep_dir let it through: --overwrite of a sweep
            _clear_sweep(path, manifest)
        yield
    finally:
        lock.release()


def _clear_sweep(path: Path, manifest: dict) -> None:
    """Delete what the sweep in `manifest` wrote: its own files, and those of its trials' folders
    that an rlsuite run provably wrote (run.yaml), never anything outside `path`."""
    from rlsuite.core.recorder import remove_path
    from rlsuite.core.run import RunDir

    trials = manifest.get("trials") if isinstance(manifest.get("trials"), list) else []
    run_dirs = [t.get("run_dir") for t in trials if isinstance(t, dict)]
    for name in [*SWEEP_FILES, *run_dirs]:
        if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
            continue  # a hand-edited sweep.yaml must not reach outside the sweep directory
        target = path / name
        if name in run_dirs and not RunDir(target).is_run():
            continue
        remove_path(target)


def _write_manifest(path: Path, **fields: Any) -> None:
    _write_text(path / "sweep.yaml", yaml.safe_dump({"format": SWEEP_FORMAT, **fields}, sort_keys=False))


# --- running on Ray Tune -----------------------------------------------------------------------
def run_trial(trial_config: dict, *, algo: str, configs_by_setting: dict[str, dict], sweep_dir: str, cwd: str, metric: str | None) -> None:
    """The Tune trainable: one rlsuite run, written to SWEEP_DIR/<setting>-seed<k>/."""
    from ray import tune

    from rlsuite.core import registry

    # Tune starts a trial in a working folder of its own; relative paths in the config
    # (--task data.jsonl, --model runs/sft) mean what they meant where the sweep was started.
    if os.path.isdir(cwd):
        os.chdir(cwd)
    setting, seed = trial_config["setting"], trial_config["seed"]
    values = {**configs_by_setting[setting], "seed": seed}
    spec = registry.spec(algo)  # the registry, not rlsuite.api, which imports this module
    run = spec.train(configs.from_dict(spec.config, values), Path(sweep_dir) / trial_name(setting, seed), quiet=True)
    try:
        final = final_value(run.dir, metric)[0]
    except RLSuiteError:
        final = None  # the driver reads the run directory again and reports why
    tune.report({"final": final, "status": run.status, "step": run.step})


def _trial_dirname(trial) -> str:
    return trial_name(trial.config["setting"], trial.config["seed"])


def _error_text(error: BaseException, trial: str) -> str:
    """The user's view of a trial's exception: rlsuite's own message, or type and message of
    the original exception rather than Ray's wrapper, with where Tune kept the traceback."""
    cause = getattr(error, "cause", None) or error
    if isinstance(cause, RLSuiteError):
        return str(cause)
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[-1] if lines else ''} (traceback: tune/{trial}/error.txt)"


@contextlib.contextmanager
def _quiet_tune() -> Iterator[None]:
    """Tune prints an experiment banner and logs each trial's traceback even at verbose=0; the
    sweep reports trials itself (and their errors in the summary), so those are silenced."""
    previous = os.environ.get("RAY_AIR_NEW_OUTPUT")
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"  # the legacy reporter honours verbose=0
    loggers = [logging.getLogger(name) for name in ("ray.tune", "ray.train")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
        if previous is None:
            os.environ.pop("RAY_AIR_NEW_OUTPUT", None)
        else:
            os.environ["RAY_AIR_NEW_OUTPUT"] = previous


def _progress_callback(tune, total: int, metric_label: str, say):
    from rich.markup import escape

    class Progress(tune.Callback):
        def __init__(self):
            self.done, self.started = 0, time.monotonic()

        def _line(self, trial, outcome: str) -> None:
            self.done += 1
            say(f"  [{self.done}/{total}] {escape(_trial_dirname(trial))}: {outcome}  ({time.monotonic() - self.started:.0f} s)")

        def on_trial_complete(self, iteration, trials, trial, **info):
            final = (trial.last_result or {}).get("final")
            self._line(trial, f"{metric_label} {final:.4g}" if isinstance(final, (int, float)) else "finished")

        def on_trial_error(self, iteration, trials, trial, **info):
            self._line(trial, "[red]failed[/] (the summary says why)")

    return Progress()


@dataclasses.dataclass
class SweepResult:
    """What `rlsuite.sweep` returns: the sweep directory, its settings ranked best first, and
    every trial with its run directory, final value and status. `metric` names what was
    ranked (e.g. 'mean return': the evaluation headline)."""

    dir: Path
    algo: str
    metric: str
    mode: str
    summaries: list[SettingSummary]
    trials: list[Trial]

    @property
    def failed(self) -> list[Trial]:
        return [t for t in self.trials if not t.ok]

    @property
    def interrupted(self) -> bool:
        return any(t.interrupted for t in self.trials)

    @property
    def best(self) -> SettingSummary | None:
        return self.summaries[0] if self.summaries and self.summaries[0].finals else None

    def table(self):
        seeds = len({t.seed for t in self.trials})
        return summary_table(self.summaries, f"{self.algo}: final {self.metric} over {seeds} seed{'s' * (seeds > 1)}, "
                                              f"{'highest' if self.mode == 'max' else 'lowest'} mean first")


def run_sweep(algo: str, base: Any, grid: Mapping[str, str | Sequence[Any]], *, seeds: int = 3, sweep_dir: str | Path | None = None,
              overwrite: bool = False, ray_address: str | None = None, metric: str | None = None, mode: str = "max",
              max_concurrent: int | None = None, fixed: Iterable[str] = (), quiet: bool = False) -> SweepResult:
    """Train every setting of `grid` (applied to the config `base`) with `seeds` seeds as Ray
    Tune trials, then write summary.csv, trials.csv and curves.png in the sweep directory.
    Bad input raises before Ray starts; a failed trial does not stop the others."""
    from rlsuite.scale.runtime import import_ray, init_ray

    if mode not in ("max", "min"):
        raise ConfigError(f"--mode must be 'max' (higher is better) or 'min' (lower is better), got {mode!r}.")
    if max_concurrent is not None and max_concurrent < 1:
        raise ConfigError(f"--max-concurrent must be >= 1, got {max_concurrent}.")
    # torch_threads 0 means every core: parallel trials would fight over them, so a trial gets one
    # thread unless more were asked for, and Ray reserves as many CPUs as it has threads.
    if getattr(base, "torch_threads", None) == 0 and "torch_threads" not in {key.replace("-", "_") for key in grid}:
        base = configs.override(base, torch_threads=1)
    settings = plan(base, grid, fixed)
    seed_values = seed_list(base.seed, seeds)
    if sweep_dir is not None and str(sweep_dir).strip() == "":
        raise RunDirError("--dir is empty; give a folder name (or leave it out for sweeps/ALGO-ENV).")
    sweep_dir = Path(sweep_dir if sweep_dir is not None else default_sweep_dir(algo, base)).absolute()
    check_sweep_dir(sweep_dir, overwrite)
    started_here = not import_ray().is_initialized()  # a missing extra is reported before anything is written
    say = _silent if quiet else _Printer()

    trials = [Trial(s.name, seed, sweep_dir / trial_name(s.name, seed)) for s in settings for seed in seed_values]
    label = metric or "evaluation"
    ray = init_ray(ray_address)  # before the directory is made: a cluster that cannot be joined leaves nothing behind
    try:
        with locked_sweep_dir(sweep_dir, overwrite):
            manifest = dict(algo=algo, grid={s.name: _plain(s.values) for s in settings}, seeds=seed_values, metric=metric, mode=mode,
                            trials=[{"setting": t.setting, "seed": t.seed, "run_dir": t.run_dir.name} for t in trials])
            _write_manifest(sweep_dir, status="running", **manifest)
            say(f"Sweep: {len(settings)} setting{'s' * (len(settings) > 1)} x {len(seed_values)} seed{'s' * (len(seed_values) > 1)} "
                f"= {len(trials)} trials of {algo} on Ray ({ray.cluster_resources().get('CPU', 0):g} CPUs) -> {sweep_dir}")
            outcomes = _fit(algo, settings, seed_values, sweep_dir, metric, max_concurrent, len(trials), label, say)
            for trial in trials:
                trial.error, trial.reported = outcomes.get((trial.setting, trial.seed), (None, False))
                read_trial(trial, metric)
            summaries = summarize(settings, trials, mode)
            write_summary(sweep_dir / "summary.csv", summaries)
            write_trials(sweep_dir / "trials.csv", trials)
            env = getattr(base, "env", None) or getattr(base, "task", "")
            plot_sweep(trials, sweep_dir / "curves.png", f"{algo} on {env}: {len(settings)} settings x {len(seed_values)} seeds", metric)
            headline = next((t.label for t in trials if t.ok), label)
            result = SweepResult(sweep_dir, algo, headline.replace("evaluation ", ""), mode, summaries, trials)
            _write_manifest(sweep_dir, status="interrupted" if result.interrupted else "failed" if result.failed else "finished", **manifest)
    finally:
        if started_here:
            ray.shutdown()
    return result


def _fit(algo, settings, seed_values, sweep_dir, metric, max_concurrent, total, label, say) -> dict[tuple[str, int], tuple[str | None, bool]]:
    """Run the trials on Tune; returns (error message or None, whether it reported its end) per (setting, seed)."""
    from ray import tune

    cpus = max(max(1, getattr(s.config, "torch_threads", 1) or 1) for s in settings)
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, algo=algo, configs_by_setting={s.name: configs.to_dict(s.config) for s in settings},
                             sweep_dir=str(sweep_dir), cwd=os.getcwd(), metric=metric),
        {"cpu": cpus},
    )
    # reuse_actors: a worker that finished a trial takes the next, so rlsuite and torch are
    # imported once per worker process, not once per trial (seconds each on a busy machine)
    tuner = tune.Tuner(
        trainable,
        param_space={"setting": tune.grid_search([s.name for s in settings]), "seed": tune.grid_search(seed_values)},
        tune_config=tune.TuneConfig(trial_name_creator=_trial_dirname, trial_dirname_creator=_trial_dirname,
                                    max_concurrent_trials=max_concurrent, reuse_actors=True),
        run_config=tune.RunConfig(name="tune", storage_path=str(sweep_dir), verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=0),
                                  callbacks=[_progress_callback(tune, total, label, say)]),
    )
    with _quiet_tune():
        results = tuner.fit()
    outcomes = {}
    for result in results:
        if not result.config:  # a trial the sweep was stopped before: read_trial says "never started"
            continue
        key = (result.config["setting"], result.config["seed"])
        error = None if result.error is None else _error_text(result.error, trial_name(*key))
        outcomes[key] = (error, "status" in (result.metrics or {}))
    return outcomes


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


class _Printer:
    """Prints rich markup to stdout; picklable (Tune pickles its callbacks, a Console holds a lock)."""

    def __call__(self, text: str) -> None:
        from rich.console import Console

        Console(highlight=False, soft_wrap=True).print(text)


def _silent(text: str) -> None:
    pass
