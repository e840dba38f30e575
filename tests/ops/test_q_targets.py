"""Exact-answer tests for rlsuite.ops.q_targets (hand-computed literals + a per-sample loop reference)."""

from __future__ import annotations

import math

import pytest
import torch

from rlsuite.ops.q_targets import (
    categorical_projection,
    categorical_q_values,
    categorical_support,
    double_q_learning_target,
    dueling_q,
    q_learning_target,
)

F64 = torch.float64


def t(x, dtype=F64):
    return torch.tensor(x, dtype=dtype)


def close(actual, expected, atol=1e-12):
    torch.testing.assert_close(actual, torch.as_tensor(expected, dtype=actual.dtype), atol=atol, rtol=0)


# --------------------------------------------------------------------------------------------
# DQN and Double DQN targets
# --------------------------------------------------------------------------------------------

# Row 0: online argmax = action 1 (5), target argmax = action 0 (10), Q_target(s', 1) = 4.
# Row 1: online argmax = action 0 (3), target argmax = action 1 (9),  Q_target(s', 0) = 2.
# Row 2: terminated (discount 0): the target is the reward alone.
NEXT_Q_ONLINE = t([[1.0, 5.0, 2.0], [3.0, 0.0, 1.0], [0.0, 1.0, 7.0]])
NEXT_Q_TARGET = t([[10.0, 4.0, 7.0], [2.0, 9.0, 1.0], [-3.0, 8.0, 6.0]])
REWARDS = t([1.0, -1.0, 2.5])
DISCOUNTS = t([0.5, 0.9, 0.0])


def test_q_learning_target_hand_computed():
    y = q_learning_target(REWARDS, DISCOUNTS, NEXT_Q_TARGET)
    # y_0 = 1  + 0.5 * max(10, 4, 7) = 1 + 5    = 6
    # y_1 = -1 + 0.9 * max(2, 9, 1)  = -1 + 8.1 = 7.1
    # y_2 = 2.5 + 0 * 8                         = 2.5
    close(y, [6.0, 7.1, 2.5])


def test_double_q_target_uses_online_argmax_and_target_value():
    y = double_q_learning_target(REWARDS, DISCOUNTS, NEXT_Q_ONLINE, NEXT_Q_TARGET)
    # y_0 = 1  + 0.5 * Q_target[0, argmax online = 1] = 1 + 0.5 * 4  = 3
    # y_1 = -1 + 0.9 * Q_target[1, argmax online = 0] = -1 + 0.9 * 2 = 0.8
    # y_2 = 2.5 + 0 * Q_target[2, 2]                  = 2.5
    close(y, [3.0, 0.8, 2.5])
    # swapping the roles of the networks gives a different answer: online values at target argmax
    # y_0 = 1 + 0.5 * Q_online[0, 0] = 1.5, y_1 = -1 + 0.9 * Q_online[1, 1] = -1
    close(double_q_learning_target(REWARDS, DISCOUNTS, NEXT_Q_TARGET, NEXT_Q_ONLINE), [1.5, -1.0, 2.5])


def test_termination_gives_the_reward_whatever_the_next_values():
    big = t([[1e6, -1e6, 3.0]] * 3)
    zeros = torch.zeros(3, dtype=F64)
    close(q_learning_target(REWARDS, zeros, big), REWARDS)
    close(double_q_learning_target(REWARDS, zeros, big, -big), REWARDS)


def test_targets_reject_wrong_shapes():
    with pytest.raises(ValueError):
        q_learning_target(REWARDS, DISCOUNTS, NEXT_Q_TARGET[:2])
    with pytest.raises(ValueError):
        q_learning_target(REWARDS, DISCOUNTS[:2], NEXT_Q_TARGET)
    with pytest.raises(ValueError):
        q_learning_target(REWARDS[:, None], DISCOUNTS[:, None], NEXT_Q_TARGET)
    with pytest.raises(ValueError):
        q_learning_target(REWARDS, DISCOUNTS, NEXT_Q_TARGET[:, 0])
    with pytest.raises(ValueError):
        double_q_learning_target(REWARDS, DISCOUNTS, NEXT_Q_ONLINE[:, :2], NEXT_Q_TARGET)


# --------------------------------------------------------------------------------------------
# dueling aggregation
# --------------------------------------------------------------------------------------------


def test_dueling_q_subtracts_mean_advantage():
    advantages = t([[1.0, 2.0, 3.0], [0.0, 0.0, 6.0]])
    # row 0: mean A = 2, Q = 1 + [1, 2, 3] - 2  = [0, 1, 2]
    # row 1: mean A = 2, Q = -2 + [0, 0, 6] - 2 = [-4, -4, 2]
    expected = [[0.0, 1.0, 2.0], [-4.0, -4.0, 2.0]]
    close(dueling_q(t([[1.0], [-2.0]]), advantages), expected)
    close(dueling_q(t([1.0, -2.0]), advantages), expected)
    # a constant added to every advantage of a state is absorbed by the mean
    close(dueling_q(t([1.0, -2.0]), advantages + t([[10.0], [-3.0]])), expected)


