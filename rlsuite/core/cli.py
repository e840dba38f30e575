"""The `rlsuite` command: train, eval, resume, plot, list.

Config flags are generated from each algorithm's config dataclass by tyro, so every field is a
`--field value` flag with its docstring as help (`rlsuite train ppo --help`).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from rich.console import Console

from rlsuite.core import api, registry
from rlsuite.core.errors import RLSuiteError

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


BOOL_WORDS = {"true": "True", "yes": "True", "1": "True", "false": "False", "no": "False", "0": "False"}


def _normalize_bools(config_cls: type, args: list[str]) -> list[str]:
    """Accept --flag true/false/yes/no/1/0 for bool fields (tyro itself takes only True/False)."""
    bools = {f"--{f.name}" for f in dataclasses.fields(config_cls) if f.type in (bool, "bool")}
    bools |= {name.replace("_", "-") for name in bools}
    out = list(args)
    for i, token in enumerate(out[:-1]):
        if token in bools and out[i + 1].lower() in BOOL_WORDS:
            out[i + 1] = BOOL_WORDS[out[i + 1].lower()]
    return out


def _config_from_args(algo: str, config_file: str | None, args: list[str]):
    """Defaults < preset(env) < YAML < flags; tyro parses the flags against the dataclass."""
    import tyro

    module = registry.get(algo)
    env_parser = argparse.ArgumentParser(add_help=False)
    env_parser.add_argument("--env")
    known, _ = env_parser.parse_known_args(args)
    base = api.make_config(algo, env=known.env, config_file=config_file)
    return tyro.cli(
        module.Config,
        args=_normalize_bools(module.Config, args),
        default=base,
        prog=f"rlsuite train {algo}",
        description=f"{registry.ALGORITHMS[algo].summary}. Defaults shown include the preset for --env.",
        config=(tyro.conf.FlagConversionOff,),
    )


def cmd_train(ns: argparse.Namespace, rest: list[str]) -> int:
    config = _config_from_args(ns.algo, ns.config, rest)
    run = registry.get(ns.algo).train(config, ns.run_dir, overwrite=ns.overwrite, quiet=ns.quiet)
    _report(run)
    return 0


def cmd_resume(ns: argparse.Namespace, rest: list[str]) -> int:
    overrides = {"total_steps": ns.total_steps} if ns.total_steps else {}
    run = api.resume(ns.run_dir, quiet=ns.quiet, **overrides)
    _report(run)
    return 0


def _report(run) -> None:
    console.print(run.summary())
    if run.interrupted:
        console.print(f"Resume with: [bold]rlsuite resume {run.dir}[/]")
    console.print(f"Run directory: [bold]{run.dir}[/]  (learning curve: {run.dir / 'curve.png'})")


def cmd_eval(ns: argparse.Namespace, rest: list[str]) -> int:
    import gymnasium as gym
    import numpy as np

    from rlsuite.core.evaluation import record_video, run_episodes
    from rlsuite.envs.vector import make_vector_env

    policy = api.load(ns.run_dir)
    act = lambda obs: policy.act(obs, deterministic=not ns.stochastic)  # noqa: E731
    envs = make_vector_env(policy.config.env, ns.episodes, default_time_limit=getattr(policy.config, "eval_max_steps", 1_000))
    try:
        returns, lengths = run_episodes(act, envs, ns.seed)
    finally:
        envs.close()
    console.print(
        f"{policy.algo} on {policy.config.env}: mean return {returns.mean():.2f} ± {returns.std():.2f} "
        f"(min {returns.min():.1f}, max {returns.max():.1f}) over {ns.episodes} episodes, mean length {np.mean(lengths):.1f}"
    )
    if isinstance(policy.observation_space, gym.spaces.Discrete):
        from rlsuite.envs.gridworlds import greedy_path

        states, picture = greedy_path(policy.config.env, lambda s: int(policy.act(s)), max_steps=getattr(policy.config, "eval_max_steps", 200), seed=ns.seed)
        console.print(f"Greedy path ({len(states) - 1} steps):\n{picture}")
    if ns.video:
        total, steps = record_video(act, policy.config.env, ns.video, seed=ns.seed)
        console.print(f"Wrote {ns.video} (return {total:.1f}, {steps} steps)")
    return 0


def cmd_plot(ns: argparse.Namespace, rest: list[str]) -> int:
    from rlsuite.core.plotting import plot_runs

    missing = [d for d in ns.run_dirs if not Path(d).is_dir()]
    if missing:
        raise RLSuiteError(f"no such run directory: {', '.join(missing)}")
    out = plot_runs([Path(d) for d in ns.run_dirs], Path(ns.out), title=ns.title, metric=ns.metric, logy=ns.logy)
    console.print(f"Wrote {out}")
    return 0


def cmd_list(ns: argparse.Namespace, rest: list[str]) -> int:
    import gymnasium as gym

    console.print("[bold]Algorithms[/]")
    for name, entry in registry.ALGORITHMS.items():
        console.print(f"  {name:<20} {entry.summary}")
    console.print("\n[bold]Environments[/] (Gymnasium registry; presets: algorithms with tuned settings)")
    presets: dict[str, list[str]] = {}
    for name in registry.ALGORITHMS:
        for env_id in getattr(registry.get(name), "PRESETS", {}):
            presets.setdefault(env_id, []).append(name)
    for env_id, spec in sorted(gym.registry.items()):
        if spec.namespace is not None or (ns.filter and ns.filter.lower() not in env_id.lower()):
            continue
        entry = spec.entry_point if isinstance(spec.entry_point, str) else getattr(spec.entry_point, "__module__", "")
        family = entry.split(":")[0].replace("gymnasium.envs.", "").split(".")[0]
        tuned = f"  presets: {', '.join(presets[env_id])}" if env_id in presets else ""
        console.print(f"  {env_id:<34} {family}{tuned}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlsuite", description="Reinforcement learning from bandits to GRPO.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train an algorithm; config fields are --field value flags", add_help=False)
    p.add_argument("algo", help="algorithm name (see `rlsuite list`)")
    p.add_argument("--config", help="YAML file of config fields (flags override it)")
    p.add_argument("--run-dir", help="where to write the run (default runs/ALGO-ENV-seedN)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="evaluate a trained policy, optionally writing a GIF")
    p.add_argument("run_dir")
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--seed", type=int, default=12345, help="seed of the evaluation episodes")
    p.add_argument("--stochastic", action="store_true", help="sample actions instead of taking the mode")
    p.add_argument("--video", help="write one episode to this GIF")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("resume", help="continue an interrupted or finished run")
    p.add_argument("run_dir")
    p.add_argument("--total-steps", type=int, help="new, larger step budget")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("plot", help="draw learning curves of runs to a PNG (mean and spread over seeds)")
    p.add_argument("run_dirs", nargs="+")
    p.add_argument("--out", default="curves.png")
    p.add_argument("--title")
    p.add_argument("--metric", help="a metrics.csv column to plot instead of the evaluation return, e.g. charts/episodic_return")
    p.add_argument("--logy", action="store_true", help="logarithmic y axis (e.g. for DP's --metric max_change)")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("list", help="list algorithms and environments")
    p.add_argument("--filter", help="only environments whose id contains this")
    p.set_defaults(func=cmd_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    ns, rest = parser.parse_known_args(argv)
    if ns.command != "train" and rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if ns.command == "eval" and ns.episodes < 1:
        parser.error("--episodes must be >= 1")
    try:
        return ns.func(ns, rest)
    except RLSuiteError as exc:
        err_console.print(f"[bold red]error:[/] {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("aborted.")
        return 130


if __name__ == "__main__":
    sys.exit(main())
