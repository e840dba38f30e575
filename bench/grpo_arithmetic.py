"""GRPO on the built-in arithmetic task: does RL with a verifier raise held-out accuracy?

Part 1 (the target). From the shipped SFT model (`builtin-sft`, ~27% greedy accuracy on the
`mixed` level), GRPO with the default settings (8 prompts x 8 completions, accuracy + 0.1 format
reward, lr 3e-5) trains for a fixed wall-clock budget per seed. Accuracy is greedy accuracy@1 on
the 500-problem `mixed` test split (disjoint from training problems), before and after, with a
95% Wilson interval. Target: +15 points (absolute) within 30 minutes on 2 of 3 seeds, format
compliance >= 95%.

Part 2 (the case RL exists for). SFT on demonstrations of two-operand problems only (`easy`),
then GRPO with the verifier alone on three-operand problems with parentheses (`hard`): hard-split
accuracy before and after. No demonstration of a hard problem is ever shown.

Runs go two at a time (two processes, one torch thread each, on this 2-core machine). The
figure bench/figures/grpo_arithmetic.png draws the reward and accuracy curves.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(1, str(BENCH.parent))

from results import append_section  # noqa: E402

TEST_SIZE = 500
THREADS = 1


def wilson(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def held_out(model_dir: str, level: str, seed: int) -> dict:
    """Greedy accuracy and format on the level's 500-problem test split."""
    import torch

    from rlsuite.algos.llm.grpo import GRPOConfig
    from rlsuite.lm import models, runtime

    torch.set_num_threads(1)
    model, tokenizer = models.load_model(model_dir)
    config = GRPOConfig(model=model_dir, level=level, test_size=TEST_SIZE, eval_size=TEST_SIZE, train_size=8, seed=seed)
    run = runtime.prepare(config, model.eval(), tokenizer, torch.device("cpu"))
    metrics, _ = runtime.evaluate(run, model, run.task.test, run.test_prompts)
    return metrics


def child(args) -> None:
    """One GRPO (or SFT) run in this process, stopped by wall-clock; prints nothing but its run dir."""
    from rlsuite import api

    deadline = time.perf_counter() + 60 * args.minutes

    def stop_in_time(loop):
        if time.perf_counter() >= deadline:
            loop.request_stop("time budget")

    overrides = dict(level=args.level, seed=args.seed, torch_threads=args.threads, test_size=TEST_SIZE, eval_size=TEST_SIZE,
                     checkpoint_minutes=5.0)
    if args.algo == "grpo":
        overrides.update(model=args.model, total_steps=100_000, eval_every=args.eval_every)
    else:  # the easy level has only 62 test problems
        overrides.update(model="builtin", eval_every=0, test_size=62, eval_size=62)
    api.train(args.algo, "arithmetic", run_dir=args.run_dir, overwrite=True, quiet=True, callbacks=[stop_in_time], **overrides)


def launch(algo: str, run_dir: Path, level: str, seed: int, minutes: float, model: str = "builtin-sft", eval_every: int = 100):
    cmd = [sys.executable, __file__, "--child", algo, "--run-dir", str(run_dir), "--level", level, "--seed", str(seed),
           "--minutes", str(minutes), "--model", model, "--eval-every", str(eval_every), "--threads", str(THREADS)]
    return subprocess.run(cmd, check=True)


