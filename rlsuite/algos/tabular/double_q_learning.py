"""Double Q-learning (van Hasselt 2010; Sutton & Barto 2nd ed., section 6.7, box on p. 136).

    Choose A from S using the epsilon-greedy policy in Q1 + Q2
    Take action A, observe R, S'
    With 0.5 probability:
        Q1(S, A) <- Q1(S, A) + alpha [R + gamma Q2(S', argmax_a Q1(S', a)) - Q1(S, A)]   (eq. 6.10)
    else:
        Q2(S, A) <- Q2(S, A) + alpha [R + gamma Q1(S', argmax_a Q2(S', a)) - Q2(S, A)]

One table chooses the maximizing action and the other values it, so the estimate of max_a Q is
not biased upward by noise (the maximization bias of Example 6.7, Figure 6.5).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from rlsuite.core import config as configs
from rlsuite.core import run as runs
from rlsuite.core.errors import check
from rlsuite.ops import td
from rlsuite.rollout import tabular

SUMMARY = "Double Q-learning"


@dataclasses.dataclass(frozen=True)
class DoubleQLearningConfig(configs.TrainConfig):
    env: str = "CliffWalking-v1"
    """Gymnasium environment id with Discrete observations and actions (see `rlsuite list`)."""
    total_steps: int = 20_000
    """Environment steps to train for."""
    eval_every: int = 2_000
    """Evaluate the greedy policy (on Q1 + Q2) every this many steps (0: only at the end)."""
    checkpoint_every: int = 10_000
    """Save a resumable checkpoint every this many steps (and always at the end or on Ctrl-C)."""
    log_every: int = 1_000
    """Write averaged training metrics every this many steps."""
    gamma: float = 1.0
    """Discount factor (1: the undiscounted episodic task of the book's examples)."""
    alpha: float = 0.5
    """Step size of the TD update, in (0, 1]."""
    epsilon: float = 0.1
    """Probability of a uniformly random action in the epsilon-greedy behaviour policy."""
    eval_max_steps: int = 1_000
    """Cut evaluation episodes after this many steps when the env has no time limit of its own."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(0 <= self.gamma <= 1, f"gamma must be in [0, 1], got {self.gamma}.")
        check(0 < self.alpha <= 1, f"alpha (step size) must be in (0, 1], got {self.alpha}.")
        check(0 <= self.epsilon <= 1, f"epsilon must be in [0, 1], got {self.epsilon}.")
        check(self.eval_max_steps >= 1, f"eval_max_steps must be >= 1, got {self.eval_max_steps}.")


Config = DoubleQLearningConfig

PRESETS: dict[str, dict[str, Any]] = {
    "CliffWalking-v1": dict(gamma=1.0, alpha=0.5, epsilon=0.1, total_steps=20_000),
    "FrozenLake-v1": dict(gamma=0.99, alpha=0.1, epsilon=0.1, total_steps=200_000, eval_every=20_000, eval_episodes=100),
    "Taxi-v4": dict(gamma=0.99, alpha=0.5, epsilon=0.1, total_steps=100_000, eval_every=10_000),
}


def preset(env: str | None = None, **overrides: Any) -> DoubleQLearningConfig:
    return configs.with_preset(DoubleQLearningConfig, PRESETS, env, **overrides)


class Agent:
    STATE = ("q1", "q2", "rng")

    def __init__(self, n_states: int, n_actions: int, config: DoubleQLearningConfig, rng: np.random.Generator):
        self.config, self.rng = config, rng
        self.q1 = np.zeros((n_states, n_actions))
        self.q2 = np.zeros((n_states, n_actions))

    def begin(self, s: int) -> int:
        return td.epsilon_greedy(self.q1[s] + self.q2[s], self.config.epsilon, self.rng)

    def step(self, s: int, a: int, r: float, s2: int, terminated: bool, truncated: bool) -> int:
        c = self.config
        chooser, valuer = (self.q1, self.q2) if self.rng.random() < 0.5 else (self.q2, self.q1)
        target = td.double_q_target(r, c.gamma, chooser[s2], valuer[s2], terminated, self.rng)
        chooser[s, a] = td.td_update(chooser[s, a], target, c.alpha)
        return td.epsilon_greedy(self.q1[s2] + self.q2[s2], c.epsilon, self.rng)

    def q_values(self) -> np.ndarray:
        return self.q1 + self.q2  # same argmax as their mean; what the behaviour policy acts on


def agent_factory(config: DoubleQLearningConfig):
    """make_agent(n_states, n_actions, rng) for rlsuite.rollout.tabular (training, averaged curves)."""
    return lambda n_states, n_actions, rng: Agent(n_states, n_actions, config, rng)


def averaged_returns(config: DoubleQLearningConfig, runs: int, episodes: int, make_env=None) -> tuple[np.ndarray, np.ndarray]:
    """Online returns and lengths [runs, episodes] of independent agents."""
    return tabular.averaged_returns(agent_factory(config), make_env or config.env, runs, episodes, config.seed)


def train(config: DoubleQLearningConfig, run_dir=None, *, overwrite: bool = False, resume: bool = False, quiet: bool = False, callbacks=()) -> runs.Run:
    """Train Double Q-learning on config.env; returns the Run (directory, evaluations, timing)."""
    return tabular.train_tabular("double_q_learning", config, agent_factory(config), run_dir,
                                 overwrite=overwrite, resume=resume, quiet=quiet, callbacks=callbacks)


def load_policy(payload: dict[str, Any]) -> tabular.GreedyPolicy:
    """The greedy policy argmax_a (Q1 + Q2)(s, a) of a saved run; `.predict(states)` gives actions."""
    return tabular.load_greedy(payload)
