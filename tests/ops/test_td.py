"""Exact values of the tabular TD targets and epsilon-greedy helpers, computed by hand."""

import numpy as np
import pytest

from rlsuite.ops import td


def test_q_learning_target_uses_max_and_ignores_terminal_bootstrap():
    q_next = np.array([1.0, 4.0, -2.0])
    assert td.q_learning_target(-1.0, 0.9, q_next, False) == pytest.approx(-1.0 + 0.9 * 4.0)
    assert td.q_learning_target(-1.0, 0.9, q_next, True) == -1.0


def test_sarsa_target():
    assert td.sarsa_target(2.0, 0.5, 3.0, False) == 3.5
    assert td.sarsa_target(2.0, 0.5, 3.0, True) == 2.0


def test_epsilon_greedy_probs_single_maximum():
    probs = td.epsilon_greedy_probs(np.array([0.0, 2.0, 1.0, -1.0]), 0.2)
    np.testing.assert_allclose(probs, [0.05, 0.85, 0.05, 0.05])


def test_epsilon_greedy_probs_split_ties_and_sum_to_one():
    probs = td.epsilon_greedy_probs(np.array([3.0, 1.0, 3.0]), 0.3)
    # 0.3/3 = 0.1 each, plus 0.7 split over the two maxima.
    np.testing.assert_allclose(probs, [0.45, 0.1, 0.45])
    assert probs.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(td.epsilon_greedy_probs(np.zeros(4), 0.1), [0.25] * 4)
    np.testing.assert_allclose(td.epsilon_greedy_probs(np.array([1.0, 0.0]), 0.0), [1.0, 0.0])


def test_expected_sarsa_target_with_hand_probabilities():
    q_next = np.array([1.0, 5.0, 2.0])
    # epsilon 0.3: pi = [0.1, 0.8, 0.1]; expectation 0.1 + 4.0 + 0.2 = 4.3.
    pi = td.epsilon_greedy_probs(q_next, 0.3)
    np.testing.assert_allclose(pi, [0.1, 0.8, 0.1])
    assert td.expected_sarsa_target(1.0, 0.5, q_next, pi, False) == pytest.approx(1.0 + 0.5 * 4.3)
    assert td.expected_sarsa_target(1.0, 0.5, q_next, pi, True) == 1.0
    with pytest.raises(ValueError):
        td.expected_sarsa_target(1.0, 0.5, q_next, pi[:2], False)


def test_double_q_target_values_with_the_other_table():
    q1 = np.array([0.0, 3.0, 1.0])  # picks action 1
    q2 = np.array([10.0, -1.0, 7.0])
    rng = np.random.default_rng(0)
    assert td.double_q_target(0.5, 1.0, q1, q2, False, rng) == pytest.approx(0.5 - 1.0)
    assert td.double_q_target(0.5, 1.0, q1, q2, True, rng) == 0.5


def test_n_step_return_bootstraps_and_truncates_at_episode_end():
    # G_{t:t+2} = 1 + 0.5 * 2 + 0.25 * 8 = 4
    assert td.n_step_return([1.0, 2.0], 0.5, bootstrap=8.0) == pytest.approx(4.0)
    # The episode ends after 3 rewards, before t + n: no bootstrap, G = 1 + 0.5*2 + 0.25*4 = 3.
    assert td.n_step_return([1.0, 2.0, 4.0], 0.5) == pytest.approx(3.0)
    assert td.n_step_return([3.0], 0.9, bootstrap=10.0) == pytest.approx(3.0 + 9.0)  # one-step SARSA
    assert td.n_step_return([], 0.9, bootstrap=0.0) == 0.0


def test_td_update_and_bonus():
    assert td.td_update(1.0, 3.0, 0.25) == 1.5
    assert td.exploration_bonus(0.5, 16) == 2.0


def test_greedy_is_deterministic_lowest_index():
    q = np.array([[1.0, 3.0, 3.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -0.5]])
    np.testing.assert_array_equal(td.greedy(q), [1, 0, 2])


def test_argmax_random_breaks_ties_uniformly():
    rng = np.random.default_rng(0)
    q = np.array([2.0, 0.0, 2.0, 2.0])
    picks = np.array([td.argmax_random(q, rng) for _ in range(3000)])
    assert set(picks) == {0, 2, 3}
    counts = np.bincount(picks, minlength=4)[[0, 2, 3]]
    assert counts.min() > 850  # 1000 expected each; 850 is > 5 standard deviations away
    assert td.argmax_random(np.array([0.0, 1.0, 0.5]), rng) == 1


def test_epsilon_greedy_action_frequencies_match_probs():
    rng = np.random.default_rng(1)
    q = np.array([0.0, 1.0, 1.0, -3.0])
    n = 20_000
    freq = np.bincount([td.epsilon_greedy(q, 0.4, rng) for _ in range(n)], minlength=4) / n
    # 0.4/4 = 0.1 each plus 0.6 split over the tied maxima 1 and 2.
    np.testing.assert_allclose(freq, [0.1, 0.4, 0.4, 0.1], atol=0.015)


def test_epsilon_greedy_probs_checks_shape():
    with pytest.raises(ValueError):
        td.epsilon_greedy_probs(np.zeros((2, 2)), 0.1)
