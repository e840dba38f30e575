"""One update of every tabular method against values worked out by hand (the arithmetic is in the
comments).

(a) Dynamic programming on a 3-state, 2-action MDP with terminating transitions: one expectation
    sweep, one optimality sweep and one round of policy iteration.
(b) Model-free control: a hand-set Q table with 3 actions whose values differ, so the max, the
    action actually taken and the epsilon-greedy expectation all give different targets; one
    transition (or one short episode for n-step SARSA and Monte Carlo) is applied as a plain step,
    as terminated (no bootstrap) and as truncated (a time limit is not a terminal state: bootstrap
    from s2, except for Monte Carlo, which uses a cut episode as if it had ended there).

Every case changes if a sign flips, an update is not masked to the visited (s, a), terminated and
truncated are swapped, or the bootstrap uses the wrong action or table.
"""

import gymnasium as gym
import numpy as np
import pytest

from rlsuite.algos.tabular import double_q_learning, dyna_q, expected_sarsa, mc_control, q_learning, sarsa
from rlsuite.envs.tabular import FiniteMDP
from rlsuite.ops import dp
from rlsuite.rollout import tabular

# ================================================================================================
# (a) Dynamic programming
# ================================================================================================
#
# (s, a): [(prob, s', r, terminal)]; a terminal outcome has value 0 afterwards whatever s' says.
TRANSITIONS = {
    (0, 0): [(1.0, 1, 1.0, False)],
    (0, 1): [(0.5, 2, 0.0, False), (0.5, 0, 2.0, False)],
    (1, 0): [(1.0, 1, 10.0, True)],  # ends the episode (s' = 1 must NOT be bootstrapped)
    (1, 1): [(1.0, 0, -1.0, False)],
    (2, 0): [(0.8, 2, 0.0, False), (0.2, 2, 5.0, True)],  # ends with probability 0.2
    (2, 1): [(1.0, 1, 3.0, False)],
}
GAMMA = 0.9
V = np.array([1.0, 2.0, 4.0])  # V_k: nonzero everywhere, so bootstrapping a terminal shows
# q_k(s, a) = r(s, a) + gamma sum_{s'} p(s'|s, a) V(s'), terminating outcomes contributing 0:
#   q(0,0) = 1 + 0.9 * 2                        = 2.8
#   q(0,1) = (0.5*0 + 0.5*2) + 0.9 (0.5*4 + 0.5*1) = 1 + 2.25 = 3.25
#   q(1,0) = 10 + 0                              = 10    (11.8 if the terminal s' = 1 were bootstrapped)
#   q(1,1) = -1 + 0.9 * 1                        = -0.1
#   q(2,0) = 0.2*5 + 0.9 (0.8 * 4)               = 1 + 2.88 = 3.88
#   q(2,1) = 3 + 0.9 * 2                         = 4.8
Q_K = np.array([[2.8, 3.25], [10.0, -0.1], [3.88, 4.8]])


@pytest.fixture
def mdp():
    return FiniteMDP.from_function(3, 2, lambda s, a: TRANSITIONS[(s, a)])


def test_tiny_mdp_model(mdp):
    np.testing.assert_allclose(mdp.R, [[1.0, 1.0], [10.0, -1.0], [1.0, 3.0]])  # 0.2 * 5 = 1 for (2, 0)
    np.testing.assert_allclose(mdp.done, [[0, 0], [1.0, 0], [0.2, 0]])
    np.testing.assert_allclose(mdp.dense(), [[[0, 1, 0], [0.5, 0, 0.5]],
                                             [[0, 0, 0], [1, 0, 0]],
                                             [[0, 0, 0.8], [0, 1, 0]]])


