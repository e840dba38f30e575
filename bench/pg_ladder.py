"""The policy-gradient ladder on CartPole-v1: does the ordering a course predicts show up?

Five rungs of rlsuite's ladder (rlsuite/algos/deep/policy_gradient.py), each with its own
"CartPole-v1" preset (only the seed, the budget and the evaluation interval are set here):

    vpg                 every step weighted by the whole episode's return G_0
    reinforce           weighted by its reward-to-go G_t
    reinforce_baseline  G_t - V(s_t), V a learned baseline
    actor_critic        the one-step TD error r + gamma V(s') - V(s)
    a2c                 n-step advantage over 8 envs, RMSprop (rl-baselines3-zoo's A2C settings)

5 seeds each, the same budget of 200,000 env steps, evaluation every 10,000 env steps (10
deterministic episodes, rlsuite's built-in evaluation). The Monte Carlo rungs (vpg, reinforce,
reinforce_baseline) update after 8 whole episodes, so they evaluate at the end of the batch that
crosses each multiple (up to 4,000 steps later); each evaluation is placed on the multiple it
belongs to, and the last one on the budget.

Reported per algorithm (over seeds):
- AUC: the mean of a run's evaluations on the 10k grid, i.e. the area under its curve divided by
  the budget (500 at most): how fast and how far it learned, in return units;
- the final evaluation (at 200k), and the first env step whose evaluation reached 475;
- their mean and across-seed standard deviation, and the curve spread (the std across seeds at
  each evaluation, averaged over the evaluations).

Then the ordering a course predicts, checked from those numbers: reward-to-go (reinforce) learns
faster (higher mean AUC) and steadier (smaller across-seed std of AUC) than the whole return (vpg),
and the baseline (reinforce_baseline) faster again than reinforce. Each difference is also given in
standard errors of the difference of two 5-seed means, so a gap within seed noise says so.
The figure bench/figures/pg_ladder.png shows the mean evaluation return against env steps with
the min-max range over seeds shaded, per algorithm.

No timing claim is made, so runs go two at a time in separate processes (`--jobs`), one torch
thread each.

Run:  python bench/pg_ladder.py                         # full: 5 rungs x 5 seeds x 200k steps, figure + RESULTS.md
      python bench/pg_ladder.py --jobs 1                 # one run at a time
      python bench/pg_ladder.py --steps 2000 --eval-every 1000 --seeds 2 --no-write   # smoke test
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import statistics
import sys
import tempfile
from pathlib import Path
from time import perf_counter

import numpy as np

import _common as c

ENV_ID = "CartPole-v1"
ALGOS = ("vpg", "reinforce", "reinforce_baseline", "actor_critic", "a2c")
STEPS = 200_000
EVAL_EVERY = 10_000
SEEDS = 5
JOBS = 2
THRESHOLD = 475.0
FIGURE = c.BENCH_DIR / "figures" / "pg_ladder.png"
COLORS = {"vpg": "tab:gray", "reinforce": "tab:blue", "reinforce_baseline": "tab:green", "actor_critic": "tab:orange", "a2c": "tab:red"}


# --------------------------------------------------------------------------- one run (in a worker process)


def train_one(task: tuple[str, int, int, int]) -> dict:
    """Train one rung for one seed in a throw-away run directory; returns its evaluations."""
    algo, seed, steps, eval_every = task
    from rlsuite.core import registry

    spec = registry.spec(algo)
    config = spec.preset(ENV_ID, seed=seed, total_steps=steps, eval_every=eval_every, device="cpu", torch_threads=1)
    with tempfile.TemporaryDirectory(prefix="rlsuite-bench-") as tmp:
        start = perf_counter()
        run = spec.train(config, Path(tmp) / "run", overwrite=True, quiet=True)
        total = perf_counter() - start
        evaluations = c.evaluation_curve(run)  # read from eval.csv before the folder goes
    return {"algo": algo, "seed": seed, "env_steps": int(run.step), "evaluations": evaluations, "total_seconds": total,
            "train_seconds": float(run.timing["train_seconds"]), "eval_seconds": float(run.timing["eval_seconds"])}


def run_all(algos: list[str], seeds: int, steps: int, eval_every: int, jobs: int) -> list[dict]:
    """Every (algorithm, seed), `jobs` at a time; seed-major order so the pool mixes algorithms."""
    tasks = [(algo, seed, steps, eval_every) for seed in range(seeds) for algo in algos]
    records = []
    start = perf_counter()

    def report(record: dict) -> None:
        evals = record["evaluations"]
        print(f"  [{len(records):>2}/{len(tasks)}] {record['algo']:>18} seed {record['seed']}: {record['env_steps']:,} steps in "
              f"{record['total_seconds']:.0f}s, AUC {auc(record, steps, eval_every):.1f}, final eval {c.final_mean(evals):.1f}, "
              f"first >= {THRESHOLD:g} at {c.fmt(c.first_step(evals, THRESHOLD), 'steps')} ({perf_counter() - start:.0f}s elapsed)",
              flush=True)

    if jobs <= 1:
        for task in tasks:
            records.append(train_one(task))
            report(records[-1])
    else:
        # spawn: fresh interpreters, no torch state forked from this process.
        with multiprocessing.get_context("spawn").Pool(jobs) as pool:
            for record in pool.imap_unordered(train_one, tasks):
                records.append(record)
                report(record)
    return sorted(records, key=lambda r: (algos.index(r["algo"]), r["seed"]))


# --------------------------------------------------------------------------- curves and metrics


def grid(steps: int, eval_every: int) -> list[int]:
    """The env steps evaluations belong to: the multiples of eval_every up to the budget, and the budget."""
    return sorted({*range(eval_every, steps + 1, eval_every), steps})


def on_grid(record: dict, steps: int, eval_every: int) -> np.ndarray:
    """The run's evaluations placed on grid(): each at the largest grid point <= its step (an
    evaluation falls at the end of the batch that crosses its multiple), NaN where none fell."""
    points = grid(steps, eval_every)
    values = np.full(len(points), np.nan)
    for step, mean in record["evaluations"]:
        index = np.searchsorted(points, step, side="right") - 1
        if index >= 0:
            values[index] = mean
    return values


def auc(record: dict, steps: int, eval_every: int) -> float:
    """Mean of the run's evaluations on the grid: the area under its curve divided by the budget."""
    values = on_grid(record, steps, eval_every)
    return float(np.nanmean(values)) if not np.isnan(values).all() else math.nan


