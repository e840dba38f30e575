"""Appending a benchmark's section to bench/RESULTS.md, the same way for every script.

Each section records when it ran and how busy the machine was (load average over the last
minute, against its core count), since a timing taken on a loaded machine is worth less.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
from pathlib import Path

RESULTS_MD = Path(__file__).resolve().parent / "RESULTS.md"

HEADER = """# Benchmark results

Sections are appended by the scripts in `bench/` (never edited by hand); `bench/README.md` says what
each script measures, against which peer, and what its columns mean. Every section records the
machine's load when it ran: timings from a loaded machine are worth less.
"""


def machine_line() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
            f"load average at the end of the run {load:.1f}")


def append_section(title: str, body: str) -> None:
    """## <UTC time>: <title>, a line about the machine, then the script's body."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    new = not RESULTS_MD.exists()
    with RESULTS_MD.open("a", encoding="utf-8") as out:
        if new:
            out.write(HEADER)
        out.write(f"\n## {stamp}: {title}\n\n{machine_line()}\n\n{body.rstrip()}\n")
    print(f"\nappended to {RESULTS_MD}")
