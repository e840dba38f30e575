"""BenchMARL's MAPPO on PettingZoo MPE simple_spread: the reference runner for rlsuite's MAPPO benchmark.

Runs in its own virtual environment (``/work/benchmarl-venv``, outside the repository, never committed),
because BenchMARL pins torchrl<0.12 and lists torchvision, neither of which belongs in rlsuite's venv:

    /work/benchmarl-venv/bin/python bench/_benchmarl_spread.py --seed 0 --frames 60000
    /work/benchmarl-venv/bin/python bench/_benchmarl_spread.py --seed 0 --random      # uniform-random baseline

It trains BenchMARL's MAPPO (``MappoConfig``/``ExperimentConfig``/``MlpConfig`` from BenchMARL's own yaml
defaults) on ``PettingZooTask.SIMPLE_SPREAD`` with N=3, local_ratio=0.5, max_cycles=25 and discrete actions,
on CPU, with no loggers, no evaluation during training, no rendering and no checkpoints (BenchMARL's folder
goes to a temporary directory). Only the batch geometry and the learning rate are taken from the command
line. The last line on stdout is one JSON object (everything else goes to stderr).

What is measured
----------------
* ``team_return``: our own evaluation after training, not BenchMARL's logger. ``--eval-episodes`` fresh
  episodes (one env, seeded with ``seed + 1_000_003`` so they differ from the training episodes) are rolled
  out with ``env.rollout(max_steps=25, policy=experiment.policy, break_when_any_done=True)`` under
  ``set_exploration_type(ExplorationType.DETERMINISTIC)``, i.e. each agent takes the mode (argmax) of its
  Categorical policy. An episode's team return is the sum over the 3 agents and the 25 steps of
  ``("next", "agent", "reward")``, undiscounted. ``team_return`` is the mean over episodes, ``team_return_std``
  the population std over episodes.
  For comparison: BenchMARL's own ``eval/agent/reward/episode_reward_mean`` is
  ``mean_over_episodes(reward.sum(time).mean(agents))`` (benchmarl/experiment/logger.py, log_evaluation),
  i.e. team_return / 3; its ``eval/reward/episode_reward_mean`` is that again averaged over groups (one group
  here), so also team_return / 3.
* ``frames``: BenchMARL's ``experiment.total_frames``, the sum of ``batch.numel()`` over collected batches.
  The batch has shape [n_envs, steps] with the 3 agents in a nested dimension, so one frame is one step of
  one environment copy with all agents acting (an env step, not an agent step). BenchMARL collects whole
  batches: frames = ceil(--frames / frames_per_batch) * frames_per_batch, where torchrl first rounds
  frames_per_batch up to a multiple of n_envs (e.g. 1000 frames with 3 envs gives 1002).
* ``train_seconds``: wall time of ``experiment.run()`` only (collection + PPO updates; setup and the final
  evaluation are excluded). ``env_steps_per_second`` = frames / train_seconds.
* ``train_curve``: (frames so far, mean team return of the training episodes that ended in that batch,
  stochastic policy) per collection iteration, from a BenchMARL callback.
* ``train_diagnostics``: per iteration, means of ClipPPOLoss's loss_critic, entropy, kl_approx,
  clip_fraction and the actor's grad norm (a BenchMARL ``on_train_end`` callback).
* ``setup_seconds`` (argument parsing to the start of training, imports before ``main`` excluded) and
  ``eval_seconds``, for reference only.
* ``--random``: no training; the same evaluation with ``policy=None`` (torchrl then samples uniformly from
  the action spec, 5 discrete actions per agent). Measured: team return -77.7 +- 22.5 (300 episodes), the
  same as stepping ``mpe2.simple_spread_v3.parallel_env`` directly with uniform actions (-77.7 +- 23.4).

BenchMARL behaviour worth knowing (kept as shipped unless a flag says otherwise)
------------------------------------------------------------------------------
* Same seed in every collection copy: PettingZoo envs are not vectorised, so BenchMARL wraps ``n_envs``
  copies in a torchrl ``SerialEnv``, each built with ``seed=seed``; all copies therefore start every episode
  from the same landmark/agent configuration and differ only through the sampled actions.
  ``--distinct-env-seeds`` reseeds them with seed, seed+1, ... (``collector.set_seed``) before training.
* Thread count: closing a torchrl batched env calls ``torch.set_num_threads(min(cores, threads + n_envs))``.
  The collector closes its SerialEnv right after collecting the last batch, so the last PPO update (and
  anything after) would run on 2 threads here. The runner sets ``--threads`` back before training, in the
  batch callback and after ``run()``; ``torch_threads_reset_from`` in the JSON lists what it undid.
* With BenchMARL's defaults (lr 5e-5, 45 passes of 15 minibatches of 400 per 6000-frame batch) nothing is
  learnt in 60k frames (training team return flat at about -80; greedy evaluation worse than random,
  about -130, because argmax of a still near-uniform policy sends agents off in a fixed direction).
  BenchMARL's base config is meant for 3M frames. With --lr 5e-4 --epochs 10 (seed 0, 180k frames) the
  training team return goes from about -80 to -65; greedy evaluation -76.6 +- 32.3 as shipped, and
  -67.3 +- 18.2 with --distinct-env-seeds (random: -77.7).
* Speed on this 2-core machine, 1 thread, 10 envs, 6000-frame batches: about 15 s per 10k frames for
  collection (+ 1 pass of 15 minibatches), 19 s with 10 passes, 35 s with BenchMARL's 45 passes.

Environment shim (why ``pettingzoo.mpe`` is aliased)
----------------------------------------------------
PettingZoo >= 1.25 moved MPE to the ``mpe2`` package (``pettingzoo.mpe`` now raises ImportError), while
torchrl 0.11's ``PettingZooEnv`` looks tasks up in ``pettingzoo.utils.all_modules`` (which no longer lists
MPE, and here fails to import for want of the atari extras) and then in ``pettingzoo.mpe.all_modules``.
This venv uses the same pettingzoo 1.27.0 + mpe2 1.1.1 as rlsuite, so the dynamics of simple_spread_v3 are
exactly the ones rlsuite trains on; ``_alias_mpe2()`` below points ``pettingzoo.mpe`` and
``pettingzoo.mpe.all_modules`` at ``mpe2`` in ``sys.modules`` (and adds the MPE entries to
``pettingzoo.utils.all_modules.all_environments`` should that module import). torchrl then finds
``simple_spread_v3`` by module name (``mpe2.simple_spread_v3``). Nothing in site-packages is edited.
The alternative, pettingzoo 1.24.x with its bundled ``pettingzoo.mpe``, was not used: it is the
unmaintained copy that mpe2 was ported from, and nothing guarantees it matches the code rlsuite runs.

torchvision: listed in BenchMARL's requirements but never imported by benchmarl (grep finds no import);
it is not installed. ``av`` (video) is not imported either unless video logging is used; not installed.

Rebuilding the venv (python 3.11.7, the same interpreter as /work/main/.venv)
-----------------------------------------------------------------------------
    /root/.pyenv/versions/3.11.7/bin/python3 -m venv /work/benchmarl-venv
    /work/benchmarl-venv/bin/pip install --upgrade pip
    /work/benchmarl-venv/bin/pip install torch==2.13.0            # CPU wheel first (+cpu build)
    /work/benchmarl-venv/bin/pip install --no-deps benchmarl==1.5.2 torchrl==0.11.1 tensordict==0.11.0
    /work/benchmarl-venv/bin/pip install numpy cloudpickle packaging importlib_metadata orjson \\
        "pyvers>=0.2.0,<0.3.0" tqdm hydra-core
    /work/benchmarl-venv/bin/pip install pettingzoo==1.27.0 mpe2==1.1.1 gymnasium==1.4.0 pygame-ce==2.5.8
    /work/benchmarl-venv/bin/pip list | grep torch                 # must still say torch 2.13.0+cpu

``--no-deps`` keeps pip from resolving BenchMARL's bare ``torchvision`` requirement (which would replace the
CPU torch by a CUDA build); torchrl/tensordict go in with it for the same reason. The remaining pure-Python
requirements are then installed by hand.
"""

