"""Regenerate the shapes of eight Sutton & Barto (2nd ed.) figures with rlsuite, as PNGs.

    python examples/sutton_barto.py                 # full version, into figures/ (about a minute)
    python examples/sutton_barto.py --out /tmp/f    # elsewhere
    python examples/sutton_barto.py --quick         # few runs and episodes: a smoke test (seconds)

Each figure is one short function below; the numbers to compare with the book are the full run's.
The curves are averages over independent runs, so expect the book's shape, not its exact pixels.

figure2_2.png  Figure 2.2: the 10-armed testbed, 2,000 runs x 1,000 steps, sample-average
               epsilon-greedy with epsilon 0 (greedy), 0.01 and 0.1. Book: average reward at step
               1,000 about 1.05 (greedy), 1.3 (0.01, still rising) and 1.4 (0.1); % optimal
               action about 35%, 55% and 80%.
figure2_3.png  Figure 2.3: optimistic greedy (Q1 = 5, epsilon 0, alpha 0.1) vs realistic
               epsilon-greedy (Q1 = 0, epsilon 0.1, alpha 0.1), % optimal action. Book: the
               optimistic agent spikes to about 40% near step 11, is worse early, then ends above
               the realistic one (roughly 85% vs 80%).
figure2_4.png  Figure 2.4: UCB c = 2 vs epsilon-greedy epsilon 0.1, average reward. Book: UCB has a
               spike at step 11 (after one pull of each arm it takes the arm whose single sample
               was best, worth E[q*] = about 1.1) and ends higher (about 1.5 vs 1.35).
figure2_5.png  Figure 2.5: gradient bandit on the testbed with q*(a) ~ N(+4, 1), alpha 0.1 / 0.4,
               with and without the average-reward baseline, % optimal action. Book: with the
               baseline far above without; alpha 0.4 faster at first, alpha 0.1 higher at step
               1,000 (read off the figure: roughly 80-85% and 75% with the baseline, 50-60% and
               25-30% without).
figure3_5.png  Figure 3.5 (middle and right): v* of the 5x5 gridworld (Example 3.5, gamma 0.9)
               with greedy arrows. Book, top row: 22.0 24.4 22.0 19.4 17.5; bottom row:
               14.4 16.0 14.4 13.0 11.7.
figure4_1.png  Figure 4.1 (last row): v_pi of the equiprobable random policy on the 4x4 gridworld
               (gamma 1) with the arrows of the policy greedy with respect to it. Book, top row:
               0 -14 -20 -22; second row: -14 -18 -20 -20. (The book draws every tied best
               action; rlsuite's plot_values draws one arrow per state, the first best action.)
figure6_4.png  Example 6.6 (figure of the cliff walk): CliffWalking-v1, epsilon 0.1, alpha 0.5,
               gamma 1, sum of rewards per episode (online, while exploring), averaged over runs
               and smoothed over 10 episodes. Book: SARSA about -25, Q-learning about -50 (it walks
               the edge and falls off when exploring); Expected SARSA (Figure 6.3) a little above
               SARSA.
figure8_2.png  Figure 8.2: Dyna maze, steps per episode for n = 0, 5 and 50 planning steps (alpha
               0.1, epsilon 0.1, gamma 0.95), episodes 2-50, averaged over 30 runs. Book: n = 0
               needs about 25 episodes to get near the ~15-step optimum (episode 2 is several
               hundred steps); n = 5 about 5 episodes; n = 50 about 3.

Only rlsuite's public pieces are used: the bandit modules' train (which write metrics.csv, read
back with rlsuite.core.plotting.read_curve), FiniteMDP and rlsuite.ops.dp, plot_values, and the
tabular modules' averaged_returns.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from rlsuite.algos.bandits import epsilon_greedy, gradient_bandit, ucb
from rlsuite.algos.tabular import dyna_q, expected_sarsa, q_learning, sarsa
from rlsuite.core.plotting import read_curve
from rlsuite.envs import gridworlds
from rlsuite.envs.tabular import FiniteMDP
from rlsuite.ops import dp

AVERAGE_REWARD, OPTIMAL_ACTION = "bandit/average_reward", "bandit/optimal_action"
NO_ARROW = len(gridworlds.KING_MOVES)  # plot_values' index of "stay": no arrow (used for terminals)


class Budget:
    """How much to simulate: the book's amounts, or a smoke test's (--quick)."""

    def __init__(self, quick: bool):
        self.bandit_runs, self.bandit_steps = (100, 300) if quick else (2000, 1000)
        self.cliff_runs, self.cliff_episodes = (3, 100) if quick else (100, 500)
        self.maze_runs, self.maze_episodes = (2, 15) if quick else (30, 50)


# --- helpers ---------------------------------------------------------------------------------


def bandit_curves(specs: dict[str, tuple], metric: str, budget: Budget, workdir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Train each {label: (module, config fields)} on its testbed; return {label: (steps, metric)}.

    Every configuration uses the same seed, hence the same 2,000 testbeds (common random numbers)."""
    curves = {}
    for label, (module, fields) in specs.items():
        run_dir = workdir / "".join(ch if ch.isalnum() else "_" for ch in label)
        if not (run_dir / "metrics.csv").is_file():  # a figure may reuse another figure's runs
            config = module.Config(runs=budget.bandit_runs, steps=budget.bandit_steps, seed=0, **fields)
            module.train(config, run_dir, quiet=True)
        steps, values, _ = read_curve(run_dir, metric)
        curves[label] = (steps, values)
    return curves


