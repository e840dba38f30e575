"""One update of every bandit agent on a small hand-made batch (3 runs x 3 arms), against numbers
worked out by hand in the comments. Each case is built so that a wrong sign, an update that is not
masked to the pulled arm, an off-by-one step size or a wrong baseline changes the result."""

import numpy as np
import pytest

from rlsuite.algos.bandits import epsilon_greedy, gradient_bandit, thompson, ucb
from rlsuite.ops import bandits as ops

# --- epsilon-greedy / UCB: Q(A) <- Q(A) + StepSize [R - Q(A)] -----------------------------------

Q0 = np.array([[0.5, 1.0, -1.0],
               [2.0, 0.0, 0.0],
               [0.0, 0.0, 4.0]])
N0 = np.array([[1.0, 2.0, 1.0],
               [3.0, 0.0, 0.0],
               [0.0, 0.0, 4.0]])
A = np.array([1, 0, 2])  # the arm pulled in each run
R = np.array([4.0, -2.0, 0.0])


@pytest.mark.parametrize("module", [epsilon_greedy, ucb])
def test_sample_average_step_uses_one_over_the_new_count(module):
    Q, N = Q0.copy(), N0.copy()
    new = module.update(epsilon_greedy.ActionValues(Q, N), A, R, module.Config(step_size=None))
    # run 0, arm 1: N 2 -> 3, Q = 1 + (4 - 1) / 3 = 2        (1/N with the old N would give 2.5)
    # run 1, arm 0: N 3 -> 4, Q = 2 + (-2 - 2) / 4 = 1
    # run 2, arm 2: N 4 -> 5, Q = 4 + (0 - 4) / 5 = 3.2
    expected_Q = Q0.copy()
    expected_Q[0, 1], expected_Q[1, 0], expected_Q[2, 2] = 2.0, 1.0, 3.2
    expected_N = N0.copy()
    expected_N[0, 1], expected_N[1, 0], expected_N[2, 2] = 3.0, 4.0, 5.0
    np.testing.assert_allclose(new.Q, expected_Q)  # the arms not pulled keep their estimates
    np.testing.assert_array_equal(new.N, expected_N)
    np.testing.assert_array_equal(Q, Q0)  # the inputs are left alone
    np.testing.assert_array_equal(N, N0)


@pytest.mark.parametrize("module", [epsilon_greedy, ucb])
def test_constant_step_size_is_an_exponential_recency_weighted_average(module):
    new = module.update(epsilon_greedy.ActionValues(Q0.copy(), N0.copy()), A, R, module.Config(step_size=0.1))
    # Q = Q + 0.1 (R - Q):  1 + 0.1 * 3 = 1.3;  2 + 0.1 * (-4) = 1.6;  4 + 0.1 * (-4) = 3.6
    expected_Q = Q0.copy()
    expected_Q[0, 1], expected_Q[1, 0], expected_Q[2, 2] = 1.3, 1.6, 3.6
    np.testing.assert_allclose(new.Q, expected_Q)
    expected_N = N0.copy()
    expected_N[0, 1], expected_N[1, 0], expected_N[2, 2] = 3.0, 4.0, 5.0  # N still counts the pulls
    np.testing.assert_array_equal(new.N, expected_N)


def test_epsilon_greedy_selection_with_epsilon_zero_is_greedy_and_one_is_uniform():
    rng = np.random.default_rng(0)
    Q = np.array([[0.0, 3.0, 1.0], [5.0, -1.0, 2.0], [0.0, 0.0, 0.5]])
    np.testing.assert_array_equal(ops.epsilon_greedy(Q, 0.0, rng), [1, 0, 2])
    pulls = ops.epsilon_greedy(np.tile(Q[:1], (3000, 1)), 1.0, rng)
    np.testing.assert_allclose(np.bincount(pulls, minlength=3) / 3000, [1 / 3] * 3, atol=0.04)


# --- UCB: A_t = argmax_a Q(a) + c sqrt(ln t / N(a)) ----------------------------------------------

UCB_Q = np.array([[5.0, 0.0, 0.0],
                  [1.0, 0.8, 0.0],
                  [0.0, 0.5, 0.4]])
