"""Exact-answer tests for rlsuite.ops.losses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rlsuite.ops.losses import adapt_kl_coef, ppo_clip, ppo_kl_penalty, value_loss

F64 = torch.float64

# Six samples, clip_coef = 0.2 (range [0.8, 1.2]):
#   i  ratio  A    r*A    clip(r)*A   min    status
#   0  1.1   +2    2.2    2.2         2.2    inside the range
#   1  1.5   +1    1.5    1.2         1.2    clipped (pessimistic side)   -> zero gradient
#   2  0.5   +1    0.5    0.8         0.5    outside, unclipped term wins -> gradient
#   3  0.5   -2   -1.0   -1.6        -1.6    clipped (pessimistic side)   -> zero gradient
#   4  1.5   -1   -1.5   -1.2        -1.5    outside, unclipped term wins -> gradient
#   5  0.9   -1   -0.9   -0.9        -0.9    inside the range
# sum of min = 2.2 + 1.2 + 0.5 - 1.6 - 1.5 - 0.9 = -0.1, loss = -(-0.1 / 6) = 0.016666...
RATIOS = [1.1, 1.5, 0.5, 0.5, 1.5, 0.9]
ADVS = [2.0, 1.0, 1.0, -2.0, -1.0, -1.0]


def example():
    old_logp = torch.tensor([-1.0, -0.5, -2.0, -0.1, -3.0, -1.5], dtype=F64)
    logp = (old_logp + torch.log(torch.tensor(RATIOS, dtype=F64))).requires_grad_()
    return logp, old_logp, torch.tensor(ADVS, dtype=F64)


def test_ppo_clip_hand_value():
    logp, old_logp, adv = example()
    loss, info = ppo_clip(logp, old_logp, adv, clip_coef=0.2)
    assert loss.item() == pytest.approx(0.016666666666666666, abs=1e-12)  # = 0.1 / 6


def test_ppo_clip_gradient_zero_where_clipped():
    logp, old_logp, adv = example()
    loss, _ = ppo_clip(logp, old_logp, adv, clip_coef=0.2)
    loss.backward()
    # d/dlogp_i of -(1/6) r_i A_i = -(1/6) r_i A_i where the unclipped term is active, else 0:
    #   [-2.2/6, 0, -0.5/6, 0, 1.5/6, 0.9/6]
    expected = torch.tensor([-2.2 / 6, 0.0, -0.5 / 6, 0.0, 0.25, 0.15], dtype=F64)
    torch.testing.assert_close(logp.grad, expected, atol=1e-12, rtol=0)
    assert logp.grad[1].item() == 0.0 and logp.grad[3].item() == 0.0


def test_ppo_clip_gradient_mask_random():
    g = torch.Generator().manual_seed(0)
    n, eps = 512, 0.2
    old_logp = torch.randn(n, generator=g, dtype=F64)
    log_ratio = torch.randn(n, generator=g, dtype=F64) * 0.4
    adv = torch.randn(n, generator=g, dtype=F64)
    logp = (old_logp + log_ratio).requires_grad_()
    ppo_clip(logp, old_logp, adv, eps)[0].backward()
    r = log_ratio.exp()
    pessimistic_clip = ((adv > 0) & (r > 1 + eps)) | ((adv < 0) & (r < 1 - eps))
    assert pessimistic_clip.any() and (~pessimistic_clip).any()
    assert (logp.grad[pessimistic_clip] == 0).all()
    torch.testing.assert_close(logp.grad[~pessimistic_clip], (-r * adv / n)[~pessimistic_clip], atol=1e-12, rtol=0)


def test_ppo_clip_fraction():
    logp, old_logp, adv = example()
    _, info = ppo_clip(logp, old_logp, adv, clip_coef=0.2)
    # |r - 1| > 0.2 for samples 1, 2, 3, 4 -> 4 / 6
    assert info["clip_fraction"].item() == pytest.approx(4 / 6, abs=1e-7)
    _, info = ppo_clip(logp, old_logp, adv, clip_coef=0.6)  # |r - 1| <= 0.5 for all
    assert info["clip_fraction"].item() == 0.0
    assert not info["clip_fraction"].requires_grad and not info["approx_kl"].requires_grad


def test_ppo_clip_ratio_one_is_policy_gradient():
    # at r = 1 (first epoch) the loss is -mean(A): 2 + 1 + 1 - 2 - 1 - 1 = 0; use other advantages
    logp = torch.tensor([-1.0, -2.0, -0.3], dtype=F64, requires_grad=True)
    adv = torch.tensor([1.0, -3.0, 0.5], dtype=F64)
    loss, info = ppo_clip(logp, logp.detach(), adv, 0.2)
    assert loss.item() == pytest.approx(-(1.0 - 3.0 + 0.5) / 3, abs=1e-12)  # = 0.5
    loss.backward()
    torch.testing.assert_close(logp.grad, -adv / 3, atol=1e-12, rtol=0)
    assert info["approx_kl"].item() == 0.0 and info["clip_fraction"].item() == 0.0


def test_approx_kl_is_k3_hand_value():
    logp, old_logp, adv = example()
    _, info = ppo_clip(logp, old_logp, adv, clip_coef=0.2)
    # k3 = (r - 1) - log r per sample:
    #   1.1: 0.1 - 0.0953102 = 0.0046898    1.5: 0.5 - 0.4054651 = 0.0945349
    #   0.5: -0.5 + 0.6931472 = 0.1931472   0.9: -0.1 + 0.1053605 = 0.0053605
    # mean = (0.0046898 + 2*0.0945349 + 2*0.1931472 + 0.0053605) / 6 = 0.5854145 / 6 = 0.0975691
    assert info["approx_kl"].item() == pytest.approx(0.0975690801261772, abs=1e-12)
    expected = sum((r - 1) - math.log(r) for r in RATIOS) / 6
    assert info["approx_kl"].item() == pytest.approx(expected, abs=1e-12)


def test_approx_kl_nonnegative_and_matches_numpy_k3():
    rng = np.random.default_rng(4)
    for scale in (0.01, 0.3, 2.0):
        log_ratio = rng.normal(scale=scale, size=1000)
        _, info = ppo_clip(torch.from_numpy(log_ratio), torch.zeros(1000, dtype=F64), torch.ones(1000, dtype=F64), 0.2)
        k3 = np.expm1(log_ratio) - log_ratio
        assert (k3 >= 0).all()
        assert info["approx_kl"].item() >= 0
        assert info["approx_kl"].item() == pytest.approx(k3.mean(), rel=1e-10)


def test_approx_kl_estimates_true_kl_monte_carlo():
    # pi_old = p, pi_new = q; KL(p || q) = 0.5 ln(0.5/0.2) + 0.3 ln 1 + 0.2 ln(0.2/0.5) = 0.3 ln 2.5
    torch.manual_seed(0)
    p = torch.tensor([0.5, 0.3, 0.2], dtype=F64)
    q = torch.tensor([0.2, 0.3, 0.5], dtype=F64)
    true_kl = 0.3 * math.log(2.5)  # 0.27488721956...
    actions = torch.multinomial(p, 200_000, replacement=True)  # sampled from pi_old
    _, info = ppo_clip(q.log()[actions], p.log()[actions], torch.zeros(200_000, dtype=F64), 0.2)
    assert info["approx_kl"].item() == pytest.approx(true_kl, abs=0.005)
    _, info = ppo_kl_penalty(q.log()[actions], p.log()[actions], torch.zeros(200_000, dtype=F64), 1.0)
    assert info["approx_kl"].item() == pytest.approx(true_kl, abs=0.005)


def test_ppo_kl_penalty_hand_value_and_gradient():
    logp, old_logp, adv = example()
    loss, info = ppo_kl_penalty(logp, old_logp, adv, beta=0.5)
    # sum r*A = 2.2 + 1.5 + 0.5 - 1.0 - 1.5 - 0.9 = 0.8 ; sum k3 = 0.5854144807570631
    # loss = -(0.8 - 0.5 * 0.5854144807570631) / 6 = -0.50729275962 / 6 = -0.08454879327024477
    assert loss.item() == pytest.approx(-0.08454879327024477, abs=1e-12)
    assert info["approx_kl"].item() == pytest.approx(0.0975690801261772, abs=1e-12)
    loss.backward()
    # d/dlogp of -(r A - beta((r - 1) - log r)) / 6 = -(r A - beta (r - 1)) / 6
    expected = [-(r * a - 0.5 * (r - 1)) / 6 for r, a in zip(RATIOS, ADVS)]
    torch.testing.assert_close(logp.grad, torch.tensor(expected, dtype=F64), atol=1e-12, rtol=0)


def test_ppo_kl_penalty_beta_zero_is_unclipped_surrogate():
    logp, old_logp, adv = example()
    loss, _ = ppo_kl_penalty(logp, old_logp, adv, beta=0.0)
    assert loss.item() == pytest.approx(-0.8 / 6, abs=1e-12)


@pytest.mark.parametrize(
    "kl,expected",
    [
        (0.001, 0.5),  # < 0.01 / 1.5 = 0.00667 -> halve
        (0.0066, 0.5),
        (0.0067, 1.0),  # between d/1.5 and 1.5 d -> keep
        (0.01, 1.0),
        (0.0149, 1.0),
        (0.0151, 2.0),  # > 1.5 * 0.01 = 0.015 -> double
        (0.5, 2.0),
    ],
)
def test_adapt_kl_coef(kl, expected):
    assert adapt_kl_coef(1.0, kl, 0.01) == expected
    assert adapt_kl_coef(3.0, kl, 0.01) == 3.0 * expected


def test_value_loss_unclipped():
    values = torch.tensor([1.0, 2.0, 3.0], dtype=F64)
    returns = torch.tensor([1.5, 1.0, 5.0], dtype=F64)
    # 0.5 * mean(0.25, 1, 4) = 0.5 * 5.25 / 3 = 0.875
    assert value_loss(values, returns).item() == pytest.approx(0.875, abs=1e-12)


def test_value_loss_clipped():
    values = torch.tensor([1.0, 2.0, 3.0], dtype=F64, requires_grad=True)
    returns = torch.tensor([1.5, 1.0, 5.0], dtype=F64)
    old_values = torch.tensor([0.9, 1.5, 2.0], dtype=F64)
    loss = value_loss(values, returns, old_values, clip=0.2)
    # clipped V = old + clamp(V - old, -0.2, 0.2) = [0.9 + 0.1, 1.5 + 0.2, 2.0 + 0.2] = [1.0, 1.7, 2.2]
    # unclipped sq = [0.25, 1.0, 4.0] ; clipped sq = [(1.0-1.5)^2, (1.7-1)^2, (2.2-5)^2] = [0.25, 0.49, 7.84]
    # max = [0.25, 1.0, 7.84] -> 0.5 * 9.09 / 3 = 1.515
    assert loss.item() == pytest.approx(1.515, abs=1e-12)
    loss.backward()
    # grads: sample 0: (V - R)/3 = -0.5/3 ; sample 1 unclipped wins: (2 - 1)/3 ; sample 2 clipped wins
    # and V is outside the clip range -> 0
    torch.testing.assert_close(values.grad, torch.tensor([-0.5 / 3, 1 / 3, 0.0], dtype=F64), atol=1e-12, rtol=0)


def test_value_loss_clip_no_effect_inside_range():
    values = torch.tensor([1.0, 2.0], dtype=F64)
    returns = torch.tensor([0.0, 4.0], dtype=F64)
    # |V - old| <= clip: clipped == unclipped -> 0.5 * (1 + 4) / 2 = 1.25
    assert value_loss(values, returns, values - 0.05, clip=0.1).item() == pytest.approx(1.25, abs=1e-12)
    assert value_loss(values, returns).item() == pytest.approx(1.25, abs=1e-12)


# --- GRPO --------------------------------------------------------------------------------------
# Two completions, advantages (2, -1); ratios 1.5 and 0.9 on the first (2 tokens), 0.5 on the
# second (1 token); a masked third column whose ratio 7 must not count. epsilon 0.2:
#   row 0, t0: min(1.5*2, 1.2*2) = 2.4 -> -2.4 (clipped: no gradient)
#   row 0, t1: min(0.9*2, 0.9*2) = 1.8 -> -1.8 (gradient -r A = -1.8)
#   row 1, t0: min(0.5*-1, 0.8*-1) = -0.8 -> 0.8 (clipped: no gradient)

def _grpo_batch():
    import math

    old = torch.zeros(2, 3)
    logp = torch.tensor([[math.log(1.5), math.log(0.9), math.log(7.0)], [math.log(0.5), 0.0, 0.0]], requires_grad=True)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    return logp, old, torch.tensor([2.0, -1.0]), mask


@pytest.mark.parametrize("aggregate, expected, gradient", [
    ("sequence_mean", (-2.1 + 0.8) / 2, -1.8 / 2 / 2),    # each row's token mean, then the mean of rows
    ("token_mean", (-2.4 - 1.8 + 0.8) / 3, -1.8 / 3),      # one mean over the 3 tokens
    ("constant_length", (-2.4 - 1.8 + 0.8) / (2 * 4), -1.8 / 8),  # sum / (G * max_length=4)
])
def test_grpo_loss_and_gradient_by_hand(aggregate, expected, gradient):
    from rlsuite.ops import losses

    logp, old, advantages, mask = _grpo_batch()
    loss, info = losses.grpo(logp, old, advantages, mask, epsilon=0.2, epsilon_high=0.2,
                             aggregate=getattr(losses, aggregate), max_length=4)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    loss.backward()
    assert logp.grad.flatten().tolist() == pytest.approx([0.0, gradient, 0.0, 0.0, 0.0, 0.0], abs=1e-6)
    assert info["clip_ratio/high"].item() == pytest.approx(1 / 3)  # row 0, t0
    assert info["clip_ratio/low"].item() == pytest.approx(1 / 3)   # row 1, t0
    assert info["clip_ratio/region"].item() == pytest.approx(2 / 3)


def test_grpo_clip_higher_moves_only_the_upper_bound():
    from rlsuite.ops import losses

    logp, old, advantages, mask = _grpo_batch()
    loss, _ = losses.grpo(logp, old, advantages, mask, epsilon=0.2, epsilon_high=0.28, aggregate=losses.sequence_mean, max_length=4)
    assert loss.item() == pytest.approx(((-2.56 - 1.8) / 2 + 0.8) / 2, abs=1e-6)  # 1.28 * 2 = 2.56; the low clip stays 0.8


def test_grpo_k3_kl_to_the_reference_by_hand():
    import math

    from rlsuite.ops import losses

    logp = torch.tensor([[0.0, 0.0]], requires_grad=True)
    old = torch.zeros(1, 2)
    ref = torch.tensor([[math.log(2.0), 0.0]])  # pi_ref / pi = 2 on the first token, 1 on the second
    mask = torch.ones(1, 2)
    loss, info = losses.grpo(logp, old, torch.tensor([0.0]), mask, epsilon=0.2, epsilon_high=0.2,
                             aggregate=losses.token_mean, max_length=2, ref_logp=ref, beta=0.1)
    k3 = 2 - math.log(2) - 1  # 0.30685
    assert info["kl"].item() == pytest.approx(k3 / 2, abs=1e-6)
    assert loss.item() == pytest.approx(0.1 * k3 / 2, abs=1e-6)
    loss.backward()
    # d/dlogp [exp(ref - logp) - (ref - logp) - 1] = 1 - exp(ref - logp): -1 on token 0, 0 on token 1.
    assert logp.grad.flatten().tolist() == pytest.approx([0.1 * (1 - 2) / 2, 0.0], abs=1e-6)


def test_grpo_worked_example_pushes_the_better_answers_up():
    """The four answers to "2 + 3 * 4" (rewards 0.1, 1.1, 1.0, 0.1) at ratio 1: the gradient on each
    answer's log-prob is -A_i / (G * |o_i|) under the per-sequence mean."""
    from rlsuite.ops import losses
    from rlsuite.ops.returns import group_advantages

    advantages, _ = group_advantages(torch.tensor([0.1, 1.1, 1.0, 0.1]), 4, eps=0.0)
    logp = torch.zeros(4, 2, requires_grad=True)
    mask = torch.tensor([[1, 1], [1, 1], [1, 0], [1, 1]])
    loss, _ = losses.grpo(logp, logp.detach(), advantages, mask, epsilon=0.2, epsilon_high=0.2, aggregate=losses.sequence_mean, max_length=2)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)  # advantages sum to zero at ratio 1
    loss.backward()
    a = advantages.tolist()
    assert logp.grad[:, 0].tolist() == pytest.approx([-a[0] / 8, -a[1] / 8, -a[2] / 4, -a[3] / 8], abs=1e-6)
    assert logp.grad[1, 0] < 0 < logp.grad[0, 0]  # descent raises o2's probability and lowers o1's