def draw(ax, curves: dict[str, tuple[np.ndarray, np.ndarray]], xlabel: str, ylabel: str) -> None:
    for label, (x, y) in curves.items():
        ax.plot(x, y, label=label, lw=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def smooth(y: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(episode numbers, moving average over `window` episodes), 1-based episodes."""
    window = max(1, min(window, len(y)))
    return np.arange(window, len(y) + 1), np.convolve(y, np.ones(window) / window, mode="valid")


def last(curve: tuple[np.ndarray, np.ndarray], n: int = 50) -> float:
    return float(np.mean(curve[1][-n:]))


# --- chapter 2: bandits ------------------------------------------------------------------------

EPSILONS = {"greedy (epsilon = 0)": 0.0, "epsilon = 0.01": 0.01, "epsilon = 0.1": 0.1}


def figure2_2(out: Path, budget: Budget, workdir: Path) -> Path:
    specs = {label: (epsilon_greedy, {"epsilon": eps}) for label, eps in EPSILONS.items()}
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 7), sharex=True)
    rewards = bandit_curves(specs, AVERAGE_REWARD, budget, workdir)
    optimal = bandit_curves(specs, OPTIMAL_ACTION, budget, workdir)
    draw(top, rewards, "", "Average reward")
    draw(bottom, optimal, "Steps", "% Optimal action")
    bottom.set_ylim(0, 100)
    top.set_title(f"Figure 2.2: epsilon-greedy, sample averages ({budget.bandit_runs:,} runs)")
    print("  figure 2.2, last 50 steps: " + "; ".join(f"{k}: reward {last(rewards[k]):.2f}, optimal {last(optimal[k]):.0f}%" for k in specs))
    return save(fig, out / "figure2_2.png")


def figure2_3(out: Path, budget: Budget, workdir: Path) -> Path:
    specs = {
        "optimistic, greedy: Q1 = 5, epsilon = 0": (epsilon_greedy, {"epsilon": 0.0, "initial_value": 5.0, "step_size": 0.1}),
        "realistic, epsilon-greedy: Q1 = 0, epsilon = 0.1": (epsilon_greedy, {"epsilon": 0.1, "initial_value": 0.0, "step_size": 0.1}),
    }
    optimal = bandit_curves(specs, OPTIMAL_ACTION, budget, workdir)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    draw(ax, optimal, "Steps", "% Optimal action")
    ax.set_ylim(0, 100)
    ax.set_title("Figure 2.3: optimistic initial values (alpha = 0.1)")
    peak = int(np.argmax(optimal[next(iter(specs))][1][:50]))
    print(f"  figure 2.3: optimistic spike {optimal[next(iter(specs))][1][peak]:.0f}% at step {peak + 1}; last 50 steps: "
          + "; ".join(f"{k.split(':')[0]} {last(v):.0f}%" for k, v in optimal.items()))
    return save(fig, out / "figure2_3.png")


def figure2_4(out: Path, budget: Budget, workdir: Path) -> Path:
    specs = {
        "UCB c = 2": (ucb, {"c": 2.0}),
        "epsilon-greedy epsilon = 0.1": (epsilon_greedy, {"epsilon": 0.1}),
    }
    rewards = bandit_curves(specs, AVERAGE_REWARD, budget, workdir)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    draw(ax, rewards, "Steps", "Average reward")
    ax.set_title("Figure 2.4: upper-confidence-bound action selection")
    ucb_curve = rewards["UCB c = 2"][1]
    print(f"  figure 2.4: UCB reward at step 11 {ucb_curve[10]:.2f}; last 50 steps: "
          + "; ".join(f"{k} {last(v):.2f}" for k, v in rewards.items()))
    return save(fig, out / "figure2_4.png")


def figure2_5(out: Path, budget: Budget, workdir: Path) -> Path:
    specs = {
        f"alpha = {alpha}, {'with' if baseline else 'without'} baseline": (
            gradient_bandit, {"env": "bandit-10-offset4", "step_size": alpha, "baseline": baseline})
        for baseline in (True, False) for alpha in (0.1, 0.4)
    }
    optimal = bandit_curves(specs, OPTIMAL_ACTION, budget, workdir)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    draw(ax, optimal, "Steps", "% Optimal action")
    ax.set_ylim(0, 100)
    ax.set_title("Figure 2.5: gradient bandit, q*(a) ~ N(+4, 1)")
    print("  figure 2.5, last 50 steps: " + "; ".join(f"{k} {last(v):.0f}%" for k, v in optimal.items()))
    return save(fig, out / "figure2_5.png")


# --- chapters 3 and 4: dynamic programming ---------------------------------------------------


def figure3_5(out: Path) -> Path:
    mdp = FiniteMDP.from_gymnasium("GridWorld5x5-v0")
    result = dp.value_iteration(mdp, gamma=0.9, tol=1e-6)
    v = result.v.reshape(5, 5)
    print(f"  figure 3.5: v* top row {np.round(v[0], 1).tolist()}, bottom row {np.round(v[4], 1).tolist()}")
    return gridworlds.plot_values(result.v, (5, 5), result.policy, out / "figure3_5.png",
                                  title="Figure 3.5: v* and an optimal policy (gamma 0.9)")


def figure4_1(out: Path) -> Path:
    mdp = FiniteMDP.from_gymnasium("GridWorld4x4-v0")
    for k in (1, 2, 3, 10):  # the figure's left column, printed: v_k after k sweeps
        v_k, _ = dp.policy_evaluation(mdp, dp.uniform_policy(mdp), gamma=1.0, sweeps=k)
        print(f"  figure 4.1: v_{k} rows {[np.round(row, 1).tolist() for row in v_k.reshape(4, 4)]}")
    v, _ = dp.policy_evaluation(mdp, dp.uniform_policy(mdp), gamma=1.0, tol=1e-8)
    greedy = dp.greedy_policy(dp.q_from_v(mdp, v, 1.0))
    greedy[[0, 15]] = NO_ARROW  # the terminal corners have no action
    print(f"  figure 4.1: v_pi rows {[np.round(row, 1).tolist() for row in v.reshape(4, 4)]}")
    return gridworlds.plot_values(v, (4, 4), greedy, out / "figure4_1.png",
                                  title="Figure 4.1: v_pi of the random policy")


# --- chapters 6 and 8: model-free control ----------------------------------------------------


def figure6_4(out: Path, budget: Budget) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, module in (("Expected SARSA", expected_sarsa), ("SARSA", sarsa), ("Q-learning", q_learning)):
        config = module.SPEC.config(env="CliffWalking-v1", alpha=0.5, epsilon=0.1, gamma=1.0, seed=0)
        returns, _ = module.averaged_returns(config, runs=budget.cliff_runs, episodes=budget.cliff_episodes)
        mean = returns.mean(axis=0)
        ax.plot(*smooth(mean, 10), label=label, lw=1)
        print(f"  figure 6.4: {label} mean sum of rewards over the last 100 episodes {mean[-100:].mean():.1f}")
    ax.set_ylim(-100, 0)
    ax.set_xlabel("Episodes")
    ax.set_ylabel("Sum of rewards during episode")
    ax.set_title(f"Example 6.6: the cliff walk ({budget.cliff_runs} runs, 10-episode moving average)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, out / "figure6_4.png")


def figure8_2(out: Path, budget: Budget) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for n in (0, 5, 50):
        config = dyna_q.SPEC.config(env="DynaMaze-v0", planning_steps=n, alpha=0.1, epsilon=0.1, gamma=0.95, seed=0)
        _, lengths = dyna_q.averaged_returns(config, runs=budget.maze_runs, episodes=budget.maze_episodes)
        mean = lengths.mean(axis=0)
        episodes = np.arange(1, len(mean) + 1)
        ax.plot(episodes[1:], mean[1:], label=f"{n} planning steps" + (" (direct RL only)" if n == 0 else ""), lw=1)
        print(f"  figure 8.2: n = {n}: episode 1 {mean[0]:.0f} steps, episode 2 {mean[1]:.0f}, last 10 episodes {mean[-10:].mean():.1f}")
    ax.set_ylim(0, 800)
    ax.set_xlabel("Episodes")
    ax.set_ylabel("Steps per episode")
    ax.set_title(f"Figure 8.2: Dyna-Q on the maze ({budget.maze_runs} runs)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, out / "figure8_2.png")


# --- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("figures"), help="folder for the PNGs (default: figures/)")
    parser.add_argument("--quick", action="store_true", help="few runs and episodes: a smoke test, not the book's curves")
    args = parser.parse_args(argv)
    budget = Budget(args.quick)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    paths = []
    with tempfile.TemporaryDirectory(prefix="sutton_barto_runs_") as tmp:  # bandit run directories
        workdir = Path(tmp)
        for make in (figure2_2, figure2_3, figure2_4, figure2_5):
            paths.append(make(args.out, budget, workdir))
            print(paths[-1])
    for make in (figure3_5, figure4_1):
        paths.append(make(args.out))
        print(paths[-1])
    for make in (figure6_4, figure8_2):
        paths.append(make(args.out, budget))
        print(paths[-1])
    print(f"{len(paths)} figures in {time.perf_counter() - t0:.1f}s")
    return paths


if __name__ == "__main__":
    main(sys.argv[1:])
