"""Action distributions written with plain tensor ops (no validation overhead in the hot loop).

Each matches `torch.distributions` exactly (see tests/ops/test_distributions.py).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class Categorical:
    """pi(a|s) = softmax(logits)_a over the last axis."""

    def __init__(self, logits: Tensor):
        self.logits = logits - logits.logsumexp(-1, keepdim=True)

    def sample(self) -> Tensor:
        # Gumbel-max: argmax(logits + G), G = -log(E), E ~ Exp(1), is an exact categorical sample.
        return (self.logits - torch.empty_like(self.logits).exponential_().log()).argmax(-1)

    def mode(self) -> Tensor:
        return self.logits.argmax(-1)

    def log_prob(self, actions: Tensor) -> Tensor:
        return self.logits.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)

    def entropy(self) -> Tensor:
        # Masked actions have logit -inf and probability 0; clamping keeps 0 * log 0 at 0, not NaN.
        logits = self.logits.clamp(min=torch.finfo(self.logits.dtype).min)
        return -(logits.exp() * logits).sum(-1)


class DiagGaussian:
    """pi(a|s) = N(mean(s), diag(exp(log_std))^2), densities summed over the action axis."""

    def __init__(self, mean: Tensor, log_std: Tensor):
        self.mean = mean
        self.log_std = log_std.expand_as(mean)

    def sample(self) -> Tensor:
        return self.mean + self.log_std.exp() * torch.randn_like(self.mean)

    def mode(self) -> Tensor:
        return self.mean

    def log_prob(self, actions: Tensor) -> Tensor:
        z = (actions - self.mean) * torch.exp(-self.log_std)
        return (-0.5 * z.pow(2) - self.log_std - LOG_SQRT_2PI).sum(-1)

    def entropy(self) -> Tensor:
        return (0.5 + LOG_SQRT_2PI + self.log_std).sum(-1)


def kl_divergence(p: Categorical | DiagGaussian, q: Categorical | DiagGaussian) -> Tensor:
    """KL(p || q) in closed form for two distributions of the same kind, summed over the action
    axis (TRPO's constraint, with p the old policy)."""
    if isinstance(p, Categorical) and isinstance(q, Categorical):
        # Clamped as in entropy(): an action impossible under p adds 0, not 0 * (-inf) = NaN.
        log_p = p.logits.clamp(min=torch.finfo(p.logits.dtype).min)
        return (log_p.exp() * (log_p - q.logits)).sum(-1)
    if isinstance(p, DiagGaussian) and isinstance(q, DiagGaussian):
        # log(s_q / s_p) + (s_p^2 + (m_p - m_q)^2) / (2 s_q^2) - 1/2, per dimension.
        var_ratio = (2.0 * (p.log_std - q.log_std)).exp()
        mean_term = ((p.mean - q.mean) * torch.exp(-q.log_std)).pow(2)
        return (0.5 * (var_ratio + mean_term - 1.0) - (p.log_std - q.log_std)).sum(-1)
    raise TypeError(f"no closed-form KL between {type(p).__name__} and {type(q).__name__}")


LOG_2 = math.log(2.0)


class TanhGaussian:
    """SAC's squashed policy (Haarnoja et al. 2018, appendix C): u ~ N(mean, std^2), a = tanh(u),

        log pi(a) = log N(u; mean, std) - sum_i log(1 - tanh(u_i)^2)

    with log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), exact and stable for large |u|
    (1 - tanh(u)^2 underflows to 0 in float32 past |u| ~ 9). Actions lie in (-1, 1); rescale to the
    action bounds outside, where the constant Jacobian cancels in every SAC loss."""

    def __init__(self, mean: Tensor, log_std: Tensor):
        self.normal = DiagGaussian(mean, log_std)

    @staticmethod
    def log_det_jacobian(u: Tensor) -> Tensor:
        """sum_i log |d tanh(u_i) / d u_i| = sum_i log(1 - tanh(u_i)^2)."""
        return (2.0 * (LOG_2 - u - torch.nn.functional.softplus(-2.0 * u))).sum(-1)

    def rsample(self) -> tuple[Tensor, Tensor]:
        """A reparameterized action and its log-probability (from u, not from atanh(a): exact)."""
        normal = self.normal
        u = normal.mean + normal.log_std.exp() * torch.randn_like(normal.mean)
        return torch.tanh(u), normal.log_prob(u) - self.log_det_jacobian(u)

    def mode(self) -> Tensor:
        return torch.tanh(self.normal.mean)

    def log_prob(self, actions: Tensor, eps: float = 1e-6) -> Tensor:
        """log pi(a) of given actions in (-1, 1), through u = atanh(a) (clamped away from +-1)."""
        u = torch.atanh(actions.clamp(-1.0 + eps, 1.0 - eps))
        return self.normal.log_prob(u) - self.log_det_jacobian(u)
