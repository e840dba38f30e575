"""Metric sinks: CSV files anyone can open, and TensorBoard event files.

Keys are namespaced like CleanRL's (`losses/approx_kl`, `charts/episodic_return`).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


class CSVLog:
    """A wide CSV that grows columns when new keys appear (rewriting the header once)."""

    def __init__(self, path: Path, append: bool = False):
        self.path = path
        self.columns: list[str] = []
        self.rows: list[dict[str, float]] = []
        if append and path.is_file():
            with path.open() as f:
                reader = csv.DictReader(f)
                self.columns = list(reader.fieldnames or [])
                self.rows = [dict(row) for row in reader]

    def truncate_after(self, step: int) -> None:
        """Drop rows past `step` (rows written after the checkpoint a resume starts from)."""
        kept = [row for row in self.rows if float(row["step"]) <= step]
        if len(kept) != len(self.rows):
            self.rows = kept
            self._rewrite()

    def write(self, row: dict[str, float]) -> None:
        self.rows.append(row)
        if any(key not in self.columns for key in row):
            self.columns += [key for key in row if key not in self.columns]
            self._rewrite()
        else:
            with self.path.open("a", newline="") as f:
                csv.DictWriter(f, self.columns).writerow(row)

    def _rewrite(self) -> None:
        with self.path.open("w", newline="") as f:
            writer = csv.DictWriter(f, self.columns)
            writer.writeheader()
            writer.writerows(self.rows)


class MetricsLogger:
    """Training metrics to metrics.csv, evaluations to eval.csv, both to TensorBoard."""

    def __init__(self, metrics_file: Path, eval_file: Path, tensorboard_dir: Path | None, resume_step: int | None = None):
        resuming = resume_step is not None
        self.metrics = CSVLog(metrics_file, append=resuming)
        self.evals = CSVLog(eval_file, append=resuming)
        if resuming:
            self.metrics.truncate_after(resume_step)
            self.evals.truncate_after(resume_step)
        self.writer = None
        if tensorboard_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(tensorboard_dir), purge_step=resume_step)

    def log(self, step: int, values: dict[str, float]) -> None:
        self.metrics.write({"step": step, **values})
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(key, value, step)

    def log_eval(self, step: int, returns: np.ndarray, lengths: np.ndarray) -> None:
        row = {
            "step": step,
            "mean_return": float(returns.mean()),
            "std_return": float(returns.std()),
            "min_return": float(returns.min()),
            "max_return": float(returns.max()),
            "mean_length": float(lengths.mean()),
            "episodes": len(returns),
        }
        self.evals.write(row)
        if self.writer is not None:
            self.writer.add_scalar("eval/mean_return", row["mean_return"], step)
            self.writer.add_scalar("eval/mean_length", row["mean_length"], step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
