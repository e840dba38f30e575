"""MAPPO on simple_spread (mpe2, 3 agents): against a random team, independent PPO and BenchMARL's
MAPPO, on the same task and budget, in one run.

The task: `mpe2.simple_spread_v3` with N=3, local_ratio=0.5, max_cycles=25, Discrete actions (the
mpe2 defaults). One env step is one step of one env copy with all three agents acting; the team
return is the sum over agents of their undiscounted episode returns.

Parts, each with the same seeds and budget:
- random: a uniform random action for every agent (the floor);
- rlsuite mappo and ippo: their presets (`rlsuite.algos.marl.mappo.PRESETS`, the MAPPO paper's MPE
  values where they apply: lr 7e-4, 10 epochs of one minibatch, clip 0.2, entropy 0.01, gamma 0.99,
  GAE 0.95, 64-64 ReLU, value normalization, grad-norm 10; 16 copies x 100 steps per rollout);
- BenchMARL's MAPPO (its own stack: TorchRL's PettingZooEnv on the same mpe2 task), run through
  `bench/_benchmarl_spread.py` in its own virtual environment (`/work/benchmarl-venv`, rebuilt by
  the commands in that file's docstring) with the same settings where BenchMARL has them (batch of
  1,600 env steps from 16 copies, 10 epochs of one minibatch, lr 7e-4, clip 0.2, entropy 0.01,
  gamma 0.99, lambda 0.95, 64-64 ReLU MLPs); its other settings are its defaults (a shared critic
  on the global state, value clipping off, Adam eps 1e-6, grad clip 5).

Measured: the evaluation team return at the end of the budget (100 deterministic episodes; BenchMARL:
its policy's mode, evaluated the same way in its runner), its spread over seeds, and training
throughput (env steps per second of training, evaluation excluded). One torch thread everywhere.

Targets (MET/MISSED): mappo's mean final team return clearly above random's and ippo's (by more than
both spreads); rlsuite's mappo return >= BenchMARL's and its throughput >= 2x BenchMARL's.

Run:  python bench/mappo_spread.py                                   # 3 seeds x 200k steps (~30 min)
      python bench/mappo_spread.py --seeds 1 --steps 20000 --no-write  # smoke test
      python bench/mappo_spread.py --parts random,mappo,ippo          # without BenchMARL
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(1, str(BENCH_DIR.parent))

from rlsuite.core import registry  # noqa: E402
from _marl import random_team  # noqa: E402

ENV_ID = "mpe2/simple_spread_v3"
BENCHMARL_PYTHON = Path("/work/benchmarl-venv/bin/python")
EVAL_EPISODES = 100
PARTS = ("random", "mappo", "ippo", "benchmarl")


def random_record(seed: int) -> dict:
    return {"part": "random", "seed": seed, "team_return": random_team(ENV_ID, EVAL_EPISODES, seed),
            "env_steps_per_second": float("nan"), "train_seconds": 0.0}


def rlsuite_run(algo: str, seed: int, steps: int, workdir: Path) -> dict:
    spec = registry.spec(algo)
    config = spec.preset(ENV_ID, seed=seed, total_steps=steps, eval_every=max(steps // 6, 1), eval_episodes=EVAL_EPISODES,
                         torch_threads=1, device="cpu")
    start = time.perf_counter()
    run = spec.train(config, workdir / f"{algo}-{seed}", quiet=True)
    total = time.perf_counter() - start
    curve = list(zip(run.evaluations["step"].tolist(), run.evaluations["mean_return"].tolist()))
    return {"part": algo, "seed": seed, "team_return": curve[-1][1], "env_steps": run.step, "train_seconds": run.timing["train_seconds"],
            "env_steps_per_second": run.step / run.timing["train_seconds"], "total_seconds": total, "curve": curve}


def benchmarl_run(seed: int, steps: int, config) -> dict:
    if not BENCHMARL_PYTHON.exists():
        raise RuntimeError(f"{BENCHMARL_PYTHON} does not exist: build the BenchMARL venv with the commands in bench/_benchmarl_spread.py")
    command = [str(BENCHMARL_PYTHON), str(BENCH_DIR / "_benchmarl_spread.py"), "--seed", str(seed), "--frames", str(steps),
               "--frames-per-batch", str(config.batch_steps), "--n-envs", str(config.num_envs), "--minibatch-size", str(config.batch_steps),
               "--epochs", str(config.update_epochs), "--lr", str(config.learning_rate), "--eval-episodes", str(EVAL_EPISODES),
               "--entropy-coef", str(config.ent_coef), "--lmbda", str(config.gae_lambda), "--hidden", *map(str, config.hidden_sizes),
               "--activation", {"relu": "ReLU", "tanh": "Tanh", "elu": "ELU", "gelu": "GELU"}[config.activation],
               "--distinct-env-seeds", "--quiet"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"BenchMARL run failed ({result.returncode}):\n{result.stderr[-3000:]}")
    record = json.loads(result.stdout.strip().splitlines()[-1])
    return {"part": "benchmarl", "seed": seed, **record}


def summary(records: list[dict]) -> tuple[float, float, float]:
    """(mean, std over seeds, median throughput) of a part's records."""
    values = [r["team_return"] for r in records]
    speeds = [r["env_steps_per_second"] for r in records]
    return float(np.mean(values)), float(np.std(values)), float(statistics.median(speeds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {PARTS}")
    parser.add_argument("--no-write", action="store_true", help="print only; do not append to bench/RESULTS.md")
    args = parser.parse_args()
    parts = [p for p in args.parts.split(",") if p]
    torch.set_num_threads(1)
    config = registry.spec("mappo").preset(ENV_ID)
    records: dict[str, list[dict]] = {p: [] for p in parts}
    failures: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):  # alternate the parts seed by seed, so drift in machine speed hits all alike
            for part in parts:
                if part in failures:
                    continue
                try:
                    if part == "random":
                        record = random_record(seed)
                    elif part == "benchmarl":
                        record = benchmarl_run(seed, args.steps, config)
                    else:
                        record = rlsuite_run(part, seed, args.steps, Path(tmp))
                except RuntimeError as exc:
                    failures[part] = str(exc)
                    print(f"  {part}: not run: {exc}", flush=True)
                    continue
                records[part].append(record)
                print(f"  {part:>9} seed {seed}: team return {record['team_return']:8.2f}, "
                      f"{record['env_steps_per_second']:7,.0f} env steps/s, train {record['train_seconds']:.0f}s", flush=True)
    report(records, failures, args)


def report(records: dict[str, list[dict]], failures: dict[str, str], args) -> None:
    rows, stats = [], {}
    for part, found in records.items():
        if not found:
            continue
        mean, std, speed = stats[part] = summary(found)
        per_seed = ", ".join(f"{r['team_return']:.1f}" for r in found)
        rows.append(f"| {part} | {mean:.1f} | {std:.1f} | {per_seed} | " + (f"{speed:,.0f} |" if part != "random" else "- |"))
    lines = [f"simple_spread (mpe2, N=3, 25 steps), {args.steps:,} env steps per run, {args.seeds} seed(s); evaluation: "
             f"{EVAL_EPISODES} deterministic episodes at the end; 1 torch thread.", "",
             "| part | team return (mean) | std over seeds | per seed | train env steps/s (median) |", "|---|---|---|---|---|", *rows]
    for part in ("mappo", "ippo"):
        if part in stats:
            seconds = [r["train_seconds"] for r in records[part]]
            lines.append(f"\n{part}: training wall-clock {min(seconds):.0f}-{max(seconds):.0f} s per run.")
    verdicts = []
    if {"mappo", "random", "ippo"} <= stats.keys():
        (m, ms, _), (r, rs, _), (i, is_, _) = stats["mappo"], stats["random"], stats["ippo"]
        verdicts.append(("mappo clearly above random and ippo", m - r > ms + rs and m - i > ms + is_,
                         f"mappo {m:.1f} ± {ms:.1f}, ippo {i:.1f} ± {is_:.1f}, random {r:.1f} ± {rs:.1f}"))
    if {"mappo", "benchmarl"} <= stats.keys():
        (m, _, ms), (b, _, bs) = stats["mappo"], stats["benchmarl"]
        verdicts.append(("return >= BenchMARL's", m >= b, f"rlsuite {m:.1f}, BenchMARL {b:.1f}"))
        verdicts.append(("throughput >= 2x BenchMARL's", ms >= 2 * bs, f"{ms / bs:.2f}x ({ms:,.0f} vs {bs:,.0f} env steps/s)"))
    for name, met, detail in verdicts:
        lines.append(f"- {name}: **{'MET' if met else 'MISSED'}** ({detail})")
    for part, reason in failures.items():
        lines.append(f"- {part} did not run: {reason.splitlines()[0]}")
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        from results import append_section

        standard = (args.seeds, args.steps) == (3, 200_000)
        append_section("`bench/mappo_spread.py`, MAPPO on simple_spread" + ("" if standard else " (reduced run)"), body)


if __name__ == "__main__":
    main()
