"""SAC on HalfCheetah-v5: rlsuite against Stable-Baselines3, same hyperparameters, same run.

Both libraries use rl-baselines3-zoo's MuJoCo SAC hyperparameters, which are SB3's SAC defaults
with 10,000 random warm-up steps: learning rate 3e-4, buffer 1e6, batch 256, one gradient step per
env step, tau 0.005, gamma 0.99, automatic entropy coefficient (starting at 1, target entropy
-dim(A)), twin critics, 256-256 ReLU MLPs. rlsuite runs its preset "HalfCheetah-v5", checked field
by field against the SB3 model before anything runs (a mismatch stops the script). One env per
run (SB3: DummyVecEnv from make_vec_env), CPU, one torch thread; 1 seed per library by default
(SB3 first, then rlsuite), 100,000 env steps. Every 20,000 env steps, and so at the end, 10
deterministic episodes of 1,000 steps on a separate env (SB3: evaluate_policy on one env, episodes
one after another, as the zoo does; rlsuite: its built-in evaluation, the episodes at once as one
vector env).

Reported per library, and as rlsuite/SB3 ratios:
- the evaluation mean return at 100k (and the curve of the evaluations);
- training throughput: env steps per second of training wall-clock, evaluation time excluded
  (SB3: minus the time inside our evaluation callback; rlsuite: run.timing["train_seconds"], which
  also leaves out checkpointing).

No target: both numbers are recorded. 100k steps is a tenth of the zoo's budget, so the returns
are early-training figures (a few thousand), not final ones.

Run:  python bench/sac_halfcheetah.py                     # full: 1 seed x 100k steps, appends to RESULTS.md
      python bench/sac_halfcheetah.py --steps 20000 --eval-every 10000 --no-write
      python bench/sac_halfcheetah.py --steps 2000 --eval-every 1000 --learning-starts 1000 --no-write   # smoke test
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
from time import perf_counter

import numpy as np
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.env_util import make_vec_env

import _common as c

ENV_ID = "HalfCheetah-v5"
STEPS = 100_000
EVAL_EVERY = 20_000
EVAL_EPISODES = 10
SEEDS = 1
LEARNING_STARTS = 10_000  # the zoo's; the only change from SB3's SAC defaults
EVAL_SEED_OFFSET = 10_000  # the eval env's seed, so it never replays the training env's episodes


def quiet_settotalmass_warning() -> None:
    """MuJoCo 4 warns on every model compile that Gymnasium's half_cheetah.xml uses the deprecated
    `settotalmass` attribute (harmless: 20+ identical lines per run); drop that one, pass the rest on."""
    import mujoco

    def warn(message: str) -> None:
        if "settotalmass" not in message:
            print(f"MuJoCo warning: {message}", file=sys.stderr, flush=True)

    mujoco.set_mju_user_warning(warn)


def build_sb3(seed: int, learning_starts: int):
    env = make_vec_env(ENV_ID, n_envs=1, seed=seed)  # DummyVecEnv
    model = SAC("MlpPolicy", env, learning_starts=learning_starts, seed=seed, device="cpu", verbose=0)
    eval_env = make_vec_env(ENV_ID, n_envs=1, seed=seed + EVAL_SEED_OFFSET)
    return model, eval_env


def rlsuite_config(spec, seed: int, steps: int, eval_every: int, learning_starts: int):
    """The preset for HalfCheetah-v5; only the seed, budget, evaluation and device change
    (and learning_starts, when a smoke test asks)."""
    overrides = dict(seed=seed, total_steps=steps, eval_every=eval_every, eval_episodes=EVAL_EPISODES, device="cpu", torch_threads=1)
    if learning_starts != LEARNING_STARTS:
        overrides["learning_starts"] = learning_starts
    return spec.preset(ENV_ID, **overrides)


def check_same_settings(spec, learning_starts: int) -> None:
    """Build both sides once and compare every hyperparameter; exit naming every difference."""
    from sac_pendulum import PARTS, settings_pairs

    config = rlsuite_config(spec, 0, STEPS, EVAL_EVERY, learning_starts)
    model, eval_env = build_sb3(0, learning_starts)
    differences = [f"{name}: rlsuite {mine!r}, SB3 {theirs!r}" for name, mine, theirs in settings_pairs(PARTS["sac"], config, model)
                   if not (mine == theirs or (isinstance(mine, float) and isinstance(theirs, float) and np.isclose(mine, theirs)))]
    model.get_env().close()
    eval_env.close()
    if differences:
        sys.exit(f"error: rlsuite's sac preset for {ENV_ID} differs from the zoo's SB3 settings:\n  - " + "\n  - ".join(differences))


class RlsuiteProgress:
    """A Loop callback: one line per rlsuite evaluation, so a long run shows signs of life."""

    def __init__(self):
        self.seen, self.start = 0, perf_counter()

    def __call__(self, loop) -> None:
        if len(loop.evaluations) > self.seen:
            self.seen = len(loop.evaluations)
            step, row = loop.evaluations[-1]
            print(f"    rlsuite step {step:,}: eval {row['mean_return']:.1f} ({perf_counter() - self.start:.0f}s)", flush=True)


class ProgressEval(c.TimedEval):
    """c.TimedEval that prints each evaluation."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.start = perf_counter()

    def _on_step(self) -> bool:
        seen = len(self.evaluations)
        result = super()._on_step()
        if len(self.evaluations) > seen:
            step, mean = self.evaluations[-1]
            print(f"    sb3 step {step:,}: eval {mean:.1f} ({perf_counter() - self.start:.0f}s)", flush=True)
        return result


