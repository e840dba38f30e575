"""The `rlsuite` command: train, eval, resume, plot, sweep, list.

Config flags are generated from each algorithm's config dataclass by tyro, so every field is a
`--field value` flag with its docstring as help (`rlsuite train ppo --help`). Only what a command
needs is imported: `rlsuite --help` and `rlsuite list` never import torch.

Exit codes: 0 finished, 2 bad input, 3 diverged (NaN), 4 interrupted with a resumable
checkpoint (Ctrl-C or SIGTERM), 130 aborted by a second Ctrl-C.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from rlsuite.errors import EXIT_ABORTED, EXIT_INTERRUPTED, ConfigError, DataError, RLSuiteError, UnknownNameError

BOOL_WORDS = {"true": "True", "yes": "True", "1": "True", "false": "False", "no": "False", "0": "False"}


def _consoles():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True), Console(stderr=True, highlight=False, soft_wrap=True)


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

    from rlsuite import api
    from rlsuite.core import registry

    spec = registry.spec(algo)
    env_parser = argparse.ArgumentParser(add_help=False)
    env_parser.add_argument("--env")
    env_parser.add_argument("--task")  # language-model algorithms key their presets by task
    known, _ = env_parser.parse_known_args(args)
    base = api.make_config(algo, env=known.task or known.env, config_file=config_file)
    return tyro.cli(
        spec.config,
        args=_normalize_bools(spec.config, args),
        default=base,
        prog=f"rlsuite train {algo}",
        description=f"{spec.summary}. Defaults shown include the preset for --env (--task for language models).",
        config=(tyro.conf.FlagConversionOff,),
    )


def _report(run) -> int:
    console, _ = _consoles()
    console.print(run.summary())
    if run.interrupted:
        console.print(f"Resume with: [bold]rlsuite resume {run.dir}[/]")
    console.print(f"Run directory: [bold]{run.dir}[/]  (learning curve: {run.dir / 'curve.png'})")
    return EXIT_INTERRUPTED if run.interrupted else 0


def cmd_train(ns: argparse.Namespace, rest: list[str]) -> int:
    from rlsuite.core import registry

    config = _config_from_args(ns.algo, ns.config, rest)
    return _report(registry.spec(ns.algo).train(config, ns.run_dir, overwrite=ns.overwrite, quiet=ns.quiet))


def cmd_resume(ns: argparse.Namespace, rest: list[str]) -> int:
    from rlsuite import api

    return _report(api.resume(ns.run_dir, quiet=ns.quiet, budget=ns.budget))


def cmd_eval(ns: argparse.Namespace, rest: list[str]) -> int:
    import numpy as np
    from gymnasium import spaces

    from rlsuite import api
    from rlsuite.envs.evaluation import quiet_rendering, record_video, run_episodes
    from rlsuite.envs.vector import make_vector_env

    console, _ = _consoles()
    policy = api.load(ns.run_dir)
    if hasattr(policy, "answer"):
        return _eval_text(ns, policy, console)
    if hasattr(policy, "score"):
        return _eval_reward_model(ns, policy, console)
    env_id = policy.config.env
    act = lambda obs: policy.act(obs, deterministic=not ns.stochastic)  # noqa: E731
    if hasattr(policy.agent, "num_agents"):
        return _eval_team(ns, policy, act, console)
    max_steps = getattr(policy.config, "eval_max_steps", 1_000)
    envs = make_vector_env(env_id, ns.episodes, default_time_limit=max_steps)
    try:
        returns, lengths = run_episodes(act, envs, ns.seed)
    finally:
        envs.close()
    console.print(
        f"{policy.algo} on {env_id}: mean return {returns.mean():.2f} ± {returns.std():.2f} "
        f"(min {returns.min():.1f}, max {returns.max():.1f}) over {ns.episodes} episodes, mean length {np.mean(lengths):.1f}"
    )
    if isinstance(policy.observation_space, spaces.Discrete):
        from rlsuite.envs.gridworlds import greedy_path

        states, picture = greedy_path(env_id, lambda s: int(policy.act(s)), max_steps=max_steps, seed=ns.seed)
        console.print(f"Greedy path ({len(states) - 1} steps):\n{picture}")
    if ns.video:
        quiet_rendering()
        total, steps = record_video(act, env_id, ns.video, seed=ns.seed)
        console.print(f"Wrote {ns.video} (return {total:.1f}, {steps} steps)")
    return 0


def _eval_team(ns: argparse.Namespace, policy, act, console) -> int:
    """A multi-agent run: team and per-agent returns, each agent acting on its own observation."""
    from rlsuite.envs.evaluation import record_team_video, run_team_episodes
    from rlsuite.envs.multiagent import MultiAgentVectorEnv, parse_env_kwargs

    env_id = policy.config.env
    env_kwargs = parse_env_kwargs(getattr(policy.config, "env_kwargs", ()))
    envs = MultiAgentVectorEnv(env_id, ns.episodes, **env_kwargs)
    try:
        team, agents, lengths = run_team_episodes(act, envs, ns.seed)
    finally:
        envs.close()
    console.print(f"{policy.algo} on {env_id}: team return {team.mean():.2f} ± {team.std():.2f} (min {team.min():.1f}, max {team.max():.1f}) "
                  f"over {ns.episodes} episodes, mean length {lengths.mean():.1f}")
    console.print("  " + ", ".join(f"{name} {agents[:, i].mean():.2f}" for i, name in enumerate(envs.agents)))
    if ns.video:
        total, steps = record_team_video(act, env_id, ns.video, seed=ns.seed, env_kwargs=env_kwargs)
        console.print(f"Wrote {ns.video} (team return {total:.1f}, {steps} steps)")
    return 0


def _eval_text(ns: argparse.Namespace, policy, console) -> int:
    """A language-model run: answer --prompt, or accuracy@1 (greedy) and pass@k on the test split."""
    from rlsuite.lm import runtime

    if ns.prompt is not None:
        console.print(ns.prompt, markup=False, style="bold")
        for i in range(ns.k if ns.stochastic else 1):  # --stochastic: k samples; else the greedy answer
            console.print(policy.answer(ns.prompt, temperature=ns.temperature if ns.stochastic else 0.0, seed=ns.seed + i), markup=False)
        return 0
    samples = ns.samples or policy.config.eval_size
    config = dataclasses.replace(policy.config, test_size=max(samples, policy.config.test_size), eval_size=samples)
    try:
        run = runtime.prepare(config, policy.model, policy.tokenizer, next(policy.model.parameters()).device)
    except (DataError, UnknownNameError) as exc:
        raise RLSuiteError(f"{policy.config.task} has no verifier to score answers with, so there is no accuracy to report "
                           f"(its held-out metrics are in {ns.run_dir}/eval.csv); see answers with --prompt QUESTION."
                           + (f" Loading it as a verifiable task said: {exc}" if isinstance(exc, DataError) else "")) from None
    rows, prompts = run.task.test[:config.eval_size], run.test_prompts[:config.eval_size]
    greedy, shown = runtime.evaluate(run, policy.model, rows, prompts, samples=3)
    sampled, _ = runtime.evaluate(run, policy.model, rows, prompts, k=ns.k, temperature=ns.temperature)
    n = len(rows)
    half = lambda p: 1.96 * (p * (1 - p) / n) ** 0.5  # noqa: E731  (normal-approximation 95% interval)
    console.print(f"{policy.config.task} test split, {n} prompts: accuracy@1 (greedy) {greedy['accuracy']:.3f} ± {half(greedy['accuracy']):.3f}, "
                  f"pass@{ns.k} {sampled[f'pass@{ns.k}']:.3f} (temperature {ns.temperature}), format {greedy['format']:.3f}, "
                  f"mean completion length {greedy['completion_length']:.1f} tokens")
    for record in shown:
        console.print(f"  {record['problem']} -> {record['completion']}  ({'correct' if record['correct'] else 'wrong'}; answer {record['solution']})",
                      markup=False)
    return 0


def _eval_reward_model(ns: argparse.Namespace, scorer, console) -> int:
    """A reward-model run: pairwise accuracy on its preference task's held-out pairs."""
    from rlsuite.lm import runtime

    if ns.prompt is not None:
        raise RLSuiteError("a reward model scores an answer to a question, not a question alone: in Python, "
                           f"rlsuite.load({str(ns.run_dir)!r}).score(question, answer).")
    samples = ns.samples or scorer.config.eval_size
    config = dataclasses.replace(scorer.config, test_size=max(samples, scorer.config.test_size), eval_size=samples)
    rows = runtime.prepare(config, scorer.model, scorer.tokenizer, scorer.device, preferences="paired").task.test[:samples]
    metrics = scorer.rank(rows)
    console.print(f"{config.task} held-out pairs, {len(rows)}: pairwise accuracy {metrics['accuracy']:.3f}, "
                  f"mean margin r(chosen) - r(rejected) {metrics['margin']:.3f}")
    return 0