# --- Preference losses -------------------------------------------------------------------------
# One pair, beta = 0.1, h = (logp_c - ref_c) - (logp_r - ref_r) = (-1 + 1.5) - (-2 + 1.5) = 1, so
# beta h = 0.1 and, with softplus(x) = log(1 + e^x):
#   -log sigmoid( 0.1) = softplus(-0.1) = 0.6443966600735709
#   -log sigmoid(-0.1) = softplus( 0.1) = 0.7443966600735709  (= the line above + 0.1)

from rlsuite.ops.losses import bradley_terry, dpo_hinge, dpo_ipo, dpo_robust, dpo_sigmoid, kto  # noqa: E402

DPO_LOSSES = [dpo_sigmoid, dpo_ipo, dpo_hinge, dpo_robust]


def _pair(h=1.0):
    logp_c = torch.tensor([-1.0], dtype=F64, requires_grad=True)
    logp_r = torch.tensor([-1.0 - h], dtype=F64, requires_grad=True)
    ref_c = torch.tensor([-1.5], dtype=F64)
    ref_r = torch.tensor([-1.5], dtype=F64)
    return logp_c, logp_r, (logp_c - ref_c) - (logp_r - ref_r)


@pytest.mark.parametrize("loss_fn, expected", [
    (dpo_sigmoid, 0.6443966600735709),  # -log sigmoid(0.1)
    (dpo_ipo, 16.0),                    # (h - 1 / (2 beta))^2 = (1 - 5)^2
    (dpo_hinge, 0.9),                   # relu(1 - 0.1 * 1)
    (dpo_robust, 0.6443966600735709),   # eps = 0: (l(h) + 0) / 1 = DPO
])
def test_dpo_losses_hand_values(loss_fn, expected):
    _, _, h = _pair()
    assert h.item() == 1.0
    loss = loss_fn(h, 0.1)
    assert loss.shape == (1,)
    assert loss.item() == pytest.approx(expected, abs=1e-12)


