"""Shared pieces of the PPO benchmarks: timing runners for both libraries, curve metrics, tables.

Both runners return the same plain record, so the scripts can put the libraries side by side:

    {"library", "seed", "env_steps", "train_seconds", "eval_seconds", "total_seconds", "evaluations"}

where ``evaluations`` is a list of ``(env_step, mean_return)``. ``total_seconds`` is measured here,
around everything a user would wait for (env creation, model creation, training, evaluation), the
same way for both libraries. ``train_seconds`` excludes evaluation: for SB3 we subtract the time
spent inside our evaluation callback; for rlsuite we take ``run.timing["train_seconds"]``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from time import perf_counter
from typing import Callable

import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import sync_envs_normalization

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
NEVER = math.inf  # "steps to reach X" when X was never reached

# Benchmark the working tree, not whatever copy of rlsuite happens to be installed.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(1, str(REPO_ROOT))


# --------------------------------------------------------------------------- command line


def parse_args(doc: str, seeds: int, steps: int) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=seeds, help=f"seeds per library (default {seeds})")
    parser.add_argument("--steps", type=int, default=steps, help=f"env steps per run (default {steps:,})")
    parser.add_argument("--no-write", action="store_true", help="print only; do not append to bench/RESULTS.md")
    parser.add_argument(
        "--only",
        choices=("sb3", "rlsuite"),
        help="run one library only (for checking the harness; implies --no-write)",
    )
    args = parser.parse_args()
    if args.only:
        args.no_write = True
    args.standard = (args.seeds, args.steps) == (seeds, steps)
    return args


def libraries(only: str | None) -> list[str]:
    return [only] if only else ["sb3", "rlsuite"]


def warm_up_torch() -> None:
    """Pay torch's one-off lazy imports (the first optimizer imports torch._dynamo, ~1 s) before any
    clock starts, so whichever library runs first in the process is not charged for them."""
    net = torch.nn.Linear(4, 2)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    net(torch.zeros(1, 4)).sum().backward()
    optimizer.step()


# --------------------------------------------------------------------------- SB3 side


def linear(initial: float) -> Callable[[float], float]:
    """rl-baselines3-zoo's ``lin_<x>`` schedule: SB3 passes progress_remaining, 1 -> 0."""
    return lambda progress_remaining: progress_remaining * initial


class TimedEval(BaseCallback):
    """EvalCallback-like: evaluates whenever ``num_timesteps`` crosses a multiple of ``every``.

    SB3's EvalCallback counts calls per env (eval_freq * n_envs steps); checking num_timesteps, which
    SB3 advances by n_envs at every vector step, puts the evaluations on the multiples themselves.
    (rlsuite evaluates at the end of the rollout that crosses a multiple, so its evaluation steps can
    be up to one batch later.) Time spent here is accumulated in ``seconds``.
    With ``sync_normalization`` the eval env gets a frozen copy of the training VecNormalize stats
    before each evaluation, as the zoo's EvalCallback does.
    """

    def __init__(self, eval_env, every: int, episodes: int, sync_normalization: bool = False):
        super().__init__()
        self.eval_env, self.every, self.episodes = eval_env, every, episodes
        self.sync_normalization = sync_normalization
        self.next_eval = every
        self.seconds = 0.0
        self.evaluations: list[tuple[int, float]] = []

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.next_eval:
            start = perf_counter()
            if self.sync_normalization:
                sync_envs_normalization(self.training_env, self.eval_env)
            mean, _ = evaluate_policy(self.model, self.eval_env, n_eval_episodes=self.episodes, deterministic=True)
            self.seconds += perf_counter() - start
            self.evaluations.append((int(self.num_timesteps), float(mean)))
            while self.next_eval <= self.num_timesteps:
                self.next_eval += self.every
        return True