from __future__ import annotations

requirements = [
    "torch==2.13.0",  # +cpu wheel, installed first
    "benchmarl==1.5.2",  # --no-deps
    "torchrl==0.11.1",  # --no-deps (benchmarl: torchrl>=0.10,<0.12)
    "tensordict==0.11.0",  # --no-deps (torchrl 0.11: tensordict>=0.11,<0.12)
    "numpy",
    "cloudpickle",
    "packaging",
    "importlib_metadata",
    "orjson",
    "pyvers>=0.2.0,<0.3.0",
    "tqdm",
    "hydra-core",
    "pettingzoo==1.27.0",
    "mpe2==1.1.1",
    "gymnasium==1.4.0",
    "pygame-ce==2.5.8",
]

import argparse
import contextlib
import json
import math
import statistics
import sys
import tempfile
import time
import warnings


def _alias_mpe2() -> None:
    """Make ``pettingzoo.mpe`` (what torchrl 0.11 looks for) resolve to the ``mpe2`` package."""
    import mpe2
    import mpe2.all_modules
    import pettingzoo  # noqa: F401

    sys.modules["pettingzoo.mpe"] = mpe2
    sys.modules["pettingzoo.mpe.all_modules"] = mpe2.all_modules
    try:
        import pettingzoo.utils.all_modules as pz_all

        pz_all.all_environments.update(mpe2.all_modules.mpe_environments)
    except ImportError:
        pass  # torchrl falls back to the per-family modules, pettingzoo.mpe.all_modules included


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--frames", type=int, default=60_000, help="env steps to collect (rounded up to whole batches; see frames in the JSON)")
    p.add_argument("--frames-per-batch", type=int, default=6000, help="BenchMARL on_policy_collected_frames_per_batch")
    p.add_argument("--n-envs", type=int, default=10, help="BenchMARL on_policy_n_envs_per_worker")
    p.add_argument("--minibatch-size", type=int, default=400, help="BenchMARL on_policy_minibatch_size")
    p.add_argument(
        "--epochs",
        type=int,
        default=45,
        help="BenchMARL on_policy_n_minibatch_iters: passes over the batch, each split into minibatches",
    )
    p.add_argument("--lr", type=float, default=5e-5, help="BenchMARL lr (its default 5e-5)")
    p.add_argument("--entropy-coef", type=float, default=None, help="MappoConfig.entropy_coef (default: BenchMARL's, 0.0)")
    p.add_argument("--lmbda", type=float, default=None, help="MappoConfig.lmbda, GAE lambda (default: BenchMARL's, 0.9)")
    p.add_argument("--hidden", type=int, nargs="+", default=None, help="MLP widths of actor and critic (default: BenchMARL's, 256 256)")
    p.add_argument("--activation", default=None, help="torch.nn activation class name, e.g. ReLU (default: BenchMARL's, Tanh)")
    p.add_argument("--eval-episodes", type=int, default=100)
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--random", action="store_true", help="skip training; evaluate uniform-random actions")
    p.add_argument(
        "--distinct-env-seeds",
        action="store_true",
        help="reseed the n_envs collection copies with seed, seed+1, ... (BenchMARL as shipped gives them all "
        "the same seed, so every copy starts each episode from the same configuration)",
    )
    p.add_argument("--quiet", action="store_true", help="no per-iteration progress on stderr")
    return p.parse_args()