def test_dueling_q_rejects_wrong_shapes():
    with pytest.raises(ValueError):
        dueling_q(t([1.0, 2.0, 3.0]), torch.zeros(2, 3, dtype=F64))
    with pytest.raises(ValueError):
        dueling_q(torch.zeros(2, 3, dtype=F64), torch.zeros(2, 3, dtype=F64))
    with pytest.raises(ValueError):
        dueling_q(t([1.0, 2.0]), torch.zeros(2, dtype=F64))


# --------------------------------------------------------------------------------------------
# C51: support, projection, Q values
# --------------------------------------------------------------------------------------------

# Support [-2, -1, 0, 1, 2] (dz = 1) and one next distribution p used in all hand examples.
SUPPORT = t([-2.0, -1.0, 0.0, 1.0, 2.0])
P = [0.1, 0.2, 0.3, 0.25, 0.15]


def test_categorical_support():
    close(categorical_support(-2.0, 2.0, 5), [-2.0, -1.0, 0.0, 1.0, 2.0], atol=0)
    z = categorical_support(-10.0, 10.0, 51)
    assert z.shape == (51,) and z[0] == -10.0 and z[-1] == 10.0
    close(z[1:] - z[:-1], torch.full((50,), 0.4, dtype=z.dtype), atol=1e-5)
    for bad in [(1.0, 1.0, 5), (2.0, -2.0, 5), (-2.0, 2.0, 1)]:
        with pytest.raises(ValueError):
            categorical_support(*bad)


def project(reward, discount):
    return categorical_projection(t([P]), t([reward]), t([discount]), SUPPORT)[0]


def test_projection_between_atoms_and_clamped_at_v_max():
    # r = 0.5, discount = 1: Tz = [-1.5, -0.5, 0.5, 1.5, 2.5 -> 2], b = [0.5, 1.5, 2.5, 3.5, 4]
    #   p_0 = 0.1  -> 0.05 to atom 0, 0.05 to atom 1
    #   p_1 = 0.2  -> 0.1 to 1,   0.1 to 2
    #   p_2 = 0.3  -> 0.15 to 2,  0.15 to 3
    #   p_3 = 0.25 -> 0.125 to 3, 0.125 to 4
    #   p_4 = 0.15 -> clamped to v_max, b = 4 exactly (l == u): all 0.15 to 4
    # m = [0.05, 0.05 + 0.1, 0.1 + 0.15, 0.15 + 0.125, 0.125 + 0.15]
    close(project(0.5, 1.0), [0.05, 0.15, 0.25, 0.275, 0.275])


def test_projection_exact_atom_hits():
    # r = 1, discount = 1: Tz = [-1, 0, 1, 2, 3 -> 2], b = [1, 2, 3, 4, 4], every b integral (l == u)
    # m = [0, 0.1, 0.2, 0.3, 0.25 + 0.15]
    close(project(1.0, 1.0), [0.0, 0.1, 0.2, 0.3, 0.4])
    # r = 0, discount = 1: the identity
    close(project(0.0, 1.0), P)


def test_projection_clamped_at_v_min():
    # r = -1.5, discount = 0.5: Tz = -1.5 + 0.5 z = [-2.5 -> -2, -2, -1.5, -1, -0.5], b = [0, 0, 0.5, 1, 1.5]
    #   p_0 = 0.1, p_1 = 0.2 -> atom 0;  p_2 = 0.3 -> 0.15 to 0, 0.15 to 1
    #   p_3 = 0.25 -> atom 1;            p_4 = 0.15 -> 0.075 to 1, 0.075 to 2
    # m = [0.1 + 0.2 + 0.15, 0.15 + 0.25 + 0.075, 0.075, 0, 0]
    close(project(-1.5, 0.5), [0.45, 0.475, 0.075, 0.0, 0.0])


def test_projection_discount_zero_puts_all_mass_near_the_reward():
    # Tz_j = r for every j: b = r + 2, one or two atoms get everything
    close(project(0.3, 0.0), [0.0, 0.0, 0.7, 0.3, 0.0])  # b = 2.3: 0.7 to atom 2 (z = 0), 0.3 to atom 3
    close(project(-1.0, 0.0), [0.0, 1.0, 0.0, 0.0, 0.0])  # b = 1 exactly
    close(project(5.0, 0.0), [0.0, 0.0, 0.0, 0.0, 1.0])  # clamped to v_max
    close(project(-7.0, 0.0), [1.0, 0.0, 0.0, 0.0, 0.0])  # clamped to v_min


