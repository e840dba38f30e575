"""Loss functions; each returns (loss, info) with detached diagnostics for logging."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _ratio_stats(log_ratio: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    ratio = log_ratio.exp()
    with torch.no_grad():
        # k3 estimator of KL(pi_old || pi_new) from samples of pi_old: unbiased and >= 0.
        approx_kl = ((ratio - 1) - log_ratio).mean()
    return ratio, {"approx_kl": approx_kl}


def ppo_clip(logp: Tensor, old_logp: Tensor, advantages: Tensor, clip_coef: float) -> tuple[Tensor, dict[str, Tensor]]:
    """L^CLIP (Schulman et al. 2017, eq. 7), negated for minimization:
    -E[min(r A, clip(r, 1 - eps, 1 + eps) A)] with r = pi(a|s) / pi_old(a|s)."""
    ratio, info = _ratio_stats(logp - old_logp)
    unclipped = ratio * advantages
    clipped = ratio.clamp(1 - clip_coef, 1 + clip_coef) * advantages
    loss = -torch.min(unclipped, clipped).mean()
    with torch.no_grad():
        info["clip_fraction"] = ((ratio - 1).abs() > clip_coef).float().mean()
    return loss, info


def ppo_kl_penalty(logp: Tensor, old_logp: Tensor, advantages: Tensor, beta: float) -> tuple[Tensor, dict[str, Tensor]]:
    """L^KLPEN (Schulman et al. 2017, eq. 8), negated: -E[r A - beta KL(pi_old || pi)].

    The KL is the k3 sample estimate (r - 1) - log r, differentiable in the new policy.
    """
    log_ratio = logp - old_logp
    ratio, info = _ratio_stats(log_ratio)
    kl = (ratio - 1) - log_ratio
    loss = -(ratio * advantages - beta * kl).mean()
    return loss, info


def adapt_kl_coef(beta: float, kl: float, kl_target: float) -> float:
    """The paper's rule after each policy update: halve beta when KL < d/1.5, double when > 1.5 d."""
    if kl < kl_target / 1.5:
        return beta / 2
    if kl > kl_target * 1.5:
        return beta * 2
    return beta


def value_loss(values: Tensor, returns: Tensor, old_values: Tensor | None = None, clip: float | None = None) -> Tensor:
    """0.5 E[(V - R)^2]; with clip, the pessimistic max with V clipped to old_V +- clip (PPO2's trick)."""
    unclipped = (values - returns).pow(2)
    if clip is None:
        return 0.5 * unclipped.mean()
    clipped = old_values + (values - old_values).clamp(-clip, clip)
    return 0.5 * torch.max(unclipped, (clipped - returns).pow(2)).mean()


# --- GRPO (Shao et al. 2024, arXiv:2402.03300, eq. 3) -----------------------------------------
# The per-token objective is fixed; the papers differ in how token terms are averaged into one
# loss. Each aggregation maps (per_token [B, T], mask [B, T], max_length) -> scalar.

def sequence_mean(per_token: Tensor, mask: Tensor, max_length: int) -> Tensor:
    """The GRPO paper: 1/G sum_i 1/|o_i| sum_t. Long completions weigh less per token."""
    mask = mask.to(per_token.dtype)
    return ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()


def token_mean(per_token: Tensor, mask: Tensor, max_length: int) -> Tensor:
    """DAPO (Yu et al. 2025, eq. 8): 1/sum_i |o_i| sum_i sum_t. Every token weighs the same."""
    mask = mask.to(per_token.dtype)
    return (per_token * mask).sum() / mask.sum().clamp(min=1.0)


def constant_length(per_token: Tensor, mask: Tensor, max_length: int) -> Tensor:
    """Dr. GRPO (Liu et al. 2025): sum_i sum_t / (G * max_length). No length bias at all."""
    return (per_token * mask.to(per_token.dtype)).sum() / (per_token.shape[0] * max_length)


