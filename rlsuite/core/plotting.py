"""Learning curves as PNG: one line per configuration (and metric), mean and spread over seeds."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import yaml

from rlsuite.core.tables import read_table
from rlsuite.errors import RLSuiteError, RunDirError

EVAL = "eval"


def read_curve(run_dir: Path, metric: str | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """(x, y, y label) of one run: `metric` from metrics.csv (or from eval.csv when only that has
    it), or the evaluation headline (the first column after step) from eval.csv, falling back to
    the training episode return."""
    if metric is not None and metric != EVAL:
        table = read_table(run_dir / "metrics.csv")
        if metric not in table:
            evaluations = read_table(run_dir / "eval.csv")
            if metric in evaluations:
                table = evaluations
            elif len(table):
                raise RLSuiteError(f"{run_dir / 'metrics.csv'} has no column {metric!r}; it has: {', '.join(table.columns)}"
                                   + (f" (and eval.csv: {', '.join(evaluations.columns)})." if len(evaluations) else "."))
        sources = [(table, metric, metric)]
    else:
        evaluations = read_table(run_dir / "eval.csv")
        headline = next((c for c in evaluations if c != "step"), None)
        sources = [(evaluations, headline, f"evaluation {headline.replace('_', ' ')}" if headline else ""),
                   (read_table(run_dir / "metrics.csv"), "charts/episodic_return", "training episode return")]
    for table, column, label in sources:
        if column is None or column not in table:
            continue
        keep = ~np.isnan(table[column])
        if keep.any():
            return table["step"][keep], table[column][keep], label
    return np.array([]), np.array([]), metric or "return"


def run_identity(run_dir: Path) -> tuple[str, dict, str]:
    """(algorithm, config, budget unit) of a run directory."""
    meta_file, config_file = run_dir / "run.yaml", run_dir / "config.yaml"
    if not meta_file.is_file() or not config_file.is_file():
        raise RunDirError(f"{run_dir} is not an rlsuite run directory (no run.yaml/config.yaml).")
    try:
        meta = yaml.safe_load(meta_file.read_text()) or {}
        config = yaml.safe_load(config_file.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise RunDirError(f"{run_dir} has a corrupt run.yaml or config.yaml ({type(exc).__name__}).") from None
    return str(meta.get("algo", "?")), config, str(meta.get("unit", "env steps"))


def group_labels(run_dirs: list[Path]) -> dict[Path, str]:
    """A label per run: algorithm and env, plus the config fields that tell apart runs of the same
    algorithm. Runs that differ only in seed get the same label and are pooled."""
    identities = {d: run_identity(d) for d in run_dirs}
    by_algo: dict[str, list[dict]] = defaultdict(list)
    for algo, config, _ in identities.values():
        by_algo[algo].append(config)
    labels = {}
    for run_dir, (algo, config, _) in identities.items():
        others = by_algo[algo]
        differing = sorted(k for k in config if k not in ("seed", "env") and any(c.get(k) != config[k] for c in others))
        parts = [algo, str(config.get("env", ""))] + [f"{k}={config[k]}" for k in differing]
        labels[run_dir] = " ".join(p for p in parts if p)
    return labels


def plot_runs(run_dirs: list[Path], out: Path, title: str | None = None, metric: str | list[str] | None = None, logy: bool = False) -> Path:
    """Draw a curve per configuration (and per metric when several are given); seeds of one
    configuration give the mean and a min-max band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dirs = [Path(d) for d in run_dirs]
    metrics = metric if isinstance(metric, list) else [metric]
    labels = group_labels(run_dirs)
    units = {run_identity(d)[2] for d in run_dirs}
    groups: dict[str, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    ylabel = metrics[0] or "return"
    for run_dir in run_dirs:
        for name in metrics:
            steps, values, ylabel = read_curve(run_dir, name)
            if logy:  # zero changes (an exact solve) have no place on a log axis
                values = np.where(values > 0, values, np.nan)
            if len(steps):
                label = labels[run_dir] if len(metrics) == 1 else f"{labels[run_dir]}: {name}"
                groups[label].append((steps, values))

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
    ax.set_xlabel(units.pop() if len(units) == 1 else "step")
    ax.set_ylabel(ylabel if len(metrics) == 1 else "value")
    if logy:
        ax.set_yscale("log")
    ax.set_title(title or ("learning curves" if len(groups) > 1 else "learning curve"))
    ax.grid(alpha=0.3)
    if groups:
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out)


def save_figure(fig, out: Path | str) -> Path:
    """Write a matplotlib figure as PNG atomically and close it."""
    import io

    import matplotlib.pyplot as plt

    from rlsuite.core.checkpoint import atomic_write_bytes

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    atomic_write_bytes(buffer.getvalue(), out)
    return out
