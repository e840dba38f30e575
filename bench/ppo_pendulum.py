"""PPO on Pendulum-v1: rlsuite's preset against Stable-Baselines3's tuned PPO, in the same run.

SB3 uses rl-baselines3-zoo's tuned Pendulum-v1 PPO: 4 envs (DummyVecEnv), n_steps 1024, batch size
64 (SB3 default), gamma 0.9, GAE lambda 0.95, 10 epochs, no entropy bonus, learning rate 1e-3,
clip 0.2, gSDE with sde_sample_freq 4, and VecNormalize on observations and rewards (gamma 0.9, as
the zoo sets it; VecNormalize is what the issue asks for, though the zoo's hyperparams/ppo.yml entry
for Pendulum-v1 does not set `normalize` in the versions we read). Its eval env normalizes observations with a frozen copy of the training statistics,
refreshed before each evaluation, and reports raw (unnormalized) returns.
rlsuite uses its own preset: ppo.preset("Pendulum-v1", seed=s, total_steps=..., eval_every=10_000,
eval_episodes=10, torch_threads=1).

3 seeds per library, alternating (SB3 seed 0, rlsuite seed 0, SB3 seed 1, ...), one torch thread,
200,000 env steps; every 10,000 env steps, 10 deterministic episodes on a separate env (SB3:
evaluate_policy on one env, episodes one after another, as the zoo does; rlsuite: its built-in
evaluation).

Measured per library (per seed, and the median over seeds): training throughput (env steps per
second, evaluation time excluded); env steps to the first evaluation mean >= -300 and to a sustained
>= -300 (that evaluation and every later one); final evaluation mean; total wall-clock, evaluation
included; and whether the seed reached -300 within the step budget.

Target (printed as MET/MISSED): rlsuite reaches an evaluation mean >= -300 within 200,000 steps on
every seed (3 of 3).

Run:  python bench/ppo_pendulum.py                    # full: 3 seeds x 200k steps, appends to RESULTS.md
      python bench/ppo_pendulum.py --seeds 1 --steps 20000 --no-write   # quick check
"""

from __future__ import annotations

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

import _common as c

ENV_ID = "Pendulum-v1"
THRESHOLD = -300.0
GAMMA = 0.9
EVAL_EVERY = 10_000
EVAL_EPISODES = 10
EVAL_SEED_OFFSET = 10_000  # the eval env's seed, so it never replays the training envs' episodes


def build_sb3(seed: int):
    env = VecNormalize(make_vec_env(ENV_ID, n_envs=4, seed=seed), norm_obs=True, norm_reward=True, gamma=GAMMA)
    model = PPO(
        "MlpPolicy", env, n_steps=1024, gae_lambda=0.95, gamma=GAMMA, n_epochs=10, ent_coef=0.0,
        learning_rate=1e-3, clip_range=0.2, use_sde=True, sde_sample_freq=4,
        seed=seed, device="cpu", verbose=0,
    )
    eval_env = VecNormalize(make_vec_env(ENV_ID, n_envs=1, seed=seed + EVAL_SEED_OFFSET),
                            training=False, norm_obs=True, norm_reward=False, gamma=GAMMA)
    return model, eval_env


def rlsuite_config(ppo, seed: int, steps: int):
    return ppo.preset(ENV_ID, seed=seed, total_steps=steps, eval_every=EVAL_EVERY,
                      eval_episodes=EVAL_EPISODES, torch_threads=1)


def run_all(seeds: int, steps: int, only: str | None) -> list[dict]:
    return c.run_alternating(
        seeds, only, THRESHOLD,
        sb3=lambda seed: c.run_sb3(seed, steps, build_sb3, EVAL_EVERY, EVAL_EPISODES, sync_normalization=True),
        rlsuite=lambda ppo, seed: c.run_rlsuite(ppo, rlsuite_config(ppo, seed, steps), seed),
    )


