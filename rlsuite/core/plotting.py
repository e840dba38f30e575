"""Learning curves as PNG: one line per run, or mean and spread when runs share algorithm and env."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np
import yaml

from rlsuite.core.errors import RunDirError


def read_curve(run_dir: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """(steps, mean evaluation return, y label) of one run; training returns if it has no evaluations."""
    for file, column, label in (("eval.csv", "mean_return", "evaluation return"), ("metrics.csv", "charts/episodic_return", "training episode return")):
        path = run_dir / file
        if not path.is_file():
            continue
        with path.open() as f:
            rows = [row for row in csv.DictReader(f) if row.get(column) not in (None, "")]
        if rows:
            return np.array([float(r["step"]) for r in rows]), np.array([float(r[column]) for r in rows]), label
    return np.array([]), np.array([]), "return"


def run_label(run_dir: Path) -> str:
    meta_file, config_file = run_dir / "run.yaml", run_dir / "config.yaml"
    if not meta_file.is_file() or not config_file.is_file():
        raise RunDirError(f"{run_dir} is not an rlsuite run directory (no run.yaml/config.yaml).")
    algo = (yaml.safe_load(meta_file.read_text()) or {}).get("algo", "?")
    env = (yaml.safe_load(config_file.read_text()) or {}).get("env", "")
    return f"{algo} {env}".strip()


def plot_runs(run_dirs: list[Path], out: Path, title: str | None = None) -> Path:
    """Draw evaluation curves of runs; runs with the same algorithm and env are pooled over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[str, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    ylabel = "return"
    for run_dir in map(Path, run_dirs):
        steps, values, ylabel = read_curve(run_dir)
        if len(steps):
            groups[run_label(run_dir)].append((steps, values))

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for label, curves in groups.items():
        if len(curves) == 1:
            steps, values = curves[0]
            ax.plot(steps, values, marker="o" if len(steps) < 30 else None, ms=3, label=label)
            continue
        grid = np.unique(np.concatenate([s for s, _ in curves]))
        stacked = np.stack([np.interp(grid, s, v, left=np.nan, right=np.nan) for s, v in curves])
        mean = np.nanmean(stacked, axis=0)
        (line,) = ax.plot(grid, mean, label=f"{label} (mean of {len(curves)})")
        ax.fill_between(grid, np.nanmin(stacked, axis=0), np.nanmax(stacked, axis=0), color=line.get_color(), alpha=0.2, lw=0)
    if not groups:
        ax.text(0.5, 0.5, "no evaluations recorded yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("environment steps")
    ax.set_ylabel(ylabel)
    ax.set_title(title or "learning curve" + ("s" if len(groups) > 1 else ""))
    ax.grid(alpha=0.3)
    if groups:
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