def run_all(args) -> list[dict]:
    """SB3 seed 0, rlsuite seed 0, SB3 seed 1, ..."""
    spec = None
    if args.only != "sb3":
        try:
            from rlsuite.core import registry

            spec = registry.spec("sac")
        except (ImportError, KeyError) as err:
            sys.exit(f"error: cannot load rlsuite's SAC ({err}). Use --only sb3 to run the Stable-Baselines3 side alone.")
    if args.only is None:
        check_same_settings(spec, args.learning_starts)
    records = []
    if args.concurrent:
        # Each library in its own process on its own core, at the same time: both see the same
        # machine (a shared L3 and memory bandwidth), and the run takes half the wall-clock.
        tasks = [(library, seed, args.steps, args.eval_every, args.learning_starts) for seed in range(args.seeds) for library in c.libraries(args.only)]
        with multiprocessing.get_context("spawn").Pool(2) as pool:
            for record in pool.imap(run_one, tasks):
                report(record)
                records.append(record)
        return records
    for seed in range(args.seeds):
        for library in c.libraries(args.only):
            if library == "sb3":
                record = run_sb3(seed, args.steps, args.learning_starts, args.eval_every)
            else:
                record = run_rlsuite(spec, rlsuite_config(spec, seed, args.steps, args.eval_every, args.learning_starts), seed)
            report(record)
            records.append(record)
    return records


def report(record: dict) -> None:
    print(f"  {record['library']:>7} seed {record['seed']}: {record['env_steps']:,} steps, "
          f"{c.throughput(record):,.0f} train steps/s, total {record['total_seconds']:.1f}s, "
          f"eval {record['eval_seconds']:.1f}s, final eval {c.final_mean(record['evaluations']):.1f}", flush=True)


def run_one(task: tuple) -> dict:
    """One library and seed in a worker process (--concurrent)."""
    library, seed, steps, eval_every, learning_starts = task
    torch.set_num_threads(1)
    quiet_settotalmass_warning()
    if library == "sb3":
        return run_sb3(seed, steps, learning_starts, eval_every)
    from rlsuite.core import registry

    spec = registry.spec("sac")
    return run_rlsuite(spec, rlsuite_config(spec, seed, steps, eval_every, learning_starts), seed)


def run_sb3(seed: int, steps: int, learning_starts: int, eval_every: int) -> dict:
    """c.run_sb3, with an evaluation callback that prints each evaluation."""
    start = perf_counter()
    model, eval_env = build_sb3(seed, learning_starts)
    callback = ProgressEval(eval_env, eval_every, EVAL_EPISODES)
    learn_start = perf_counter()
    model.learn(total_timesteps=steps, callback=callback)
    learn_seconds = perf_counter() - learn_start
    total = perf_counter() - start
    model.get_env().close()
    eval_env.close()
    return {"library": "sb3", "seed": seed, "env_steps": int(model.num_timesteps), "train_seconds": learn_seconds - callback.seconds,
            "eval_seconds": callback.seconds, "total_seconds": total, "evaluations": callback.evaluations}


def run_rlsuite(spec, config, seed: int) -> dict:
    """c.run_rlsuite with a progress callback (the spec's train takes the Loop's callbacks)."""

    class WithProgress:
        train = staticmethod(lambda cfg, **options: spec.train(cfg, callbacks=[RlsuiteProgress()], **options))

    return c.run_rlsuite(WithProgress, config, seed)


def summarize(records: list[dict], steps: int) -> dict:
    summary = {}
    for library in ("sb3", "rlsuite"):
        mine = [r for r in records if r["library"] == library]
        if mine:
            summary[library] = {
                "sps": c.median([c.throughput(r) for r in mine]),
                "final": c.median([final_at(r, steps) for r in mine]),
                "total": c.median([r["total_seconds"] for r in mine]),
                "train": c.median([r["train_seconds"] for r in mine]),
                "eval": c.median([r["eval_seconds"] for r in mine]),
            }
    return summary


def final_at(record: dict, steps: int) -> float:
    evals = record["evaluations"]
    return evals[-1][1] if evals and evals[-1][0] == steps else float("nan")