def std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else math.nan


def summarize(records: list[dict], algos: list[str], steps: int, eval_every: int) -> dict:
    summary = {}
    for algo in algos:
        mine = [r for r in records if r["algo"] == algo]
        aucs = [auc(r, steps, eval_every) for r in mine]
        finals = [c.final_mean(r["evaluations"]) for r in mine]
        firsts = [c.first_step(r["evaluations"], THRESHOLD) for r in mine]
        curves = np.array([on_grid(r, steps, eval_every) for r in mine])
        spread = float(np.nanmean(np.nanstd(curves, axis=0, ddof=1))) if len(mine) > 1 else math.nan
        summary[algo] = {
            "auc": statistics.mean(aucs), "auc_std": std(aucs),
            "final": statistics.mean(finals), "final_std": std(finals),
            "first": c.median(firsts), "reaching": sum(f != c.NEVER for f in firsts),
            "spread": spread, "seeds": len(mine), "aucs": aucs,
            "seconds": statistics.mean(r["total_seconds"] for r in mine),
            "curves": curves,
        }
    return summary


# --------------------------------------------------------------------------- table, ordering, figure


def pm(mean: float, spread: float) -> str:
    return f"{c.fmt(mean)} ± {c.fmt(spread)}" if not math.isnan(spread) else c.fmt(mean)


def table(summary: dict, steps: int) -> str:
    header = ["algorithm", "AUC (mean ± std over seeds)", f"final eval at {steps:,} (mean ± std)", "curve spread (std)",
              f"first >= {THRESHOLD:g} (median)", f"seeds reaching {THRESHOLD:g}", "AUC per seed", "s per run"]
    rows = [[f"`{algo}`", pm(s["auc"], s["auc_std"]), pm(s["final"], s["final_std"]), c.fmt(s["spread"]),
             c.fmt(s["first"], "steps"), f"{s['reaching']}/{s['seeds']}", ", ".join(c.fmt(a) for a in s["aucs"]),
             c.fmt(s["seconds"])] for algo, s in summary.items()]
    return c.markdown_table(header, rows)


def compare(summary: dict, better: str, worse: str) -> tuple[bool, str]:
    """Is `better`'s mean AUC higher than `worse`'s? With the gap in standard errors."""
    a, b = summary[better], summary[worse]
    gap = a["auc"] - b["auc"]
    se = math.sqrt(a["auc_std"] ** 2 / a["seeds"] + b["auc_std"] ** 2 / b["seeds"]) if a["seeds"] > 1 and b["seeds"] > 1 else math.nan
    if math.isnan(se) or se == 0:
        noise = "no spread to judge noise by"
    else:
        noise = f"{gap / se:+.1f} standard errors; " + ("clear of seed noise" if abs(gap) >= 2 * se else "within seed noise")
    return gap > 0, f"mean AUC {c.fmt(a['auc'])} vs {c.fmt(b['auc'])}, {gap:+.1f} ({noise})"


