"""Exact values of the chapter-2 bandit math, computed by hand."""

import math

import numpy as np
import pytest

from rlsuite.ops import bandits as ops


def test_sample_average_update_equals_arithmetic_mean():
    rewards = [3.0, -1.0, 4.0, 1.5, 2.5]
    q = np.zeros(1)
    for n, r in enumerate(rewards, start=1):
        q = ops.incremental_update(q, np.array([r]), 1.0 / n)  # Eq. 2.3
    assert q[0] == pytest.approx(10.0 / 5)


def test_constant_step_update_is_exponential_recency_weighted_average():
    # Q1 = 5, alpha = 0.5, R = 1, 3, 2:  Q2 = 3, Q3 = 3, Q4 = 2.5 by hand, and Eq. 2.6 gives
    # (1 - a)^3 Q1 + a(1 - a)^2 R1 + a(1 - a) R2 + a R3 = 0.625 + 0.125 + 0.75 + 1 = 2.5.
    q = np.array([5.0])
    trace = []
    for r in (1.0, 3.0, 2.0):
        q = ops.incremental_update(q, np.array([r]), 0.5)
        trace.append(q[0])
    assert trace == [3.0, 3.0, 2.5]


def test_ucb_scores_hand_computed():
    Q = np.array([[1.0, 2.0, 0.5]])
    N = np.array([[1.0, 4.0, 1.0]])
    # c = 2, t = 6: Q + 2 sqrt(ln 6 / N) with ln 6 = 1.791759
    expected = [1.0 + 2 * 1.338566, 2.0 + 2 * 0.669283, 0.5 + 2 * 1.338566]
    np.testing.assert_allclose(ops.ucb_scores(Q, N, 6, 2.0)[0], expected, atol=1e-5)
    assert ops.argmax_random_ties(ops.ucb_scores(Q, N, 6, 2.0), np.random.default_rng(0))[0] == 0


def test_ucb_tries_untried_arms_first():
    rng = np.random.default_rng(0)
    Q = np.array([[1.0, 2.0, 0.5]])
    N = np.array([[1.0, 4.0, 0.0]])
    assert ops.ucb_scores(Q, N, 5, 2.0)[0, 2] == math.inf
    assert ops.argmax_random_ties(ops.ucb_scores(Q, N, 5, 2.0), rng)[0] == 2
    # From scratch, the first k selections pull every arm exactly once, whatever the estimates.
    k = 6
    Q, N = rng.normal(size=(4, k)) * 10, np.zeros((4, k))
    for t in range(1, k + 1):
        A = ops.argmax_random_ties(ops.ucb_scores(Q, N, t, 2.0), rng)
        N[np.arange(4), A] += 1
    assert (N == 1).all()


def test_argmax_breaks_ties_uniformly():
    rng = np.random.default_rng(0)
    values = np.tile([[0.0, 1.0, 1.0, 0.5, 1.0]], (30_000, 1))
    counts = np.bincount(ops.argmax_random_ties(values, rng), minlength=5)
    assert counts[0] == counts[3] == 0
    np.testing.assert_allclose(counts[[1, 2, 4]] / 30_000, 1 / 3, atol=0.015)


def test_epsilon_greedy_explores_at_rate_epsilon():
    rng = np.random.default_rng(0)
    Q = np.tile([[0.0, 0.0, 5.0, 0.0]], (40_000, 1))
    assert (ops.epsilon_greedy(Q, 0.0, rng) == 2).all()
    share = np.mean(ops.epsilon_greedy(Q, 0.2, rng) == 2)
    assert share == pytest.approx(0.8 + 0.2 / 4, abs=0.01)  # greedy, or explored onto the greedy arm


def test_softmax_and_gradient_bandit_update_hand_example():
    H = np.zeros((1, 3))
    pi = ops.softmax_policy(H)
    np.testing.assert_allclose(pi, [[1 / 3, 1 / 3, 1 / 3]])
    # alpha 0.1, R 2, baseline 0.5: step 0.15; H(A) += 0.15 * 2/3, others -= 0.15 * 1/3.
    H1 = ops.gradient_bandit_update(H, pi, np.array([1]), np.array([2.0]), np.array([0.5]), 0.1)
    np.testing.assert_allclose(H1, [[-0.05, 0.1, -0.05]])
    np.testing.assert_allclose(ops.softmax_policy(np.array([[0.0, math.log(3.0)]])), [[0.25, 0.75]])


def test_sample_categorical_frequencies():
    rng = np.random.default_rng(0)
    probs = np.tile([[0.1, 0.0, 0.6, 0.3]], (50_000, 1))
    counts = np.bincount(ops.sample_categorical(probs, rng), minlength=4) / 50_000
    np.testing.assert_allclose(counts, [0.1, 0.0, 0.6, 0.3], atol=0.01)


def test_beta_posterior_counts():
    alpha, beta = np.ones((2, 3)), np.ones((2, 3))
    for A, R in [([0, 2], [1.0, 0.0]), ([0, 2], [1.0, 1.0]), ([1, 2], [0.0, 0.0])]:
        alpha, beta = ops.beta_posterior(alpha, beta, np.array(A), np.array(R))
    np.testing.assert_array_equal(alpha, [[3, 1, 1], [1, 1, 2]])
    np.testing.assert_array_equal(beta, [[1, 2, 1], [1, 1, 3]])


def test_gaussian_posterior_hand_example():
    # N(0, 1) prior, rewards 2 and 4 with unit noise: precision 3, mean 6 / 3 = 2.
    mean, std = ops.gaussian_posterior(0.0, 1.0, np.array([[6.0, 0.0]]), np.array([[2.0, 0.0]]))
    np.testing.assert_allclose(mean, [[2.0, 0.0]])
    np.testing.assert_allclose(std, [[1 / math.sqrt(3), 1.0]])
    mean, _ = ops.gaussian_posterior(1.0, 0.5, np.array([[3.0]]), np.array([[1.0]]))
    assert mean[0, 0] == pytest.approx((1.0 / 0.25 + 3.0) / (4.0 + 1.0))


def test_shape_checks():
    with pytest.raises(ValueError, match=r"\[runs, k\]"):
        ops.softmax_policy(np.zeros(3))
    with pytest.raises(ValueError, match="equal shapes"):
        ops.ucb_scores(np.zeros((2, 3)), np.zeros((2, 4)), 1, 1.0)
