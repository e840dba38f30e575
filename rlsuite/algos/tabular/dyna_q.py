"""Tabular Dyna-Q and Dyna-Q+ (Sutton & Barto 2nd ed., section 8.2 box on p. 164; section 8.3).

    (a) S <- current (nonterminal) state
    (b) A <- epsilon-greedy(S, Q)
    (c) Take action A; observe resultant reward, R, and state, S'
    (d) Q(S, A) <- Q(S, A) + alpha [R + gamma max_a Q(S', a) - Q(S, A)]
    (e) Model(S, A) <- R, S'          (assuming deterministic environment)
    (f) Loop repeat n times:
            S <- random previously observed state
            A <- random action previously taken in S
            R, S' <- Model(S, A)
            Q(S, A) <- Q(S, A) + alpha [R + gamma max_a Q(S', a) - Q(S, A)]

Dyna-Q+ (kappa > 0) plans with the reward R + kappa sqrt(tau), tau being the steps since (S, A)
was last tried for real, and, as the book's footnote says, lets planning try actions never taken
from an observed state, modelled as leading back to the same state with reward 0.
The model also remembers whether S' was terminal, so planning never bootstraps from it.
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
class DynaQConfig(tabular.TabularControlConfig):
    env: str = "DynaMaze-v0"
    total_steps: int = 10_000
    """Environment steps to train for (planning steps are not counted)."""
    eval_every: int = 1_000
    eval_episodes: int = 1
    """Episodes per evaluation (1 is enough on a deterministic maze)."""
    checkpoint_every: int = 5_000
    log_every: int = 500
    gamma: float = 0.95
    """Discount factor (0.95 in Figure 8.2)."""
    alpha: float = 0.1
    """Step size of the Q-learning updates, real and planned, in (0, 1]."""
    planning_steps: int = 5
    """n: simulated updates from the model after each real step (0 is plain one-step Q-learning)."""
    kappa: float = 0.0
    """Dyna-Q+ exploration bonus kappa sqrt(tau) in planning; 0 is plain Dyna-Q."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.planning_steps >= 0, f"planning_steps must be >= 0, got {self.planning_steps}.")
        check(self.kappa >= 0, f"kappa must be >= 0 (0 is plain Dyna-Q), got {self.kappa}.")


PRESETS: dict[str, dict[str, Any]] = {
    "DynaMaze-v0": dict(gamma=0.95, alpha=0.1, epsilon=0.1, planning_steps=50, total_steps=5_000),
    "CliffWalking-v1": dict(gamma=1.0, alpha=0.5, epsilon=0.1, planning_steps=5, total_steps=5_000, eval_every=500),
}


class Agent:
    STATE = ("q", "rng", "model_r", "model_s2", "model_terminal", "last_tried", "actions_taken", "observed", "time")

    def __init__(self, n_states: int, n_actions: int, config: DynaQConfig, rng: np.random.Generator):
        self.config, self.rng = config, rng
        self.q = np.zeros((n_states, n_actions))
        self.model_r = np.zeros((n_states, n_actions))
        self.model_s2 = np.zeros((n_states, n_actions), dtype=np.int64)
        self.model_terminal = np.zeros((n_states, n_actions), dtype=bool)
        self.last_tried = np.zeros((n_states, n_actions), dtype=np.int64)  # real time step, for tau
        self.actions_taken: dict[int, list[int]] = {}  # observed state -> actions the model knows
        self.observed: list[int] = []  # previously observed states, for uniform sampling
        self.time = 0

    def begin(self, s: int) -> int:
        return td.epsilon_greedy(self.q[s], self.config.epsilon, self.rng)

    def _remember(self, s: int, a: int, r: float, s2: int, terminated: bool) -> None:
        if s not in self.actions_taken:
            self.observed.append(s)
            self.actions_taken[s] = []
            if self.config.kappa > 0:  # Dyna-Q+ footnote: untried actions lead back, reward 0
                n_actions = self.q.shape[1]
                self.actions_taken[s] = list(range(n_actions))
                self.model_s2[s] = s
        if a not in self.actions_taken[s]:
            self.actions_taken[s].append(a)
        self.model_r[s, a], self.model_s2[s, a], self.model_terminal[s, a] = r, s2, terminated
        self.last_tried[s, a] = self.time

    def _plan(self) -> None:
        c, q, rng = self.config, self.q, self.rng
        for _ in range(c.planning_steps):
            s = self.observed[int(rng.random() * len(self.observed))]
            actions = self.actions_taken[s]
            a = actions[int(rng.random() * len(actions))]
            r = self.model_r[s, a]
            if c.kappa > 0:
                r += td.exploration_bonus(c.kappa, self.time - self.last_tried[s, a])
            target = td.q_learning_target(r, c.gamma, q[self.model_s2[s, a]], self.model_terminal[s, a])
            q[s, a] = td.td_update(q[s, a], target, c.alpha)

    def step(self, s: int, a: int, r: float, s2: int, terminated: bool, truncated: bool) -> int:
        c, q = self.config, self.q
        self.time += 1
        q[s, a] = td.td_update(q[s, a], td.q_learning_target(r, c.gamma, q[s2], terminated), c.alpha)
        self._remember(s, a, r, s2, terminated)
        self._plan()
        return td.epsilon_greedy(q[s2], c.epsilon, self.rng)

    def q_values(self) -> np.ndarray:
        return self.q


train = tabular.trainer("dyna_q", Agent)
averaged_returns = tabular.averaged_returns_of(Agent)
agent_factory = tabular.agent_factory(Agent)


SPEC = AlgorithmSpec(
    name="dyna_q",
    family="tabular",
    summary="Dyna-Q with n planning steps; Dyna-Q+ with an exploration bonus (--kappa)",
    config=DynaQConfig,
    presets=PRESETS,
    train=train,
    load=tabular.load_greedy,
    acts_on=tabular.ACTS_ON,
)
preset = SPEC.preset