def test_dpo_label_smoothing_hand_values():
    h = torch.tensor([1.0], dtype=F64)
    # conservative DPO, eps = 0.1: 0.9 * 0.6443966600735709 + 0.1 * 0.7443966600735709
    #   = 0.5799569940662138 + 0.0744396660073571 = 0.6543966600735709 (= l(h) + eps beta h)
    assert dpo_sigmoid(h, 0.1, 0.1).item() == pytest.approx(0.6543966600735709, abs=1e-12)
    # rDPO, eps = 0.1: (0.9 * 0.6443966600735709 - 0.1 * 0.7443966600735709) / 0.8
    #   = (0.5799569940662138 - 0.0744396660073571) / 0.8 = 0.5055173280588567 / 0.8 = 0.6318966600735709
    #   (= l(h) - eps beta h / (1 - 2 eps) = 0.6443966600735709 - 0.0125)
    assert dpo_robust(h, 0.1, 0.1).item() == pytest.approx(0.6318966600735709, abs=1e-12)
    # ipo and hinge ignore label_smoothing
    assert dpo_ipo(h, 0.1, 0.3).item() == 16.0 and dpo_hinge(h, 0.1, 0.3).item() == pytest.approx(0.9)


def test_dpo_robust_rejects_label_smoothing_of_one_half_or_more():
    h = torch.tensor([1.0])
    for eps in (0.5, 0.7, -0.1):
        with pytest.raises(ValueError, match="label_smoothing"):
            dpo_robust(h, 0.1, eps)


