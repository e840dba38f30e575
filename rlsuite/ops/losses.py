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