def test_q_from_v_and_one_optimality_sweep(mdp):
    np.testing.assert_allclose(dp.q_from_v(mdp, V, GAMMA), Q_K)
    # V_{k+1}(s) = max_a q_k(s, a) = [3.25, 10, 4.8]
    np.testing.assert_allclose(dp.optimality_sweep(mdp, V, GAMMA), [3.25, 10.0, 4.8])
    np.testing.assert_array_equal(dp.greedy_policy(Q_K), [1, 0, 1])
    # gamma = 0: only the expected reward, max_a r(s, a) = [1, 10, 3]
    np.testing.assert_allclose(dp.optimality_sweep(mdp, V, 0.0), [1.0, 10.0, 3.0])


def test_one_expectation_sweep_of_a_stochastic_policy(mdp):
    pi = np.array([[0.5, 0.5], [0.25, 0.75], [1.0, 0.0]])
    P_pi, r_pi = dp.policy_model(mdp, pi)
    # r_pi = [0.5*1 + 0.5*1, 0.25*10 + 0.75*(-1), 1] = [1, 1.75, 1]
    np.testing.assert_allclose(r_pi, [1.0, 1.75, 1.0])
    # P_pi rows: 0.5 [0,1,0] + 0.5 [.5,0,.5]; 0.75 [1,0,0] (the 0.25 of action 0 terminates); [0,0,.8]
    np.testing.assert_allclose(P_pi.toarray(), [[0.25, 0.5, 0.25], [0.75, 0, 0], [0, 0, 0.8]])
    # V_{k+1} = r_pi + gamma P_pi V = sum_a pi(a|s) q_k(s, a):
    #   s0: 0.5*2.8 + 0.5*3.25 = 3.025;  s1: 0.25*10 + 0.75*(-0.1) = 2.425;  s2: 3.88
    np.testing.assert_allclose(dp.expectation_sweep(P_pi, r_pi, V, GAMMA), [3.025, 2.425, 3.88])


def test_one_expectation_sweep_of_a_deterministic_policy(mdp):
    P_pi, r_pi = dp.policy_model(mdp, np.array([0, 1, 0]))
    # q_k(s, pi(s)) = [q(0,0), q(1,1), q(2,0)] = [2.8, -0.1, 3.88]
    np.testing.assert_allclose(dp.expectation_sweep(P_pi, r_pi, V, GAMMA), [2.8, -0.1, 3.88])


# Policy iteration from pi = [0, 1, 0] (gamma 0.9). Evaluation, v = r_pi + gamma P_pi v:
#   v0 = 1 + 0.9 v1,  v1 = -1 + 0.9 v0  =>  0.19 v0 = 0.1: v0 = 10/19, v1 = -10/19
#   v2 = 1 + 0.9 * 0.8 v2               =>  v2 = 1 / 0.28 = 25/7
# q_pi:
#   q(0,0) = 1 + 0.9 (-10/19) = 10/19          q(0,1) = 1 + 0.45 (25/7 + 10/19) = 2.843985
#   q(1,0) = 10                                q(1,1) = -1 + 0.9 (10/19) = -10/19
#   q(2,0) = 25/7 = 3.571429                   q(2,1) = 3 + 0.9 (-10/19) = 48/19 = 2.526316
# Improvement: [1, 0, 0] (2 changes; state 2 keeps action 0 since 25/7 > 48/19).
V_PI = np.array([10 / 19, -10 / 19, 25 / 7])
Q_PI = np.array([[10 / 19, 1 + 0.45 * (25 / 7 + 10 / 19)], [10.0, -10 / 19], [25 / 7, 48 / 19]])


@pytest.mark.parametrize("exact", [True, False])
def test_one_policy_iteration_step(mdp, exact):
    v, q, improved, row = dp.policy_iteration_step(mdp, np.array([0, 1, 0]), V, GAMMA, 1e-10, exact)
    np.testing.assert_allclose(v, V_PI, atol=1e-9)
    np.testing.assert_allclose(q, Q_PI, atol=1e-9)
    np.testing.assert_array_equal(improved, [1, 0, 0])
    assert row["policy_changes"] == 2
    assert row["max_change"] == pytest.approx(2 + 10 / 19)  # |v1 - V1| = |-10/19 - 2|
    assert (row["evaluation_sweeps"] == 0) if exact else (row["evaluation_sweeps"] > 10)