def grpo(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    epsilon: float,
    epsilon_high: float,
    aggregate,
    max_length: int,
    ref_logp: Tensor | None = None,
    beta: float = 0.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """The GRPO loss, negated for minimization. Per token:
        -min(r A, clip(r, 1 - epsilon, 1 + epsilon_high) A) + beta KL_k3(pi || pi_ref)
    with r = pi(o_t) / pi_old(o_t), A the completion's advantage (the same for all its tokens) and
    KL_k3 = pi_ref/pi - log(pi_ref/pi) - 1 (Schulman's k3: unbiased, >= 0). epsilon_high >
    epsilon is DAPO's clip-higher. logp, old_logp, ref_logp, mask: [B, T]; advantages: [B].
    """
    log_ratio = logp - old_logp
    ratio = log_ratio.exp()
    advantages = advantages.unsqueeze(-1)
    per_token = -torch.min(ratio * advantages, ratio.clamp(1 - epsilon, 1 + epsilon_high) * advantages)
    info: dict[str, Tensor] = {}
    if beta != 0.0:
        if ref_logp is None:
            raise ValueError("beta != 0 needs ref_logp, the frozen reference model's log-probs")
        ref_log_ratio = ref_logp - logp
        kl = ref_log_ratio.exp() - ref_log_ratio - 1
        per_token = per_token + beta * kl
    loss = aggregate(per_token, mask, max_length)
    with torch.no_grad():
        m = mask.to(logp.dtype)
        count = m.sum().clamp(min=1.0)
        low = (ratio < 1 - epsilon) & (advantages < 0)
        high = (ratio > 1 + epsilon_high) & (advantages > 0)
        info["clip_ratio/low"] = (low * m).sum() / count
        info["clip_ratio/high"] = (high * m).sum() / count
        info["clip_ratio/region"] = ((low | high) * m).sum() / count
        if beta != 0.0:
            info["kl"] = (kl * m).sum() / count
    return loss, info


# --- Preference losses -------------------------------------------------------------------------
# The DPO family maps (logits, beta, label_smoothing) -> per-pair loss [B], where
#   logits = h = (log pi(y_w) - log pi_ref(y_w)) - (log pi(y_l) - log pi_ref(y_l)),
# y_w the chosen and y_l the rejected completion. Reduction is the caller's (usually a mean).
# The definitions are those of TRL's DPOTrainer.dpo_loss.

def dpo_sigmoid(logits: Tensor, beta: float, label_smoothing: float = 0.0) -> Tensor:
    """DPO (Rafailov et al. 2023, eq. 7): -log sigmoid(beta h). With label_smoothing = eps the
    conservative DPO of Mitchell (2023): the label is taken to be flipped with probability eps,
        -(1 - eps) log sigmoid(beta h) - eps log sigmoid(-beta h),
    which no longer pushes h to infinity: its minimum is at beta h = log((1 - eps) / eps)."""
    return -F.logsigmoid(beta * logits) * (1 - label_smoothing) - F.logsigmoid(-beta * logits) * label_smoothing


def dpo_ipo(logits: Tensor, beta: float, label_smoothing: float = 0.0) -> Tensor:
    """IPO (Azar et al. 2023, eq. 17, beta playing tau): (h - 1 / (2 beta))^2. A regression to a
    finite target margin, so h stays bounded even on deterministic preferences. The paper's h uses
    per-token-averaged log-probs; that is the caller's choice. label_smoothing is unused."""
    return (logits - 1 / (2 * beta)) ** 2


def dpo_hinge(logits: Tensor, beta: float, label_smoothing: float = 0.0) -> Tensor:
    """SLiC's hinge on the normalized likelihood (Zhao et al. 2023; Liu et al. 2023, RSO):
    max(0, 1 - beta h). Pairs already separated by a margin of 1 / beta give no gradient.
    label_smoothing is unused."""
    return torch.relu(1 - beta * logits)


def dpo_robust(logits: Tensor, beta: float, label_smoothing: float = 0.0) -> Tensor:
    """Robust DPO (Chowdhury et al. 2024, rDPO) for labels flipped with probability eps:
        [(1 - eps) l(h) - eps l(-h)] / (1 - 2 eps),  l(h) = -log sigmoid(beta h),
    an unbiased estimate of the clean-label loss. Unlike conservative DPO (dpo_sigmoid with
    label_smoothing) the flipped term enters with a minus sign; l(-h) = l(h) + beta h reduces it to
    l(h) - eps beta h / (1 - 2 eps). The estimate blows up as eps -> 1/2, hence eps < 1/2."""
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"dpo_robust needs 0 <= label_smoothing < 0.5, got {label_smoothing}")
    return (
        -F.logsigmoid(beta * logits) * (1 - label_smoothing) + F.logsigmoid(-beta * logits) * label_smoothing
    ) / (1 - 2 * label_smoothing)