UCB_N = np.array([[1.0, 1.0, 0.0],
                  [5.0, 1.0, 2.0],
                  [1.0, 8.0, 8.0]])


def test_ucb_scores_by_hand():
    # t = 10, c = 2, ln 10 = 2.302585:
    # run 1: 1 + 2 sqrt(ln10 / 5) = 2.357228, 0.8 + 2 sqrt(ln10) = 3.834854, 0 + 2 sqrt(ln10 / 2) = 2.145966
    # run 2: 0 + 2 sqrt(ln10) = 3.034854, 0.5 + 2 sqrt(ln10 / 8) = 1.572983, 0.4 + ... = 1.472983
    # run 0: arm 2 was never tried: +inf
    ln10 = np.log(10.0)
    scores = ops.ucb_scores(UCB_Q, UCB_N, 10, 2.0)
    np.testing.assert_allclose(scores[1:], [[1 + 2 * np.sqrt(ln10 / 5), 0.8 + 2 * np.sqrt(ln10), 2 * np.sqrt(ln10 / 2)],
                                            [2 * np.sqrt(ln10), 0.5 + 2 * np.sqrt(ln10 / 8), 0.4 + 2 * np.sqrt(ln10 / 8)]])
    np.testing.assert_allclose(scores[1:], [[2.357228, 3.834854, 2.145966], [3.034854, 1.572983, 1.472983]], atol=1e-6)
    assert scores[0, 2] == np.inf and np.isfinite(scores[0, :2]).all()


def test_ucb_chooses_untried_arm_then_bonus_and_is_greedy_with_c_zero():
    values = epsilon_greedy.ActionValues(UCB_Q, UCB_N)
    # run 0: the untried arm 2 beats Q = 5; runs 1 and 2: the rarely tried arm wins on its bonus.
    np.testing.assert_array_equal(ucb.select(values, 10, 2.0, np.random.default_rng(0)), [2, 1, 0])
    # c = 0: greedy in Q once every arm is tried (the untried arm still comes first).
    np.testing.assert_array_equal(ucb.select(values, 10, 0.0, np.random.default_rng(0)), [2, 0, 1])


# --- gradient bandit: H(a) += alpha (R - Rbar) (1{a = A} - pi(a)) (eq. 2.12) --------------------

PI = np.array([[0.25, 0.5, 0.25],
               [1 / 3, 1 / 3, 1 / 3],
               [0.5, 0.25, 0.25]])
H = np.log(PI)  # so that softmax(H) = PI
GB_A = np.array([1, 0, 2])
DIR = np.eye(3)[GB_A] - PI  # 1{a = A} - pi(a): [-.25, .5, -.25], [2/3, -1/3, -1/3], [-.5, -.25, .75]
ALPHA = 0.5


def _gb(t, rewards_mean, R, **config):
    prefs = gradient_bandit.Preferences(H.copy(), np.asarray(rewards_mean, dtype=float))
    return gradient_bandit.update(prefs, PI, GB_A, np.asarray(R, dtype=float), t, gradient_bandit.Config(step_size=ALPHA, **config))


def test_softmax_of_the_preferences():
    np.testing.assert_allclose(ops.softmax_policy(H), PI)
    np.testing.assert_allclose(ops.softmax_policy(H + 100.0), PI)  # shift invariant


@pytest.mark.parametrize("baseline_mean", ["through_t", "before_t"])
def test_gradient_bandit_first_step_with_a_baseline_changes_nothing(baseline_mean):
    # t = 1: Rbar_1 = R_1 in both conventions (the mean through t = 1 is R_1; before_t defines
    # Rbar_1 = R_1), so R_1 - Rbar_1 = 0: H is unchanged; the reward mean becomes R_1.
    new = _gb(1, [0.0, 0.0, 0.0], [2.0, -1.0, 0.5], baseline_mean=baseline_mean)
    np.testing.assert_allclose(new.H, H)
    np.testing.assert_allclose(new.rewards_mean, [2.0, -1.0, 0.5])


