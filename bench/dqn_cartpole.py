"""DQN on CartPole-v1: rlsuite against Stable-Baselines3, same hyperparameters, same run.

Both libraries use rl-baselines3-zoo's tuned CartPole-v1 DQN hyperparameters: one env, learning
rate 2.3e-3, batch 64, buffer 100k, 1,000 random warm-up steps, gamma 0.99, the target network
refreshed every 10 env steps, a phase of 128 gradient steps after every 256 env steps, epsilon
from 1 to 0.04 over the first 16% of the run, a 256-256 ReLU MLP, Huber loss, gradient norm
clipped at 10. SB3 runs on its own DummyVecEnv (make_vec_env); rlsuite on its own vector env.
3 seeds per library, alternating (SB3 seed 0, rlsuite seed 0, SB3 seed 1, ...), one torch thread,
50,000 env steps; every 2,500 env steps, 10 deterministic episodes on a separate env (SB3:
evaluate_policy on one env, episodes one after another, as the zoo does; rlsuite: its built-in
evaluation, at the end of the 256-step collection that crosses the multiple).

Measured per library (per seed, and the median over seeds):
- training throughput: env steps per second of training wall-clock, evaluation time excluded;
- env steps until the evaluation mean is >= 475 and stays >= 475 at every later evaluation;
- how many seeds sustain 475 that way within the 50k steps.

Targets (printed as MET/MISSED):
- rlsuite's median training throughput >= 2x SB3's;
- at least as many rlsuite seeds as SB3 seeds sustain 475 within 50k steps.

Run:  python bench/dqn_cartpole.py                    # full: 3 seeds x 50k steps, appends to RESULTS.md
      python bench/dqn_cartpole.py --seeds 1 --no-write   # quick check
"""

from __future__ import annotations

import sys

import torch
from stable_baselines3 import DQN
from stable_baselines3.common.env_util import make_vec_env

import _common as c

ENV_ID = "CartPole-v1"
THRESHOLD = 475.0
EVAL_EVERY = 2_500
EVAL_EPISODES = 10
PHASE = 256  # env steps between gradient phases, both libraries
EVAL_SEED_OFFSET = 10_000  # the eval env's seed, so it never replays the training envs' episodes
# rl-baselines3-zoo's hyperparams/dqn.yml for CartPole-v1, in SB3's names.
ZOO = dict(learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1_000, gamma=0.99,
           target_update_interval=10, train_freq=256, gradient_steps=128, exploration_fraction=0.16,
           exploration_final_eps=0.04)


def build_sb3(seed: int):
    env = make_vec_env(ENV_ID, n_envs=1, seed=seed)  # DummyVecEnv
    model = DQN("MlpPolicy", env, policy_kwargs=dict(net_arch=[256, 256]), seed=seed, device="cpu", verbose=0, **ZOO)
    eval_env = make_vec_env(ENV_ID, n_envs=1, seed=seed + EVAL_SEED_OFFSET)
    return model, eval_env


def rlsuite_config(dqn, seed: int, steps: int):
    zoo = {("target_update_every" if k == "target_update_interval" else k): v for k, v in ZOO.items()}
    return dqn.DQNConfig(
        env=ENV_ID, seed=seed, total_steps=steps, num_envs=1, **zoo, exploration_initial_eps=1.0, tau=1.0,
        max_grad_norm=10.0, loss="huber", target="max", head="linear", n_step=1, hidden_sizes=(256, 256),
        activation="relu", torch_threads=1, eval_every=EVAL_EVERY, eval_episodes=EVAL_EPISODES,
    )


def import_rlsuite_dqn():
    try:
        from rlsuite.algos.deep import dqn
    except ImportError as err:
        sys.exit(f"error: cannot import rlsuite's DQN ({err}). Use --only sb3 to run the Stable-Baselines3 side alone.")
    return dqn


def run_all(seeds: int, steps: int, only: str | None) -> list[dict]:
    """SB3 seed 0, rlsuite seed 0, SB3 seed 1, ..."""
    dqn = import_rlsuite_dqn() if only != "sb3" else None
    records = []
    for seed in range(seeds):
        for library in c.libraries(only):
            if library == "sb3":
                record = c.run_sb3(seed, steps, build_sb3, EVAL_EVERY, EVAL_EPISODES)
            else:
                record = c.run_rlsuite(dqn, rlsuite_config(dqn, seed, steps), seed)
            c.progress(record, THRESHOLD)
            records.append(record)
    return records