def ordering(summary: dict) -> str:
    """The course's prediction, checked from the numbers; every verdict is printed whatever it is."""
    needed = ("vpg", "reinforce", "reinforce_baseline")
    if not all(name in summary for name in needed):
        return "- ordering: n/a (needs vpg, reinforce and reinforce_baseline)"
    yes = lambda flag: "YES" if flag else "NO"  # noqa: E731
    faster, faster_detail = compare(summary, "reinforce", "vpg")
    r, v = summary["reinforce"], summary["vpg"]
    steadier = r["auc_std"] < v["auc_std"]
    baseline_faster, baseline_detail = compare(summary, "reinforce_baseline", "reinforce")
    holds = faster and steadier and baseline_faster
    ranked = sorted(summary, key=lambda name: summary[name]["auc"], reverse=True)
    lines = [
        f"- reward-to-go (`reinforce`) faster than the whole return (`vpg`): **{yes(faster)}** ({faster_detail})",
        f"- reward-to-go steadier than the whole return: **{yes(steadier)}** (across-seed std of AUC {c.fmt(r['auc_std'])} vs "
        f"{c.fmt(v['auc_std'])}; curve spread {c.fmt(r['spread'])} vs {c.fmt(v['spread'])})",
        f"- the baseline (`reinforce_baseline`) faster again than `reinforce`: **{yes(baseline_faster)}** ({baseline_detail})",
        "- ranking by mean AUC: " + " > ".join(f"`{name}` {c.fmt(summary[name]['auc'])}" for name in ranked),
        f"- **the predicted ordering {'holds' if holds else 'does not hold'}** in this run: " + (
            "reward-to-go beats the whole return in speed and steadiness, and the baseline improves on it again."
            if holds else "not every comparison above went the predicted way (see the NO lines)."),
    ]
    return "\n".join(lines)


def draw(summary: dict, steps: int, eval_every: int, path: Path, seeds: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = np.array(grid(steps, eval_every))
    fig, ax = plt.subplots(figsize=(8, 5))
    for algo, s in summary.items():
        curves = s["curves"]
        mean = np.nanmean(curves, axis=0)
        color = COLORS.get(algo)
        ax.plot(points, mean, color=color, label=f"{algo} (AUC {s['auc']:.0f})", linewidth=1.8)
        ax.fill_between(points, np.nanmin(curves, axis=0), np.nanmax(curves, axis=0), color=color, alpha=0.15, linewidth=0)
    ax.axhline(THRESHOLD, color="black", linestyle=":", linewidth=0.8)
    ax.set_xlabel("env steps")
    ax.set_ylabel("evaluation mean return (10 deterministic episodes)")
    ax.set_title(f"Policy-gradient ladder on {ENV_ID}: mean over {seeds} seeds, min-max shaded")
    ax.set_xlim(0, steps)
    ax.set_ylim(0, 510)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=SEEDS, help=f"seeds per algorithm (default {SEEDS})")
    parser.add_argument("--steps", type=int, default=STEPS, help=f"env steps per run, every algorithm (default {STEPS:,})")
    parser.add_argument("--eval-every", type=int, default=EVAL_EVERY, help=f"env steps between evaluations (default {EVAL_EVERY:,})")
    parser.add_argument("--algos", default=",".join(ALGOS), help=f"comma-separated rungs (default: {','.join(ALGOS)})")
    parser.add_argument("--jobs", type=int, default=JOBS, help=f"runs at once, in separate processes of one torch thread (default {JOBS})")
    parser.add_argument("--figure", type=Path, help=f"where to draw the figure (default {FIGURE.relative_to(c.REPO_ROOT)}; "
                                                    "with --no-write, a temporary file)")
    parser.add_argument("--no-write", action="store_true", help="print only; do not append to bench/RESULTS.md")
    args = parser.parse_args()
    args.algos = [a.strip() for a in args.algos.split(",") if a.strip()]
    if not args.algos or any(a not in ALGOS for a in args.algos):
        parser.error(f"--algos takes a comma-separated list of {', '.join(ALGOS)}")
    if args.eval_every <= 0 or args.eval_every > args.steps:
        parser.error("--eval-every must be in (0, --steps]")
    if args.seeds < 1 or args.jobs < 1:
        parser.error("--seeds and --jobs must be >= 1")
    if args.figure is None:
        args.figure = Path(tempfile.gettempdir()) / "pg_ladder.png" if args.no_write else FIGURE
    args.standard = (args.seeds, args.steps, args.eval_every, tuple(args.algos)) == (SEEDS, STEPS, EVAL_EVERY, ALGOS)
    return args


def main() -> None:
    args = parse_args()
    print(f"Policy-gradient ladder on {ENV_ID}: {', '.join(args.algos)}; {args.seeds} seed(s) x {args.steps:,} steps, "
          f"eval every {args.eval_every:,}, {args.jobs} job(s)", flush=True)
    records = run_all(args.algos, args.seeds, args.steps, args.eval_every, args.jobs)
    summary = summarize(records, args.algos, args.steps, args.eval_every)
    draw(summary, args.steps, args.eval_every, args.figure, args.seeds)
    what = f"{ENV_ID}, {', '.join(args.algos)}, {args.seeds} seed(s) x {args.steps:,} steps, eval every {args.eval_every:,} steps (10 episodes)"
    title = c.section_title("pg_ladder.py", what, args.standard)
    try:
        figure = args.figure.resolve().relative_to(c.BENCH_DIR)
    except ValueError:
        figure = args.figure
    environment = c.environment_line().replace("1 torch thread", f"{args.jobs} run(s) at once, 1 torch thread each (no timing claim)")
    body = "\n\n".join([environment, table(summary, args.steps), ordering(summary), f"Figure: `{figure}` (mean over seeds, min-max shaded)."])
    print("\n" + title + "\n\n" + body, flush=True)
    if not args.no_write:
        c.append_results(title, body)


if __name__ == "__main__":
    sys.exit(main())
