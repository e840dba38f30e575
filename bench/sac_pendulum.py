"""SAC, TD3 and DDPG on Pendulum-v1: rlsuite against Stable-Baselines3, same hyperparameters, same run.

Each part compares one algorithm, with rl-baselines3-zoo's Pendulum-v1 hyperparameters in both
libraries (rlsuite's preset "Pendulum-v1" of the algorithm, checked field by field against the SB3
model before anything runs; a mismatch stops the script):

- `sac`: SB3's SAC defaults with the zoo's learning rate 1e-3: buffer 1e6, batch 256, 100 random
  warm-up steps, one gradient step per env step, tau 0.005, gamma 0.99, automatic entropy
  coefficient (starting at 1, target entropy -dim(A)), twin critics, 256-256 ReLU MLPs; 20,000 steps.
- `td3`: gamma 0.98, buffer 200k, 10,000 random warm-up steps, Gaussian action noise of std 0.1
  (on actions scaled to [-1, 1]), learning rate 1e-3, 400-300 ReLU MLPs, SB3's TD3 defaults
  otherwise (batch 256, tau 0.005, policy delay 2, target smoothing 0.2 clipped at 0.5); 30,000 steps.
- `ddpg`: the same settings as td3 with SB3's DDPG (one critic, no delay, no smoothing); 30,000 steps.

One env per run; SB3 on its own DummyVecEnv (make_vec_env), rlsuite on its own vector env, both on
CPU. 3 seeds per library, alternating (SB3 seed 0, rlsuite seed 0, SB3 seed 1, ...), one torch
thread. Every 2,000 env steps, 10 deterministic episodes on a separate env (SB3: evaluate_policy on
one env, episodes one after another, as the zoo does; rlsuite: its built-in evaluation, the
episodes at once as one vector env). With one env and train_freq 1 both libraries evaluate on the
multiples themselves.

Measured per library (per seed, and the median over seeds):
- training throughput: env steps per second of training wall-clock, evaluation time excluded
  (SB3: minus the time inside our evaluation callback; rlsuite: run.timing["train_seconds"], which
  also leaves out checkpointing);
- the evaluation mean at the end of the budget (20k for SAC, 30k for TD3 and DDPG);
- env steps at the first evaluation whose mean reached the part's threshold.

Targets (printed as MET/MISSED):
- sac: rlsuite's median training throughput >= 2x SB3's; rlsuite's evaluation mean >= -200 at
  20k on 3 of 3 seeds;
- td3: rlsuite's evaluation mean >= -200 at 30k on 3 of 3 seeds (throughput ratio reported);
- ddpg: rlsuite's evaluation mean >= -300 at 30k on 3 of 3 seeds (throughput ratio reported).

Each part appends its own section to RESULTS.md.

Run:  python bench/sac_pendulum.py                          # full: sac, td3, ddpg; 3 seeds each
      python bench/sac_pendulum.py --part sac                # SAC only (about 20 minutes)
      python bench/sac_pendulum.py --part td3,ddpg --seeds 1 --no-write
      python bench/sac_pendulum.py --steps 1000 --eval-every 500 --seeds 1 --no-write   # smoke test
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import numpy as np
import torch
from stable_baselines3 import DDPG, SAC, TD3
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.noise import NormalActionNoise

import _common as c

ENV_ID = "Pendulum-v1"
EVAL_EVERY = 2_000
EVAL_EPISODES = 10
SEEDS = 3
EVAL_SEED_OFFSET = 10_000  # the eval env's seed, so it never replays the training env's episodes

# rl-baselines3-zoo's hyperparams for Pendulum-v1, in SB3's names (SB3's defaults fill the rest).
ZOO_SAC = dict(learning_rate=1e-3)
ZOO_TD3 = dict(gamma=0.98, buffer_size=200_000, learning_starts=10_000, gradient_steps=1, train_freq=1, learning_rate=1e-3,
               policy_kwargs=dict(net_arch=[400, 300]))
ZOO_NOISE_STD = 0.1  # noise_type normal, noise_std 0.1


@dataclass(frozen=True)
class Part:
    name: str  # the rlsuite registry name
    title: str
    steps: int
    threshold: float
    throughput_target: bool
    sb3_class: type
    sb3_kwargs: dict


PARTS = {
    "sac": Part("sac", "SAC", 20_000, -200.0, True, SAC, ZOO_SAC),
    "td3": Part("td3", "TD3", 30_000, -200.0, False, TD3, ZOO_TD3),
    "ddpg": Part("ddpg", "DDPG", 30_000, -300.0, False, DDPG, ZOO_TD3),
}


def build_sb3(part: Part, seed: int):
    env = make_vec_env(ENV_ID, n_envs=1, seed=seed)  # DummyVecEnv
    kwargs = dict(part.sb3_kwargs)
    if part.name != "sac":
        n_actions = env.action_space.shape[0]
        kwargs["action_noise"] = NormalActionNoise(np.zeros(n_actions), ZOO_NOISE_STD * np.ones(n_actions))
    model = part.sb3_class("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **kwargs)
    eval_env = make_vec_env(ENV_ID, n_envs=1, seed=seed + EVAL_SEED_OFFSET)
    return model, eval_env


def rlsuite_config(spec, seed: int, steps: int, eval_every: int):
    """The algorithm's preset for Pendulum-v1; only the seed, budget, evaluation and device change."""
    return spec.preset(ENV_ID, seed=seed, total_steps=steps, eval_every=eval_every, eval_episodes=EVAL_EPISODES,
                       device="cpu", torch_threads=1)