def test_exact_evaluation_matches_hand_solution(mdp):
    np.testing.assert_allclose(dp.policy_evaluation_exact(mdp, np.array([0, 1, 0]), GAMMA), V_PI)


# ================================================================================================
# (b) Model-free control
# ================================================================================================

ALPHA = 0.5
Q0 = np.array([
    [0.5, -1.0, 0.25],  # s0: greedy action 0
    [1.0, 4.0, 2.0],    # s1: max 4 (action 1); action 2 is worth 2; eps-greedy (eps 0.3) mean 3.5
    [-2.0, 0.0, 6.0],   # s2: greedy action 2
    [7.0, 1.0, -3.0],   # s3: the end of the episodes below; nonzero so bootstrapping it shows
])
# The one transition of the one-step tests: S = 0, A = 0, R = 2, S' = 1.
S, A, R, S2 = 0, 0, 2.0, 1
KINDS = {"plain": (False, False), "terminated": (True, False), "truncated": (False, True)}


def _agent(module, seed=0, **fields):
    config = module.SPEC.config(gamma=GAMMA, alpha=ALPHA, **fields)
    agent = module.Agent(4, 3, config, np.random.default_rng(seed))
    if hasattr(agent, "q1"):
        agent.q1[:] = Q0
        agent.q2[:] = Q0_2
    else:
        agent.q[:] = Q0
    return agent


def _with(table, **entries):
    """table with entries {"s_a": value} replaced."""
    out = table.copy()
    for key, value in entries.items():
        s, a = map(int, key[1:].split("_"))
        out[s, a] = value
    return out


# --- Q-learning and Dyna-Q without planning: target R + gamma max_a Q(S', a) ---------------------
#   plain / truncated: 2 + 0.9 * 4 = 5.6;  Q(0,0) = 0.5 + 0.5 (5.6 - 0.5) = 3.05
#   terminated:        2;                  Q(0,0) = 0.5 + 0.5 (2 - 0.5)   = 1.25
Q_LEARNING = {"plain": 3.05, "terminated": 1.25, "truncated": 3.05}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("module", [q_learning, dyna_q])
def test_q_learning_one_step(module, kind):
    extra = {"planning_steps": 0} if module is dyna_q else {}
    agent = _agent(module, epsilon=0.0, **extra)
    a2 = agent.step(S, A, R, S2, *KINDS[kind])
    np.testing.assert_allclose(agent.q, _with(Q0, s0_0=Q_LEARNING[kind]))  # nothing else moves
    assert a2 == 1  # greedy in Q(1, .) = [1, 4, 2]
    if module is dyna_q:
        assert (agent.model_r[S, A], agent.model_s2[S, A]) == (R, S2)
        assert agent.model_terminal[S, A] == (kind == "terminated")  # a time limit is not terminal


# --- Dyna-Q with planning ------------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(KINDS))
def test_dyna_q_one_planning_step_replays_the_model(kind):
    agent = _agent(dyna_q, epsilon=0.0, planning_steps=1)
    agent.step(S, A, R, S2, *KINDS[kind])
    # The model knows one pair, (0, 0), so planning replays it whatever the draws:
    #   plain / truncated: real 3.05, then 3.05 + 0.5 (2 + 0.9 * 4 - 3.05) = 4.325
    #   terminated: real 1.25, then 1.25 + 0.5 (2 - 1.25) = 1.625 (the model remembers S' was terminal;
    #   bootstrapping it would give 3.425)
    expected = {"plain": 4.325, "terminated": 1.625, "truncated": 4.325}[kind]
    np.testing.assert_allclose(agent.q, _with(Q0, s0_0=expected))