N_AGENTS, LOCAL_RATIO, MAX_CYCLES = 3, 0.5, 25

warnings.filterwarnings("ignore")  # torchrl's "failed to load SISL/Atari/..." and version notes
# Module level because BenchMARL pickles its callbacks. Imported with stdout pointed at stderr, since
# torchrl's logging handler keeps the sys.stdout it finds at import time (its INFO lines must not mix
# with the JSON line).
with contextlib.redirect_stdout(sys.stderr):
    from benchmarl.experiment import Callback  # noqa: E402


class TeamReturnCurve(Callback):
    """Mean team return of the training episodes that ended in each collected batch (stochastic policy)."""

    def __init__(self, quiet: bool = False, threads: int | None = None):
        super().__init__()
        self.quiet = quiet
        self.threads = threads
        self.frames = 0
        self.curve: list[tuple[int, float]] = []
        self.threads_seen: set[int] = set()
        self.diagnostics: list[dict] = []

    def on_batch_collected(self, batch):
        import torch

        # The collector closes its SerialEnv as soon as it has collected the last batch, and closing a
        # torchrl batched env raises torch's thread count (to torchrl._THREAD_POOL_INIT at most, the core
        # count); the PPO update of that last batch would then run on 2 threads. Put --threads back.
        if self.threads is not None and torch.get_num_threads() != self.threads:
            self.threads_seen.add(torch.get_num_threads())
            torch.set_num_threads(self.threads)
        self.frames += batch.numel()
        done = batch.get(("next", "done")).squeeze(-1)
        team = batch.get(("next", "agent", "episode_reward")).sum(dim=(-2, -1))
        if done.any():
            mean = float(team[done].mean())
            self.curve.append((self.frames, round(mean, 3)))
            if not self.quiet:
                print(f"frames {self.frames:>9,}  train team return {mean:9.2f}", file=sys.stderr)

    def on_train_end(self, training_td, group):
        """Means over the iteration's PPO minibatch steps of ClipPPOLoss's diagnostics."""
        row = {"frames": self.frames}
        for key in ("loss_critic", "entropy", "kl_approx", "clip_fraction", "grad_norm_loss_objective"):
            if key in training_td.keys():
                row[key] = round(float(training_td.get(key).float().mean()), 5)
        self.diagnostics.append(row)
        if not self.quiet:
            print("    " + "  ".join(f"{k} {v}" for k, v in row.items() if k != "frames"), file=sys.stderr)


