"""Expected SARSA (Sutton & Barto 2nd ed., section 6.6).

    Choose A from S using the epsilon-greedy policy pi derived from Q
    Take action A, observe R, S'
    Q(S, A) <- Q(S, A) + alpha [R + gamma sum_a pi(a|S') Q(S', a) - Q(S, A)]          (eq. 6.9)

The expectation removes the variance of sampling A', so large step sizes work (Figure 6.3): on
the cliff with alpha = 0.5 it does a little better online than SARSA.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from rlsuite.core.spec import AlgorithmSpec
from rlsuite.ops import td
from rlsuite.rollout import tabular


@dataclasses.dataclass(frozen=True)
class ExpectedSarsaConfig(tabular.TabularControlConfig):
    epsilon: float = 0.1
    """Probability of a uniformly random action in the epsilon-greedy policy (followed and used in the expectation)."""


PRESETS = tabular.TD_PRESETS


class Agent:
    STATE = ("q", "rng")

    def __init__(self, n_states: int, n_actions: int, config: ExpectedSarsaConfig, rng: np.random.Generator):
        self.config, self.rng = config, rng
        self.q = np.zeros((n_states, n_actions))

    def begin(self, s: int) -> int:
        return td.epsilon_greedy(self.q[s], self.config.epsilon, self.rng)

    def step(self, s: int, a: int, r: float, s2: int, terminated: bool, truncated: bool) -> int:
        c, q = self.config, self.q
        pi_next = td.epsilon_greedy_probs(q[s2], c.epsilon)
        q[s, a] = td.td_update(q[s, a], td.expected_sarsa_target(r, c.gamma, q[s2], pi_next, terminated), c.alpha)
        return td.epsilon_greedy(q[s2], c.epsilon, self.rng)

    def q_values(self) -> np.ndarray:
        return self.q


train = tabular.trainer("expected_sarsa", Agent)
averaged_returns = tabular.averaged_returns_of(Agent)
agent_factory = tabular.agent_factory(Agent)


SPEC = AlgorithmSpec(
    name="expected_sarsa",
    family="tabular",
    summary="Expected SARSA",
    config=ExpectedSarsaConfig,
    presets=PRESETS,
    train=train,
    load=tabular.load_greedy,
    acts_on=tabular.ACTS_ON,
)
preset = SPEC.preset