@pytest.mark.parametrize("seed, planned_state", [(0, 0), (1, 1)])
def test_dyna_q_seeded_planning_step_picks_a_previously_observed_state(seed, planned_state):
    # Draws: step 1 plans with draws 0 (state) and 1 (action) and acts with draw 2 (epsilon test);
    # step 2 plans with draw 3 (state: observed[int(u * 2)]) and draw 4 (action, the only one).
    draws = np.random.default_rng(seed).random(5)
    assert int(draws[3] * 2) == planned_state  # seed 0: 0.017 -> state 0; seed 1: 0.949 -> state 1
    agent = _agent(dyna_q, seed=seed, epsilon=0.0, planning_steps=1)
    assert agent.step(0, 0, 2.0, 1, False, False) == 1  # Q(0,0): 3.05 real, 4.325 planned
    assert agent.step(1, 1, -1.0, 2, False, False) == 2
    # Step 2, real: Q(1,1) = 4 + 0.5 (-1 + 0.9 * 6 - 4) = 4.2. Planning then updates
    #   state 0: Q(0,0) = 4.325 + 0.5 (2 + 0.9 * max[1, 4.2, 2] - 4.325) = 4.325 + 0.5 * 1.455 = 5.0525
    #   state 1: Q(1,1) = 4.2 + 0.5 (-1 + 0.9 * 6 - 4.2) = 4.3
    expected = _with(Q0, s0_0=5.0525, s1_1=4.2) if planned_state == 0 else _with(Q0, s0_0=4.325, s1_1=4.3)
    np.testing.assert_allclose(agent.q, expected)


# --- one-step SARSA: target R + gamma Q(S', A') with A' the action it will take ------------------

SARSA_SEED = 12  # draws 0.251 (< epsilon 0.3: explore) then 0.947 (action int(0.947 * 3) = 2)


@pytest.mark.parametrize("kind", list(KINDS))
def test_one_step_sarsa_bootstraps_from_the_action_taken(kind):
    draws = np.random.default_rng(SARSA_SEED).random(2)
    assert draws[0] < 0.3 and int(draws[1] * 3) == 2
    agent = _agent(sarsa, seed=SARSA_SEED, epsilon=0.3, n=1)
    a2 = agent.step(S, A, R, S2, *KINDS[kind])
    # plain / truncated: A' = 2 (explored), target 2 + 0.9 Q(1, 2) = 2 + 1.8 = 3.8;
    #   Q(0,0) = 0.5 + 0.5 (3.8 - 0.5) = 2.15   (the max would give 3.05, the expectation 2.825)
    # terminated: no A', target 2: Q(0,0) = 1.25
    expected = {"plain": 2.15, "terminated": 1.25, "truncated": 2.15}[kind]
    np.testing.assert_allclose(agent.q, _with(Q0, s0_0=expected))
    assert a2 == (None if kind == "terminated" else 2)


# --- Expected SARSA: target R + gamma sum_a pi(a|S') Q(S', a) ------------------------------------

@pytest.mark.parametrize("kind", list(KINDS))
def test_expected_sarsa_one_step(kind):
    agent = _agent(expected_sarsa, epsilon=0.3)
    agent.step(S, A, R, S2, *KINDS[kind])
    # pi(.|1), epsilon 0.3 over 3 actions: 0.1 each + 0.7 on the greedy action 1 = [0.1, 0.8, 0.1]
    # E = 0.1*1 + 0.8*4 + 0.1*2 = 3.5; plain / truncated: target 2 + 0.9*3.5 = 5.15,
    #   Q(0,0) = 0.5 + 0.5 (5.15 - 0.5) = 2.825;  terminated: 1.25
    expected = {"plain": 2.825, "terminated": 1.25, "truncated": 2.825}[kind]
    np.testing.assert_allclose(agent.q, _with(Q0, s0_0=expected))


# --- Double Q-learning: Q1(S,A) += alpha [R + gamma Q2(S', argmax Q1(S', .)) - Q1(S,A)] or mirrored --

