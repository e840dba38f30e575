"""Exact-answer tests for rlsuite.ops.returns (hand-computed literals + an independent numpy reference)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlsuite.ops.returns import discounted_return, gae, normalize, reward_to_go

F64 = torch.float64


def t(x, dtype=F64):
    return torch.tensor(x, dtype=dtype)


def close(actual, expected, atol=1e-12):
    torch.testing.assert_close(actual, torch.as_tensor(expected, dtype=actual.dtype), atol=atol, rtol=0)


# --------------------------------------------------------------------------------------------
# (a) terminated episode: V(final observation) must be ignored
# --------------------------------------------------------------------------------------------

# One episode of 3 steps that terminates at t=2.  gamma = 0.9, lam = 0.95, gamma*lam = 0.855
TERM = dict(
    rewards=t([1.0, 2.0, 3.0]),
    values=t([0.5, 1.0, 1.5]),
    next_values=t([1.0, 1.5, 2.0]),  # next_values[2] = V(terminal obs): must NOT be used
    terminated=t([False, False, True], torch.bool),
    done=t([False, False, True], torch.bool),
)


def test_gae_terminated_hand_computed():
    adv, ret = gae(**TERM, gamma=0.9, lam=0.95)
    # delta_2 = 3 + 0 (terminated)   - 1.5 = 1.5
    # delta_1 = 2 + 0.9 * 1.5        - 1.0 = 2.35
    # delta_0 = 1 + 0.9 * 1.0        - 0.5 = 1.4
    # A_2 = 1.5
    # A_1 = 2.35 + 0.855 * 1.5    = 2.35 + 1.2825    = 3.6325
    # A_0 = 1.4  + 0.855 * 3.6325 = 1.4  + 3.1057875 = 4.5057875
    close(adv, [4.5057875, 3.6325, 1.5])
    # returns = A + V = [4.5057875 + 0.5, 3.6325 + 1.0, 1.5 + 1.5]
    close(ret, [5.0057875, 4.6325, 3.0])


@pytest.mark.parametrize("final_value", [0.0, -7.25, 1000.0, 123456.0])
def test_gae_terminated_ignores_final_observation_value(final_value):
    base_adv, base_ret = gae(**TERM, gamma=0.9, lam=0.95)
    changed = dict(TERM, next_values=TERM["next_values"].clone())
    changed["next_values"][2] = final_value
    adv, ret = gae(**changed, gamma=0.9, lam=0.95)
    assert torch.equal(adv, base_adv)
    assert torch.equal(ret, base_ret)


def test_gae_non_terminal_step_uses_next_value():
    # Sanity counterpart of the test above: at a non-terminal step the next value IS used,
    # A_1 changes by gamma * dV = 0.9 * 10 = 9, and A_0 by gamma*lam * 9 = 0.855 * 9 = 7.695.
    base_adv, _ = gae(**TERM, gamma=0.9, lam=0.95)
    changed = dict(TERM, next_values=TERM["next_values"].clone())
    changed["next_values"][1] += 10.0
    adv, _ = gae(**changed, gamma=0.9, lam=0.95)
    close(adv - base_adv, [7.695, 9.0, 0.0])


# --------------------------------------------------------------------------------------------
# (b) truncated episode: bootstrap V(final obs), but still cut the recursion
# --------------------------------------------------------------------------------------------

# Episode 1 = steps 0-1, truncated by a time limit at t=1 (V(final obs) = next_values[1] = 4.0).
# Episode 2 = steps 2-3, still running when the rollout ends (bootstrap with next_values[3]).
# gamma = 0.99, lam = 0.95, gamma*lam = 0.9405
TRUNC = dict(
    rewards=t([1.0, 0.5, -1.0, 2.0]),
    values=t([2.0, 1.0, 0.5, 1.5]),
    next_values=t([1.0, 4.0, 1.5, 3.0]),
    terminated=t([False, False, False, False], torch.bool),
    done=t([False, True, False, False], torch.bool),
)


def test_gae_truncated_hand_computed():
    adv, ret = gae(**TRUNC, gamma=0.99, lam=0.95)
    # delta_0 = 1   + 0.99 * 1.0 - 2.0 = -0.01
    # delta_1 = 0.5 + 0.99 * 4.0 - 1.0 =  3.46     (bootstrapped through V(final obs) = 4.0)
    # delta_2 = -1  + 0.99 * 1.5 - 0.5 = -0.015
    # delta_3 = 2   + 0.99 * 3.0 - 1.5 =  3.47     (rollout end: bootstrapped)
    # A_3 = 3.47
    # A_2 = -0.015 + 0.9405 * 3.47 = -0.015 + 3.263535 = 3.248535
    # A_1 = 3.46                                      (recursion cut: done_1 = 1)
    # A_0 = -0.01  + 0.9405 * 3.46 = -0.01  + 3.25413  = 3.24413
    close(adv, [3.24413, 3.46, 3.248535, 3.47])
    close(ret, [5.24413, 4.46, 3.748535, 4.97])


def test_gae_truncated_bootstraps_final_value():
    base_adv, _ = gae(**TRUNC, gamma=0.99, lam=0.95)
    changed = dict(TRUNC, next_values=TRUNC["next_values"].clone())
    changed["next_values"][1] = 0.0  # V(final obs) 4.0 -> 0.0
    adv, _ = gae(**changed, gamma=0.99, lam=0.95)
    # A_1 drops by gamma * 4.0 = 3.96, A_0 by gamma*lam*3.96 = 0.9405 * 3.96 = 3.72438
    close(base_adv - adv, [3.72438, 3.96, 0.0, 0.0])


def test_gae_truncated_does_not_leak_next_episode():
    base_adv, base_ret = gae(**TRUNC, gamma=0.99, lam=0.95)
    changed = {k: v.clone() for k, v in TRUNC.items()}
    # change everything about episode 2 (its rewards, values and next values)
    changed["rewards"][2:] = t([50.0, -30.0])
    changed["values"][2:] = t([-9.0, 17.0])
    changed["next_values"][2:] = t([8.0, -4.0])
    adv, ret = gae(**changed, gamma=0.99, lam=0.95)
    assert torch.equal(adv[:2], base_adv[:2])
    assert torch.equal(ret[:2], base_ret[:2])
    assert not torch.equal(adv[2:], base_adv[2:])


def test_gae_truncated_differs_from_terminated():
    # Same data but marking step 1 as terminated: delta_1 = 0.5 + 0 - 1.0 = -0.5, A_1 = -0.5,
    # A_0 = -0.01 + 0.9405 * -0.5 = -0.01 - 0.47025 = -0.48025
    term = dict(TRUNC, terminated=t([False, True, False, False], torch.bool))
    adv, _ = gae(**term, gamma=0.99, lam=0.95)
    close(adv, [-0.48025, -0.5, 3.248535, 3.47])


# --------------------------------------------------------------------------------------------
# (c) two envs side by side, [T, N]
# --------------------------------------------------------------------------------------------


def test_gae_two_envs():
    # env 0: the terminated episode of TERM. env 1: truncated at t=0, then a new episode that runs
    # past the end of the rollout.  gamma = 0.9, lam = 0.95, gamma*lam = 0.855
    rewards = t([[1.0, 0.0], [2.0, 1.0], [3.0, 0.0]])
    values = t([[0.5, 1.0], [1.0, 1.0], [1.5, 1.0]])
    next_values = t([[1.0, 1.0], [1.5, 1.0], [2.0, 2.0]])
    terminated = t([[False, False], [False, False], [True, False]], torch.bool)
    done = t([[False, True], [False, False], [True, False]], torch.bool)
    adv, ret = gae(rewards, values, next_values, terminated, done, gamma=0.9, lam=0.95)
    assert adv.shape == ret.shape == (3, 2)
    # env 0: as in test_gae_terminated_hand_computed -> [4.5057875, 3.6325, 1.5]
    # env 1: delta_0 = 0 + 0.9*1 - 1 = -0.1, delta_1 = 1 + 0.9*1 - 1 = 0.9, delta_2 = 0 + 0.9*2 - 1 = 0.8
    #        A_2 = 0.8, A_1 = 0.9 + 0.855*0.8 = 1.584, A_0 = -0.1 (cut by the truncation at t=0)
    close(adv, [[4.5057875, -0.1], [3.6325, 1.584], [1.5, 0.8]])
    close(ret, [[5.0057875, 0.9], [4.6325, 2.584], [3.0, 1.8]])


# --------------------------------------------------------------------------------------------
# (d) lambda = 1 -> Monte Carlo return - V ; lambda = 0 -> one-step TD error
# --------------------------------------------------------------------------------------------


def test_gae_lambda_one_is_monte_carlo_minus_value():
    adv, ret = gae(**TERM, gamma=0.9, lam=1.0)
    # G_2 = 3, G_1 = 2 + 0.9*3 = 4.7, G_0 = 1 + 0.9*4.7 = 5.23
    # A = G - V = [5.23 - 0.5, 4.7 - 1.0, 3 - 1.5]
    close(adv, [4.73, 3.7, 1.5])
    close(ret, [5.23, 4.7, 3.0])


def test_gae_lambda_one_truncated_bootstraps():
    adv, _ = gae(**TRUNC, gamma=0.99, lam=1.0)
    # episode 1 (truncated, V(final) = 4): G_1 = 0.5 + 0.99*4 = 4.46, G_0 = 1 + 0.99*4.46 = 5.4154
    # episode 2 (rollout end, V = 3):      G_3 = 2 + 0.99*3 = 4.97,   G_2 = -1 + 0.99*4.97 = 3.9203
    # A = G - V = [5.4154 - 2, 4.46 - 1, 3.9203 - 0.5, 4.97 - 1.5]
    close(adv, [3.4154, 3.46, 3.4203, 3.47])


def test_gae_lambda_zero_is_td_error():
    adv, ret = gae(**TERM, gamma=0.9, lam=0.0)
    close(adv, [1.4, 2.35, 1.5])  # the deltas of test_gae_terminated_hand_computed
    close(ret, [1.9, 3.35, 3.0])  # r + gamma*(1-term)*V' = [1 + 0.9, 2 + 1.35, 3]
    adv, _ = gae(**TRUNC, gamma=0.99, lam=0.0)
    close(adv, [-0.01, 3.46, -0.015, 3.47])


# --------------------------------------------------------------------------------------------
# (e) independent per-episode numpy reference on random data
# --------------------------------------------------------------------------------------------


def reference_gae(rewards, values, next_values, terminated, truncated, gamma, lam):
    """Split every env's stream into episodes; inside each, A_t = sum_l (gamma lam)^l delta_{t+l}."""
    T, N = rewards.shape
    adv = np.zeros((T, N))
    for n in range(N):
        start = 0
        while start < T:
            end = start
            while end < T - 1 and not (terminated[end, n] or truncated[end, n]):
                end += 1
            # episode (or rollout fragment) = steps start..end inclusive
            deltas = []
            for s in range(start, end + 1):
                bootstrap = 0.0 if terminated[s, n] else gamma * next_values[s, n]
                deltas.append(rewards[s, n] + bootstrap - values[s, n])
            for s in range(start, end + 1):
                adv[s, n] = sum((gamma * lam) ** (u - s) * deltas[u - start] for u in range(s, end + 1))
            start = end + 1
    return adv, adv + values


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("gamma,lam", [(0.99, 0.95), (0.9, 0.8), (0.97, 1.0), (0.5, 0.0)])
def test_gae_matches_numpy_reference(seed, gamma, lam):
    rng = np.random.default_rng(seed)
    T, N = 40, 3
    rewards = rng.normal(size=(T, N))
    values = rng.normal(size=(T, N))
    next_values = rng.normal(size=(T, N))
    u = rng.random((T, N))
    terminated = u < 0.08
    truncated = (u >= 0.08) & (u < 0.16)
    assert terminated.any() and truncated.any()
    exp_adv, exp_ret = reference_gae(rewards, values, next_values, terminated, truncated, gamma, lam)
    adv, ret = gae(
        torch.from_numpy(rewards),
        torch.from_numpy(values),
        torch.from_numpy(next_values),
        torch.from_numpy(terminated),
        torch.from_numpy(terminated | truncated),
        gamma=gamma,
        lam=lam,
    )
    np.testing.assert_allclose(adv.numpy(), exp_adv, atol=1e-10, rtol=0)
    np.testing.assert_allclose(ret.numpy(), exp_ret, atol=1e-10, rtol=0)


