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
