"""Tabular TD targets and epsilon-greedy policies (Sutton & Barto 2nd ed., ch. 5-8), as pure functions.

Conventions: `q_s` is one row Q(s, .) of a table [|S|, |A|]; `terminated` means s' is terminal,
so its value is 0 and nothing is bootstrapped. A time-limit truncation is *not* termination: the
caller bootstraps from s' as usual. These run once per environment step in plain Python loops,
so they work on NumPy rows and floats, not tensors.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _check_row(name: str, q: np.ndarray) -> None:
    if q.ndim != 1 or q.size == 0:
        raise ValueError(f"{name} must be one non-empty row Q(s, .) of shape [|A|], got shape {q.shape}")


def greedy(q: np.ndarray) -> np.ndarray:
    """argmax_a Q(s, a) along the last axis with a deterministic tie-break (lowest index), for
    evaluation and saved policies, where the same state must always give the same action."""
    return np.argmax(q, axis=-1)


def argmax_random(q_s: np.ndarray, rng: np.random.Generator) -> int:
    """argmax_a Q(s, a), ties broken uniformly at random (the book's convention, p. 27): with a
    zero-initialized table a fixed tie-break would always try the same action first."""
    # Plain Python over the row is several times faster than NumPy calls for a handful of actions,
    # and this runs once per environment step.
    row = q_s.tolist()
    top = max(row)
    best = [a for a, value in enumerate(row) if value == top]
    return best[0] if len(best) == 1 else best[int(rng.random() * len(best))]


def epsilon_greedy(q_s: np.ndarray, epsilon: float, rng: np.random.Generator) -> int:
    """A ~ epsilon-greedy(Q(s, .)): uniform over all actions with probability epsilon, otherwise
    greedy with random tie-breaking; the distribution is `epsilon_greedy_probs`."""
    if rng.random() < epsilon:
        return int(rng.random() * q_s.shape[0])
    return argmax_random(q_s, rng)


def epsilon_greedy_probs(q_s: np.ndarray, epsilon: float) -> np.ndarray:
    """pi(.|s) of the epsilon-greedy policy (section 5.4): epsilon/|A| for every action, plus
    (1 - epsilon) split evenly over the maximizing actions (random tie-breaking)."""
    _check_row("q_s", q_s)
    best = q_s == q_s.max()
    return epsilon / q_s.shape[0] + (1.0 - epsilon) * best / best.sum()


def sarsa_target(r: float, gamma: float, q_next_a: float, terminated: bool) -> float:
    """SARSA target R + gamma Q(S', A') (eq. 6.7)."""
    return r if terminated else r + gamma * q_next_a


def q_learning_target(r: float, gamma: float, q_next: np.ndarray, terminated: bool) -> float:
    """Q-learning target R + gamma max_a Q(S', a) (eq. 6.8)."""
    return r if terminated else r + gamma * max(q_next.tolist())


def expected_sarsa_target(r: float, gamma: float, q_next: np.ndarray, pi_next: np.ndarray, terminated: bool) -> float:
    """Expected SARSA target R + gamma sum_a pi(a|S') Q(S', a) (eq. 6.9)."""
    if q_next.shape != pi_next.shape:
        raise ValueError(f"q_next and pi_next must have the same shape [|A|], got {q_next.shape} and {pi_next.shape}")
    return r if terminated else r + gamma * float(pi_next @ q_next)


def double_q_target(r: float, gamma: float, q1_next: np.ndarray, q2_next: np.ndarray, terminated: bool, rng: np.random.Generator) -> float:
    """Double Q-learning target R + gamma Q2(S', argmax_a Q1(S', a)) (eq. 6.10): one table picks
    the action, the other values it, which removes the maximization bias of section 6.7."""
    if terminated:
        return r
    return r + gamma * float(q2_next[argmax_random(q1_next, rng)])


def n_step_return(rewards: Sequence[float], gamma: float, bootstrap: float = 0.0) -> float:
    """G_{t:t+n} = R_{t+1} + gamma R_{t+2} + ... + gamma^{n-1} R_{t+n} + gamma^n Q(S_{t+n}, A_{t+n}) (eq. 7.4).

    `rewards` are the (up to n) rewards after step t. When the episode terminated before t+n,
    pass the rewards up to the end and bootstrap=0: the return is truncated there (G_{t:t+n} = G_t).
    """
    g = bootstrap
    for r in reversed(rewards):
        g = r + gamma * g
    return float(g)


def td_update(q_sa: float, target: float, alpha: float) -> float:
    """Q(S, A) + alpha [target - Q(S, A)]: every update rule of ch. 6-8 has this form."""
    return q_sa + alpha * (target - q_sa)


def exploration_bonus(kappa: float, tau: float) -> float:
    """Dyna-Q+ bonus kappa sqrt(tau) added to modelled rewards (section 8.3), tau being the time
    steps since the pair was last tried in the real environment."""
    return kappa * float(np.sqrt(tau))
