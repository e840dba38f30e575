"""On-policy first-visit Monte Carlo control for epsilon-soft policies (Sutton & Barto 2nd ed.,
section 5.4, box on p. 101).

    Generate an episode following pi: S_0, A_0, R_1, ..., S_{T-1}, A_{T-1}, R_T
    G <- 0
    Loop for each step of episode, t = T-1, T-2, ..., 0:
        G <- gamma G + R_{t+1}
        Unless the pair S_t, A_t appears in S_0, A_0, ..., S_{t-1}, A_{t-1}:
            Append G to Returns(S_t, A_t);  Q(S_t, A_t) <- average(Returns(S_t, A_t))
            pi(.|S_t) <- epsilon-greedy with respect to Q(S_t, .)

pi is kept implicitly as epsilon-greedy in Q (ties broken at random), which is the box's epsilon-soft
policy. The average is incremental, Q <- Q + (G - Q) / N (section 2.4); `alpha` switches to a
constant step size instead. An episode cut by a time limit is used as if it had ended there.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from rlsuite.errors import check
from rlsuite.core.spec import AlgorithmSpec
from rlsuite.ops import td
from rlsuite.rollout import tabular


@dataclasses.dataclass(frozen=True)
class MCControlConfig(tabular.TabularControlConfig):
    env: str = "FrozenLake-v1"
    total_steps: int = 100_000
    eval_every: int = 10_000
    checkpoint_every: int = 50_000
    log_every: int = 2_000
    gamma: float = 0.95
    """Discount factor."""
    alpha: float | None = None
    """Constant step size in (0, 1]; None (the book's box) averages all first-visit returns."""
    epsilon: float = 0.1
    """Probability of a uniformly random action in the epsilon-soft policy."""

    def check_alpha(self) -> None:
        check(self.alpha is None or 0 < self.alpha <= 1, f"alpha (step size) must be in (0, 1] or None for sample averages, got {self.alpha}.")


PRESETS: dict[str, dict[str, Any]] = {
    "FrozenLake-v1": dict(gamma=0.95, epsilon=0.1, total_steps=100_000, eval_episodes=100),
}


class Agent:
    STATE = ("q", "visits", "rng", "episode")

    def __init__(self, n_states: int, n_actions: int, config: MCControlConfig, rng: np.random.Generator):
        self.config, self.rng = config, rng
        self.q = np.zeros((n_states, n_actions))
        self.visits = np.zeros((n_states, n_actions), dtype=np.int64)  # |Returns(s, a)|
        self.episode: list[tuple[int, int, float]] = []  # (S_t, A_t, R_{t+1})

    def begin(self, s: int) -> int:
        self.episode = []
        return td.epsilon_greedy(self.q[s], self.config.epsilon, self.rng)

    def step(self, s: int, a: int, r: float, s2: int, terminated: bool, truncated: bool) -> int | None:
        self.episode.append((s, a, r))
        if terminated or truncated:
            self._learn_from_episode()
            return None
        return td.epsilon_greedy(self.q[s2], self.config.epsilon, self.rng)

    def _learn_from_episode(self) -> None:
        c = self.config
        first_visit: dict[tuple[int, int], int] = {}
        for t, (s, a, _) in enumerate(self.episode):
            first_visit.setdefault((s, a), t)
        g = 0.0
        for t in reversed(range(len(self.episode))):
            s, a, r = self.episode[t]
            g = c.gamma * g + r
            if first_visit[(s, a)] == t:
                self.visits[s, a] += 1
                step = c.alpha if c.alpha is not None else 1.0 / self.visits[s, a]
                self.q[s, a] = td.td_update(self.q[s, a], g, step)
        self.episode = []

    def q_values(self) -> np.ndarray:
        return self.q


train = tabular.trainer("mc_control", Agent)
averaged_returns = tabular.averaged_returns_of(Agent)
agent_factory = tabular.agent_factory(Agent)


SPEC = AlgorithmSpec(
    name="mc_control",
    family="tabular",
    summary="first-visit Monte Carlo control with an epsilon-soft policy",
    config=MCControlConfig,
    presets=PRESETS,
    train=train,
    load=tabular.load_greedy,
    acts_on=tabular.ACTS_ON,
)
preset = SPEC.preset
