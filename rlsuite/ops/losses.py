"""Loss functions; each returns (loss, info) with detached diagnostics for logging."""

from __future__ import annotations

import torch
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