def cmd_plot(ns: argparse.Namespace, rest: list[str]) -> int:
    from rlsuite.core.plotting import plot_runs

    missing = [d for d in ns.run_dirs if not Path(d).is_dir()]
    if missing:
        raise RLSuiteError(f"no such run directory: {', '.join(missing)}")
    out = plot_runs([Path(d) for d in ns.run_dirs], Path(ns.out), title=ns.title, metric=ns.metric, logy=ns.logy)
    _consoles()[0].print(f"Wrote {out}")
    return 0


def cmd_sweep(ns: argparse.Namespace, rest: list[str]) -> int:
    from rich.markup import escape

    from rlsuite.scale.sweep import EXIT_TRIALS_FAILED, parse_grid_flags, run_sweep

    grid = parse_grid_flags(ns.grid or [])
    if not grid:
        raise ConfigError("a sweep needs at least one --grid FIELD=V1,V2 (e.g. --grid learning-rate=1e-3,3e-4).")
    config = _config_from_args(ns.algo, ns.config, rest)  # the fixed fields, parsed exactly as `train` parses them
    fixed = [token[2:].split("=")[0] for token in rest if token.startswith("--")]
    result = run_sweep(ns.algo, config, grid, seeds=ns.seeds, sweep_dir=ns.dir, overwrite=ns.overwrite, ray_address=ns.ray_address,
                       metric=ns.metric, mode=ns.mode, max_concurrent=ns.max_concurrent, fixed=fixed, quiet=ns.quiet)
    console, errors = _consoles()
    console.print(result.table())
    for trial in result.failed:
        errors.print(f"[bold red]{trial.status}:[/] {escape(f'{trial.run_dir.name}: {trial.error}')}")
    console.print(f"Sweep directory: [bold]{result.dir}[/]  (summary.csv, trials.csv, curves.png, one run directory per trial)")
    return EXIT_INTERRUPTED if result.interrupted else EXIT_TRIALS_FAILED if result.failed else 0