def test_dpo_sigmoid_swapped_pair_costs_more():
    # h = -1 (the rejected completion is the more likely one): -log sigmoid(-0.1) = 0.7443966600735709
    _, _, h = _pair(h=-1.0)
    assert h.item() == -1.0
    assert dpo_sigmoid(h, 0.1).item() == pytest.approx(0.7443966600735709, abs=1e-12)
    assert dpo_sigmoid(h, 0.1).item() > dpo_sigmoid(-h, 0.1).item()


@pytest.mark.parametrize("loss_fn", DPO_LOSSES)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_dpo_gradient_raises_chosen_and_lowers_rejected(loss_fn, label_smoothing):
    logp_c, logp_r, h = _pair()
    loss_fn(h, 0.1, label_smoothing).sum().backward()
    # descent moves logp_c up and logp_r down
    assert logp_c.grad.item() < 0 < logp_r.grad.item()
    assert logp_c.grad.item() == -logp_r.grad.item()  # the loss only sees h = logp_c - logp_r + const


def test_dpo_sigmoid_gradient_hand_value():
    logp_c, logp_r, h = _pair()
    dpo_sigmoid(h, 0.1).sum().backward()
    # d/dh -log sigmoid(beta h) = -beta sigmoid(-beta h) = -0.1 * 0.47502081252106 = -0.047502081252106
    assert logp_c.grad.item() == pytest.approx(-0.047502081252106, abs=1e-12)


