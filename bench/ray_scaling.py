"""Env steps per second of PPO with 1 and 2 Ray rollout workers, rlsuite beside RLlib, and the
throughput model of docs/scale.md checked against the measurements.

    .venv/bin/python bench/ray_scaling.py                 # standard: 20,000 env steps per run
    .venv/bin/python bench/ray_scaling.py --steps 8000 --no-write

Both libraries run PPO with the same batch geometry (rlsuite's CartPole-v1 preset: 8 envs in all,
split over the workers, 32 steps per env per rollout, 20 epochs on one 256-step minibatch), the
learner in the driver process and N remote workers collecting, on CartPole-v1 and on
`bench._slow_env:SlowCartPole-v1` (CartPole with a 1 ms sleep per step: a simulator stand-in).
RLlib runs in its own venv (/work/rllib-venv: RLlib pins gymnasium 1.2.2) through
bench/_rllib_ppo.py, one process per measurement, one after the other (never at the same time).

Throughput is measured the same way on both sides: env steps sampled after the first two
iterations (warm-up: actor start, first weight transfer) over the wall-clock seconds they took.
Evaluation and checkpoints are outside it.

The model (docs/scale.md): one synchronous iteration of a batch of B env steps with N workers takes

    T(N) = t_collect(B / N) + t_comm + t_update

t_collect(n): one worker stepping n envs for 32 steps with its policy (measured in this process);
t_comm: a Ray round trip carrying the weights out and a rollout slice back (measured with a
worker that does nothing else); t_update: the learner's PPO update of one batch (measured here).
Throughput is B / T(N); it stops growing once t_collect(B / N) is small next to t_comm +
t_update, or once N workers outnumber the cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path[:0] = [str(REPO_ROOT), str(BENCH_DIR)]
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))  # Ray workers import bench._slow_env

import torch  # noqa: E402

from rlsuite.algos.deep import ppo  # noqa: E402
from rlsuite.envs.resolver import resolve  # noqa: E402
from rlsuite.ops.policies import ActorCritic  # noqa: E402
from rlsuite.scale.ray import RolloutWorker  # noqa: E402

RLLIB_PYTHON = Path("/work/rllib-venv/bin/python")
ENVS = {"CartPole-v1": "CartPole-v1", "slow": "bench._slow_env:SlowCartPole-v1"}
WARMUP_ITERATIONS = 2


def rlsuite_config(env: str, workers: int, steps: int):
    base = ppo.preset("CartPole-v1")
    return dataclasses.replace(base, env=ENVS[env], backend="ray", num_workers=workers, total_steps=steps, eval_every=0,
                               eval_episodes=1, checkpoint_minutes=1e6, device="cpu", torch_threads=1)


def rlsuite_throughput(env: str, workers: int, steps: int, run_dir: Path) -> dict:
    marks: list[tuple[int, float]] = []
    config = rlsuite_config(env, workers, steps)
    run = ppo.train(config, run_dir, overwrite=True, quiet=True, callbacks=[lambda loop: marks.append((loop.step, time.perf_counter()))])
    (s0, t0), (s1, t1) = next(m for m in marks if m[0] >= WARMUP_ITERATIONS * config.batch_size), marks[-1]
    return {"env_steps_per_second": (s1 - s0) / (t1 - t0), "iterations": len(marks), "env_steps": run.step, "final_eval": run.final_eval}


def rllib_throughput(env: str, workers: int, steps: int) -> dict:
    command = [str(RLLIB_PYTHON), str(BENCH_DIR / "_rllib_ppo.py"), "--env", ENVS[env], "--workers", str(workers),
               "--env-steps", str(steps), "--warmup-iterations", str(WARMUP_ITERATIONS), "--quiet"]
    if env == "CartPole-v1":  # Gymnasium's vectorized CartPole, as rlsuite's workers step it (RLlib defaults to a SyncVectorEnv)
        command += ["--vectorize-mode", "vector_entry_point"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def median_seconds(fn, repeats: int = 7) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class Echo:
    """A Ray worker that only loads the weights it is sent and returns a rollout slice: t_comm."""

    def __init__(self, rollout):
        self.rollout = rollout

    def collect(self, weights):
        return self.rollout, ([], []), None


def model_terms(env: str, workers: int, ray) -> dict:
    """t_collect(8 / N envs), t_comm and t_update, measured apart."""
    config = rlsuite_config(env, workers, 10_000)
    info = resolve(config.env)
    make_agent = functools.partial(ActorCritic, info.observation_space, info.action_space, config)
    agent = make_agent()
    optimizer = torch.optim.Adam(agent.parameters(), lr=config.learning_rate, eps=1e-5)
    per_worker = config.num_envs // workers
    worker = RolloutWorker(config, make_agent, per_worker, 0)
    weights = agent.state_dict()
    t_collect = median_seconds(lambda: worker.collect(weights))
    part = worker.collect(weights)[0]
    rollout = RolloutWorker(config, make_agent, config.num_envs, 1).collect(weights)[0]  # a whole batch of real steps
    t_update = median_seconds(lambda: ppo.update(agent, optimizer, rollout, config, config.clip_coef, config.kl_coef), repeats=5)
    echoes = [ray.remote(num_cpus=1)(Echo).remote(part) for _ in range(workers)]

    def round_trip():
        ref = ray.put({k: v.detach().clone() for k, v in agent.state_dict().items()})
        ray.get([echo.collect.remote(ref) for echo in echoes])

    t_comm = median_seconds(round_trip, repeats=20)
    for echo in echoes:
        ray.kill(echo)
    worker.close()
    predicted = config.batch_size / (t_collect + t_comm + t_update)
    return {"t_collect": t_collect, "t_comm": t_comm, "t_update": t_update, "predicted": predicted}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20_000, help="env steps per run (default 20,000)")
    parser.add_argument("--no-write", action="store_true", help="print only; do not append to bench/RESULTS.md")
    parser.add_argument("--no-rllib", action="store_true", help="rlsuite only (implies --no-write)")
    args = parser.parse_args()
    args.no_write = args.no_write or args.no_rllib
    torch.set_num_threads(1)
    import ray

    from rlsuite.scale.runtime import init_ray

    rows, verdicts = [], []
    for env in ENVS:
        for workers in (1, 2):
            init_ray(None, num_cpus=max(os.cpu_count() or 1, workers))
            ours = rlsuite_throughput(env, workers, args.steps, Path("/tmp/rlsuite-ray-scaling") / f"{env}-{workers}")
            terms = model_terms(env, workers, ray)
            ray.shutdown()
            theirs = {"env_steps_per_second": float("nan")} if args.no_rllib else rllib_throughput(env, workers, args.steps)
            ratio = ours["env_steps_per_second"] / theirs["env_steps_per_second"]
            rows.append((env, workers, ours, theirs, terms, ratio))
            print(f"{env} N={workers}: rlsuite {ours['env_steps_per_second']:,.0f} steps/s, RLlib {theirs['env_steps_per_second']:,.0f}, "
                  f"ratio {ratio:.2f}x; model {terms['predicted']:,.0f} (collect {terms['t_collect'] * 1e3:.1f} ms, "
                  f"comm {terms['t_comm'] * 1e3:.1f} ms, update {terms['t_update'] * 1e3:.1f} ms)", flush=True)
            verdicts.append(ratio >= 1.0)
    lines = [f"PPO, rlsuite's CartPole-v1 geometry (8 envs in all, 32 steps, batch 256, 20 epochs), {args.steps:,} env steps per run, "
             f"throughput after {WARMUP_ITERATIONS} warm-up iterations; learner in the driver, N remote workers; 1 torch thread; "
             "RLlib in /work/rllib-venv (gymnasium 1.2.2), one process at a time.", "",
             "| env | workers | rlsuite steps/s | RLlib steps/s | rlsuite/RLlib | model steps/s | model/measured | t_collect ms | t_comm ms | t_update ms |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for env, workers, ours, theirs, terms, ratio in rows:
        measured = ours["env_steps_per_second"]
        lines.append(f"| {env} | {workers} | {measured:,.0f} | {theirs['env_steps_per_second']:,.0f} | {ratio:.2f}x | {terms['predicted']:,.0f} | "
                     f"{terms['predicted'] / measured:.2f} | {terms['t_collect'] * 1e3:.1f} | {terms['t_comm'] * 1e3:.1f} | {terms['t_update'] * 1e3:.1f} |")
    for env in ENVS:
        one, two = (r for r in rows if r[0] == env)
        lines.append(f"\n{env}: 2 workers / 1 worker = rlsuite {two[2]['env_steps_per_second'] / one[2]['env_steps_per_second']:.2f}x, "
                     f"RLlib {two[3]['env_steps_per_second'] / one[3]['env_steps_per_second']:.2f}x.")
    lines.append(f"- rlsuite >= RLlib at every env and worker count: **{'MET' if all(verdicts) else 'MISSED'}** "
                 f"({', '.join(f'{r[0]} N={r[1]}: {r[5]:.2f}x' for r in rows)})")
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        from results import append_section

        append_section("`bench/ray_scaling.py`, PPO env steps/s with Ray workers" + ("" if args.steps == 20_000 else " (reduced run)"), body)


if __name__ == "__main__":
    main()
