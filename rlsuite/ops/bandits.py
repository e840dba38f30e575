"""Bandit math of Sutton & Barto (2nd ed.) chapter 2 as pure NumPy functions over many runs.

Every table is [runs, k] (one row per independent run); actions and rewards are [runs].
"""

from __future__ import annotations

import numpy as np


def _check_table(name: str, table: np.ndarray) -> None:
    if table.ndim != 2:
        raise ValueError(f"{name} must be [runs, k], got shape {table.shape}")


def argmax_random_ties(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """argmax_a values[i, a] per row, ties broken uniformly at random (as the book's greedy does).

    Without random tie-breaking, greedy agents with equal initial estimates would all pull arm 0.
    """
    _check_table("values", values)
    best = values.argmax(axis=1)
    is_max = values == values[np.arange(values.shape[0]), best][:, None]
    # Only rows with a tie need random numbers; with real-valued estimates that is soon none.
    tied = np.flatnonzero(np.count_nonzero(is_max, axis=1) > 1)
    if tied.size:
        best[tied] = np.argmax(rng.random((tied.size, values.shape[1])) * is_max[tied], axis=1)
    return best


def epsilon_greedy(Q: np.ndarray, epsilon: float, rng: np.random.Generator) -> np.ndarray:
    """A_t: greedy in Q with probability 1 - epsilon, else a uniformly random arm (Section 2.2)."""
    runs, k = Q.shape
    actions = argmax_random_ties(Q, rng)
    explore = rng.random(runs) < epsilon
    actions[explore] = rng.integers(0, k, int(explore.sum()))
    return actions


def incremental_update(estimate: np.ndarray, target: np.ndarray, step_size: np.ndarray | float) -> np.ndarray:
    """NewEstimate = OldEstimate + StepSize [Target - OldEstimate] (Eq. 2.4).

    With step_size 1/n this is the sample average (Eq. 2.3); with a constant alpha it is the
    exponential recency-weighted average of Eq. 2.5/2.6.
    """
    return estimate + step_size * (target - estimate)


def sample_average_step(Q: np.ndarray, N: np.ndarray, A: np.ndarray, R: np.ndarray, step_size: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The box on p. 32 after pulling arm A[i] in run i and receiving R[i]:
    N(A) <- N(A) + 1;  Q(A) <- Q(A) + StepSize [R - Q(A)]  (Eq. 2.4), StepSize = 1/N(A) (the
    sample average, Eq. 2.3) or a constant alpha (Eq. 2.5). Returns new (Q, N); inputs unchanged."""
    _check_table("Q", Q)
    rows = np.arange(Q.shape[0])
    Q, N = Q.copy(), N.copy()
    N[rows, A] += 1
    alpha = 1.0 / N[rows, A] if step_size is None else step_size
    Q[rows, A] = incremental_update(Q[rows, A], R, alpha)
    return Q, N


def ucb_scores(Q: np.ndarray, N: np.ndarray, t: int, c: float) -> np.ndarray:
    """Q_t(a) + c sqrt(ln t / N_t(a)) (Eq. 2.10); +inf where N_t(a) = 0, so untried arms come first."""
    _check_table("Q", Q)
    if Q.shape != N.shape:
        raise ValueError(f"Q and N must have equal shapes, got {Q.shape} and {N.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        bonus = c * np.sqrt(np.log(t) / N)
    return np.where(N > 0, Q + bonus, np.inf)


def softmax_policy(H: np.ndarray) -> np.ndarray:
    """pi_t(a) = e^{H_t(a)} / sum_b e^{H_t(b)} (Eq. 2.11), shifted by the row max for stability."""
    _check_table("H", H)
    z = np.exp(H - H.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def sample_categorical(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One arm per row drawn from probs[i] (inverse-CDF sampling)."""
    _check_table("probs", probs)
    cdf = np.cumsum(probs, axis=1)
    u = rng.random((probs.shape[0], 1)) * cdf[:, -1:]
    return np.minimum((cdf <= u).sum(axis=1), probs.shape[1] - 1)


def gradient_bandit_update(H: np.ndarray, pi: np.ndarray, A: np.ndarray, R: np.ndarray, baseline: np.ndarray | float, alpha: float) -> np.ndarray:
    """H_{t+1} from Eq. 2.12:

        H(A_t) += alpha (R_t - Rbar_t) (1 - pi_t(A_t)),   H(a) -= alpha (R_t - Rbar_t) pi_t(a) for a != A_t
    """
    _check_table("H", H)
    if H.shape != pi.shape or A.shape != (H.shape[0],) or R.shape != A.shape:
        raise ValueError(f"expected H, pi [runs, k] and A, R [runs]; got {H.shape}, {pi.shape}, {A.shape}, {R.shape}")
    one_hot = np.zeros_like(H)
    one_hot[np.arange(H.shape[0]), A] = 1.0
    return H + alpha * (R - baseline)[:, None] * (one_hot - pi)


def beta_posterior(alpha: np.ndarray, beta: np.ndarray, A: np.ndarray, R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Beta(alpha, beta) posterior of each Bernoulli arm after reward R in {0, 1} from arm A."""
    _check_table("alpha", alpha)
    rows = np.arange(alpha.shape[0])
    alpha, beta = alpha.copy(), beta.copy()
    alpha[rows, A] += R
    beta[rows, A] += 1.0 - R
    return alpha, beta


def gaussian_posterior(mu0: float, sigma0: float, reward_sum: np.ndarray, N: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of q*(a)'s posterior under a N(mu0, sigma0^2) prior and unit-variance rewards:
    precision 1/sigma0^2 + N(a), mean (mu0/sigma0^2 + sum of rewards) / precision."""
    precision = 1.0 / sigma0**2 + N
    return (mu0 / sigma0**2 + reward_sum) / precision, 1.0 / np.sqrt(precision)
