"""Learning curves as PNG: one line per configuration, mean and spread when several seeds share it."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np
import yaml

from rlsuite.core.errors import RLSuiteError, RunDirError

EVAL = "eval/mean_return"


def read_curve(run_dir: Path, metric: str | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """(x, y, y label) of one run: `metric` from metrics.csv, or the evaluation curve from
    eval.csv (falling back to training episode returns when a run has no evaluations)."""
    sources = [("eval.csv", "mean_return", "evaluation return"), ("metrics.csv", "charts/episodic_return", "training episode return")]
    if metric is not None and metric != EVAL:
        sources = [("metrics.csv", metric, metric)]
    for file, column, label in sources:
        path = run_dir / file
        if not path.is_file():
            continue
        with path.open() as f:
            reader = csv.DictReader(f)
            if metric is not None and metric != EVAL and column not in (reader.fieldnames or []):
                raise RLSuiteError(f"{path} has no column {column!r}; it has: {', '.join(reader.fieldnames or [])}.")
            rows = [row for row in reader if row.get(column) not in (None, "")]
        if rows:
            return np.array([float(r["step"]) for r in rows]), np.array([float(r[column]) for r in rows]), label
    return np.array([]), np.array([]), metric or "return"


def run_identity(run_dir: Path) -> tuple[str, dict]:
    """(algorithm, config) of a run directory."""
    meta_file, config_file = run_dir / "run.yaml", run_dir / "config.yaml"
    if not meta_file.is_file() or not config_file.is_file():
        raise RunDirError(f"{run_dir} is not an rlsuite run directory (no run.yaml/config.yaml).")
    algo = (yaml.safe_load(meta_file.read_text()) or {}).get("algo", "?")
    return algo, yaml.safe_load(config_file.read_text()) or {}


def group_labels(run_dirs: list[Path]) -> dict[Path, str]:
    """A label per run: algorithm and env, plus the config fields that tell apart runs of the same
    algorithm. Runs that differ only in seed get the same label and are pooled."""
    identities = {d: run_identity(d) for d in run_dirs}
    by_algo: dict[str, list[dict]] = defaultdict(list)
    for algo, config in identities.values():
        by_algo[algo].append(config)
    labels = {}
    for run_dir, (algo, config) in identities.items():
        others = by_algo[algo]
        differing = sorted(k for k in config if k not in ("seed", "env") and any(c.get(k) != config[k] for c in others))
        parts = [algo, str(config.get("env", ""))] + [f"{k}={config[k]}" for k in differing]
        labels[run_dir] = " ".join(p for p in parts if p)
    return labels


X_LABELS = {"bandit": "step (pulls per run)", "dp": "iteration (sweeps)"}
"""x axis of an algorithm family whose metrics.csv `step` column is not environment steps."""


def x_label(run_dirs: list[Path]) -> str:
    from rlsuite.core.registry import ALGORITHMS

    families = {getattr(ALGORITHMS.get(run_identity(d)[0]), "family", None) for d in run_dirs}
    labels = {X_LABELS.get(family, "environment steps") for family in families}
    return labels.pop() if len(labels) == 1 else "step"


def plot_runs(run_dirs: list[Path], out: Path, title: str | None = None, metric: str | None = None, logy: bool = False) -> Path:
    """Draw a curve per configuration; seeds of one configuration give mean and min-max band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dirs = [Path(d) for d in run_dirs]
    labels = group_labels(run_dirs)
    groups: dict[str, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    ylabel = metric or "return"
    for run_dir in run_dirs:
        steps, values, ylabel = read_curve(run_dir, metric)
        if len(steps):
            groups[labels[run_dir]].append((steps, values))

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for label, curves in groups.items():
        if len(curves) == 1:
            steps, values = curves[0]
            ax.plot(steps, values, marker="o" if len(steps) < 30 else None, ms=3, label=label)
            continue
        grid = np.unique(np.concatenate([s for s, _ in curves]))
        stacked = np.stack([np.interp(grid, s, v, left=np.nan, right=np.nan) for s, v in curves])
        mean = np.nanmean(stacked, axis=0)
        (line,) = ax.plot(grid, mean, label=f"{label} (mean of {len(curves)} seeds)")
        ax.fill_between(grid, np.nanmin(stacked, axis=0), np.nanmax(stacked, axis=0), color=line.get_color(), alpha=0.2, lw=0)
    if not groups:
        ax.text(0.5, 0.5, "nothing recorded yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(x_label(run_dirs))
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    ax.set_title(title or ("learning curves" if len(groups) > 1 else "learning curve"))
    ax.grid(alpha=0.3)
    if groups:
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