def bradley_terry(
    chosen_rewards: Tensor,
    rejected_rewards: Tensor,
    margin: Tensor | None = None,
    center_coefficient: float = 0.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Reward-model loss under the Bradley-Terry model, P(y_w > y_l) = sigmoid(r_w - r_l)
    (Ouyang et al. 2022, eq. 1; TRL's RewardTrainer):
        -E[log sigmoid(r_w - r_l - m)] + c E[(r_w + r_l)^2]
    m: an optional per-pair margin [B] (Llama 2, Touvron et al. 2023: larger for pairs the raters
    found clearly different). c: reward centering (Eisenstein et al. 2023; TRL's
    center_rewards_coefficient): the BT likelihood only sees differences, so nothing else pins the
    rewards' offset; the penalty pulls their mean to 0."""
    diff = chosen_rewards - rejected_rewards
    logits = diff if margin is None else diff - margin
    loss = -F.logsigmoid(logits).mean()
    if center_coefficient:
        loss = loss + center_coefficient * ((chosen_rewards + rejected_rewards) ** 2).mean()
    with torch.no_grad():
        info = {"accuracy": (diff > 0).to(diff.dtype).mean(), "margin": diff.mean()}
    return loss, info


def kto(
    chosen_logratios: Tensor,
    rejected_logratios: Tensor,
    kl: Tensor | float,
    beta: float,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """KTO (Ethayarajh et al. 2024, eq. 7; TRL's kto_loss), with r = log pi(y|x) - log pi_ref(y|x)
    and z0 = kl the reference point:
        desirable y:    lambda_D (1 - sigmoid(beta (r - z0)))
        undesirable y:  lambda_U (1 - sigmoid(beta (z0 - r)))
    averaged over all examples of the batch. chosen_logratios [N_D] and rejected_logratios [N_U]
    are unpaired; either may be empty (a batch of only desirable or only undesirable examples).
    kl is the batch's KL estimate, clamped >= 0 by the caller; it is detached here because the paper
    uses it only as a reference point (no gradient flows through it)."""
    if chosen_logratios.numel() == 0 and rejected_logratios.numel() == 0:
        raise ValueError("kto needs at least one desirable or undesirable example")
    reference = chosen_logratios if chosen_logratios.numel() else rejected_logratios
    kl = torch.as_tensor(kl, dtype=reference.dtype, device=reference.device).detach()
    chosen_losses = desirable_weight * (1 - torch.sigmoid(beta * (chosen_logratios - kl)))
    rejected_losses = undesirable_weight * (1 - torch.sigmoid(beta * (kl - rejected_logratios)))
    # one mean over the concatenation, as TRL: each example weighs the same, whichever side it is on
    loss = torch.cat((chosen_losses, rejected_losses)).mean()
    info: dict[str, Tensor] = {}
    with torch.no_grad():
        # an absent side is left out rather than logged as the NaN mean of nothing
        if chosen_logratios.numel():
            info["rewards/chosen"] = beta * chosen_logratios.mean()
        if rejected_logratios.numel():
            info["rewards/rejected"] = beta * rejected_logratios.mean()
    return loss, info