Q0_2 = np.array([
    [1.5, 0.0, 0.0],
    [3.0, -2.0, 5.0],  # argmax 2, while argmax Q1(1, .) = 1
    [0.0, 1.0, 0.0],
    [-1.0, 2.0, 0.0],
])
# First draw of step(): < 0.5 updates Q1, else Q2. Seed 2 draws 0.262, seed 0 draws 0.637.
#   Q1 updated: target 2 + 0.9 Q2(1, argmax Q1(1, .) = 1) = 2 - 1.8 = 0.2;  Q1(0,0) = 0.5 + 0.5 (0.2 - 0.5) = 0.35
#               terminated: Q1(0,0) = 0.5 + 0.5 (2 - 0.5) = 1.25
#   Q2 updated: target 2 + 0.9 Q1(1, argmax Q2(1, .) = 2) = 2 + 1.8 = 3.8;  Q2(0,0) = 1.5 + 0.5 (3.8 - 1.5) = 2.65
#               terminated: Q2(0,0) = 1.5 + 0.5 (2 - 1.5) = 1.75
DOUBLE_Q = {("q1", "plain"): 0.35, ("q1", "terminated"): 1.25, ("q1", "truncated"): 0.35,
            ("q2", "plain"): 2.65, ("q2", "terminated"): 1.75, ("q2", "truncated"): 2.65}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("seed, table", [(2, "q1"), (0, "q2")])
def test_double_q_learning_updates_one_table_valued_by_the_other(seed, table, kind):
    assert (np.random.default_rng(seed).random() < 0.5) == (table == "q1")
    agent = _agent(double_q_learning, seed=seed, epsilon=0.0)
    a2 = agent.step(S, A, R, S2, *KINDS[kind])
    value = DOUBLE_Q[(table, kind)]
    if table == "q1":
        np.testing.assert_allclose(agent.q1, _with(Q0, s0_0=value))
        np.testing.assert_array_equal(agent.q2, Q0_2)
    else:
        np.testing.assert_array_equal(agent.q1, Q0)
        np.testing.assert_allclose(agent.q2, _with(Q0_2, s0_0=value))
    assert a2 == 2  # greedy in Q1 + Q2 at state 1: [4, 2, 7]
    np.testing.assert_allclose(agent.q_values(), agent.q1 + agent.q2)