def main() -> None:
    args = parse_args()
    t_start = time.perf_counter()
    real_stdout = sys.stdout

    with contextlib.redirect_stdout(sys.stderr):
        import torch

        torch.set_num_threads(args.threads)
        _alias_mpe2()

        import benchmarl
        import torchrl
        from benchmarl.algorithms import MappoConfig
        from benchmarl.environments import PettingZooTask
        from benchmarl.experiment import Experiment, ExperimentConfig
        from benchmarl.models.mlp import MlpConfig
        from torchrl.envs import TransformedEnv
        from torchrl.envs.utils import ExplorationType, set_exploration_type

        task = PettingZooTask.SIMPLE_SPREAD.get_from_yaml()
        task.config.update({"max_cycles": MAX_CYCLES, "N": N_AGENTS, "local_ratio": LOCAL_RATIO})

        algorithm_config = MappoConfig.get_from_yaml()
        model_config = MlpConfig.get_from_yaml()
        critic_model_config = MlpConfig.get_from_yaml()
        if args.entropy_coef is not None:
            algorithm_config.entropy_coef = args.entropy_coef
        if args.lmbda is not None:
            algorithm_config.lmbda = args.lmbda
        for model in (model_config, critic_model_config):
            if args.hidden is not None:
                model.num_cells = list(args.hidden)
            if args.activation is not None:
                model.activation_class = getattr(torch.nn, args.activation)

        tmp = tempfile.TemporaryDirectory(prefix="benchmarl_spread_")
        cfg = ExperimentConfig.get_from_yaml()
        cfg.sampling_device = cfg.train_device = cfg.buffer_device = "cpu"
        cfg.prefer_continuous_actions = False
        cfg.max_n_frames = args.frames
        cfg.max_n_iters = None
        cfg.on_policy_collected_frames_per_batch = args.frames_per_batch
        cfg.on_policy_n_envs_per_worker = args.n_envs
        cfg.on_policy_minibatch_size = args.minibatch_size
        cfg.on_policy_n_minibatch_iters = args.epochs
        cfg.lr = args.lr
        cfg.loggers = []
        cfg.create_json = False
        cfg.evaluation = False
        cfg.evaluation_interval = args.frames_per_batch
        cfg.render = False
        cfg.checkpoint_interval = 0
        cfg.checkpoint_at_end = False
        cfg.save_folder = tmp.name

        hyper = {
            "frames_per_batch": args.frames_per_batch,
            "n_envs": args.n_envs,
            "minibatch_size": args.minibatch_size,
            "epochs": args.epochs,
            "lr": args.lr,
            "gamma": cfg.gamma,
            "adam_eps": cfg.adam_eps,
            "clip_grad_norm": cfg.clip_grad_val if cfg.clip_grad_norm else None,
            "share_policy_params": cfg.share_policy_params,
            "share_param_critic": algorithm_config.share_param_critic,
            "clip_epsilon": algorithm_config.clip_epsilon,
            "entropy_coef": algorithm_config.entropy_coef,
            "critic_coef": algorithm_config.critic_coef,
            "loss_critic_type": algorithm_config.loss_critic_type,
            "gae_lambda": algorithm_config.lmbda,
            "normalize_advantage": False,  # hard-coded in benchmarl's Mappo._get_loss
            "mlp": list(model_config.num_cells),
            "activation": model_config.activation_class.__name__,
            "critic_input": "global state (env 'state', 54-dim)",
            "threads": args.threads,
            "distinct_env_seeds": args.distinct_env_seeds,
        }

        curve_cb = TeamReturnCurve(quiet=args.quiet, threads=args.threads)

        experiment = None
        setup_seconds = 0.0
        setup_threads = args.threads
        train_seconds = 0.0
        frames = 0
        if not args.random:
            experiment = Experiment(
                task=task,
                algorithm_config=algorithm_config,
                model_config=model_config,
                critic_model_config=critic_model_config,
                seed=args.seed,
                config=cfg,
                callbacks=[curve_cb],
            )
            assert experiment.continuous_actions is False
            if args.distinct_env_seeds:
                experiment.collector.set_seed(args.seed)  # SerialEnv: copy i gets seed + i
                experiment.collector.reset()
            # Same thread-count guard as in TeamReturnCurve, in case setup closed a batched env.
            setup_threads = torch.get_num_threads()
            torch.set_num_threads(args.threads)
            t0 = time.perf_counter()
            setup_seconds = t0 - t_start
            experiment.run()
            train_seconds = time.perf_counter() - t0
            frames = int(experiment.total_frames)
            # experiment.run() ends by closing the SerialEnv again (threads up, see TeamReturnCurve); on a
            # busy 2-core machine 2 threads make the tiny evaluation forward passes crawl.
            torch.set_num_threads(args.threads)

        # ---- evaluation: our own rollouts, team return = sum over agents and steps
        t_eval = time.perf_counter()
        torch.manual_seed(args.seed + 1_000_003)
        eval_env = TransformedEnv(
            task.get_env_fun(
                num_envs=1, continuous_actions=False, seed=args.seed + 1_000_003, device="cpu"
            )(),
        )
        policy = None if experiment is None else experiment.policy
        returns = []
        lengths = []
        with torch.no_grad(), set_exploration_type(ExplorationType.DETERMINISTIC):
            for _ in range(args.eval_episodes):
                td = eval_env.rollout(
                    max_steps=MAX_CYCLES, policy=policy, break_when_any_done=True, auto_reset=True
                )
                returns.append(float(td.get(("next", "agent", "reward")).sum()))
                lengths.append(td.batch_size[0])
        eval_env.close()
        eval_seconds = time.perf_counter() - t_eval
        tmp.cleanup()

    record = {
        "library": "benchmarl",
        "algorithm": "random" if args.random else "mappo",
        "task": "simple_spread_v3",
        "N": N_AGENTS,
        "local_ratio": LOCAL_RATIO,
        "max_cycles": MAX_CYCLES,
        "seed": args.seed,
        "team_return": statistics.fmean(returns),
        "team_return_std": statistics.pstdev(returns),
        "eval_episodes": len(returns),
        "eval_episode_len_mean": statistics.fmean(lengths),
        "eval_actions": "uniform random" if args.random else "deterministic (Categorical mode)",
        "frames": frames,
        "train_seconds": round(train_seconds, 3),
        "env_steps_per_second": round(frames / train_seconds, 2) if train_seconds > 0 else None,
        "setup_seconds": round(setup_seconds, 3),  # imports done before main() are not in here
        "eval_seconds": round(eval_seconds, 3),
        "benchmarl_version": benchmarl.__version__,
        "torchrl_version": torchrl.__version__,
        "torch_version": torch.__version__,
        "hyperparameters": hyper,
        # thread counts torchrl had switched to and the runner switched back from (setup, then per batch)
        "torch_threads_reset_from": sorted(curve_cb.threads_seen | ({setup_threads} - {args.threads})),
        "train_curve": curve_cb.curve,
        "train_diagnostics": curve_cb.diagnostics,
    }
    assert all(math.isfinite(r) for r in returns)
    print(json.dumps(record), file=real_stdout, flush=True)


if __name__ == "__main__":
    main()