def test_gradient_bandit_first_step_without_baseline():
    # t = 1, Rbar = 0: dH = 0.5 * R * DIR with R = [2, -1, 0.5]
    new = _gb(1, [0.0, 0.0, 0.0], [2.0, -1.0, 0.5], baseline=False)
    np.testing.assert_allclose(new.H - H, [[-0.25, 0.5, -0.25],          # 1.0 * [-.25, .5, -.25]
                                           [-1 / 3, 1 / 6, 1 / 6],      # -0.5 * [2/3, -1/3, -1/3]
                                           [-0.125, -0.0625, 0.1875]])  # 0.25 * [-.5, -.25, .75]
    np.testing.assert_allclose(new.rewards_mean, [2.0, -1.0, 0.5])


# Step t = 2: R_1 = [1, 1, -2] (so Rbar before t = 2 is R_1), R_2 = [3, 0, -1].
#   through_t: Rbar_2 = (R_1 + R_2) / 2 = [2, 0.5, -1.5],  R_2 - Rbar_2 = [1, -0.5, 0.5]
#   before_t:  Rbar_2 = R_1 = [1, 1, -2],                  R_2 - Rbar_2 = [2, -1, 1]
#   no baseline:                                           R_2 - 0      = [3, 0, -1]
# dH = alpha (R - Rbar) DIR, alpha = 0.5:
SECOND_STEP = {
    "through_t": (dict(), [[-0.125, 0.25, -0.125],        # 0.5 * 1 * [-.25, .5, -.25]
                           [-1 / 6, 1 / 12, 1 / 12],      # 0.5 * -0.5 * [2/3, -1/3, -1/3]
                           [-0.125, -0.0625, 0.1875]]),   # 0.5 * 0.5 * [-.5, -.25, .75]
    "before_t": (dict(baseline_mean="before_t"), [[-0.25, 0.5, -0.25],
                                                  [-1 / 3, 1 / 6, 1 / 6],
                                                  [-0.25, -0.125, 0.375]]),
    "no_baseline": (dict(baseline=False), [[-0.375, 0.75, -0.375],  # 0.5 * 3 * [-.25, .5, -.25]
                                           [0.0, 0.0, 0.0],
                                           [0.25, 0.125, -0.375]]),  # 0.5 * -1 * [-.5, -.25, .75]
}


@pytest.mark.parametrize("case", list(SECOND_STEP))
def test_gradient_bandit_second_step_by_hand(case):
    config, expected = SECOND_STEP[case]
    new = _gb(2, [1.0, 1.0, -2.0], [3.0, 0.0, -1.0], **config)
    np.testing.assert_allclose(new.H - H, expected, atol=1e-12)
    np.testing.assert_allclose(new.rewards_mean, [2.0, 0.5, -1.5])  # mean of R_1, R_2 in every case


@pytest.mark.parametrize("case", ["through_t", "before_t"])
def test_gradient_bandit_sign_pulled_arm_rises_iff_reward_beats_the_baseline(case):
    config, _ = SECOND_STEP[case]
    new = _gb(2, [1.0, 1.0, -2.0], [3.0, 0.0, -1.0], **config)
    dH = new.H - H
    beats = np.array([True, False, True])  # R_2 > Rbar_2 in runs 0 and 2, below it in run 1
    rows = np.arange(3)
    pulled = dH[rows, GB_A]
    others = np.where(np.eye(3)[GB_A] == 0, dH, np.nan)
    assert np.all(pulled[beats] > 0) and np.all(pulled[~beats] < 0)
    assert np.all(np.nan_to_num(others[beats], nan=-1) < 0)
    assert np.all(np.nan_to_num(others[~beats], nan=1) > 0)
    np.testing.assert_allclose(dH.sum(axis=1), 0.0, atol=1e-12)  # sum_a (1{a=A} - pi(a)) = 0


def test_gradient_bandit_third_step_reward_mean_and_before_t_baseline():
    # t = 3, mean of R_1, R_2 = [2, 0.5, -1.5], R_3 = [5, 0.5, -3]:
    #   new mean (2 * m + R_3) / 3 = [3, 0.5, -2]
    #   before_t: Rbar_3 = [2, 0.5, -1.5]: R - Rbar = [3, 0, -1.5]
    new = _gb(3, [2.0, 0.5, -1.5], [5.0, 0.5, -3.0], baseline_mean="before_t")
    np.testing.assert_allclose(new.rewards_mean, [3.0, 0.5, -2.0])
    np.testing.assert_allclose(new.H - H, ALPHA * np.array([3.0, 0.0, -1.5])[:, None] * DIR, atol=1e-12)
    #   through_t: Rbar_3 = [3, 0.5, -2]: R - Rbar = [2, 0, -1]
    new = _gb(3, [2.0, 0.5, -1.5], [5.0, 0.5, -3.0])
    np.testing.assert_allclose(new.H - H, ALPHA * np.array([2.0, 0.0, -1.0])[:, None] * DIR, atol=1e-12)