# --------------------------------------------------------------------------- same settings, checked


def hidden_widths(net: torch.nn.Module) -> tuple[int, ...]:
    """Output widths of a network's Linear layers, its last one (the output layer) left out."""
    widths = [m.out_features for m in net.modules() if isinstance(m, torch.nn.Linear)]
    return tuple(widths[:-1])


def smoothing(std: float, clip: float) -> tuple[float, float]:
    return (float(std), float(clip)) if std > 0 and clip > 0 else (0.0, 0.0)


def settings_pairs(part: Part, config, model) -> list[tuple[str, object, object]]:
    """(setting, rlsuite's value, SB3's value) for every hyperparameter that must agree."""
    pairs = [
        ("learning_rate", config.learning_rate, model.learning_rate),
        ("buffer_size", config.buffer_size, model.buffer_size),
        ("batch_size", config.batch_size, model.batch_size),
        ("learning_starts", config.learning_starts, model.learning_starts),
        ("train_freq", config.train_freq, model.train_freq.frequency),
        ("gradient_steps", config.gradient_steps, model.gradient_steps),
        ("tau", config.tau, model.tau),
        ("gamma", config.gamma, model.gamma),
        ("num_envs", config.num_envs, model.n_envs),
        ("n_step", config.n_step, getattr(model.replay_buffer, "n_steps", 1)),
        ("activation", config.activation, "relu" if model.policy.activation_fn is torch.nn.ReLU else str(model.policy.activation_fn)),
    ]
    if part.name == "sac":
        sb3_ent = model.ent_coef
        pairs += [
            ("entropy coefficient", "auto" if config.ent_coef == 0 else config.ent_coef, sb3_ent if isinstance(sb3_ent, str) else float(sb3_ent)),
            ("initial entropy coefficient", config.init_ent_coef, float(model.log_ent_coef.exp().item()) if model.log_ent_coef is not None else None),
            ("target entropy", config.target_entropy if config.target_entropy is not None else -float(np.prod(model.action_space.shape)),
             float(model.target_entropy)),
            ("target_update_interval", config.target_update_interval, model.target_update_interval),
            ("critics", config.critics, model.policy.critic.n_critics),
            # SB3's SAC actor: latent_pi holds the hidden layers only (the mean and log-std heads are apart).
            ("actor hidden sizes", tuple(config.hidden_sizes),
             tuple(m.out_features for m in model.policy.actor.latent_pi if isinstance(m, torch.nn.Linear))),
            ("critic hidden sizes", tuple(config.hidden_sizes), hidden_widths(model.policy.critic.q_networks[0])),
        ]
    else:
        noise = model.action_noise
        pairs += [
            ("action noise std", config.action_noise, float(np.unique(noise._sigma)[0]) if isinstance(noise, NormalActionNoise) else None),
            ("critics", config.critics, model.policy.critic.n_critics),
            ("policy_delay", config.policy_delay, model.policy_delay),
            # SB3's DDPG passes target_policy_noise 0.1 with target_noise_clip 0, i.e. no smoothing:
            # compare the smoothing in effect, (std, clip), with std 0 whenever the clip is 0.
            ("target policy smoothing (std, clip)", smoothing(config.target_policy_noise, config.target_noise_clip),
             smoothing(model.target_policy_noise, model.target_noise_clip)),
            ("actor hidden sizes", tuple(config.hidden_sizes), hidden_widths(model.policy.actor.mu)),
            ("critic hidden sizes", tuple(config.hidden_sizes), hidden_widths(model.policy.critic.q_networks[0])),
        ]
    return pairs