def figures(record: dict, steps: int) -> dict:
    evals = record["evaluations"]
    first = c.first_step(evals, THRESHOLD)
    return {
        "sps": c.throughput(record),
        "first": first,
        "sustained": c.sustained_step(evals, THRESHOLD),
        "final": c.final_mean(evals),
        "total": record["total_seconds"],
        "reached": first <= steps,
    }


def summarize(runs: list[dict], steps: int) -> tuple[list[list[str]], dict]:
    """Table rows (one per seed, then the median) and the medians of one library's runs."""
    per_seed = [figures(r, steps) for r in runs]
    rows = [[r["library"], str(r["seed"]), c.fmt(f["sps"], "int"), c.fmt(f["first"], "steps"),
             c.fmt(f["sustained"], "steps"), c.fmt(f["final"]), c.fmt(f["total"]), c.fmt(f["reached"])]
            for r, f in zip(runs, per_seed)]
    m = {k: c.median([f[k] for f in per_seed]) for k in ("sps", "first", "sustained", "final", "total")}
    m["reached"], m["seeds"] = sum(f["reached"] for f in per_seed), len(per_seed)
    m["late"] = [(r["seed"], f["first"]) for r, f in zip(runs, per_seed) if steps < f["first"] < c.NEVER]
    rows.append([f"**{runs[0]['library']}**", "median", c.fmt(m["sps"], "int"), c.fmt(m["first"], "steps"),
                 c.fmt(m["sustained"], "steps"), c.fmt(m["final"]), c.fmt(m["total"]),
                 f"{m['reached']}/{m['seeds']} seeds"])
    return rows, m


def table(records: list[dict], steps: int) -> tuple[str, dict]:
    header = ["library", "seed", "train steps/s", "first >= -300", "sustained >= -300", "final eval",
              "total s", f"reached -300 by {steps:,}"]
    rows, medians = [], {}
    for library in ("sb3", "rlsuite"):
        runs = [r for r in records if r["library"] == library]
        if runs:
            library_rows, medians[library] = summarize(runs, steps)
            rows += library_rows
    if len(medians) == 2:
        sb3, mine = medians["sb3"], medians["rlsuite"]
        ratios = [c.fmt(c.ratio(mine[k], sb3[k]), "ratio") for k in ("sps", "first", "sustained")]
        rows.append(["**rlsuite/SB3**", "median", *ratios, f"{mine['final'] - sb3['final']:+.1f} (difference)",
                     c.fmt(c.ratio(mine["total"], sb3["total"]), "ratio"), ""])
    return c.markdown_table(header, rows), medians


def targets(medians: dict, steps: int) -> str:
    if "rlsuite" not in medians:
        return "- target: n/a (rlsuite was not run)"
    mine = medians["rlsuite"]
    lines = [c.target_line(f"rlsuite reaches -300 within {steps:,} steps on every seed",
                           mine["reached"] == mine["seeds"], f"{mine['reached']}/{mine['seeds']} seeds")]
    for library, m in medians.items():
        for seed, first in m["late"]:
            lines.append(f"- note: {library} seed {seed} first reached -300 at step {first:,}, past the "
                         f"{steps:,}-step budget (its last rollout overshoots it); counted as not reached.")
    return "\n".join(lines)


def main() -> None:
    args = c.parse_args(__doc__, seeds=3, steps=200_000)
    torch.set_num_threads(1)
    c.warm_up_torch()
    print(f"PPO {ENV_ID}: {args.seeds} seed(s) x {args.steps:,} steps, libraries: {', '.join(c.libraries(args.only))}")
    records = run_all(args.seeds, args.steps, args.only)
    text, medians = table(records, args.steps)
    what = (f"{ENV_ID}, {args.seeds} seed(s) x {args.steps:,} steps, "
            f"eval every {EVAL_EVERY:,} steps ({EVAL_EPISODES} episodes)")
    title = c.section_title("ppo_pendulum.py", what, args.standard)
    body = "\n\n".join([c.environment_line(), text, targets(medians, args.steps)])
    print("\n" + title + "\n\n" + body)
    if not args.no_write:
        c.append_results(title, body)


if __name__ == "__main__":
    main()