# --- n-step SARSA: one short episode 0 -a0-> 1 -a1-> 2 -a2-> 3, rewards 2, -1, 5 ----------------
# epsilon 0, so the agent's actions are greedy: A0 = 0, A1 = 1, A2 = 2 and, at s3, A3 = 0 (Q = 7).
# The third step is plain, terminated or truncated.
#   n = 2: after step 2: G = 2 + 0.9*(-1) + 0.81 Q(2,2) = 2 - 0.9 + 4.86 = 5.96;
#            Q(0,0) = 0.5 + 0.5 (5.96 - 0.5) = 3.23
#          step 3 plain: Q(1,1): G = -1 + 0.9*5 + 0.81 Q(3,0) = -1 + 4.5 + 5.67 = 9.17 -> 4 + 0.5*5.17 = 6.585
#          terminated: flush, no bootstrap: Q(1,1): G = 3.5 -> 3.75;  Q(2,2): G = 5 -> 6 + 0.5(5 - 6) = 5.5
#          truncated: flush, bootstrapping Q(3,0) = 7: Q(1,1): G = 9.17 -> 6.585;
#                     Q(2,2): G = 5 + 0.9*7 = 11.3 -> 6 + 0.5*5.3 = 8.65
#   n = 3: nothing before step 3; G(0) = 2 - 0.9 + 0.81*5 = 5.15 (+ 0.729 Q(3,0) = 5.103 if bootstrapped)
#          plain: Q(0,0): G = 10.253 -> 0.5 + 0.5*9.753 = 5.3765
#          terminated: Q(0,0) = 0.5 + 0.5*4.65 = 2.825, Q(1,1) = 3.75, Q(2,2) = 5.5
#          truncated:  Q(0,0) = 5.3765, Q(1,1) = 6.585, Q(2,2) = 8.65
N_STEP = {
    (2, "after_two"): dict(s0_0=3.23),
    (2, "plain"): dict(s0_0=3.23, s1_1=6.585),
    (2, "terminated"): dict(s0_0=3.23, s1_1=3.75, s2_2=5.5),
    (2, "truncated"): dict(s0_0=3.23, s1_1=6.585, s2_2=8.65),
    (3, "after_two"): dict(),
    (3, "plain"): dict(s0_0=5.3765),
    (3, "terminated"): dict(s0_0=2.825, s1_1=3.75, s2_2=5.5),
    (3, "truncated"): dict(s0_0=5.3765, s1_1=6.585, s2_2=8.65),
}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("n", [2, 3])
def test_n_step_sarsa_short_episode(n, kind):
    agent = _agent(sarsa, epsilon=0.0, n=n)
    assert agent.begin(0) == 0
    assert agent.step(0, 0, 2.0, 1, False, False) == 1
    np.testing.assert_array_equal(agent.q, Q0)  # no return is complete after one step
    assert agent.step(1, 1, -1.0, 2, False, False) == 2
    np.testing.assert_allclose(agent.q, _with(Q0, **N_STEP[(n, "after_two")]))
    a3 = agent.step(2, 2, 5.0, 3, *KINDS[kind])
    np.testing.assert_allclose(agent.q, _with(Q0, **N_STEP[(n, kind)]))
    assert a3 == (None if kind == "terminated" else 0)
    if kind != "plain":  # the window was flushed: a new episode's first step updates nothing
        before = agent.q.copy()
        agent.begin(0)
        agent.step(0, 0, 2.0, 1, False, False)
        np.testing.assert_array_equal(agent.q, before)


# --- first-visit Monte Carlo control ---------------------------------------------------------------
# Episode: (s0, a0, r 2) -> (s1, a1, r -1) -> (s0, a0, r 4) -> (s2, a2, r 1) -> s3, gamma 0.9.
#   G_3 = 1;  G_2 = 4 + 0.9 = 4.9;  G_1 = -1 + 0.9*4.9 = 3.41;  G_0 = 2 + 0.9*3.41 = 5.069
# First visit of (0, 0) is t = 0: only G_0 counts (every-visit would also average in G_2 = 4.9).
# Visit counts before the episode: N(0,0) = 2, N(1,1) = 0, N(2,2) = 3. Sample averages, 1/N after the visit:
#   Q(0,0) = 0.5 + (5.069 - 0.5)/3 = 2.023;  Q(1,1) = 4 + (3.41 - 4)/1 = 3.41;  Q(2,2) = 6 + (1 - 6)/4 = 4.75
# Constant alpha 0.5:
#   Q(0,0) = 0.5 + 0.5*4.569 = 2.7845;  Q(1,1) = 4 + 0.5*(-0.59) = 3.705;  Q(2,2) = 6 + 0.5*(-5) = 3.5
MC = {None: dict(s0_0=0.5 + 4.569 / 3, s1_1=3.41, s2_2=4.75), 0.5: dict(s0_0=2.7845, s1_1=3.705, s2_2=3.5)}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("alpha", [None, 0.5])
def test_first_visit_mc_control_short_episode(alpha, kind):
    agent = mc_control.Agent(4, 3, mc_control.SPEC.config(gamma=GAMMA, alpha=alpha, epsilon=0.0), np.random.default_rng(0))
    agent.q[:] = Q0
    agent.visits[0, 0], agent.visits[2, 2] = 2, 3
    visits = agent.visits.copy()
    assert agent.begin(0) == 0
    assert agent.step(0, 0, 2.0, 1, False, False) == 1
    assert agent.step(1, 1, -1.0, 0, False, False) == 0
    assert agent.step(0, 0, 4.0, 2, False, False) == 2
    end = agent.step(2, 2, 1.0, 3, *KINDS[kind])
    if kind == "plain":  # the episode goes on: nothing is learned yet
        np.testing.assert_array_equal(agent.q, Q0)
        np.testing.assert_array_equal(agent.visits, visits)
        assert end == 0
        return
    # A time-limit cut is used as if the episode had ended there (documented): same as terminated.
    np.testing.assert_allclose(agent.q, _with(Q0, **MC[alpha]))
    np.testing.assert_array_equal(agent.visits, _with(visits, s0_0=3, s1_1=1, s2_2=4))  # one per first visit
    assert end is None


