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

import numpy as np

from rlsuite.core.spec import AlgorithmSpec
from rlsuite.ops import td
from rlsuite.rollout import tabular


@dataclasses.dataclass(frozen=True)
class DoubleQLearningConfig(tabular.TabularControlConfig):
    eval_every: int = 2_000
    """Evaluate the greedy policy (on Q1 + Q2) every this many steps (0: only at the end)."""


PRESETS = tabular.TD_PRESETS


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


train = tabular.trainer("double_q_learning", Agent)
averaged_returns = tabular.averaged_returns_of(Agent)
agent_factory = tabular.agent_factory(Agent)


SPEC = AlgorithmSpec(
    name="double_q_learning",
    family="tabular",
    summary="Double Q-learning",
    config=DoubleQLearningConfig,
    presets=PRESETS,
    train=train,
    load=tabular.load_greedy,
    acts_on=tabular.ACTS_ON,
)
preset = SPEC.preset