def run_sb3(seed: int, total_steps: int, build: Callable[[int], tuple], eval_every: int, eval_episodes: int,
            sync_normalization: bool = False) -> dict:
    """``build(seed) -> (model, eval_env)``; its cost (env + model creation) counts in total_seconds."""
    start = perf_counter()
    model, eval_env = build(seed)
    callback = TimedEval(eval_env, eval_every, eval_episodes, sync_normalization)
    learn_start = perf_counter()
    model.learn(total_timesteps=total_steps, callback=callback)
    learn_seconds = perf_counter() - learn_start
    total = perf_counter() - start
    model.get_env().close()
    eval_env.close()
    return {
        "library": "sb3",
        "seed": seed,
        "env_steps": int(model.num_timesteps),  # SB3 finishes its last rollout, so may overshoot slightly
        "train_seconds": learn_seconds - callback.seconds,
        "eval_seconds": callback.seconds,
        "total_seconds": total,
        "evaluations": callback.evaluations,
    }


# --------------------------------------------------------------------------- rlsuite side


class ContractError(RuntimeError):
    """rlsuite's PPO does not match the API this benchmark was written against."""


def import_rlsuite_ppo():
    try:
        from rlsuite.algos.deep import ppo
    except ImportError as err:
        sys.exit(
            f"error: cannot import rlsuite's PPO ({err}).\n"
            f"This benchmark needs rlsuite/algos/deep/ppo.py under {REPO_ROOT} (or an installed rlsuite)\n"
            "providing PPOConfig, preset(env_id, **overrides) and train(cfg, run_dir=, overwrite=, quiet=).\n"
            "Use --only sb3 to run the Stable-Baselines3 side alone."
        )
    missing = [name for name in ("PPOConfig", "preset", "train") if not hasattr(ppo, name)]
    if missing:
        raise ContractError(f"rlsuite.algos.deep.ppo lacks {', '.join(missing)}")
    return ppo


def check_run(run) -> None:
    """Fail loudly, naming every mismatch, if the returned run differs from the agreed contract."""
    problems = []
    evals = getattr(run, "evaluations", None)
    if not (hasattr(evals, "keys") and {"step", "mean_return"} <= set(evals.keys())):
        problems.append(f"run.evaluations should be a table with step and mean_return columns, got {evals!r}")
    elif list(evals["step"]) != sorted(evals["step"]):
        problems.append("run.evaluations is not in increasing step order")
    timing = getattr(run, "timing", None)
    if not isinstance(timing, dict):
        problems.append(f"run.timing should be a dict, got {type(timing).__name__}")
    else:
        for key in ("train_seconds", "eval_seconds", "total_seconds"):
            if not isinstance(timing.get(key), (int, float)):
                problems.append(f"run.timing[{key!r}] missing or not a number (keys: {sorted(timing)})")
    if not isinstance(getattr(run, "dir", None), Path):
        problems.append(f"run.dir should be a pathlib.Path, got {type(getattr(run, 'dir', None)).__name__}")
    if problems:
        raise ContractError("rlsuite run does not match the benchmark contract:\n  - " + "\n  - ".join(problems))


def evaluation_curve(run) -> list[tuple[int, float]]:
    """(env step, mean return) of every evaluation of an rlsuite Run."""
    return [(int(step), float(mean)) for step, mean in zip(run.evaluations["step"], run.evaluations["mean_return"])]


def run_rlsuite(algorithm, cfg, seed: int) -> dict:
    """Train an rlsuite algorithm module (ppo, dqn, ...) in a throw-away run directory;
    total_seconds is our own clock around ``algorithm.train``."""
    with tempfile.TemporaryDirectory(prefix="rlsuite-bench-") as tmp:
        start = perf_counter()
        run = algorithm.train(cfg, run_dir=Path(tmp) / "run", overwrite=True, quiet=True)
        total = perf_counter() - start
        check_run(run)
        evaluations = evaluation_curve(run)  # read from eval.csv before the folder goes
    return {
        "library": "rlsuite",
        "seed": seed,
        "env_steps": int(run.step),
        "train_seconds": float(run.timing["train_seconds"]),
        "reported_total_seconds": float(run.timing["total_seconds"]),
        "eval_seconds": float(run.timing["eval_seconds"]),
        "total_seconds": total,
        "evaluations": evaluations,
    }


