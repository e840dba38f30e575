"""MAPPO, IPPO and independent Q-learning on rlsuite's built-in cooperative task, rlsuite/grid_goals_v0.

Two agents walk to opposite corners of a 5x5 grid and block each other (no shared cells, no
swaps); an agent that arrives leaves the episode. Each algorithm runs with its preset for the
task (mappo and ippo: 16 copies x 50 steps per rollout, gamma 0.98, the MAPPO paper's other values;
iql: alpha 0.2, epsilon 0.1, 4 copies) for the same budget, 3 seeds, beside a random team.

Measured: the evaluation team return (100 deterministic episodes) every 10k env steps and at the
end, its mean and spread over seeds, and the first evaluation at or above 0.5 (a random team
scores about -14, near-optimal play about +1). No target
is stated in the issue: the section says whether the centralized critic helps on a task where
agents get in each other's way, where simple_spread (bench/mappo_spread.py) showed it did not.

Run:  python bench/marl_grid.py                              # 3 seeds x 100k steps (~5 min)
      python bench/marl_grid.py --seeds 1 --steps 10000 --no-write
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from rlsuite.core import registry  # noqa: E402
from _marl import random_team  # noqa: E402

ENV_ID = "rlsuite/grid_goals_v0"
EVAL_EPISODES = 100
THRESHOLD = 0.5
ALGORITHMS = ("mappo", "ippo", "iql")


def train(algo: str, seed: int, steps: int, workdir: Path) -> dict:
    spec = registry.spec(algo)
    extra = {"torch_threads": 1, "device": "cpu"} if algo != "iql" else {}
    config = spec.preset(ENV_ID, seed=seed, total_steps=steps, eval_every=max(steps // 10, 1), eval_episodes=EVAL_EPISODES, **extra)
    run = spec.train(config, workdir / f"{algo}-{seed}", quiet=True)
    steps_seen, returns = run.evaluations["step"], run.evaluations["mean_return"]
    reached = steps_seen[returns >= THRESHOLD]
    return {"final": float(returns[-1]), "first": int(reached[0]) if len(reached) else None,
            "seconds": run.timing["train_seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results: dict[str, list[dict]] = {algo: [] for algo in ALGORITHMS}
    randoms = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            randoms.append(random_team(ENV_ID, EVAL_EPISODES, seed))
            for algo in ALGORITHMS:
                record = train(algo, seed, args.steps, Path(tmp))
                results[algo].append(record)
                print(f"  {algo:>5} seed {seed}: final {record['final']:.2f}, first >= {THRESHOLD} at {record['first']}, "
                      f"train {record['seconds']:.0f}s", flush=True)
    rows = [f"| random | {np.mean(randoms):.2f} | {np.std(randoms):.2f} | {', '.join(f'{r:.2f}' for r in randoms)} | - | - |"]
    for algo, records in results.items():
        finals = [r["final"] for r in records]
        firsts = ", ".join(f"{r['first']:,}" if r["first"] is not None else "never" for r in records)
        seconds = np.median([r["seconds"] for r in records])
        rows.append(f"| {algo} | {np.mean(finals):.2f} | {np.std(finals):.2f} | {', '.join(f'{v:.2f}' for v in finals)} | {firsts} | {seconds:.0f} |")
    body = "\n".join([
        f"{ENV_ID} (2 agents, 5x5, 50 steps), {args.steps:,} env steps per run, {args.seeds} seed(s); evaluation: "
        f"{EVAL_EPISODES} deterministic episodes every {max(args.steps // 10, 1):,} steps; 1 torch thread.", "",
        f"| algorithm | final team return (mean) | std over seeds | per seed | first eval >= {THRESHOLD} | train seconds (median) |",
        "|---|---|---|---|---|---|", *rows])
    print(body)
    if not args.no_write:
        from results import append_section

        standard = (args.seeds, args.steps) == (3, 100_000)
        append_section("`bench/marl_grid.py`, MAPPO, IPPO and IQL on rlsuite/grid_goals_v0" + ("" if standard else " (reduced run)"), body)


if __name__ == "__main__":
    main()
