"""What a training run prints while it runs.

On a terminal, one live line (rich): the budget counter first, so a narrow window cuts the
decorations, never the numbers; the bar only when the window is wide. Elsewhere (a pipe, a CI
log), a plain line at every tenth of the budget, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from typing import Any

WIDE = 110
"""Terminal columns from which the bar is drawn."""


def _status(loop: Any) -> str:
    done, total, unit = loop.step, loop.budget.total, loop.budget.unit
    parts = [f"{min(done, total):,}/{total:,} {unit}"]
    if loop.evaluations:
        step, row = loop.evaluations[-1]
        key, value = next(iter(row.items()))
        parts.append(f"{key.replace('_', ' ')} {value:.4g}")
    return "  ".join(parts)


def _title(loop: Any) -> str:
    env = getattr(loop.config, "env", "") or ""
    return f"{loop.algo} {env}".strip()


class RichProgress:
    def __init__(self, loop: Any, console: Any = None):
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        console = console or Console(highlight=False)
        columns = [TextColumn("{task.description}"), TimeElapsedColumn()]
        if console.width >= WIDE:
            columns = [BarColumn(bar_width=24), *columns, TimeRemainingColumn()]
        self.title = _title(loop)
        self.progress = Progress(*columns, console=console, refresh_per_second=4, transient=False)
        self.progress.start()
        self.task = self.progress.add_task(self._describe(loop), total=loop.budget.total, completed=loop.step)

    def _describe(self, loop: Any) -> str:
        return f"{_status(loop)}  [bold]{self.title}[/]"

    def update(self, loop: Any) -> None:
        self.progress.update(self.task, completed=min(loop.step, loop.budget.total), description=self._describe(loop))

    def close(self) -> None:
        self.progress.stop()


class LineProgress:
    """A plain line at each tenth of the budget."""

    def __init__(self, loop: Any):
        self.title, self.start = _title(loop), time.perf_counter()
        self.next_tenth = loop.step * 10 // loop.budget.total + 1

    def update(self, loop: Any) -> None:
        tenth = loop.step * 10 // loop.budget.total
        if tenth >= self.next_tenth:
            self.next_tenth = tenth + 1
            print(f"{self.title}: {_status(loop)}  ({time.perf_counter() - self.start:.0f} s)", flush=True)

    def close(self) -> None:
        pass


def make_progress(loop: Any, quiet: bool) -> RichProgress | LineProgress | None:
    if quiet:
        return None
    return RichProgress(loop) if sys.stdout.isatty() else LineProgress(loop)
