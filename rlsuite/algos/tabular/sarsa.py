"""SARSA and n-step SARSA (Sutton & Barto 2nd ed., section 6.4 box on p. 130; section 7.2 box on p. 147).

n-step SARSA for estimating Q, written as the book's box with a window of the last n steps:

    Take action A_t; observe R_{t+1}, S_{t+1}; if S_{t+1} is not terminal choose A_{t+1} ~ pi(.|S_{t+1})
    tau <- t - n + 1                       (the time whose estimate is being updated)
    if tau >= 0:
        G <- sum_{i=tau+1}^{min(tau+n, T)} gamma^{i-tau-1} R_i                          (eq. 7.4)
        if tau + n < T: G <- G + gamma^n Q(S_{tau+n}, A_{tau+n})
        Q(S_tau, A_tau) <- Q(S_tau, A_tau) + alpha [G - Q(S_tau, A_tau)]                 (eq. 7.5)
    at the end of the episode the window is flushed with truncated returns.

n = 1 is one-step SARSA, Q(S, A) <- Q(S, A) + alpha [R + gamma Q(S', A') - Q(S, A)] (eq. 6.7).
A time-limit truncation is not a terminal state: the flushed returns then bootstrap from Q(S_T, A_T).
"""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Any

import numpy as np

from rlsuite.errors import check
from rlsuite.core.spec import AlgorithmSpec
from rlsuite.ops import td
from rlsuite.rollout import tabular


@dataclasses.dataclass(frozen=True)
class SarsaConfig(tabular.TabularControlConfig):
    epsilon: float = 0.1
    """Probability of a uniformly random action in the epsilon-greedy policy (learned and followed)."""
    n: int = 1
    """Steps before bootstrapping: 1 is one-step SARSA (eq. 6.7), n > 1 n-step SARSA (eq. 7.5)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.n >= 1, f"n (steps of n-step SARSA) must be >= 1 (1 is one-step SARSA), got {self.n}.")


PRESETS: dict[str, dict[str, Any]] = {
    **tabular.TD_PRESETS,
    "WindyGridWorld-v0": dict(gamma=1.0, alpha=0.5, epsilon=0.1, total_steps=8_000, eval_every=1_000),  # Example 6.5
}


class Agent:
    STATE = ("q", "rng", "window")

    def __init__(self, n_states: int, n_actions: int, config: SarsaConfig, rng: np.random.Generator):
        self.config, self.rng = config, rng
        self.q = np.zeros((n_states, n_actions))
        self.window: deque[tuple[int, int, float]] = deque()  # (S_tau, A_tau, R_{tau+1}) of the last n steps

    def begin(self, s: int) -> int:
        self.window.clear()
        return td.epsilon_greedy(self.q[s], self.config.epsilon, self.rng)

    def _update_oldest(self, bootstrap: float) -> None:
        s, a, _ = self.window[0]
        g = td.n_step_return([r for _, _, r in self.window], self.config.gamma, bootstrap)
        self.q[s, a] = td.td_update(self.q[s, a], g, self.config.alpha)
        self.window.popleft()

    def step(self, s: int, a: int, r: float, s2: int, terminated: bool, truncated: bool) -> int | None:
        c = self.config
        self.window.append((s, a, r))
        a2 = None if terminated else td.epsilon_greedy(self.q[s2], c.epsilon, self.rng)
        if not (terminated or truncated):
            if len(self.window) == c.n:
                self._update_oldest(bootstrap=float(self.q[s2, a2]))
            return a2
        while self.window:  # tau runs on to T - 1; each return ends at T
            self._update_oldest(bootstrap=0.0 if terminated else float(self.q[s2, a2]))
        return a2

    def q_values(self) -> np.ndarray:
        return self.q


train = tabular.trainer("sarsa", Agent)
averaged_returns = tabular.averaged_returns_of(Agent)
agent_factory = tabular.agent_factory(Agent)


SPEC = AlgorithmSpec(
    name="sarsa",
    family="tabular",
    summary="SARSA and n-step SARSA (--n)",
    config=SarsaConfig,
    presets=PRESETS,
    train=train,
    load=tabular.load_greedy,
    acts_on=tabular.ACTS_ON,
)
preset = SPEC.preset
