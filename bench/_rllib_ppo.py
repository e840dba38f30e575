"""RLlib's PPO on CartPole-v1 or the slow CartPole: the reference runner for ``bench/ray_scaling.py``.

Runs in its own virtual environment (``/work/rllib-venv``, outside the repository, never committed),
because RLlib pins gymnasium==1.2.2 while rlsuite uses gymnasium 1.4:

    /work/rllib-venv/bin/python bench/_rllib_ppo.py --env CartPole-v1 --workers 1 --env-steps 20000
    /work/rllib-venv/bin/python bench/_rllib_ppo.py --env slow --workers 2 --env-steps 10000 --seed 0

``--env`` takes a Gymnasium id (``CartPole-v1``), ``slow`` (short for ``bench._slow_env:SlowCartPole-v1``,
CartPole with a 1 ms sleep per step standing for a simulator) or any ``module:EnvId``. ``--workers N``
is RLlib's ``num_env_runners``: N remote EnvRunner actors collect and the learner runs in this (the
driver) process (``num_learners=0``), as rlsuite's ``--backend ray --num-workers N`` does; with N = 0
the driver's local EnvRunner collects. The last line on stdout is one JSON object; everything else
(Ray's and RLlib's logs, the workers' output) goes to stderr: file descriptor 1 is pointed at 2 at start
and the JSON is written to the saved original.

Built with RLlib's new API stack (the default in Ray 2.60: RLModule + Learner + EnvRunner + ConnectorV2),
from ``ray.rllib.algorithms.ppo.PPOConfig``.

Geometry, matched to rlsuite's PPO preset for CartPole-v1
--------------------------------------------------------
rlsuite: num_envs=8 in total (split over the workers), num_steps=32 per env per rollout -> 256 env steps
per batch, one minibatch of 256 (the whole batch), update_epochs=20, gamma=0.98, gae_lambda=0.8,
Adam lr 1e-3 annealed linearly to 0 over the run, clip 0.2 (annealed to 0), no value clipping, ent_coef 0,
vf_coef 1.0 on 0.5 * MSE, max_grad_norm 0.5, advantages normalized, separate 64-64 tanh actor and critic.
Here:

* ``.env_runners(num_env_runners=N, num_envs_per_env_runner=8 // N (``--envs-per-worker``),
  rollout_fragment_length=32)``: each runner steps its K envs 32 times per iteration, so one iteration
  samples N * K * 32 = 256 env steps (the train batch is set to exactly that).
* ``.training(train_batch_size_per_learner=256, minibatch_size=256, num_epochs=20, lr=[[0, 1e-3],
  [env_steps, 0]] (linear decay to 0 over ``--env-steps``, RLlib's lr schedule), gamma=0.98, lambda_=0.8,
  clip_param=0.2, use_kl_loss=False (RLlib's default adds a KL penalty with coefficient 0.2),
  vf_loss_coeff=0.5 (RLlib's value loss is the MSE without the 1/2), vf_clip_param=inf, entropy_coeff=0,
  grad_clip=0.5 by global norm)``.
* ``.rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[64, 64], fcnet_activation="tanh",
  vf_share_layers=False, orthogonal init with gain sqrt 2 and zero biases on the hidden layers))``:
  separate actor and critic encoders of 64-64 tanh, each followed by a linear head.
* ``.learners(num_learners=0)``, ``.framework("torch")``, ``.debugging(seed=--seed)``.

What could not be matched (without writing a custom Learner/RLModule, which this runner avoids)
----------------------------------------------------------------------------------------------
* Clip annealing: ``clip_param`` is a plain float in RLlib (no schedule); it stays 0.2.
* Adam eps: RLlib's TorchLearner builds ``torch.optim.Adam(params)`` (eps 1e-8); rlsuite uses 1e-5.
* Output-layer init: RLlib's PPO heads take no initializer from the model config (``PPOCatalog``
  passes none to the output layers), so the policy and value output layers keep torch's default
  init; rlsuite uses orthogonal gains 0.01 (policy) and 1.0 (value).
* Value clipping: rlsuite has none; RLlib's ``vf_clip_param`` clamps the squared value error (not the
  value) and cannot be switched off except by making it infinite, which is done here.
* Advantage normalization: RLlib's GAE learner connector standardizes over the whole train batch
  (std with ddof 0, floor 1e-4); rlsuite normalizes per minibatch, which is the same batch here.
* Minibatch cycling: RLlib's learner connector adds one artificial timestep to every episode chunk
  (to bootstrap the value at the cut; masked out of the loss), so the learner's batch has 256 + k
  rows (k = chunks in the batch, >= 8) and ``MiniBatchCyclicIterator`` cuts 256-row minibatches that
  run across epoch boundaries: 20 epochs are about 20 * (256 + k) / 256 gradient steps, not exactly 20.
* The value of the last observation: RLlib gets it from a batched critic forward pass in the learner
  connector (GAE is computed in the learner process, on the driver); rlsuite's workers return values
  computed during collection.
* Env-step counting: RLlib counts only real transitions (with Gymnasium's NEXT_STEP autoreset the
  reset step of a finished sub-env is not counted, and a runner stops at the first vector step that
  reaches 32 * K, so an iteration is 256 to 256 + 7 steps); rlsuite counts its 8 * 32 slots. CartPole
  vector envs: RLlib's default ``gym_env_vectorize_mode="sync"`` (a SyncVectorEnv of K CartPoleEnv);
  rlsuite uses Gymnasium's CartPoleVectorEnv for CartPole. ``--vectorize-mode vector_entry_point``
  makes RLlib use CartPoleVectorEnv too (the slow env has no vector entry point: always sync).
* RLlib's connector pipelines (env-to-module and module-to-env on the runners, the learner pipeline
  on the driver) and its metrics logging are part of what is measured, as shipped.

What is measured
----------------
* ``algo.train()`` is called until the lifetime sampled env-step counter
  ``result["env_runners"]["num_env_steps_sampled_lifetime"]`` reaches ``--env-steps``. Each call is one
  iteration = one ``PPO.training_step()`` (``min_time_s_per_iteration`` is None and the min-timesteps
  settings 0, so RLlib does not repeat it).
* The first ``--warmup-iterations`` (default 2) are excluded: they include the runners' first resets,
  torch's first forward/backward passes and the first learner connector calls.
  ``env_steps_per_second`` = (env steps after warm-up) / (wall seconds of the iterations after
  warm-up), the iterations timed back to back with ``time.perf_counter`` around ``algo.train()``.
* ``setup_seconds``: ``ray.init`` + ``config.build()`` (starting the runner actors, building the env,
  the RLModule and the learner), imports excluded (``import_seconds``).
* ``phase_seconds``: after warm-up, where the driver's time went, from thin timing wrappers set on this
  algorithm's instance (``algo.training_step``, ``algo.learner_group.update``,
  ``algo.env_runner_group.sync_weights``): ``sample`` (training_step minus the two others: sending
  ``sample()`` to the runners and waiting for all of them, or sampling locally with 0 workers),
  ``learner_update`` (the learner connector with GAE, then the 20 epochs), ``weight_sync`` (the driver's
  side only: getting the weights and ``ray.put``; the ``set_state`` call is fire-and-forget and runs on
  each runner before its next ``sample()``, so it is inside ``sample``), ``after_step`` (the rest of
  ``train()``: ``sync_env_runner_states``, a blocking round trip that gathers the runners' connector
  states, merges them and broadcasts them back, then compiling the metrics).
* ``runner_sample_ms_per_call``: per runner, the mean time of its own ``sample()`` calls after warm-up
  (a timing wrapper installed on each EnvRunner instance): the collection itself, without Ray's
  dispatch, the weight ``set_state`` before it, ``get_metrics`` and shipping the episodes back. The
  driver's ``sample`` phase minus this is the Ray round trip (plus waiting for the slower runner).
* ``episode_return_mean``: the last finite value of RLlib's ``result["env_runners"]["episode_return_mean"]``
  (training episodes, stochastic policy; RLlib reports NaN, here null, for iterations in which no
  episode ended), and ``episode_return_mean_at_env_steps`` where it came from; ``train_curve`` has
  (env steps, that value) per iteration. A sanity check that it learns, not an evaluation.
* Threads: ``torch.set_num_threads(--threads)`` (default 1) in the driver, which runs the learner; the
  runners get ``OMP_NUM_THREADS=--threads`` through ``ray.init(runtime_env={"env_vars": ...})`` (Ray
  would also set it from ``num_cpus_per_env_runner=1``; RLlib itself has no thread setting for
  EnvRunners). ``env_runner_info`` reports, from inside each runner, its ``torch.get_num_threads()``,
  its OMP_NUM_THREADS and the class of its first sub-env (e.g. SlowCartPoleEnv), which checks that
  PYTHONPATH reached the remote runners.
* ``ray.init(num_cpus=--num-cpus)`` (default: this machine's CPU count, at least N so the runners, one
  CPU each, can all be placed), ``include_dashboard=False``; ``ray.shutdown()`` at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SLOW_ENV_ID = "bench._slow_env:SlowCartPole-v1"
TOTAL_ENVS = 8  # rlsuite's CartPole-v1 preset: num_envs=8 in total
NUM_STEPS = 32  # rlsuite's preset: num_steps=32 per env per rollout


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="CartPole-v1", help="a Gymnasium id, 'slow' (= %s) or module:EnvId" % SLOW_ENV_ID)
    p.add_argument("--workers", type=int, default=1, help="RLlib num_env_runners (remote EnvRunners); 0: the driver collects")
    p.add_argument("--env-steps", type=int, default=20_000, help="train until this many env steps were sampled")
    p.add_argument("--envs-per-worker", type=int, default=None, help=f"num_envs_per_env_runner (default {TOTAL_ENVS} // workers)")
    p.add_argument("--num-steps", type=int, default=NUM_STEPS, help="rollout_fragment_length: steps per env per iteration")
    p.add_argument("--epochs", type=int, default=20, help="num_epochs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--warmup-iterations", type=int, default=2, help="iterations left out of env_steps_per_second")
    p.add_argument("--threads", type=int, default=1, help="torch threads in the driver and OMP_NUM_THREADS in the runners")
    p.add_argument("--num-cpus", type=int, default=None, help="ray.init(num_cpus=...) (default: os.cpu_count(), at least --workers)")
    p.add_argument("--vectorize-mode", default="sync", choices=["sync", "async", "vector_entry_point"],
                   help="RLlib's gym_env_vectorize_mode (default: RLlib's own, sync)")
    p.add_argument("--no-anneal-lr", action="store_true", help="constant lr instead of rlsuite's linear decay to 0")
    p.add_argument("--quiet", action="store_true", help="no per-iteration progress on stderr")
    args = p.parse_args()
    if args.workers < 0:
        p.error("--workers must be >= 0")
    if args.envs_per_worker is None:
        args.envs_per_worker = max(1, TOTAL_ENVS // max(1, args.workers))
    if args.env == "slow":
        args.env = SLOW_ENV_ID
    return args


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


class PhaseTimer:
    """Seconds spent inside wrapped callables, accumulated per phase."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}

    def wrap(self, name: str, fn):
        self.totals.setdefault(name, 0.0)

        def timed(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.totals[name] += time.perf_counter() - t

        return timed

    def snapshot(self) -> dict[str, float]:
        return dict(self.totals)


def runner_info(env_runner):
    """Run inside each EnvRunner: its thread settings and the class of its first sub-env."""
    import os as _os

    import torch as _torch

    env = getattr(env_runner, "env", None)
    sub = None
    try:
        vec = env.unwrapped
        sub = type(vec.envs[0].unwrapped).__name__ if hasattr(vec, "envs") else type(vec).__name__
    except Exception as exc:  # noqa: BLE001 - diagnostics only
        sub = f"? ({exc!r})"
    return {"pid": _os.getpid(), "torch_threads": _torch.get_num_threads(), "OMP_NUM_THREADS": _os.environ.get("OMP_NUM_THREADS"),
            "num_envs": getattr(env_runner, "num_envs", None), "env_class": sub}


def install_sample_timer(env_runner):
    """Run inside each EnvRunner: time its own sample() calls (the lambda RLlib sends to sample calls
    `w.sample(...)`, so an instance attribute is what it finds)."""
    import time as _time

    if not getattr(env_runner, "_bench_sample_timer", False):
        original = env_runner.sample
        env_runner._bench_sample_seconds, env_runner._bench_sample_calls = 0.0, 0

        def sample(*a, **kw):
            t = _time.perf_counter()
            try:
                return original(*a, **kw)
            finally:
                env_runner._bench_sample_seconds += _time.perf_counter() - t
                env_runner._bench_sample_calls += 1

        env_runner.sample = sample
        env_runner._bench_sample_timer = True
    return True


def read_sample_timer(env_runner):
    """Run inside each EnvRunner: (seconds in sample(), calls) since the last read; resets both."""
    out = (env_runner._bench_sample_seconds, env_runner._bench_sample_calls)
    env_runner._bench_sample_seconds, env_runner._bench_sample_calls = 0.0, 0
    return out


def main() -> dict:
    args = parse_args()
    t_import = time.perf_counter()
    import gymnasium as gym
    import ray
    import torch
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
    from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, EPISODE_RETURN_MEAN, NUM_ENV_STEPS_SAMPLED_LIFETIME, NUM_EPISODES_LIFETIME
    from ray.tune.registry import register_env
    import_seconds = time.perf_counter() - t_import

    torch.set_num_threads(args.threads)
    t_setup = time.perf_counter()

    # The repository root on PYTHONPATH: here (for the driver's local EnvRunner) and in every Ray worker.
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    pythonpath = os.pathsep.join(p for p in [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")] if p)
    num_cpus = args.num_cpus or max(os.cpu_count() or 1, args.workers)
    ray.init(num_cpus=num_cpus, include_dashboard=False,
             runtime_env={"env_vars": {"PYTHONPATH": pythonpath, "OMP_NUM_THREADS": str(args.threads)}})

    env_name = args.env
    if ":" in args.env:
        # A module:EnvId id: registered with RLlib under a plain name, built by a creator that
        # gym.make()s it (Gymnasium imports the module, which registers the env) inside each runner.
        env_name = "rllib-bench-" + args.env.split(":", 1)[1]
        full_id = args.env

        def creator(env_config, _id=full_id):
            import gymnasium as _gym

            return _gym.make(_id)

        register_env(env_name, creator)
    else:
        gym.spec(args.env)  # fail early on an unknown id

    n_runner = max(1, args.workers)
    batch = n_runner * args.envs_per_worker * args.num_steps
    lr = 1e-3 if args.no_anneal_lr else [[0, 1e-3], [args.env_steps, 0.0]]
    config = (
        PPOConfig()
        .environment(env_name)
        .framework("torch")
        .env_runners(num_env_runners=args.workers, num_envs_per_env_runner=args.envs_per_worker,
                     rollout_fragment_length=args.num_steps, num_cpus_per_env_runner=1,
                     gym_env_vectorize_mode=args.vectorize_mode)
        .learners(num_learners=0)
        .training(train_batch_size_per_learner=batch, minibatch_size=batch, num_epochs=args.epochs, lr=lr,
                  gamma=0.98, lambda_=0.8, clip_param=0.2, use_kl_loss=False, vf_loss_coeff=0.5,
                  vf_clip_param=float("inf"), entropy_coeff=0.0, grad_clip=0.5, grad_clip_by="global_norm")
        .rl_module(model_config=DefaultModelConfig(
            fcnet_hiddens=[64, 64], fcnet_activation="tanh", vf_share_layers=False,
            fcnet_kernel_initializer="orthogonal_", fcnet_kernel_initializer_kwargs={"gain": math.sqrt(2)},
            fcnet_bias_initializer="zeros_"))
        .debugging(seed=args.seed)
    )
    algo = config.build_algo()
    setup_seconds = time.perf_counter() - t_setup

    group = algo.env_runner_group

    def on_runners(fn):
        if args.workers > 0:
            out = group.foreach_env_runner(fn, local_env_runner=False)
            if len(out) != args.workers:  # foreach_env_runner drops failed calls silently
                raise RuntimeError(f"{fn.__name__} answered on {len(out)} of {args.workers} env runners (see stderr)")
            return out
        return [fn(group.local_env_runner)]

    info = on_runners(runner_info)
    log("env runners:", info)
    on_runners(install_sample_timer)

    phases = PhaseTimer()
    algo.training_step = phases.wrap("training_step", algo.training_step)
    algo.learner_group.update = phases.wrap("learner_update", algo.learner_group.update)
    algo.env_runner_group.sync_weights = phases.wrap("weight_sync", algo.env_runner_group.sync_weights)

    iterations, steps, result = 0, 0, {}
    t_start = time.perf_counter()
    t_warm, steps_warm, phases_warm = t_start, 0, phases.snapshot()
    curve = []
    while steps < args.env_steps or iterations <= args.warmup_iterations:
        result = algo.train()
        iterations += 1
        steps = int(result[ENV_RUNNER_RESULTS][NUM_ENV_STEPS_SAMPLED_LIFETIME])
        now = time.perf_counter()
        ret = result[ENV_RUNNER_RESULTS].get(EPISODE_RETURN_MEAN, float("nan"))
        curve.append((steps, round(float(ret), 2) if math.isfinite(ret) else None))
        if iterations == args.warmup_iterations:
            on_runners(read_sample_timer)  # drop the warm-up's share, then start the clock
            t_warm, steps_warm, phases_warm = time.perf_counter(), steps, phases.snapshot()
        if not args.quiet:
            log(f"iter {iterations:4d}  env steps {steps:7d}  return {ret:7.2f}  {now - t_start:7.2f} s")
    t_end = time.perf_counter()
    runner_samples = on_runners(read_sample_timer)
    train_seconds = t_end - t_start
    timed_seconds = t_end - t_warm
    timed_steps = steps - steps_warm
    timed_iterations = iterations - args.warmup_iterations
    finite = [(n, r) for n, r in curve if r is not None]
    last_return = finite[-1] if finite else (None, None)
    ph = {k: phases.totals[k] - phases_warm[k] for k in phases.totals}
    phase_seconds = {
        "sample": ph["training_step"] - ph["learner_update"] - ph["weight_sync"],
        "learner_update": ph["learner_update"],
        "weight_sync": ph["weight_sync"],
        "after_step": timed_seconds - ph["training_step"],
    }
    out = {
        "library": "rllib",
        "algo": "PPO",
        "env": args.env,
        "workers": args.workers,
        "envs_per_worker": args.envs_per_worker,
        "rollout_fragment_length": args.num_steps,
        "train_batch_size": batch,
        "minibatch_size": batch,
        "num_epochs": args.epochs,
        "vectorize_mode": args.vectorize_mode,
        "seed": args.seed,
        "threads": args.threads,
        "ray_num_cpus": num_cpus,
        "env_steps_per_second": timed_steps / timed_seconds,
        "env_steps": steps,
        "iterations": iterations,
        "warmup_iterations": args.warmup_iterations,
        "timed_env_steps": timed_steps,
        "timed_seconds": timed_seconds,
        "train_seconds": train_seconds,
        "setup_seconds": setup_seconds,
        "import_seconds": import_seconds,
        "phase_seconds": {k: round(v, 4) for k, v in phase_seconds.items()},
        "phase_ms_per_iteration": {k: round(1000 * v / timed_iterations, 2) for k, v in phase_seconds.items()},
        "runner_sample_ms_per_call": [round(1000 * sec / max(1, n), 2) for sec, n in runner_samples],
        "runner_sample_calls": [n for _, n in runner_samples],
        "episode_return_mean": last_return[1],
        "episode_return_mean_at_env_steps": last_return[0],
        "episodes": int(result[ENV_RUNNER_RESULTS].get(NUM_EPISODES_LIFETIME, 0)),
        "train_curve": curve,
        "env_runner_info": info,
        "versions": {"ray": ray.__version__, "torch": torch.__version__, "gymnasium": gym.__version__, "python": platform.python_version()},
        "load_average": list(os.getloadavg()),
    }
    algo.stop()
    ray.shutdown()
    return out


if __name__ == "__main__":
    # Everything but the final JSON line goes to stderr, including what Ray's log monitor and C
    # extensions write to file descriptor 1.
    sys.stdout.flush()
    _json_fd = os.dup(1)
    os.dup2(2, 1)
    _result = main()
    sys.stdout.flush()
    with os.fdopen(_json_fd, "w") as _out:
        _out.write(json.dumps(_result) + "\n")
