"""Chapter-2 bandits: rlsuite's vectorized agents against a per-run reference loop, same run.

The peer is the straightforward way the book's experiments are usually reproduced (one testbed
object per run, one pull at a time, a Python loop over runs and steps): here each run is its own
`gym.make("bandit-10...")` env and the agent is the book's pseudocode on plain Python/NumPy
scalars. It is timed on `--ref-runs` runs and its time is scaled linearly to 2,000 runs.

For each experiment (Figures 2.2-2.5 and Thompson sampling on Bernoulli arms), printed per library:
- seconds for 2,000 runs x 1,000 steps (rlsuite: the whole `train` call, run directory, CSV and
  both PNGs included, and the simulation alone; reference: scaled from --ref-runs);
- the late value the book's figure shows (mean over the last 100 steps), next to the book's
  approximate published value.

Targets (printed as MET/MISSED):
- every rlsuite simulation of 2,000 x 1,000 takes < 2 s;
- rlsuite is >= 20x faster than the reference loop on every experiment;
- every rlsuite late value is within the stated tolerance of the book's value.

Run:  python bench/bandits_testbed.py                     # full; appends a section to bench/RESULTS.md
      python bench/bandits_testbed.py --ref-runs 20 --no-write   # quick check
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
from results import append_section  # noqa: E402  (bench/ is on sys.path when run as a script)

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR.parent) not in sys.path:
    sys.path.insert(1, str(BENCH_DIR.parent))

from rlsuite.algos.bandits import epsilon_greedy, gradient_bandit, thompson, ucb  # noqa: E402

RUNS, STEPS, SEED = 2000, 1000, 0

# name, rlsuite module, config fields, metric, book value, tolerance (book read off the figures)
EXPERIMENTS = [
    ("Fig 2.2 greedy", epsilon_greedy, dict(epsilon=0.0), "bandit/average_reward", 1.0, 0.1),
    ("Fig 2.2 eps=0.01", epsilon_greedy, dict(epsilon=0.01), "bandit/average_reward", 1.3, 0.1),
    ("Fig 2.2 eps=0.1", epsilon_greedy, dict(epsilon=0.1), "bandit/average_reward", 1.4, 0.1),
    ("Fig 2.3 optimistic Q1=5", epsilon_greedy, dict(epsilon=0.0, step_size=0.1, initial_value=5.0), "bandit/optimal_action", 82.0, 8.0),
    ("Fig 2.3 realistic eps=0.1", epsilon_greedy, dict(epsilon=0.1, step_size=0.1), "bandit/optimal_action", 77.0, 8.0),
    ("Fig 2.4 UCB c=2", ucb, dict(c=2.0), "bandit/average_reward", 1.5, 0.1),
    ("Fig 2.5 gradient, baseline", gradient_bandit, dict(env="bandit-10-offset4", baseline=True), "bandit/optimal_action", 80.0, 10.0),
    ("Fig 2.5 gradient, no baseline", gradient_bandit, dict(env="bandit-10-offset4", baseline=False), "bandit/optimal_action", 50.0, 12.0),
    ("Thompson, Bernoulli arms", thompson, dict(env="bandit-10-bernoulli"), "bandit/optimal_action", None, None),
]


# --------------------------------------------------------------------------- the reference loop


def reference_run(name: str, fields: dict, seed: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One run of the book's pseudocode on one single env; (reward, optimal?) per step."""
    env = gym.make(fields.get("env", "bandit-10"))
    env.reset(seed=seed)
    k = env.action_space.n
    rewards, optimal = np.zeros(STEPS), np.zeros(STEPS)
    Q, N = np.full(k, fields.get("initial_value", 0.0)), np.zeros(k)
    H, r_bar = np.zeros(k), 0.0
    a_post, b_post = np.ones(k), np.ones(k)
    for t in range(1, STEPS + 1):
        if name.startswith("Fig 2.4"):
            if (N == 0).any():
                A = rng.choice(np.flatnonzero(N == 0))
            else:
                scores = Q + fields["c"] * np.sqrt(math.log(t) / N)
                A = rng.choice(np.flatnonzero(scores == scores.max()))
        elif name.startswith("Fig 2.5"):
            pi = np.exp(H - H.max())
            pi /= pi.sum()
            A = rng.choice(k, p=pi)
        elif name.startswith("Thompson"):
            A = int(np.argmax(rng.beta(a_post, b_post)))
        elif rng.random() < fields["epsilon"]:
            A = int(rng.integers(k))
        else:
            A = rng.choice(np.flatnonzero(Q == Q.max()))
        _, R, _, _, info = env.step(int(A))
        rewards[t - 1], optimal[t - 1] = R, 100.0 * (info["regret"] == 0.0)
        if name.startswith("Fig 2.5"):
            if fields["baseline"]:
                r_bar += (R - r_bar) / t
            one_hot = np.zeros(k)
            one_hot[A] = 1.0
            H += 0.1 * (R - r_bar) * (one_hot - pi)
        elif name.startswith("Thompson"):
            a_post[A] += R
            b_post[A] += 1 - R
        else:
            N[A] += 1
            Q[A] += (fields.get("step_size") or 1.0 / N[A]) * (R - Q[A])
    env.close()
    return rewards, optimal