# Bradley-Terry: r_c = [1, 0.5, -0.2], r_r = [0, 1, -0.7] -> d = r_c - r_r = [1, -0.5, 0.5]
#   -log sigmoid(d) = softplus(-d) = [0.31326168751822286, 0.9740769841801067, 0.4740769841801067]
#   mean = 1.7613956596784363 / 3 = 0.5871385519594787
# accuracy: d > 0 for pairs 0 and 2 -> 2/3 ; margin: mean d = 1/3
def _rewards():
    chosen = torch.tensor([1.0, 0.5, -0.2], dtype=F64, requires_grad=True)
    rejected = torch.tensor([0.0, 1.0, -0.7], dtype=F64, requires_grad=True)
    return chosen, rejected


def test_bradley_terry_hand_value_and_info():
    chosen, rejected = _rewards()
    loss, info = bradley_terry(chosen, rejected)
    assert loss.item() == pytest.approx(0.5871385519594787, abs=1e-12)
    assert info["accuracy"].item() == pytest.approx(2 / 3, abs=1e-12)
    assert info["margin"].item() == pytest.approx(1 / 3, abs=1e-12)
    assert not info["accuracy"].requires_grad and not info["margin"].requires_grad


def test_bradley_terry_gradient_hand_value_and_signs():
    chosen, rejected = _rewards()
    bradley_terry(chosen, rejected)[0].backward()
    # d/dr_c softplus(-d) / 3 = -sigmoid(-d) / 3 = [-0.2689414/3, -0.6224593/3, -0.3775407/3]
    expected = [-0.08964714045666504, -0.20748644373395153, -0.1258468895993818]
    assert chosen.grad.tolist() == pytest.approx(expected, abs=1e-12)
    assert rejected.grad.tolist() == pytest.approx([-g for g in expected], abs=1e-12)
    assert (chosen.grad < 0).all() and (rejected.grad > 0).all()