# --- Thompson sampling -----------------------------------------------------------------------------

def test_beta_bernoulli_posterior_counts():
    alpha = np.array([[1.0, 1.0, 1.0], [2.0, 3.0, 1.0], [1.0, 1.0, 5.0]])
    beta = np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 2.0], [4.0, 1.0, 1.0]])
    post = thompson.Posterior(alpha.copy(), beta.copy(), np.zeros((3, 3)), np.zeros((3, 3)))
    new = thompson.update(post, np.array([0, 1, 2]), np.array([1.0, 0.0, 1.0]), "bernoulli")
    # success: alpha(A) += 1; failure: beta(A) += 1; nothing else moves.
    expected_alpha, expected_beta = alpha.copy(), beta.copy()
    expected_alpha[0, 0] = 2.0   # run 0 arm 0, R = 1
    expected_beta[1, 1] = 2.0    # run 1 arm 1, R = 0
    expected_alpha[2, 2] = 6.0   # run 2 arm 2, R = 1
    np.testing.assert_array_equal(new.alpha, expected_alpha)
    np.testing.assert_array_equal(new.beta, expected_beta)
    np.testing.assert_array_equal(post.alpha, alpha)  # inputs unchanged
    # Sampling draws theta ~ Beta(alpha, beta) of the updated counts.
    config = thompson.Config(likelihood="bernoulli")
    np.testing.assert_array_equal(thompson.sample(new, "bernoulli", config, np.random.default_rng(3)),
                                  np.random.default_rng(3).beta(expected_alpha, expected_beta))


def test_gaussian_posterior_after_known_rewards():
    # Prior N(0.5, 2^2): precision 1/4. Run 0 pulls arm 1 twice (R = 1, 2); run 1 pulls arm 0 (R = -3)
    # then arm 2 (R = 0.5).
    config = thompson.Config(likelihood="gaussian", prior_mean=0.5, prior_std=2.0)
    post = thompson.Posterior(np.ones((2, 3)), np.ones((2, 3)), np.zeros((2, 3)), np.zeros((2, 3)))
    post = thompson.update(post, np.array([1, 0]), np.array([1.0, -3.0]), "gaussian")
    post = thompson.update(post, np.array([1, 2]), np.array([2.0, 0.5]), "gaussian")
    np.testing.assert_array_equal(post.N, [[0, 2, 0], [1, 0, 1]])
    np.testing.assert_allclose(post.reward_sum, [[0.0, 3.0, 0.0], [-3.0, 0.0, 0.5]])
    mean, std = ops.gaussian_posterior(config.prior_mean, config.prior_std, post.reward_sum, post.N)
    # untried arm: the prior, mean 0.5, std 2
    # N = 2, sum = 3: precision 0.25 + 2 = 2.25, mean (0.125 + 3) / 2.25 = 1.388889, std 1 / 1.5
    # N = 1, sum = -3: precision 1.25, mean (0.125 - 3) / 1.25 = -2.3, std 1 / sqrt(1.25) = 0.894427
    # N = 1, sum = 0.5: mean (0.125 + 0.5) / 1.25 = 0.5
    np.testing.assert_allclose(mean, [[0.5, 3.125 / 2.25, 0.5], [-2.3, 0.5, 0.5]])
    np.testing.assert_allclose(std, [[2.0, 1 / 1.5, 2.0], [1 / np.sqrt(1.25), 2.0, 1 / np.sqrt(1.25)]])
    # theta = mean + std * z with z the generator's standard normals
    z = np.random.default_rng(5).standard_normal((2, 3))
    np.testing.assert_allclose(thompson.sample(post, "gaussian", config, np.random.default_rng(5)), mean + std * z)
