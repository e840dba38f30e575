import numpy as np
import pytest

from rlsuite.errors import RLSuiteError, UnsupportedEnvError
from rlsuite.envs.tabular import FiniteMDP, MDPError


def test_from_gymnasium_frozen_lake_matches_the_table():
    import gymnasium as gym

    table = gym.make("FrozenLake-v1").unwrapped.P
    mdp = FiniteMDP.from_gymnasium("FrozenLake-v1")
    assert (mdp.n_states, mdp.n_actions, mdp.shape) == (16, 4, (4, 4))
    dense = mdp.dense()
    for s in range(16):
        for a in range(4):
            expected = np.zeros(16)
            reward = done = 0.0
            for p, s2, r, terminal in table[s][a]:
                reward += p * r
                if terminal:
                    done += p
                else:
                    expected[s2] += p
            np.testing.assert_allclose(dense[s, a], expected)
            assert mdp.R[s, a] == pytest.approx(reward) and mdp.done[s, a] == pytest.approx(done)


@pytest.mark.parametrize("env_id", ["FrozenLake8x8-v1", "CliffWalking-v1", "Taxi-v4"])
def test_toy_text_envs_build(env_id):
    mdp = FiniteMDP.from_gymnasium(env_id)
    rows = mdp.dense().sum(axis=2) + mdp.done
    np.testing.assert_allclose(rows, 1.0)


def test_from_arrays_and_function_agree():
    P = np.array([[[0.5, 0.5], [1.0, 0.0]], [[0.0, 1.0], [0.2, 0.8]]])
    R3 = np.arange(8.0).reshape(2, 2, 2)
    a = FiniteMDP.from_arrays(P, R3)
    b = FiniteMDP.from_function(2, 2, lambda s, act: [(P[s, act, t], t, R3[s, act, t], False) for t in range(2) if P[s, act, t] > 0])
    np.testing.assert_allclose(a.dense(), b.dense())
    np.testing.assert_allclose(a.R, [[0.5, 2.0], [5.0, 6.8]])
    np.testing.assert_allclose(a.R, b.R)
    v = np.array([1.0, 10.0])
    np.testing.assert_allclose(a.expected_next(v), [[5.5, 1.0], [10.0, 8.2]])


def test_terminal_states_in_from_arrays():
    P = np.array([[[0.0, 1.0]], [[0.0, 1.0]]])
    mdp = FiniteMDP.from_arrays(P, np.ones((2, 1)), terminal_states=[1])
    np.testing.assert_allclose(mdp.done, [[1.0], [1.0]])
    assert mdp.terminating_states().all()


def test_bad_probabilities_name_the_pair():
    P = np.zeros((2, 1, 2))
    P[0, 0] = [0.5, 0.4]
    P[1, 0] = [0.0, 1.0]
    with pytest.raises(MDPError, match=r"\(s=0, a=0\) sum to 0.9"):
        FiniteMDP.from_arrays(P, np.zeros((2, 1)))
    with pytest.raises(MDPError, match="negative"):
        FiniteMDP.from_function(1, 1, lambda s, a: [(-0.5, 0, 0.0, False), (1.5, 0, 0.0, False)])
    with pytest.raises(MDPError, match="shape"):
        FiniteMDP.from_arrays(np.ones((2, 1, 2)) / 2, np.zeros((3, 1)))
    assert issubclass(MDPError, RLSuiteError)


def test_continuous_env_is_rejected():
    with pytest.raises(UnsupportedEnvError, match="Discrete observation and action spaces"):
        FiniteMDP.from_gymnasium("CartPole-v1")


def test_terminating_states_and_proper_policy():
    # chain 0 -> 1 -> 2 -> end with action 0; action 1 stays put; state 3 only loops.
    def fn(s, a):
        if s == 3:
            return [(1.0, 3, 0.0, False)]
        if a == 1:
            return [(1.0, s, 0.0, False)]
        return [(1.0, s + 1, -1.0, s == 2)]

    mdp = FiniteMDP.from_function(4, 2, fn)
    np.testing.assert_array_equal(mdp.terminating_states(), [True, True, True, False])
    only_stay = np.zeros((4, 2), bool)
    only_stay[:, 1] = True
    assert not mdp.terminating_states(only_stay).any()
    np.testing.assert_array_equal(mdp.proper_policy()[:3], [0, 0, 0])


def test_large_random_mdp_is_stochastic():
    mdp = FiniteMDP.random_sparse(100_000, 4, 5, seed=1)
    assert mdp.nnz == 2_000_000
    np.testing.assert_allclose(mdp.expected_next(np.ones(100_000)), 1.0)