def test_bradley_terry_margin_hand_value():
    chosen, rejected = _rewards()
    # d - m = [1 - 0.5, -0.5 - 0, 0.5 - 0.5] = [0.5, -0.5, 0]
    #   softplus(-(d - m)) = [0.4740769841801067, 0.9740769841801067, log 2 = 0.6931471805599453]
    #   mean = 2.1413011489201587 / 3 = 0.7137670496400529
    loss, info = bradley_terry(chosen, rejected, margin=torch.tensor([0.5, 0.0, 0.5], dtype=F64))
    assert loss.item() == pytest.approx(0.7137670496400529, abs=1e-12)
    assert info["margin"].item() == pytest.approx(1 / 3, abs=1e-12)  # the reward gap, not the margin


def test_bradley_terry_centering_hand_value():
    chosen, rejected = _rewards()
    # r_c + r_r = [1 + 0, 0.5 + 1, -0.2 - 0.7] = [1, 1.5, -0.9]
    #   squares [1, 2.25, 0.81], mean 4.06 / 3 = 1.3533333; times c = 0.01 -> 0.013533333
    loss, _ = bradley_terry(chosen, rejected, center_coefficient=0.01)
    assert loss.item() == pytest.approx(0.5871385519594787 + 0.013533333333333333, abs=1e-12)
    # margin and centering together: 0.7137670496400529 + 0.013533333333333333
    loss, _ = bradley_terry(chosen, rejected, torch.tensor([0.5, 0.0, 0.5], dtype=F64), 0.01)
    assert loss.item() == pytest.approx(0.7273003829733862, abs=1e-12)


