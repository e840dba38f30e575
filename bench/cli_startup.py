"""Start-up time of the `rlsuite` command: `rlsuite --help` and `rlsuite list`.

Each command runs as a fresh process (what a user waits for), `--repeats` times; the table gives
the median wall-clock. The peer is rlsuite itself before the command stopped importing torch
(commit 2b83b26, exported with `git archive` into a temporary folder and run with the same
Python), so the figure is a before/after ratio measured in one run. Target: both under 0.5 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import append_section

REPO = Path(__file__).resolve().parents[1]
BEFORE = "2b83b26"
TARGET_SECONDS = 0.5
COMMANDS = {"--help": ["--help"], "list": ["list"]}


def time_command(pythonpath: Path, module: str, args: list[str], repeats: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", module, *args], cwd=pythonpath, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--no-write", action="store_true", help="print only; do not append to bench/RESULTS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rlsuite-before-") as tmp:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", BEFORE, "rlsuite"], capture_output=True, check=True).stdout
        subprocess.run(["tar", "x", "-C", tmp], input=archive, check=True)
        rows = []
        for name, command in COMMANDS.items():
            before = time_command(Path(tmp), "rlsuite.core.cli", command, args.repeats)
            now = time_command(REPO, "rlsuite.cli", command, args.repeats)
            rows.append((name, before, now))
    lines = ["| command | before (2b83b26) s | now s | now/before | under 0.5 s |", "|---|---|---|---|---|"]
    for name, before, now in rows:
        lines.append(f"| `rlsuite {name}` | {before:.3f} | {now:.3f} | {now / before:.2f}x | {'yes' if now < TARGET_SECONDS else 'no'} |")
    verdict = all(now < TARGET_SECONDS for _, _, now in rows)
    lines.append("")
    lines.append(f"- both commands under {TARGET_SECONDS} s: **{'MET' if verdict else 'MISSED'}** (median of {args.repeats} fresh processes each)")
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        append_section(f"`bench/cli_startup.py`, {args.repeats} repeats", text)


if __name__ == "__main__":
    main()
