import gymnasium as gym
import numpy as np
import pytest

from rlsuite.errors import ConfigError
from rlsuite.envs.tabular import FiniteMDP
from rlsuite.ops import dp

FIG_4_1 = [[0, -14, -20, -22], [-14, -18, -20, -20], [-20, -20, -18, -14], [-22, -20, -14, 0]]
FIG_3_2 = [
    [3.3, 8.8, 4.4, 5.3, 1.5],
    [1.5, 3.0, 2.3, 1.9, 0.5],
    [0.1, 0.7, 0.7, 0.4, -0.4],
    [-1.0, -0.4, -0.4, -0.6, -1.2],
    [-1.9, -1.3, -1.2, -1.4, -2.0],
]
FIG_3_5 = [
    [22.0, 24.4, 22.0, 19.4, 17.5],
    [19.8, 22.0, 19.8, 17.8, 16.0],
    [17.8, 19.8, 17.8, 16.0, 14.4],
    [16.0, 17.8, 16.0, 14.4, 13.0],
    [14.4, 16.0, 14.4, 13.0, 11.7],
]


def dense_model(env_id):
    """P[s, a, s'] (non-terminating part) and R[s, a] read straight from the toy-text table."""
    env = gym.make(env_id).unwrapped
    S, A = env.observation_space.n, env.action_space.n
    P, R = np.zeros((S, A, S)), np.zeros((S, A))
    for s in range(S):
        for a in range(A):
            for p, s2, r, done in env.P[s][a]:
                R[s, a] += p * r
                if not done:
                    P[s, a, s2] += p
    return P, R


def test_figure_4_1_random_policy_on_the_4x4_gridworld():
    mdp = FiniteMDP.from_gymnasium("GridWorld4x4-v0")
    v, _ = dp.policy_evaluation(mdp, dp.uniform_policy(mdp), 1.0, tol=1e-4)
    np.testing.assert_allclose(v.reshape(4, 4), FIG_4_1, atol=0.1)


def test_figure_3_2_random_policy_on_the_5x5_gridworld():
    mdp = FiniteMDP.from_gymnasium("GridWorld5x5-v0")
    v, history = dp.policy_evaluation(mdp, dp.uniform_policy(mdp), 0.9, tol=1e-3)
    np.testing.assert_allclose(v.reshape(5, 5), FIG_3_2, atol=0.051)
    assert history[-1]["error_bound"] < 1e-3


def test_figure_3_5_optimal_values_on_the_5x5_gridworld():
    mdp = FiniteMDP.from_gymnasium("GridWorld5x5-v0")
    vi = dp.value_iteration(mdp, 0.9, tol=1e-3)
    pi = dp.policy_iteration(mdp, 0.9)
    np.testing.assert_allclose(vi.v.reshape(5, 5), FIG_3_5, atol=0.051)
    np.testing.assert_allclose(pi.v.reshape(5, 5), FIG_3_5, atol=0.051)


def test_value_iteration_error_bound_holds():
    mdp = FiniteMDP.from_gymnasium("GridWorld5x5-v0")
    reference = dp.policy_iteration(mdp, 0.9, exact=True).v
    for tol in (1.0, 1e-2, 1e-4):
        assert np.max(np.abs(dp.value_iteration(mdp, 0.9, tol=tol).v - reference)) < tol


@pytest.mark.parametrize("env_id", ["FrozenLake-v1", "Taxi-v4"])
def test_policy_and_value_iteration_agree_and_satisfy_bellman_optimality(env_id):
    gamma = 0.99
    mdp = FiniteMDP.from_gymnasium(env_id)
    vi = dp.value_iteration(mdp, gamma, tol=1e-10)
    pi = dp.policy_iteration(mdp, gamma, exact=True)
    pi_iter = dp.policy_iteration(mdp, gamma, tol=1e-10, exact=False)
    assert vi.converged and pi.converged and pi_iter.converged
    P, R = dense_model(env_id)
    for v in (vi.v, pi.v, pi_iter.v):
        bellman = (R + gamma * P @ v).max(axis=1)  # v*(s) = max_a sum p [r + gamma v*(s')] (eq. 3.19)
        np.testing.assert_allclose(v, bellman, atol=1e-8, rtol=0)
    np.testing.assert_allclose(vi.v, pi.v, atol=1e-8, rtol=0)
    # Both greedy policies are optimal: their exact values equal v*.
    for policy in (vi.policy, pi.policy):
        v_pol = np.linalg.solve(np.eye(len(R)) - gamma * P[np.arange(len(R)), policy], R[np.arange(len(R)), policy])
        np.testing.assert_allclose(v_pol, pi.v, atol=1e-8, rtol=0)


def test_policy_evaluation_matches_an_exact_linear_solve():
    gamma = 0.95
    mdp = FiniteMDP.from_gymnasium("FrozenLake-v1", is_slippery=True)
    P, R = dense_model("FrozenLake-v1")
    rng = np.random.default_rng(0)
    pi = rng.dirichlet(np.ones(4), size=16)
    P_pi, r_pi = np.einsum("sa,sat->st", pi, P), (pi * R).sum(axis=1)
    reference = np.linalg.solve(np.eye(16) - gamma * P_pi, r_pi)
    v, _ = dp.policy_evaluation(mdp, pi, gamma, tol=1e-10)
    np.testing.assert_allclose(v, reference, atol=1e-10, rtol=0)
    np.testing.assert_allclose(dp.policy_evaluation_exact(mdp, pi, gamma), reference, atol=1e-12, rtol=0)


