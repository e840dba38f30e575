"""Metric sinks: CSV files anyone can open, and TensorBoard event files.

Keys are namespaced like CleanRL's (`losses/approx_kl`, `charts/episodic_return`). TensorBoard
events are written with tensorboard's own event writer, not torch's SummaryWriter, so runs of
the NumPy-only families (bandits, DP, tabular) never import torch.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

from rlsuite.core.checkpoint import atomic_write_bytes


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """(columns, rows) of a CSV log; a last line cut off mid-write (no newline) is dropped."""
    if not path.is_file():
        return [], []
    text = path.read_text()
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    reader = csv.DictReader(io.StringIO(text))
    return list(reader.fieldnames or []), [row for row in reader if None not in row]


class CSVLog:
    """A wide CSV that grows columns when new keys appear (rewriting the file once, atomically).
    The file appears with its first row.

    Resuming from a checkpoint at step S keeps only the rows with step <= S, so rows written
    after that checkpoint by the interrupted process, and a row torn by a kill, disappear.
    """

    def __init__(self, path: Path, resume_step: int | None = None):
        self.path = path
        self.columns: list[str] = []
        self.rows: list[dict] = []
        self._file = None
        if resume_step is not None and path.is_file():
            self.columns, rows = read_rows(path)
            self.rows = [row for row in rows if row.get("step") not in (None, "") and float(row["step"]) <= resume_step]
            self._rewrite()

    def write(self, row: dict) -> None:
        self.rows.append(row)
        if any(key not in self.columns for key in row):
            self.columns += [key for key in row if key not in self.columns]
            self._rewrite()
        else:
            csv.DictWriter(self._file, self.columns).writerow(row)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _rewrite(self) -> None:
        self.close()
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, self.columns)
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_bytes(buffer.getvalue().encode(), self.path)
        self._file = self.path.open("a", newline="")


class TensorBoardLog:
    """Scalars to TensorBoard event files; one event per logged row."""

    def __init__(self, directory: Path, resume_step: int | None = None):
        from tensorboard.compat.proto.event_pb2 import Event, SessionLog
        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self._Event, self._Summary = Event, Summary
        self.writer = EventFileWriter(str(directory))
        if resume_step is not None:
            # TensorBoard discards the earlier events past this step (what torch's purge_step does).
            self.writer.add_event(Event(step=resume_step, wall_time=time.time(), session_log=SessionLog(status=SessionLog.START)))

    def log(self, step: int, values: dict[str, float], prefix: str = "") -> None:
        summary = self._Summary(value=[self._Summary.Value(tag=prefix + key, simple_value=float(v)) for key, v in values.items()])
        self.writer.add_event(self._Event(step=int(step), wall_time=time.time(), summary=summary))

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