# --- the driver passes terminated and truncated through ------------------------------------------

class Corridor(gym.Env):
    """0 -> 1 -> 2 -> 3 (terminal); reward 1 for action 0, 2 for action 1."""

    observation_space = gym.spaces.Discrete(4)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.s = 0
        return 0, {}

    def step(self, action):
        self.s += 1
        return self.s, 1.0 if action == 0 else 2.0, self.s == 3, False, {}


CORRIDOR_Q = np.array([[1.0, 0.0], [0.0, 2.0], [5.0, 3.0], [8.0, 6.0]])  # greedy: 0, 1, 0
# Greedy episode: (0, a0, r 1) -> (1, a1, r 2) -> (2, a0, r 1) -> 3. A time limit of 2 cuts it at s = 2.
# Q-learning:   Q(0,0) = 1 + 0.5 (1 + 0.9*2 - 1) = 1.9;  Q(1,1) = 2 + 0.5 (2 + 0.9*5 - 2) = 4.25 (cut or not)
#               full episode: Q(2,0) = 5 + 0.5 (1 - 5) = 3 (bootstrapping the terminal 8 would give 6.6)
# SARSA n = 2:  Q(0,0): G = 1 + 0.9*2 + 0.81 Q(2,0) = 6.85 -> 1 + 0.5*5.85 = 3.925 (cut or not)
#               cut: Q(1,1): G = 2 + 0.9 Q(2,0) = 6.5 -> 4.25
#               full: Q(1,1): G = 2 + 0.9*1 = 2.9 -> 2.45;  Q(2,0): G = 1 -> 3
DRIVER = {
    ("q_learning", True): dict(s0_0=1.9, s1_1=4.25),
    ("q_learning", False): dict(s0_0=1.9, s1_1=4.25, s2_0=3.0),
    ("sarsa", True): dict(s0_0=3.925, s1_1=4.25),
    ("sarsa", False): dict(s0_0=3.925, s1_1=2.45, s2_0=3.0),
}


@pytest.mark.parametrize("cut", [True, False], ids=["time_limit", "terminal"])
@pytest.mark.parametrize("name", ["q_learning", "sarsa"])
def test_run_steps_episode_on_a_corridor(name, cut):
    module = {"q_learning": q_learning, "sarsa": sarsa}[name]
    extra = {"n": 2} if module is sarsa else {}
    agent = module.Agent(4, 2, module.SPEC.config(gamma=GAMMA, alpha=ALPHA, epsilon=0.0, **extra), np.random.default_rng(0))
    agent.q[:] = CORRIDOR_Q
    env = gym.wrappers.TimeLimit(Corridor(), max_episode_steps=2) if cut else Corridor()
    steps, episodes, cursor = tabular.run_steps(env, agent, tabular.EpisodeCursor(reset_seed=0), max_episodes=1)
    assert (steps, episodes.returns, episodes.lengths) == ((2, [3.0], [2]) if cut else (3, [4.0], [3]))
    assert cursor.s is None
    np.testing.assert_allclose(agent.q, _with(CORRIDOR_Q, **DRIVER[(name, cut)]))