def test_projection_at_v_max_stays_in_range_despite_rounding():
    # In float32 this support has (v_max - v_min) / dz = 50.0000038 > K - 1 = 50, so a return
    # clamped to v_max must not reach for an atom 51 that does not exist.
    support = torch.linspace(-31.818849563598633, 42.489479064941406, 51)
    assert (support[-1] - support[0]) / ((support[-1] - support[0]) / 50) > 50
    m = categorical_projection(torch.full((1, 51), 1 / 51), torch.tensor([1e3]), torch.tensor([0.99]), support)
    close(m[0], torch.eye(51)[50])


def test_projection_batch_rows_are_independent():
    # the hand examples above as one batch
    m = categorical_projection(t([P] * 4), t([0.5, 1.0, -1.5, 0.3]), t([1.0, 1.0, 0.5, 0.0]), SUPPORT)
    close(
        m,
        [
            [0.05, 0.15, 0.25, 0.275, 0.275],
            [0.0, 0.1, 0.2, 0.3, 0.4],
            [0.45, 0.475, 0.075, 0.0, 0.0],
            [0.0, 0.0, 0.7, 0.3, 0.0],
        ],
    )


def reference_projection(next_probs, rewards, discounts, support):
    """Algorithm 1 of Bellemare et al. (2017), one sample and one atom at a time."""
    B, K = next_probs.shape
    v_min, v_max = float(support[0]), float(support[-1])
    dz = (v_max - v_min) / (K - 1)
    m = [[0.0] * K for _ in range(B)]
    for i in range(B):
        for j in range(K):
            tz = min(max(float(rewards[i]) + float(discounts[i]) * float(support[j]), v_min), v_max)
            b = min((tz - v_min) / dz, K - 1)
            lo, hi = math.floor(b), math.ceil(b)
            p = float(next_probs[i, j])
            if lo == hi:
                m[i][lo] += p
            else:
                m[i][lo] += p * (hi - b)
                m[i][hi] += p * (b - lo)
    return torch.tensor(m, dtype=F64)


def random_case(seed, B=64, K=51, v=12.5):
    g = torch.Generator().manual_seed(seed)
    next_probs = torch.softmax(3 * torch.randn(B, K, generator=g, dtype=F64), dim=1)
    rewards = 8 * torch.randn(B, generator=g, dtype=F64)  # some beyond [v_min, v_max]
    discounts = 0.99 ** torch.randint(1, 4, (B,), generator=g).to(F64)
    discounts[::5] = 0.0  # terminal windows
    # with the default dz = 0.5 (exact in binary), r a multiple of 0.5 and discount 1 land on atoms
    rewards[1::7] = 0.5 * torch.randint(-30, 30, rewards[1::7].shape, generator=g).to(F64)
    discounts[1::7] = 1.0
    return next_probs, rewards, discounts, categorical_support(-v, v, K).to(F64)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_projection_matches_loop_reference(seed):
    case = random_case(seed)
    assert torch.equal(case[3], -12.5 + 0.5 * torch.arange(51, dtype=F64))  # the exact hits are exact
    close(categorical_projection(*case), reference_projection(*case), atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_projection_conserves_mass(seed):
    m = categorical_projection(*random_case(seed))
    assert (m >= 0).all()
    close(m.sum(dim=1), torch.ones(m.shape[0], dtype=F64))
    # float32, the dtype training uses, and a support whose dz is not exact in binary
    next_probs, rewards, discounts, support = (x.float() for x in random_case(seed, K=21, v=3.3))
    m32 = categorical_projection(next_probs, rewards, discounts, support)
    close(m32.sum(dim=1), torch.ones(m32.shape[0]), atol=1e-5)


def test_projection_rejects_wrong_shapes():
    probs = t([P, P])
    with pytest.raises(ValueError):
        categorical_projection(probs, t([0.0, 0.0]), t([1.0, 1.0]), SUPPORT[:4])
    with pytest.raises(ValueError):
        categorical_projection(probs, t([0.0]), t([1.0]), SUPPORT)
    with pytest.raises(ValueError):
        categorical_projection(probs[0], t([0.0]), t([1.0]), SUPPORT)


def test_categorical_q_values():
    probs = t([[P, [0.0, 0.0, 0.0, 0.0, 1.0]], [[0.5, 0.0, 0.0, 0.0, 0.5], [0.0, 0.5, 0.0, 0.0, 0.5]]])
    # [0][0]: -2 * 0.1 - 1 * 0.2 + 0 * 0.3 + 1 * 0.25 + 2 * 0.15 = -0.2 - 0.2 + 0.25 + 0.3 = 0.15
    # [0][1]: 2;  [1][0]: 0.5 * -2 + 0.5 * 2 = 0;  [1][1]: 0.5 * -1 + 0.5 * 2 = 0.5
    close(categorical_q_values(probs, SUPPORT), [[0.15, 2.0], [0.0, 0.5]])
    with pytest.raises(ValueError):
        categorical_q_values(probs[0], SUPPORT)
    with pytest.raises(ValueError):
        categorical_q_values(probs, SUPPORT[:4])