def test_q_from_v_by_hand():
    # two states, one action each: 0 -> 1 with reward 2; 1 ends with reward 3.
    mdp = FiniteMDP.from_function(2, 1, lambda s, a: [(1.0, 1, 2.0, False)] if s == 0 else [(1.0, 1, 3.0, True)])
    np.testing.assert_allclose(dp.q_from_v(mdp, np.array([0.0, 3.0]), 0.5), [[3.5], [3.0]])
    v, _ = dp.policy_evaluation(mdp, np.array([0, 0]), 1.0, tol=1e-12)
    np.testing.assert_allclose(v, [5.0, 3.0])


def test_greedy_policy_keeps_the_current_action_on_exact_ties():
    q = np.array([[1.0, 1.0], [0.0, 2.0], [3.0, 3.0]])
    np.testing.assert_array_equal(dp.greedy_policy(q), [0, 1, 0])
    np.testing.assert_array_equal(dp.greedy_policy(q, current=np.array([1, 0, 1])), [1, 1, 1])


def test_policy_iteration_terminates_with_exactly_tied_actions():
    # Every action of every state is an exact copy: all policies are optimal, and an
    # argmax that prefers a different tied action each time would never be stable.
    def fn(s, a):
        return [(0.5, (s + 1) % 3, 1.0, False), (0.5, s, 0.0, False)]

    mdp = FiniteMDP.from_function(3, 3, fn)
    start = np.array([2, 1, 0])
    result = dp.policy_iteration(mdp, 0.9, policy0=start)
    assert result.converged and result.iterations == 1
    np.testing.assert_array_equal(result.policy, start)
    assert result.history[-1]["policy_changes"] == 0
    result = dp.policy_iteration(mdp, 0.9, tol=1e-6, exact=False, policy0=start)
    assert result.converged and result.iterations == 1


@pytest.mark.parametrize("gamma", [-0.1, 1.5, float("nan")])
def test_gamma_outside_unit_interval_is_a_config_error(gamma):
    mdp = FiniteMDP.from_gymnasium("GridWorld4x4-v0")
    with pytest.raises(ConfigError, match=r"gamma must be in \[0, 1\]"):
        dp.value_iteration(mdp, gamma)
    with pytest.raises(ConfigError):
        dp.policy_evaluation(mdp, dp.uniform_policy(mdp), gamma)


def test_gamma_one_on_a_continuing_task_is_a_config_error():
    mdp = FiniteMDP.from_gymnasium("GridWorld5x5-v0")
    for solve in (lambda: dp.value_iteration(mdp, 1.0), lambda: dp.policy_iteration(mdp, 1.0), lambda: dp.policy_evaluation(mdp, dp.uniform_policy(mdp), 1.0)):
        with pytest.raises(ConfigError, match="episodic"):
            solve()


def test_gamma_one_on_episodic_tasks():
    windy = FiniteMDP.from_gymnasium("WindyGridWorld-v0")
    assert dp.value_iteration(windy, 1.0).v[30] == pytest.approx(-15.0)  # Example 6.5: 15 steps
    assert dp.policy_iteration(windy, 1.0).v[30] == pytest.approx(-15.0)
    grid = FiniteMDP.from_gymnasium("GridWorld4x4-v0")
    always_up = np.zeros(16, dtype=np.int64)  # bumps into the top wall forever from row 0
    with pytest.raises(ConfigError, match="never terminates"):
        dp.policy_evaluation(grid, always_up, 1.0)


# Figure 4.1, left column: v_k of the equiprobable random policy after k synchronous sweeps
# (the book prints one decimal, truncated: -1.75 shows as -1.7).
FIG_4_1_SWEEPS = {
    1: [[0.0, -1.0, -1.0, -1.0], [-1.0, -1.0, -1.0, -1.0], [-1.0, -1.0, -1.0, -1.0], [-1.0, -1.0, -1.0, 0.0]],
    2: [[0.0, -1.7, -2.0, -2.0], [-1.7, -2.0, -2.0, -2.0], [-2.0, -2.0, -2.0, -1.7], [-2.0, -2.0, -1.7, 0.0]],
    3: [[0.0, -2.4, -2.9, -3.0], [-2.4, -2.9, -3.0, -2.9], [-2.9, -3.0, -2.9, -2.4], [-3.0, -2.9, -2.4, 0.0]],
    10: [[0.0, -6.1, -8.4, -9.0], [-6.1, -7.7, -8.4, -8.4], [-8.4, -8.4, -7.7, -6.1], [-9.0, -8.4, -6.1, 0.0]],
}


@pytest.mark.parametrize("k", sorted(FIG_4_1_SWEEPS))
def test_figure_4_1_values_after_k_sweeps(k):
    mdp = FiniteMDP.from_gymnasium("GridWorld4x4-v0")
    v, history = dp.policy_evaluation(mdp, dp.uniform_policy(mdp), 1.0, sweeps=k)
    assert len(history) == k
    np.testing.assert_allclose(v.reshape(4, 4), FIG_4_1_SWEEPS[k], atol=0.1)


def test_sweeps_must_not_be_negative():
    mdp = FiniteMDP.from_gymnasium("GridWorld4x4-v0")
    with pytest.raises(ConfigError, match="sweeps must be >= 0"):
        dp.policy_evaluation(mdp, dp.uniform_policy(mdp), 1.0, sweeps=-1)
