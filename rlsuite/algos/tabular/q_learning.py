"""Q-learning (Watkins 1989; Sutton & Barto 2nd ed., section 6.5, box on p. 131).

    Loop for each step of episode:
        Choose A from S using the epsilon-greedy policy derived from Q
        Take action A, observe R, S'
        Q(S, A) <- Q(S, A) + alpha [R + gamma max_a Q(S', a) - Q(S, A)]        (eq. 6.8)
        S <- S'

Off-policy: the target follows the greedy policy while the agent behaves epsilon-greedily, so on
the cliff (Example 6.6) it learns the edge path but falls off more often than SARSA while learning.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from rlsuite.core.spec import AlgorithmSpec
from rlsuite.ops import td
from rlsuite.rollout import tabular


@dataclasses.dataclass(frozen=True)
class QLearningConfig(tabular.TabularControlConfig):
    """Q-learning: the fields shared by tabular control methods (rlsuite.rollout.tabular)."""


PRESETS = tabular.TD_PRESETS


class Agent:
    STATE = ("q", "rng")

    def __init__(self, n_states: int, n_actions: int, config: QLearningConfig, rng: np.random.Generator):
        self.config, self.rng = config, rng
        self.q = np.zeros((n_states, n_actions))

    def begin(self, s: int) -> int:
        return td.epsilon_greedy(self.q[s], self.config.epsilon, self.rng)

    def step(self, s: int, a: int, r: float, s2: int, terminated: bool, truncated: bool) -> int:
        c, q = self.config, self.q
        q[s, a] = td.td_update(q[s, a], td.q_learning_target(r, c.gamma, q[s2], terminated), c.alpha)
        return td.epsilon_greedy(q[s2], c.epsilon, self.rng)

    def q_values(self) -> np.ndarray:
        return self.q


train = tabular.trainer("q_learning", Agent)
averaged_returns = tabular.averaged_returns_of(Agent)
agent_factory = tabular.agent_factory(Agent)


SPEC = AlgorithmSpec(
    name="q_learning",
    family="tabular",
    summary="Q-learning",
    config=QLearningConfig,
    presets=PRESETS,
    train=train,
    load=tabular.load_greedy,
    acts_on=tabular.ACTS_ON,
)
preset = SPEC.preset