def test_gae_float32_and_float_masks():
    # float masks and float32 work like bool masks (same numbers as test_gae_terminated_hand_computed)
    kw = {k: v.float() for k, v in TERM.items()}
    adv, _ = gae(**kw, gamma=0.9, lam=0.95)
    assert adv.dtype == torch.float32
    close(adv, [4.5057875, 3.6325, 1.5], atol=1e-5)


def test_gae_shape_mismatch_raises():
    good = {k: v.clone() for k, v in TERM.items()}
    for name in good:
        bad = dict(good)
        bad[name] = torch.zeros(4, dtype=good[name].dtype)
        with pytest.raises(ValueError):
            gae(**bad, gamma=0.9, lam=0.95)
    bad = {k: v.unsqueeze(-1) for k, v in good.items()}
    bad["done"] = good["done"]  # [3, 1] vs [3]
    with pytest.raises(ValueError):
        gae(**bad, gamma=0.9, lam=0.95)


# --------------------------------------------------------------------------------------------
# reward_to_go, discounted_return, normalize
# --------------------------------------------------------------------------------------------


def test_reward_to_go_single_episode():
    g = reward_to_go(t([1.0, 2.0, 3.0]), t([0.0, 0.0, 1.0]), gamma=0.9)
    # G_2 = 3, G_1 = 2 + 0.9*3 = 4.7, G_0 = 1 + 0.9*4.7 = 5.23
    close(g, [5.23, 4.7, 3.0])