def final_model(run_dir: Path) -> str:
    from rlsuite.core.run import RunDir

    return str(RunDir(run_dir).policy_dir())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=30.0, help="wall-clock GRPO budget per seed (target: 30)")
    parser.add_argument("--hard-minutes", type=float, default=10.0, help="GRPO budget of part 2")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--alone", action="store_true",
                        help="one run at a time with two torch threads (the whole machine per seed), without part 2")
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--evaluate-only", metavar="DIR", help="evaluate and report the runs of an earlier invocation (its temporary folder)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", help=argparse.SUPPRESS)
    parser.add_argument("--level", default="mixed", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--model", default="builtin-sft", help=argparse.SUPPRESS)
    parser.add_argument("--eval-every", type=int, default=100, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.algo = args.child
        return child(args)

    root = Path(args.evaluate_only or tempfile.mkdtemp(prefix="grpo-bench-"))
    started = time.perf_counter()
    jobs = [("grpo", root / f"mixed-seed{s}", "mixed", s, args.minutes, "builtin-sft") for s in range(1, args.seeds + 1)]
    easy_sft, hard = root / "sft-easy", root / "hard-seed1"

    def part_two():
        launch("sft", easy_sft, "easy", 1, 30.0)
        launch("grpo", hard, "hard", 1, args.hard_minutes, final_model(easy_sft), 50)

    global THREADS
    THREADS = 2 if args.alone else 1
    if args.alone and not args.evaluate_only:
        for job in jobs:
            launch(*job)
    elif not args.evaluate_only:
        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(launch, *job) for job in jobs[:2]] + [pool.submit(part_two)] + [pool.submit(launch, *job) for job in jobs[2:]]
            for f in futures:
                f.result()
    rows, gains = [], []
    from rlsuite import open_run

    for _, run_dir, _, seed, _, _ in jobs:
        before = held_out("builtin-sft", "mixed", seed)  # each seed draws its own test split: compare on the same one
        after = held_out(final_model(run_dir), "mixed", seed)
        run = open_run(run_dir)
        gain = after["accuracy"] - before["accuracy"]
        gains.append((gain, after["format"]))
        lo_b, hi_b = wilson(before["accuracy"], TEST_SIZE)
        lo_a, hi_a = wilson(after["accuracy"], TEST_SIZE)
        evals = run.evaluations
        reached = next((int(s) for s, a in zip(evals["step"], evals["accuracy"]) if a - before["accuracy"] >= 0.15), None)
        rows.append(f"| {seed} | {run.step:,} | {before['accuracy']:.3f} [{lo_b:.3f}, {hi_b:.3f}] | {after['accuracy']:.3f} [{lo_a:.3f}, {hi_a:.3f}] "
                    f"| {gain * 100:+.1f} | {after['format']:.3f} | {reached if reached is not None else 'not reached'} |")
    part_two_ran = hard.is_dir()
    if part_two_ran:
        hard_before = held_out(final_model(easy_sft), "hard", 1)
        hard_after = held_out(final_model(hard), "hard", 1)
    draw(root, jobs, hard if part_two_ran else None)
    met = sum(g >= 0.15 and f >= 0.95 for g, f in gains)
    needed = min(2, len(jobs))
    part_two = (
        f"- Part 2, demonstrations of two-operand problems only, then GRPO with the verifier alone on `hard` "
        f"(three operands, parentheses) for {args.hard_minutes:g} minutes: hard-split accuracy {hard_before['accuracy']:.3f} "
        f"[{wilson(hard_before['accuracy'], TEST_SIZE)[0]:.3f}, {wilson(hard_before['accuracy'], TEST_SIZE)[1]:.3f}] -> "
        f"{hard_after['accuracy']:.3f} [{wilson(hard_after['accuracy'], TEST_SIZE)[0]:.3f}, {wilson(hard_after['accuracy'], TEST_SIZE)[1]:.3f}] "
        f"({open_run(hard).step:,} steps); format {hard_before['format']:.3f} -> {hard_after['format']:.3f}"
    ) if part_two_ran else "- Part 2 not run (--alone)."
    layout = "one run at a time, two torch threads" if args.alone else "two runs at a time, one torch thread each"
    from rlsuite.lm.models import count_parameters, load_model

    body = "\n".join([
        f"Built-in model ({count_parameters(load_model('builtin-sft')[0]):,} parameters), greedy accuracy@1 on {TEST_SIZE} held-out problems, "
        f"95% Wilson intervals; {args.minutes:g} minutes of GRPO per seed, {layout}. "
        + (f"Whole benchmark {((time.perf_counter() - started) / 60):.1f} minutes." if not args.evaluate_only else
           f"Evaluated from the runs in {root} (trained by an earlier invocation with the same settings)."),
        "",
        "| seed | optimizer steps | accuracy before | accuracy after | gain (points) | format after | first eval step at +15 |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"- +15 points within {args.minutes:g} minutes (target 30) with format >= 95% on {needed} of {len(jobs)} seeds: "
        f"**{'MET' if met >= needed else 'MISSED'}** ({met} of {len(jobs)})" + (" (fewer than 3 seeds: not the target's test)" if len(jobs) < 3 else ""),
        part_two,
        f"- Curves: bench/figures/{'grpo_arithmetic.png' if part_two_ran else 'grpo_arithmetic_alone.png'}",
    ])
    print(body)
    if not args.no_write:
        append_section("`bench/grpo_arithmetic.py`, GRPO on built-in arithmetic", body)


def draw(root: Path, jobs, hard: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rlsuite import open_run

    fig, (ax_reward, ax_accuracy) = plt.subplots(1, 2, figsize=(11, 4))
    for _, run_dir, level, seed, _, _ in [*jobs, *([("grpo", hard, "hard", 1, 0, "")] if hard is not None else [])]:
        run = open_run(run_dir)
        m, e = run.metrics, run.evaluations
        label = f"{level} seed {seed}"
        k = 25  # a moving average over 25 steps: one step's reward is 64 samples
        reward = m["reward"]
        smooth = [sum(reward[max(0, i - k + 1):i + 1]) / len(reward[max(0, i - k + 1):i + 1]) for i in range(len(reward))]
        ax_reward.plot(m["step"], smooth, label=label)
        ax_accuracy.plot(e["step"], e["accuracy"], marker=".", label=label)
    ax_reward.set(xlabel="optimizer steps", ylabel="training reward (25-step mean)", title="reward")
    ax_accuracy.set(xlabel="optimizer steps", ylabel="held-out greedy accuracy", title="accuracy (500 test problems)")
    ax_accuracy.legend()
    out = BENCH / "figures" / ("grpo_arithmetic_alone.png" if hard is None else "grpo_arithmetic.png")
    out.parent.mkdir(exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main()