def run_reference(name: str, fields: dict, runs: int) -> tuple[float, float]:
    """(seconds scaled to RUNS runs, late value of the figure's metric)."""
    rng = np.random.default_rng(SEED)
    start = time.perf_counter()
    results = [reference_run(name, fields, SEED * 100_000 + i, rng) for i in range(runs)]
    seconds = (time.perf_counter() - start) * RUNS / runs
    return seconds, np.array(results)  # [runs, 2, steps]


def run_rlsuite(module, fields: dict) -> tuple[float, float, dict[str, np.ndarray]]:
    with tempfile.TemporaryDirectory(prefix="rlsuite-bench-") as tmp:
        start = time.perf_counter()
        run = module.train(module.Config(seed=SEED, runs=RUNS, steps=STEPS, **fields), Path(tmp) / "run", quiet=True)
        total = time.perf_counter() - start
        columns = dict(run.metrics)
    return total, run.timing["train_seconds"], columns


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref-runs", type=int, default=200, help="runs of the reference loop per experiment (time scaled to 2,000)")
    parser.add_argument("--no-write", action="store_true", help="print only; do not append to bench/RESULTS.md")
    args = parser.parse_args()

    header = ["experiment", "metric (last 100 steps)", "book", "rlsuite", f"reference ({args.ref_runs} runs)",
              "rlsuite total s", "rlsuite sim s", "reference s (scaled)", "speed-up (sim)"]
    rows, sims, speedups, within = [], [], [], []
    for name, module, fields, metric, book, tol in EXPERIMENTS:
        total, sim, columns = run_rlsuite(module, fields)
        ref_seconds, ref = run_reference(name, fields, args.ref_runs)
        ours = columns[metric][-100:].mean()
        ref_value = ref[:, 0 if metric == "bandit/average_reward" else 1, -100:].mean()
        sims.append(sim)
        speedups.append(ref_seconds / sim)
        if book is not None:
            within.append(abs(ours - book) <= tol)
        book_text = f"~{book:g} ± {tol:g}" if book is not None else "n/a"
        rows.append([name, metric.split("/")[1], book_text, f"{ours:.2f}", f"{ref_value:.2f}", f"{total:.2f}", f"{sim:.2f}",
                     f"{ref_seconds:.1f}", f"{ref_seconds / sim:.0f}x"])
        print("  " + " | ".join(rows[-1]), flush=True)

    table = "\n".join(["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"] + ["| " + " | ".join(r) + " |" for r in rows])
    verdict = lambda ok: "MET" if ok else "MISSED"  # noqa: E731
    targets = "\n".join([
        f"- every rlsuite simulation of 2,000 x 1,000 < 2 s: **{verdict(max(sims) < 2.0)}** (slowest {max(sims):.2f} s)",
        f"- rlsuite >= 20x faster than the reference loop: **{verdict(min(speedups) >= 20)}** (smallest {min(speedups):.0f}x)",
        f"- rlsuite within the book's tolerance: **{verdict(all(within))}** ({sum(within)}/{len(within)})",
    ])
    body = (
        f"2,000 runs x 1,000 steps, seed {SEED}; numpy {np.__version__}, gymnasium {gym.__version__}. "
        "Book values are read off Sutton & Barto (2nd ed.) Figures 2.2-2.5. Reference: a per-run Python loop "
        f"of the book's pseudocode on single envs, timed on {args.ref_runs} runs and scaled to 2,000.\n\n{table}\n\n{targets}\n"
    )
    print("\n" + table + "\n\n" + targets)
    if not args.no_write:
        append_section(f"`bench/bandits_testbed.py`, 2,000 runs x 1,000 steps, seed {SEED}", body)


if __name__ == "__main__":
    main()