def run_alternating(seeds: int, only: str | None, threshold: float, *, sb3: Callable[[int], dict],
                    rlsuite: Callable[[object, int], dict]) -> list[dict]:
    """SB3 seed 0, rlsuite seed 0, SB3 seed 1, ...: ``sb3(seed)`` and ``rlsuite(ppo_module, seed)``."""
    ppo = import_rlsuite_ppo() if only != "sb3" else None
    records = []
    for seed in range(seeds):
        for library in libraries(only):
            record = sb3(seed) if library == "sb3" else rlsuite(ppo, seed)
            progress(record, threshold)
            records.append(record)
    return records


# --------------------------------------------------------------------------- curve metrics


def first_step(evaluations: list[tuple[int, float]], threshold: float) -> float:
    """Env step of the first evaluation with mean >= threshold, or NEVER."""
    return next((step for step, mean in evaluations if mean >= threshold), NEVER)


def sustained_step(evaluations: list[tuple[int, float]], threshold: float) -> float:
    """Env step from which every evaluation (that one and all later) has mean >= threshold, or NEVER."""
    found = NEVER
    for step, mean in reversed(evaluations):
        if mean < threshold:
            break
        found = step
    return found


def final_mean(evaluations: list[tuple[int, float]]) -> float:
    return evaluations[-1][1] if evaluations else math.nan


def throughput(record: dict) -> float:
    return record["env_steps"] / record["train_seconds"]


def median(values: list[float]) -> float:
    """Median where NEVER counts as larger than any step (so half never-reached gives NEVER)."""
    return statistics.median(values) if values else math.nan


def ratio(a: float, b: float) -> float:
    if math.isinf(a) or math.isinf(b) or math.isnan(a) or math.isnan(b) or b == 0:
        return math.nan
    return a / b


# --------------------------------------------------------------------------- printing and writing


def fmt(value, kind: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if math.isinf(value):
        return "never"
    if kind == "steps":
        return f"{int(value):,}"
    if kind == "ratio":
        return f"{value:.2f}x"
    if kind == "int":
        return f"{value:,.0f}"
    return f"{value:.1f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def target_line(name: str, met: bool | None, detail: str) -> str:
    verdict = "n/a" if met is None else ("MET" if met else "MISSED")
    return f"- {name}: **{verdict}** ({detail})"


def environment_line() -> str:
    import gymnasium
    import stable_baselines3

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO_ROOT, capture_output=True,
                               text=True).stdout.strip()
        commit += " (uncommitted changes)" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "no commit yet"
    return (f"rlsuite {commit}; SB3 {stable_baselines3.__version__}; torch {torch.__version__}; "
            f"gymnasium {gymnasium.__version__}; 1 torch thread")  # machine and Python: results.machine_line


def append_results(title: str, body: str) -> None:
    from results import append_section

    append_section(title, body)


def section_title(script: str, what: str, standard: bool) -> str:
    flag = "" if standard else " (reduced run: not the benchmark's standard seeds/steps)"
    return f"`bench/{script}`, {what}{flag}"


def progress(record: dict, threshold: float) -> None:
    """One line per finished run, so a long benchmark shows signs of life."""
    evals = record["evaluations"]
    total = f"total {record['total_seconds']:.1f}s"
    if "reported_total_seconds" in record:
        total += f" (self-reported {record['reported_total_seconds']:.1f}s)"
    print(f"  {record['library']:>7} seed {record['seed']}: {record['env_steps']:,} steps, "
          f"{throughput(record):,.0f} train steps/s, {total}, eval {record['eval_seconds']:.1f}s, "
          f"final eval {final_mean(evals):.1f}, sustained >= {threshold:g} at "
          f"{fmt(sustained_step(evals, threshold), 'steps')}", flush=True)