def check_same_settings(part: Part, spec) -> None:
    """Build both sides once and compare; exit naming every difference."""
    config = rlsuite_config(spec, 0, part.steps, EVAL_EVERY)
    model, eval_env = build_sb3(part, 0)
    differences = [f"{name}: rlsuite {mine!r}, SB3 {theirs!r}" for name, mine, theirs in settings_pairs(part, config, model)
                   if not (mine == theirs or (isinstance(mine, float) and isinstance(theirs, float) and np.isclose(mine, theirs)))]
    model.get_env().close()
    eval_env.close()
    if differences:
        sys.exit(f"error: rlsuite's {part.name} preset for {ENV_ID} differs from the zoo's SB3 settings:\n  - " + "\n  - ".join(differences))


# --------------------------------------------------------------------------- running


def import_spec(name: str):
    try:
        from rlsuite.core import registry

        return registry.spec(name)
    except (ImportError, KeyError) as err:
        sys.exit(f"error: cannot load rlsuite's {name} ({err}). Use --only sb3 to run the Stable-Baselines3 side alone.")


def run_part(part: Part, seeds: int, steps: int, eval_every: int, only: str | None) -> list[dict]:
    """SB3 seed 0, rlsuite seed 0, SB3 seed 1, ..."""
    spec = import_spec(part.name) if only != "sb3" else None
    if only is None:
        check_same_settings(part, spec)
    records = []
    for seed in range(seeds):
        for library in c.libraries(only):
            if library == "sb3":
                record = c.run_sb3(seed, steps, lambda s: build_sb3(part, s), eval_every, EVAL_EPISODES)
            else:
                record = c.run_rlsuite(spec, rlsuite_config(spec, seed, steps, eval_every), seed)
            c.progress(record, part.threshold)
            records.append(record)
    return records


# --------------------------------------------------------------------------- summary


def eval_at(record: dict, steps: int) -> float:
    """Mean return of the evaluation at the end of the budget (NaN when there was none there)."""
    evals = record["evaluations"]
    return evals[-1][1] if evals and evals[-1][0] == steps else float("nan")


def summarize(records: list[dict], part: Part, steps: int) -> dict:
    summary = {}
    for library in ("sb3", "rlsuite"):
        mine = [r for r in records if r["library"] == library]
        if mine:
            finals = [eval_at(r, steps) for r in mine]
            summary[library] = {
                "sps": c.median([c.throughput(r) for r in mine]),
                "final": c.median(finals),
                "first": c.median([c.first_step(r["evaluations"], part.threshold) for r in mine]),
                "sustained": c.median([c.sustained_step(r["evaluations"], part.threshold) for r in mine]),
                "total": c.median([r["total_seconds"] for r in mine]),
                "train": c.median([r["train_seconds"] for r in mine]),
                "eval": c.median([r["eval_seconds"] for r in mine]),
                "reaching": sum(f >= part.threshold for f in finals),
                "seeds": len(mine),
            }
    return summary


def table(records: list[dict], summary: dict, part: Part, steps: int) -> str:
    t = f"{part.threshold:g}"
    header = ["library", "seed", "train steps/s", f"eval at {steps:,}", f"first >= {t}", f"sustained >= {t}",
              "total s", "train s", "eval s"]
    rows = []
    for library, s in summary.items():
        for r in (r for r in records if r["library"] == library):
            rows.append([library, str(r["seed"]), c.fmt(c.throughput(r), "int"), c.fmt(eval_at(r, steps)),
                         c.fmt(c.first_step(r["evaluations"], part.threshold), "steps"),
                         c.fmt(c.sustained_step(r["evaluations"], part.threshold), "steps"),
                         c.fmt(r["total_seconds"]), c.fmt(r["train_seconds"]), c.fmt(r["eval_seconds"])])
        rows.append([f"**{library}**", "median", c.fmt(s["sps"], "int"), c.fmt(s["final"]), c.fmt(s["first"], "steps"),
                     c.fmt(s["sustained"], "steps"), c.fmt(s["total"]), c.fmt(s["train"]), c.fmt(s["eval"])])
    if len(summary) == 2:
        sb3, mine = summary["sb3"], summary["rlsuite"]
        ratio = lambda k: c.fmt(c.ratio(mine[k], sb3[k]), "ratio")  # noqa: E731
        rows.append(["**rlsuite/SB3**", "median", ratio("sps"), "", ratio("first"), ratio("sustained"),
                     ratio("total"), ratio("train"), ratio("eval")])
    return c.markdown_table(header, rows)