def test_reward_to_go_episode_boundary_and_bootstrap():
    g = reward_to_go(t([1.0, 2.0, 3.0, 4.0]), t([False, True, False, False], torch.bool), gamma=0.5, bootstrap=t(10.0))
    # G_3 = 4 + 0.5*10 = 9, G_2 = 3 + 0.5*9 = 7.5, G_1 = 2 (episode ends), G_0 = 1 + 0.5*2 = 2
    close(g, [2.0, 2.0, 7.5, 9.0])


def test_reward_to_go_bootstrap_ignored_when_last_step_done():
    r, d = t([1.0, 2.0]), t([0.0, 1.0])
    a = reward_to_go(r, d, gamma=0.9)
    b = reward_to_go(r, d, gamma=0.9, bootstrap=t(1000.0))
    close(a, [2.8, 2.0])  # G_1 = 2, G_0 = 1 + 0.9*2 = 2.8
    assert torch.equal(a, b)


def test_reward_to_go_two_envs():
    rewards = t([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    done = t([[0.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
    g = reward_to_go(rewards, done, gamma=0.9, bootstrap=t([2.0, 0.0]))
    # env 0: G_2 = 1 + 0.9*2 = 2.8, G_1 = 1 + 0.9*2.8 = 3.52, G_0 = 1 + 0.9*3.52 = 4.168
    # env 1: G_2 = 1, G_1 = 1 + 0.9 = 1.9, G_0 = 1 (done at t=0)
    close(g, [[4.168, 1.0], [3.52, 1.9], [2.8, 1.0]])


def test_reward_to_go_shape_mismatch_raises():
    with pytest.raises(ValueError):
        reward_to_go(torch.zeros(3), torch.zeros(4), gamma=0.9)
    with pytest.raises(ValueError):
        reward_to_go(torch.zeros(3, 2), torch.zeros(3), gamma=0.9)


def test_discounted_return():
    close(discounted_return(t([1.0, 2.0, 3.0]), 0.9), 5.23)  # 1 + 0.9*2 + 0.81*3 = 1 + 1.8 + 2.43
    close(discounted_return(t([1.0, 1.0, 1.0, 1.0]), 0.5), 1.875)  # 1 + .5 + .25 + .125
    # [T, N]: one return per column. col 1: 2 + 0.9*0 + 0.81*(-1) = 1.19
    g = discounted_return(t([[1.0, 2.0], [2.0, 0.0], [3.0, -1.0]]), 0.9)
    close(g, [5.23, 1.19])
    close(discounted_return(t([5.0]), 0.9), 5.0)


def test_normalize_hand_computed():
    y = normalize(t([1.0, 2.0, 3.0, 4.0]), eps=0.0)
    # mean 2.5, unbiased var = (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3, std = 1.2909944487358056
    s = (5 / 3) ** 0.5
    close(y, [-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s])
    close(y, [-1.161895003862225, -0.3872983346207417, 0.3872983346207417, 1.161895003862225])


def test_normalize_matches_numpy_and_eps():
    rng = np.random.default_rng(3)
    x = rng.normal(2.0, 3.0, size=(16, 4))
    y = normalize(torch.from_numpy(x))
    np.testing.assert_allclose(y.numpy(), (x - x.mean()) / (x.std(ddof=1) + 1e-8), atol=1e-12, rtol=0)
    # constant input: std 0 -> (x - mean) / eps = 0, not NaN
    assert torch.equal(normalize(t([3.0, 3.0, 3.0])), t([0.0, 0.0, 0.0]))


def test_normalize_single_element():
    assert torch.equal(normalize(t([5.0])), t([0.0]))


def test_gae_never_reads_the_next_value_of_a_terminal_step_even_if_not_finite():
    rewards = torch.tensor([1.0, 1.0])
    values = torch.tensor([0.5, 0.25])
    terminated = torch.tensor([0.0, 1.0])
    finite, _ = gae(rewards, values, torch.tensor([0.25, 0.0]), terminated, terminated, 0.9, 0.95)
    for poison in (float("nan"), float("inf")):
        adv, _ = gae(rewards, values, torch.tensor([0.25, poison]), terminated, terminated, 0.9, 0.95)
        assert torch.equal(adv, finite)


# --- GRPO group advantages ---------------------------------------------------------------------

def test_group_advantages_of_the_worked_example():
    """Four answers to "What is 2 + 3 * 4?" scored 0.1, 1.1, 1.0, 0.1: mean 0.575, sample std 0.55."""
    from rlsuite.ops.returns import group_advantages

    rewards = torch.tensor([0.1, 1.1, 1.0, 0.1])
    advantages, std = group_advantages(rewards, 4, "group", eps=0.0)
    assert std.tolist() == pytest.approx([0.55])
    assert advantages.tolist() == pytest.approx([-0.475 / 0.55, 0.525 / 0.55, 0.425 / 0.55, -0.475 / 0.55], abs=1e-6)
    unscaled, _ = group_advantages(rewards, 4, "none")
    assert unscaled.tolist() == pytest.approx([-0.475, 0.525, 0.425, -0.475], abs=1e-6)
    with_eps, _ = group_advantages(rewards, 4, "group")  # TRL's eps = 1e-4
    assert with_eps[1].item() == pytest.approx(0.525 / 0.5501, abs=1e-6)


def test_group_advantages_group_and_batch_scaling_differ_as_computed_by_hand():
    from rlsuite.ops.returns import group_advantages

    rewards = torch.tensor([0.0, 1.0, 0.0, 3.0])  # groups (0, 1) and (0, 3); G = 2
    group, std = group_advantages(rewards, 2, "group", eps=0.0)
    assert std.tolist() == pytest.approx([2 ** -0.5, 3 * 2 ** -0.5])
    assert group.tolist() == pytest.approx([-(2 ** -0.5), 2 ** -0.5, -(2 ** -0.5), 2 ** -0.5])
    batch, _ = group_advantages(rewards, 2, "batch", eps=0.0)
    batch_std = float(torch.tensor([0.0, 1.0, 0.0, 3.0]).std())  # sample std of the whole batch: 1.4142
    assert batch.tolist() == pytest.approx([-0.5 / batch_std, 0.5 / batch_std, -1.5 / batch_std, 1.5 / batch_std])


def test_group_advantages_of_a_tied_group_are_zero():
    from rlsuite.ops.returns import group_advantages

    advantages, std = group_advantages(torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0, 0.0]), 3)
    assert advantages[:3].tolist() == [0.0, 0.0, 0.0]
    assert std[0].item() == 0.0 and std[1].item() > 0


def test_group_advantages_reject_a_partial_group():
    from rlsuite.ops.returns import group_advantages

    with pytest.raises(ValueError, match="multiple of group_size"):
        group_advantages(torch.zeros(5), 2)


# --- Token-level RLHF: masked_whiten, rlhf_token_rewards, token_gae ---------------------------

from rlsuite.ops.returns import masked_whiten, rlhf_token_rewards, token_gae  # noqa: E402

# 2 x 3 batch, real entries 1, 2, 3 (row 0) and 4 (row 1, then padding):
#   mean 2.5, unbiased var = (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3, std = 1.2909944487358056
#   whitened = (x - 2.5) / std = [-1.161895003862225, -0.3872983346207417, 0.3872983346207417, 1.161895003862225]
WHITEN_MASK = t([[1, 1, 1], [1, 0, 0]], torch.long)
WHITENED = [-1.161895003862225, -0.3872983346207417, 0.3872983346207417, 1.161895003862225]


def test_masked_whiten_hand_values():
    values = t([[1.0, 2.0, 3.0], [4.0, 99.0, -7.0]])
    out = masked_whiten(values, WHITEN_MASK, eps=0.0)
    close(out[WHITEN_MASK.bool()], WHITENED)
    # the default eps = 1e-8 moves them by ~ 1e-8 / (2 var) relative: invisible at 1e-8
    close(masked_whiten(values, WHITEN_MASK)[WHITEN_MASK.bool()], WHITENED, atol=1e-8)
    # a plain whitening over all six entries would differ: the padding must not count
    assert not torch.allclose(out[WHITEN_MASK.bool()], normalize(values, eps=0.0)[WHITEN_MASK.bool()])


def test_masked_whiten_without_the_shift_adds_the_mean_back():
    values = t([[1.0, 2.0, 3.0], [4.0, 99.0, -7.0]])
    out = masked_whiten(values, WHITEN_MASK, shift_mean=False, eps=0.0)
    # WHITENED + 2.5
    close(out[WHITEN_MASK.bool()], [1.338104996137775, 2.1127016653792583, 2.8872983346207417, 3.661895003862225])


@pytest.mark.parametrize("pad", [0.0, -1e6, 1e30, float("inf"), float("nan")])
def test_masked_whiten_ignores_padding(pad):
    base = masked_whiten(t([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]]), WHITEN_MASK, eps=0.0)
    values = t([[1.0, 2.0, 3.0], [4.0, pad, pad]], F64).requires_grad_()
    out = masked_whiten(values, WHITEN_MASK.bool(), eps=0.0)
    assert torch.equal(out[WHITEN_MASK.bool()], base[WHITEN_MASK.bool()])
    if pad == pad and abs(pad) < float("inf"):
        # (non-finite padding stays non-finite in the output, so there it is the caller's to drop)
        (out * WHITEN_MASK).sum().backward()
        assert values.grad[1, 1:].tolist() == [0.0, 0.0]
        assert torch.isfinite(values.grad).all()


def test_masked_whiten_single_real_entry():
    # var is taken as 0 instead of 0 / 0: the entry becomes 0 (its own mean), or stays 5 unshifted
    values, mask = t([[5.0, 7.0]]), t([[1.0, 0.0]])
    assert masked_whiten(values, mask)[0, 0].item() == 0.0
    assert masked_whiten(values, mask, shift_mean=False)[0, 0].item() == 5.0


# Rewards: kl_coef = 0.1, scores [2, -1, 5], T = 4.
#   row 0 ends with its EOS at t=1, padding after (logp there: TRL's placeholder 1.0, and a NaN)
#   row 1 is cut at the length limit: its last token is t=3
#   row 2 is empty (no generated token): no score anywhere
# k1 = logp - ref:  row 0: [-1 + 1.5, -2 + 1] = [0.5, -1]   row 1: [0, 0.5, -0.5, 0.2]
# rewards = -0.1 k1 (+ score at the last token):
#   row 0: [-0.05, 0.1 + 2 = 2.1, 0, 0]   row 1: [0, -0.05, 0.05, -0.02 - 1 = -1.02]   row 2: 0
def _rlhf_batch():
    nan = float("nan")
    scores = t([2.0, -1.0, 5.0])
    logp = t([[-1.0, -2.0, 1.0, nan], [-0.5, -0.5, -0.5, -0.5], [1.0, 1.0, 1.0, 1.0]])
    ref = t([[-1.5, -1.0, 0.3, 0.2], [-0.5, -1.0, 0.0, -0.7], [-3.0, -3.0, -3.0, -3.0]])
    mask = t([[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]], torch.long)
    return scores, logp, ref, mask


def test_rlhf_token_rewards_k1_hand_values():
    scores, logp, ref, mask = _rlhf_batch()
    rewards, kl = rlhf_token_rewards(scores, logp, ref, mask, kl_coef=0.1)
    close(kl, [[0.5, -1.0, 0.0, 0.0], [0.0, 0.5, -0.5, 0.2], [0.0, 0.0, 0.0, 0.0]])
    close(rewards, [[-0.05, 2.1, 0.0, 0.0], [0.0, -0.05, 0.05, -1.02], [0.0, 0.0, 0.0, 0.0]])


def test_rlhf_token_rewards_score_sits_on_the_last_generated_token_only():
    scores, logp, ref, mask = _rlhf_batch()
    rewards, kl = rlhf_token_rewards(scores, logp, ref, mask, kl_coef=0.1)
    placed = rewards + 0.1 * kl  # what is left besides the KL penalty
    close(placed, [[0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 0.0, -1.0], [0.0, 0.0, 0.0, 0.0]])
    # kl_coef = 0: the rewards are the scores alone; the empty row's 5.0 is dropped
    rewards, _ = rlhf_token_rewards(scores, logp, ref, mask.bool(), kl_coef=0.0)
    close(rewards, [[0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 0.0, -1.0], [0.0, 0.0, 0.0, 0.0]])


def test_rlhf_token_rewards_k3_hand_values():
    scores, logp, ref, mask = _rlhf_batch()
    rewards, kl = rlhf_token_rewards(scores, logp, ref, mask.float(), kl_coef=0.1, estimator="k3")
    # k3 = (e^x - 1) - x with x = ref - logp:
    #   row 0: x = [-0.5, 1]         -> [e^-0.5 - 0.5 = 0.10653065971263342, e - 2 = 0.7182818284590451]
    #   row 1: x = [0, -0.5, 0.5, -0.2] -> [0, 0.10653065971263342, e^0.5 - 1.5 = 0.1487212707001282,
    #                                        e^-0.2 - 0.8 = 0.01873075307798186]
    close(kl, [[0.10653065971263342, 0.7182818284590451, 0.0, 0.0],
               [0.0, 0.10653065971263342, 0.1487212707001282, 0.01873075307798186],
               [0.0, 0.0, 0.0, 0.0]])
    # rewards: row 0: [-0.010653065971263342, 2 - 0.07182818284590451 = 1.9281718171540956, 0, 0]
    #          row 1: [0, -0.010653065971263342, -0.01487212707001282, -1 - 0.001873075307798186]
    close(rewards, [[-0.010653065971263342, 1.9281718171540956, 0.0, 0.0],
                    [0.0, -0.010653065971263342, -0.01487212707001282, -1.0018730753077982],
                    [0.0, 0.0, 0.0, 0.0]])
    assert (kl >= 0).all()
    with pytest.raises(ValueError, match="estimator"):
        rlhf_token_rewards(scores, logp, ref, mask, 0.1, estimator="k2")


# token_gae: one completion of 3 tokens, gamma = 1, lam = 0.95; the last token is terminal.
#   rewards [0.1, -0.2, 1.0], values [0.5, 0.4, 0.8]
#   delta_2 = 1.0  + 0 (end)    - 0.8 = 0.2
#   delta_1 = -0.2 + 1 * 0.8    - 0.4 = 0.2
#   delta_0 = 0.1  + 1 * 0.4    - 0.5 = 0.0
#   A_2 = 0.2 ; A_1 = 0.2 + 0.95 * 0.2 = 0.39 ; A_0 = 0.0 + 0.95 * 0.39 = 0.3705
#   returns = A + V = [0.8705, 0.79, 1.0]
TOKEN_REWARDS, TOKEN_VALUES = [0.1, -0.2, 1.0], [0.5, 0.4, 0.8]


def test_token_gae_hand_computed():
    adv, ret = token_gae(t([TOKEN_REWARDS]), t([TOKEN_VALUES]), t([[1, 1, 1]]), gamma=1.0, lam=0.95)
    close(adv, [[0.3705, 0.39, 0.2]])
    close(ret, [[0.8705, 0.79, 1.0]])


def test_token_gae_padded_row_equals_its_unpadded_computation():
    alone, alone_ret = token_gae(t([TOKEN_REWARDS]), t([TOKEN_VALUES]), t([[1, 1, 1]]), gamma=1.0, lam=0.95)
    rewards = t([[0.3, 0.0, -0.1, 0.2, 0.5], TOKEN_REWARDS + [0.0, 0.0]])
    values = t([[0.1, 0.2, 0.3, 0.4, 0.5], TOKEN_VALUES + [0.0, 0.0]])
    mask = t([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], torch.long)
    adv, ret = token_gae(rewards, values, mask, gamma=1.0, lam=0.95)
    assert torch.equal(adv[1, :3], alone[0]) and torch.equal(ret[1, :3], alone_ret[0])
    assert adv[1, 3:].tolist() == [0.0, 0.0] and ret[1, 3:].tolist() == [0.0, 0.0]
    # row 0 too is what it is alone
    alone0, _ = token_gae(rewards[:1], values[:1], mask[:1], gamma=1.0, lam=0.95)
    assert torch.equal(adv[0], alone0[0])


@pytest.mark.parametrize("pad", [1e30, -1e30, float("inf"), float("nan")])
def test_token_gae_ignores_padded_values_and_rewards(pad):
    mask = t([[1, 1, 1, 0, 0]], torch.long)
    base, base_ret = token_gae(t([TOKEN_REWARDS + [0.0, 0.0]]), t([TOKEN_VALUES + [0.0, 0.0]]), mask, 1.0, 0.95)
    adv, ret = token_gae(t([TOKEN_REWARDS + [pad, pad]]), t([TOKEN_VALUES + [pad, pad]]), mask, 1.0, 0.95)
    assert torch.equal(adv, base) and torch.equal(ret, base_ret)
    close(adv, [[0.3705, 0.39, 0.2, 0.0, 0.0]])


def test_token_gae_ends_the_episode_at_the_last_token_of_a_cut_completion():
    # gamma = lam = 1: A_t = (sum of rewards from t to the end) - V_t, nothing bootstrapped after the
    # last token even though the completion was cut (mask all ones): returns = [1, 1, 1, 1]
    rewards, values = t([[0.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0]]), t([[0.2, 0.4, 0.6, 0.8], [0.5, 0.5, 9.0, 9.0]])
    mask = t([[1, 1, 1, 1], [1, 1, 0, 0]])
    adv, ret = token_gae(rewards, values, mask, gamma=1.0, lam=1.0)
    # row 1 ends at t=1: G = [1, 1], A = G - V = [0.5, 0.5]; V = 9 on the padding is never read
    close(ret, [[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0]])
    close(adv, [[0.8, 0.6, 0.4, 0.2], [0.5, 0.5, 0.0, 0.0]])