def table(records: list[dict], summary: dict, steps: int) -> str:
    header = ["library", "seed", "train steps/s", f"eval at {steps:,}", "total s", "train s", "eval s"]
    rows = []
    for library, s in summary.items():
        mine = [r for r in records if r["library"] == library]
        for r in mine:
            rows.append([library, str(r["seed"]), c.fmt(c.throughput(r), "int"), c.fmt(final_at(r, steps)),
                         c.fmt(r["total_seconds"]), c.fmt(r["train_seconds"]), c.fmt(r["eval_seconds"])])
        if len(mine) > 1:
            rows.append([f"**{library}**", "median", c.fmt(s["sps"], "int"), c.fmt(s["final"]),
                         c.fmt(s["total"]), c.fmt(s["train"]), c.fmt(s["eval"])])
    if len(summary) == 2:
        sb3, mine = summary["sb3"], summary["rlsuite"]
        # A ratio of returns means something only when both are positive (early evaluations are not).
        final_ratio = c.ratio(mine["final"], sb3["final"]) if min(mine["final"], sb3["final"]) > 0 else float("nan")
        rows.append(["**rlsuite/SB3**", "median" if len(records) > 2 else "", c.fmt(c.ratio(mine["sps"], sb3["sps"]), "ratio"),
                     c.fmt(final_ratio, "ratio"), *(c.fmt(c.ratio(mine[k], sb3[k]), "ratio") for k in ("total", "train", "eval"))])
    return c.markdown_table(header, rows)


def curves(records: list[dict]) -> str:
    """Every evaluation of every run: env step -> mean return, one column per run."""
    steps = sorted({step for r in records for step, _ in r["evaluations"]})
    header = ["env steps", *(f"{r['library']} seed {r['seed']}" for r in records)]
    rows = []
    for step in steps:
        rows.append([f"{step:,}", *(c.fmt(dict(r["evaluations"]).get(step, float("nan"))) for r in records)])
    return "Evaluation mean return (10 deterministic episodes):\n\n" + c.markdown_table(header, rows)


def reported(summary: dict, steps: int, seeds: int) -> str:
    if len(summary) < 2:
        return "- ratios: n/a (only one library was run)"
    sb3, mine = summary["sb3"], summary["rlsuite"]
    return "\n".join([
        f"- training throughput, rlsuite/SB3 (no target): {c.fmt(c.ratio(mine['sps'], sb3['sps']), 'ratio')} "
        f"({c.fmt(mine['sps'], 'int')} vs {c.fmt(sb3['sps'], 'int')} env steps/s)",
        f"- evaluation mean return at {steps:,} (no target): rlsuite {c.fmt(mine['final'])} vs SB3 {c.fmt(sb3['final'])}"
        + (" (one seed each: the spread between seeds at this budget is large, so this is no learning comparison)" if seeds == 1 else ""),
    ])


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=SEEDS, help=f"seeds per library (default {SEEDS})")
    parser.add_argument("--steps", type=int, default=STEPS, help=f"env steps per run (default {STEPS:,})")
    parser.add_argument("--eval-every", type=int, default=EVAL_EVERY, help=f"env steps between evaluations (default {EVAL_EVERY:,})")
    parser.add_argument("--learning-starts", type=int, default=LEARNING_STARTS,
                        help=f"random warm-up steps, both libraries (default {LEARNING_STARTS:,}, the zoo's; lower only for smoke tests)")
    parser.add_argument("--no-write", action="store_true", help="print only; do not append to bench/RESULTS.md")
    parser.add_argument("--concurrent", action="store_true",
                        help="run the two libraries at the same time, one process and one core each (half the wall-clock; both share the machine alike)")
    parser.add_argument("--only", choices=("sb3", "rlsuite"), help="run one library only (for checking the harness; implies --no-write)")
    args = parser.parse_args()
    if args.eval_every <= 0 or args.steps % args.eval_every:
        parser.error(f"--eval-every ({args.eval_every:,}) must divide --steps ({args.steps:,}), so that both libraries evaluate at the end")
    if args.only:
        args.no_write = True
    args.standard = (args.seeds, args.steps, args.eval_every, args.learning_starts) == (SEEDS, STEPS, EVAL_EVERY, LEARNING_STARTS)
    return args


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    c.warm_up_torch()
    quiet_settotalmass_warning()
    print(f"SAC {ENV_ID}: {args.seeds} seed(s) x {args.steps:,} steps, libraries: {', '.join(c.libraries(args.only))}", flush=True)
    records = run_all(args)
    summary = summarize(records, args.steps)
    what = (f"SAC on {ENV_ID}, {args.seeds} seed(s) x {args.steps:,} steps, eval every {args.eval_every:,} steps "
            f"({EVAL_EPISODES} episodes)" + ("" if args.learning_starts == LEARNING_STARTS else f", learning_starts {args.learning_starts:,}")
            + (", both libraries at once (one process and one core each)" if args.concurrent else ""))
    title = c.section_title("sac_halfcheetah.py", what, args.standard)
    body = "\n\n".join([c.environment_line(), table(records, summary, args.steps), curves(records), reported(summary, args.steps, args.seeds)])
    print("\n" + title + "\n\n" + body, flush=True)
    if not args.no_write:
        c.append_results(title, body)


if __name__ == "__main__":
    main()