def cmd_list(ns: argparse.Namespace, rest: list[str]) -> int:
    import gymnasium as gym

    import rlsuite.envs  # noqa: F401  (registers rlsuite's ids)
    from rlsuite.core.registry import ALGORITHMS

    console, _ = _consoles()
    console.print("[bold]Algorithms[/]")
    for name, entry in ALGORITHMS.items():
        console.print(f"  {name:<20} {entry.family:<8} {entry.summary}")
    console.print("\n[bold]Environments[/] (Gymnasium registry; presets: algorithms with tuned settings)")
    presets: dict[str, list[str]] = {}
    for name, entry in ALGORITHMS.items():
        for env_id in entry.preset_envs:
            presets.setdefault(env_id, []).append(name)
    for env_id, spec in sorted(gym.registry.items()):
        if spec.namespace is not None or (ns.filter and ns.filter.lower() not in env_id.lower()):
            continue
        entry_point = spec.entry_point if isinstance(spec.entry_point, str) else getattr(spec.entry_point, "__module__", "")
        family = entry_point.split(":")[0].replace("gymnasium.envs.", "").split(".")[0]
        tuned = f"  presets: {', '.join(presets[env_id])}" if env_id in presets else ""
        console.print(f"  {env_id:<34} {family}{tuned}")
    from rlsuite.envs.multiagent import known_ids

    console.print("\n[bold]Multi-agent environments[/] (PettingZoo parallel API; any module with parallel_env(), '/' for dots)")
    for env_id, note in known_ids():
        if not ns.filter or ns.filter.lower() in env_id.lower():
            tuned = f"  presets: {', '.join(presets[env_id])}" if env_id in presets else ""
            console.print(f"  {env_id:<34} {note}{tuned}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rlsuite",
        description="Reinforcement learning from bandits to GRPO.",
        epilog="Exit codes: 0 finished, 2 bad input, 3 diverged, 4 interrupted (resumable), 130 aborted.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train an algorithm; config fields are --field value flags", add_help=False)
    p.add_argument("algo", help="algorithm name (see `rlsuite list`)")
    p.add_argument("--config", help="YAML file of config fields (flags override it)")
    p.add_argument("--run-dir", help="where to write the run (default runs/ALGO-ENV-seedN)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="evaluate a trained policy, optionally writing a GIF")
    p.add_argument("run_dir")
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--seed", type=int, default=12345, help="seed of the evaluation episodes")
    p.add_argument("--stochastic", action="store_true", help="sample actions instead of taking the mode")
    p.add_argument("--video", help="write one episode to this GIF")
    p.add_argument("--prompt", help="language-model runs: answer this question and show the text")
    p.add_argument("--k", type=int, default=8, help="language-model runs: samples per prompt for pass@k")
    p.add_argument("--temperature", type=float, default=1.0, help="language-model runs: sampling temperature for pass@k and --stochastic")
    p.add_argument("--samples", type=int, help="language-model runs: test prompts to score (default: the run's eval_size)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("resume", help="continue an interrupted or finished run")
    p.add_argument("run_dir")
    p.add_argument("--budget", "--total-steps", dest="budget", type=int,
                   help="new, larger budget in the run's unit (env steps for most algorithms, pulls for bandits)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("plot", help="draw learning curves of runs to a PNG (mean and spread over seeds)")
    p.add_argument("run_dirs", nargs="+")
    p.add_argument("--out", default="curves.png")
    p.add_argument("--title")
    p.add_argument("--metric", help="a metrics.csv column to plot instead of the evaluation return, e.g. charts/episodic_return")
    p.add_argument("--logy", action="store_true", help="logarithmic y axis (e.g. for DP's --metric max_change)")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("sweep", help="train a grid of settings x seeds on Ray Tune; a summary table and curves per setting",
                       allow_abbrev=False,  # else --seed (a config field) would be read as --seeds
                       description="Every combination of the --grid values is trained with each seed as a Ray Tune trial "
                                   "(one CPU each) that writes its own run directory in the sweep directory. Any other "
                                   "--field value flag (see `rlsuite train ALGO --help`) is fixed for every trial.",
                       epilog="Example: rlsuite sweep ppo --env CartPole-v1 --grid learning-rate=1e-3,3e-4 --grid gamma=0.98,0.99 "
                              "--seeds 3 --total-steps 50000. Exit codes: 1 some trials failed (summary.csv says why), "
                              "4 interrupted by Ctrl-C. See docs/sweep.md.")
    p.add_argument("algo", help="algorithm name (see `rlsuite list`)")
    p.add_argument("--grid", action="append", metavar="FIELD=V1,V2",
                   help="a config field and the values to try, comma-separated (a tuple value space-separated: "
                        "--grid hidden-sizes='64 64,128 128'); repeat for more fields: their cartesian product is swept")
    p.add_argument("--seeds", type=int, default=3, help="seeds per setting: --seed, --seed + 1, ... (default 3: seeds 1, 2, 3)")
    p.add_argument("--dir", help="sweep directory (default sweeps/ALGO-ENV)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing sweep directory (only what a sweep wrote in it)")
    p.add_argument("--ray-address", help="Ray cluster to join: 'auto' for the one `ray start` made here, or HOST:PORT "
                                         "(default: a local Ray instance, or RAY_ADDRESS when set)")
    p.add_argument("--metric", help="rank by this eval.csv or metrics.csv column's final value instead of the evaluation headline "
                                    "(e.g. bandit/average_reward for the bandits)")
    p.add_argument("--mode", choices=("max", "min"), default="max", help="whether a higher (max) or lower (min) value is better")
    p.add_argument("--max-concurrent", type=int, help="run at most this many trials at once (default: as many as the CPUs allow)")
    p.add_argument("--config", help="YAML file of config fields for every trial (flags override it)")
    p.add_argument("--quiet", action="store_true", help="no line per finished trial")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("list", help="list algorithms and environments")
    p.add_argument("--filter", help="only environments whose id contains this")
    p.set_defaults(func=cmd_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    ns, rest = parser.parse_known_args(argv)
    if ns.command not in ("train", "sweep") and rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if ns.command == "eval" and (ns.episodes < 1 or ns.k < 1 or (ns.samples is not None and ns.samples < 1)):
        parser.error("--episodes, --k and --samples must be >= 1")
    if ns.command == "eval" and ns.temperature <= 0:
        parser.error("--temperature must be > 0 (greedy decoding is what accuracy@1 uses)")
    if ns.command == "resume" and ns.budget is not None and ns.budget < 1:
        parser.error("--budget must be >= 1")
    try:
        return ns.func(ns, rest)
    except RLSuiteError as exc:
        from rich.markup import escape  # messages hold brackets (rlsuite[ray], [-1, 1]) that are not markup

        _consoles()[1].print(f"[bold red]error:[/] {escape(str(exc))}")
        return exc.exit_code
    except KeyboardInterrupt:
        _consoles()[1].print("aborted.")
        return EXIT_ABORTED


if __name__ == "__main__":
    sys.exit(main())