# KTO, beta = 0.1, z0 = kl = 0.5, lambda_D = 1.0, lambda_U = 1.33:
#   desirable r = 1.5:   1 - sigmoid(0.1 * (1.5 - 0.5))  = 1 - sigmoid(0.1)  = 0.47502081252106
#   desirable r = -0.5:  1 - sigmoid(0.1 * (-0.5 - 0.5)) = 1 - sigmoid(-0.1) = 0.52497918747894
#   undesirable r = 2.5: 1.33 * (1 - sigmoid(0.1 * (0.5 - 2.5))) = 1.33 * (1 - sigmoid(-0.2))
#                        = 1.33 * 0.5498339973124778 = 0.7312792164255956
#   loss = (0.47502081252106 + 0.52497918747894 + 0.7312792164255956) / 3 = 1.7312792164255956 / 3
#        = 0.5770930721418652
def _kto_batch():
    chosen = torch.tensor([1.5, -0.5], dtype=F64, requires_grad=True)
    rejected = torch.tensor([2.5], dtype=F64, requires_grad=True)
    return chosen, rejected


def test_kto_hand_value_and_info():
    chosen, rejected = _kto_batch()
    loss, info = kto(chosen, rejected, torch.tensor(0.5, dtype=F64), 0.1, 1.0, 1.33)
    assert loss.item() == pytest.approx(0.5770930721418652, abs=1e-12)
    assert info["rewards/chosen"].item() == pytest.approx(0.05, abs=1e-12)  # 0.1 * mean(1.5, -0.5)
    assert info["rewards/rejected"].item() == pytest.approx(0.25, abs=1e-12)  # 0.1 * 2.5
    assert not any(v.requires_grad for v in info.values())
    # a float reference point works the same
    assert kto(chosen, rejected, 0.5, 0.1, 1.0, 1.33)[0].item() == pytest.approx(0.5770930721418652, abs=1e-12)


def test_kto_gradient_signs_and_detached_kl():
    chosen, rejected = _kto_batch()
    kl = torch.tensor(0.5, dtype=F64, requires_grad=True)
    loss, _ = kto(chosen, rejected, kl, 0.1, 1.0, 1.33)
    loss.backward()
    # raise desirable log-ratios, lower undesirable ones; z0 is a constant reference point
    assert (chosen.grad < 0).all() and (rejected.grad > 0).all()
    assert kl.grad is None
    # d/dr of (1 - sigmoid(0.1 (r - 0.5))) / 3 = -0.1 s (1 - s) / 3, s = sigmoid(0.1): -0.1 * 0.2493760 / 3
    assert chosen.grad[0].item() == pytest.approx(-0.1 * 0.52497918747894 * 0.47502081252106 / 3, abs=1e-12)


def test_kto_single_sided_batches_are_finite():
    chosen, rejected = _kto_batch()
    empty = torch.zeros(0, dtype=F64)
    loss, info = kto(chosen, empty, 0.5, 0.1, 1.0, 1.33)
    # (0.47502081252106 + 0.52497918747894) / 2 = 0.5
    assert loss.item() == pytest.approx(0.5, abs=1e-12)
    assert set(info) == {"rewards/chosen"}
    loss, info = kto(empty, rejected, 0.5, 0.1, 1.0, 1.33)
    assert loss.item() == pytest.approx(0.7312792164255956, abs=1e-12)
    assert set(info) == {"rewards/rejected"}
    loss.backward()
    assert torch.isfinite(rejected.grad).all()
    with pytest.raises(ValueError):
        kto(empty, empty, 0.5, 0.1)