def sustains(record: dict) -> bool:
    return c.sustained_step(record["evaluations"], THRESHOLD) != c.NEVER


def summarize(records: list[dict]) -> dict:
    """Per library: median throughput and steps to sustained 475, seeds sustaining, wall-clock."""
    summary = {}
    for library in ("sb3", "rlsuite"):
        mine = [r for r in records if r["library"] == library]
        if mine:
            summary[library] = {
                "sps": c.median([c.throughput(r) for r in mine]),
                "first": c.median([c.first_step(r["evaluations"], THRESHOLD) for r in mine]),
                "sustained": c.median([c.sustained_step(r["evaluations"], THRESHOLD) for r in mine]),
                "total": c.median([r["total_seconds"] for r in mine]),
                "train": c.median([r["train_seconds"] for r in mine]),
                "eval": c.median([r["eval_seconds"] for r in mine]),
                "final": c.median([c.final_mean(r["evaluations"]) for r in mine]),
                "sustaining": sum(sustains(r) for r in mine),
                "seeds": len(mine),
            }
    return summary


def table(records: list[dict], summary: dict) -> str:
    header = ["library", "seed", "train steps/s", "first >= 475", "sustained >= 475", "total s", "train s", "eval s", "final eval"]
    rows = []
    for library, s in summary.items():
        for r in (r for r in records if r["library"] == library):
            rows.append([library, str(r["seed"]), c.fmt(c.throughput(r), "int"),
                         c.fmt(c.first_step(r["evaluations"], THRESHOLD), "steps"),
                         c.fmt(c.sustained_step(r["evaluations"], THRESHOLD), "steps"), c.fmt(r["total_seconds"]),
                         c.fmt(r["train_seconds"]), c.fmt(r["eval_seconds"]), c.fmt(c.final_mean(r["evaluations"]))])
        rows.append([f"**{library}**", "median", c.fmt(s["sps"], "int"), c.fmt(s["first"], "steps"), c.fmt(s["sustained"], "steps"),
                     c.fmt(s["total"]), c.fmt(s["train"]), c.fmt(s["eval"]), c.fmt(s["final"])])
    if len(summary) == 2:
        sb3, mine = summary["sb3"], summary["rlsuite"]
        rows.append(["**rlsuite/SB3**", "median", *(c.fmt(c.ratio(mine[k], sb3[k]), "ratio")
                                                     for k in ("sps", "first", "sustained", "total", "train", "eval", "final"))])
    return c.markdown_table(header, rows)


def targets(summary: dict, steps: int) -> str:
    counts = ", ".join(f"{library} {s['sustaining']}/{s['seeds']}" for library, s in summary.items())
    lines = [f"- seeds sustaining >= 475 within {steps:,} steps: {counts}"]
    if len(summary) < 2:
        return "\n".join([*lines, "- targets: n/a (only one library was run)"])
    sb3, mine = summary["sb3"], summary["rlsuite"]
    sps_ratio = c.ratio(mine["sps"], sb3["sps"])
    lines += [
        c.target_line("training throughput >= 2x SB3's", sps_ratio >= 2.0, c.fmt(sps_ratio, "ratio")),
        c.target_line(f"seeds sustaining 475 within {steps:,} steps >= SB3's", mine["sustaining"] >= sb3["sustaining"],
                      f"rlsuite {mine['sustaining']} vs SB3 {sb3['sustaining']}"),
        f"- note: rlsuite evaluates at the end of the {PHASE}-step collection that crosses each multiple of "
        f"{EVAL_EVERY:,} (SB3 on the multiple), so its evaluation steps can be up to {PHASE - 1} later.",
    ]
    return "\n".join(lines)


def main() -> None:
    args = c.parse_args(__doc__, seeds=3, steps=50_000)
    torch.set_num_threads(1)
    c.warm_up_torch()
    print(f"DQN {ENV_ID}: {args.seeds} seed(s) x {args.steps:,} steps, libraries: {', '.join(c.libraries(args.only))}")
    records = run_all(args.seeds, args.steps, args.only)
    summary = summarize(records)
    what = f"{ENV_ID}, {args.seeds} seed(s) x {args.steps:,} steps, eval every {EVAL_EVERY:,} steps ({EVAL_EPISODES} episodes)"
    title = c.section_title("dqn_cartpole.py", what, args.standard)
    body = "\n\n".join([c.environment_line(), table(records, summary), targets(summary, args.steps)])
    print("\n" + title + "\n\n" + body)
    if not args.no_write:
        c.append_results(title, body)


if __name__ == "__main__":
    main()