def targets(summary: dict, part: Part, steps: int) -> str:
    t = f"{part.threshold:g}"
    counts = ", ".join(f"{library} {s['reaching']}/{s['seeds']}" for library, s in summary.items())
    lines = [f"- seeds with evaluation mean >= {t} at {steps:,} steps: {counts}"]
    if "rlsuite" in summary:
        mine = summary["rlsuite"]
        lines.append(c.target_line(f"rlsuite evaluation mean >= {t} at {steps:,} on {mine['seeds']} of {mine['seeds']} seeds",
                                   mine["reaching"] == mine["seeds"], f"{mine['reaching']} of {mine['seeds']}"))
    if len(summary) == 2:
        sps_ratio = c.ratio(summary["rlsuite"]["sps"], summary["sb3"]["sps"])
        if part.throughput_target:
            lines.insert(1, c.target_line("training throughput >= 2x SB3's", sps_ratio >= 2.0, c.fmt(sps_ratio, "ratio")))
        else:
            lines.append(f"- training throughput, rlsuite/SB3 (no target): {c.fmt(sps_ratio, 'ratio')}")
    else:
        lines.append("- throughput: n/a (only one library was run)")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", "--algo", default="sac,td3,ddpg",
                        help="comma-separated parts to run, of sac, td3, ddpg (default: all three)")
    parser.add_argument("--seeds", type=int, default=SEEDS, help=f"seeds per library (default {SEEDS})")
    parser.add_argument("--steps", type=int, help="env steps per run (default: 20,000 for sac, 30,000 for td3 and ddpg)")
    parser.add_argument("--eval-every", type=int, default=EVAL_EVERY, help=f"env steps between evaluations (default {EVAL_EVERY:,})")
    parser.add_argument("--no-write", action="store_true", help="print only; do not append to bench/RESULTS.md")
    parser.add_argument("--only", choices=("sb3", "rlsuite"), help="run one library only (for checking the harness; implies --no-write)")
    args = parser.parse_args()
    args.parts = [p.strip() for p in args.part.split(",") if p.strip()]
    unknown = [p for p in args.parts if p not in PARTS]
    if unknown or not args.parts:
        parser.error(f"--part takes a comma-separated list of {', '.join(PARTS)}; got {args.part!r}")
    for part in args.parts:
        steps = args.steps or PARTS[part].steps
        if args.eval_every <= 0 or steps % args.eval_every:
            parser.error(f"--eval-every ({args.eval_every:,}) must divide the budget ({steps:,} steps for {part}), "
                         "so that both libraries evaluate at its end")
    if args.only:
        args.no_write = True
    args.standard = args.seeds == SEEDS and args.steps is None and args.eval_every == EVAL_EVERY
    return args


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    c.warm_up_torch()
    for name in args.parts:
        part = PARTS[name]
        steps = args.steps or part.steps
        print(f"{part.title} {ENV_ID}: {args.seeds} seed(s) x {steps:,} steps, libraries: {', '.join(c.libraries(args.only))}",
              flush=True)
        records = run_part(part, args.seeds, steps, args.eval_every, args.only)
        summary = summarize(records, part, steps)
        what = (f"{part.title} on {ENV_ID}, {args.seeds} seed(s) x {steps:,} steps, "
                f"eval every {args.eval_every:,} steps ({EVAL_EPISODES} episodes)")
        title = c.section_title("sac_pendulum.py", what, args.standard)
        body = "\n\n".join([c.environment_line(), table(records, summary, part, steps), targets(summary, part, steps)])
        print("\n" + title + "\n\n" + body + "\n", flush=True)
        if not args.no_write:
            c.append_results(title, body)


if __name__ == "__main__":
    main()
