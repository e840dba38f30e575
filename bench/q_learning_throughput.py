"""Tabular Q-learning on CliffWalking-v1: rlsuite's training throughput against a plain Python loop.

The peer is the classic tutorial Q-learning: a NumPy table, an epsilon-greedy `np.argmax` and a
15-line loop over the same Gymnasium env (`gymnasium.make("CliffWalking-v1")`, with its default
wrappers), same hyperparameters (alpha 0.5, epsilon 0.1, gamma 1) and the same number of env steps.
Both run in this process, alternating (plain, rlsuite, plain, rlsuite, ...).

Measured, median over repeats:
- plain loop: env steps / wall-clock of the loop;
- rlsuite `q_learning.train`: env steps / `run.timing["train_seconds"]` (everything but evaluation, checkpoints and export,
  checkpoints and plotting: run directory, env creation, TrainingLoop, metrics);
- rlsuite's driver alone (`rollout.tabular.run_steps` with the Q-learning agent, no TrainingLoop),
  to show what the bookkeeping costs.
rlsuite breaks ties at random (`ops.td.argmax_random`), the tutorial takes the first maximum; both
learn the edge path. The final greedy return of each is printed as a sanity check (-13 is optimal).

Run:  python bench/q_learning_throughput.py                      # 200k steps x 3 repeats, appends to RESULTS.md
      python bench/q_learning_throughput.py --steps 20000 --repeats 1 --no-write   # quick check
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from time import perf_counter

import gymnasium as gym
import numpy as np
from results import append_section  # noqa: E402  (bench/ is on sys.path when run as a script)

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR.parent) not in sys.path:  # benchmark the working tree
    sys.path.insert(1, str(BENCH_DIR.parent))

from rlsuite.algos.tabular import q_learning  # noqa: E402
from rlsuite.rollout import tabular  # noqa: E402

ENV_ID = "CliffWalking-v1"
ALPHA, EPSILON, GAMMA = 0.5, 0.1, 1.0


def plain_q_learning(steps: int, seed: int) -> tuple[float, np.ndarray]:
    """The tutorial loop; returns (seconds, Q)."""
    env = gym.make(ENV_ID)
    q = np.zeros((env.observation_space.n, env.action_space.n))
    rng = np.random.default_rng(seed)
    start = perf_counter()
    state, _ = env.reset(seed=seed)
    for _ in range(steps):
        if rng.random() < EPSILON:
            action = int(rng.integers(env.action_space.n))
        else:
            action = int(np.argmax(q[state]))
        next_state, reward, terminated, truncated, _ = env.step(action)
        target = reward + (0.0 if terminated else GAMMA * np.max(q[next_state]))
        q[state, action] += ALPHA * (target - q[state, action])
        state = next_state
        if terminated or truncated:
            state, _ = env.reset()
    seconds = perf_counter() - start
    env.close()
    return seconds, q


def rlsuite_train(steps: int, seed: int) -> tuple[float, np.ndarray, float]:
    """q_learning.train with evaluation only at the end; returns (train seconds, Q, total seconds)."""
    config = q_learning.QLearningConfig(env=ENV_ID, seed=seed, total_steps=steps, alpha=ALPHA, epsilon=EPSILON, gamma=GAMMA,
                                        eval_every=0, eval_episodes=1, checkpoint_every=0, log_every=10_000)
    with tempfile.TemporaryDirectory(prefix="rlsuite-bench-") as tmp:
        start = perf_counter()
        run = q_learning.train(config, run_dir=Path(tmp) / "run", quiet=True)
        total = perf_counter() - start
        q = np.load(run.dir / "model" / "q.npy")
    assert run.step == steps, run.step
    return run.timing["train_seconds"], q, total


def rlsuite_driver(steps: int, seed: int) -> tuple[float, np.ndarray]:
    config = q_learning.QLearningConfig(seed=seed, alpha=ALPHA, epsilon=EPSILON, gamma=GAMMA)
    env = gym.make(ENV_ID)
    agent = q_learning.agent_factory(config)(48, 4, np.random.default_rng(seed))
    start = perf_counter()
    done, _, _ = tabular.run_steps(env, agent, tabular.EpisodeCursor(reset_seed=seed), max_steps=steps)
    seconds = perf_counter() - start
    assert done == steps
    return seconds, agent.q


def greedy_return(q: np.ndarray) -> float:
    env = gym.make(ENV_ID, max_episode_steps=200)
    state, _ = env.reset(seed=0)
    total, done = 0.0, False
    while not done:
        state, reward, terminated, truncated, _ = env.step(int(np.argmax(q[state])))
        total, done = total + reward, terminated or truncated
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200_000, help="env steps per run (default 200,000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per implementation (default 3)")
    parser.add_argument("--no-write", action="store_true", help="print only; do not append to bench/RESULTS.md")
    args = parser.parse_args()

    # Pay one-off costs (lazy imports such as TensorBoard's writer) before any clock starts.
    plain_q_learning(1_000, 0)
    rlsuite_train(1_000, 0)
    rates: dict[str, list[float]] = {"plain": [], "rlsuite": [], "driver": []}
    finals: dict[str, list[float]] = {"plain": [], "rlsuite": [], "driver": []}
    totals: list[float] = []
    for seed in range(args.repeats):
        seconds, q = plain_q_learning(args.steps, seed)
        rates["plain"].append(args.steps / seconds)
        finals["plain"].append(greedy_return(q))
        seconds, q, total = rlsuite_train(args.steps, seed)
        rates["rlsuite"].append(args.steps / seconds)
        finals["rlsuite"].append(greedy_return(q))
        totals.append(total)
        seconds, q = rlsuite_driver(args.steps, seed)
        rates["driver"].append(args.steps / seconds)
        finals["driver"].append(greedy_return(q))
        print(f"  seed {seed}: plain {rates['plain'][-1]:,.0f} steps/s, rlsuite train {rates['rlsuite'][-1]:,.0f} steps/s "
              f"(whole call {total:.2f}s), driver {rates['driver'][-1]:,.0f} steps/s", flush=True)

    med = {k: statistics.median(v) for k, v in rates.items()}
    ratio, driver_ratio = med["rlsuite"] / med["plain"], med["driver"] / med["plain"]
    print(f"\nQ-learning on {ENV_ID}, {args.steps:,} env steps x {args.repeats} (median):")
    print(f"  plain tutorial loop:        {med['plain']:>10,.0f} env steps/s  (greedy returns {finals['plain']})")
    print(f"  rlsuite q_learning.train:   {med['rlsuite']:>10,.0f} env steps/s  (greedy returns {finals['rlsuite']})")
    print(f"  rlsuite driver (no loop):   {med['driver']:>10,.0f} env steps/s  (greedy returns {finals['driver']})")
    print(f"  ratio rlsuite/plain: {ratio:.2f}x   driver/plain: {driver_ratio:.2f}x")
    if args.no_write:
        return
    reduced = "" if (args.steps, args.repeats) == (200_000, 3) else " (reduced run: not the standard steps/repeats)"
    body = "\n".join([
        f"{args.steps:,} env steps x {args.repeats} repeats, alpha {ALPHA}, epsilon {EPSILON}, gamma {GAMMA}; "
        f"gymnasium {gym.__version__}. Training steps/s exclude evaluation, checkpoints and plotting; median over repeats.",
        "",
        "| implementation | train steps/s | ratio to plain | greedy return per repeat |",
        "|---|---|---|---|",
        f"| plain tutorial loop (NumPy table) | {med['plain']:,.0f} | 1.00x | {finals['plain']} |",
        f"| rlsuite `q_learning.train` | {med['rlsuite']:,.0f} | {ratio:.2f}x | {finals['rlsuite']} |",
        f"| rlsuite driver `run_steps` only | {med['driver']:,.0f} | {driver_ratio:.2f}x | {finals['driver']} |",
        "",
        f"Whole `q_learning.train` call (run dir, final eval, checkpoint, model.pt, curve.png): median {statistics.median(totals):.2f}s.",
    ])
    append_section(f"`bench/q_learning_throughput.py`, tabular Q-learning on {ENV_ID} vs a plain Python loop{reduced}", body)


if __name__ == "__main__":
    main()
