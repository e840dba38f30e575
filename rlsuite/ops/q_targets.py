"""Value-based targets as pure functions over batches [B, ...]: DQN, Double DQN, dueling, C51.

Conventions (the same everywhere in rlsuite):
- `rewards[b]`: the (possibly n-step) discounted reward sum of transition b.
- `discounts[b]`: gamma^m (1 - terminated), the factor in front of the bootstrapped value, already
  0 for a window that ended in a terminal state (see rlsuite.rollout.replay).
- Targets are meant to be computed under torch.no_grad(): nothing here detaches.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _check_bootstrap(rewards: Tensor, discounts: Tensor, **values: Tensor) -> None:
    """rewards and discounts [B]; every tensor in values [B, X] with the same X."""
    if rewards.ndim != 1 or discounts.shape != rewards.shape:
        raise ValueError(f"expected rewards and discounts of shape [B], got {list(rewards.shape)} and {list(discounts.shape)}")
    shapes = {name: list(v.shape) for name, v in values.items()}
    first = next(iter(values.values()))
    if first.ndim != 2 or first.shape[0] != rewards.shape[0] or any(v.shape != first.shape for v in values.values()):
        raise ValueError(f"expected {', '.join(shapes)} of shape [B={rewards.shape[0]}, X], got {shapes}")


def q_learning_target(rewards: Tensor, discounts: Tensor, next_q_target: Tensor) -> Tensor:
    """The DQN target (Mnih et al. 2015): y = r + discount * max_a Q_target(s', a).

    rewards, discounts [B]; next_q_target [B, A] -> [B].
    """
    _check_bootstrap(rewards, discounts, next_q_target=next_q_target)
    return rewards + discounts * next_q_target.max(dim=1).values


def double_q_learning_target(rewards: Tensor, discounts: Tensor, next_q_online: Tensor, next_q_target: Tensor) -> Tensor:
    """The Double DQN target (van Hasselt et al. 2016, eq. 4):
    y = r + discount * Q_target(s', argmax_a Q_online(s', a)).

    The online network picks the action and the target network values it, so the noise that
    makes max_a Q overestimate is not the same noise that selects a. Shapes as q_learning_target.
    """
    _check_bootstrap(rewards, discounts, next_q_online=next_q_online, next_q_target=next_q_target)
    best = next_q_online.argmax(dim=1, keepdim=True)
    return rewards + discounts * next_q_target.gather(1, best).squeeze(1)


def dueling_q(value: Tensor, advantages: Tensor) -> Tensor:
    """The dueling aggregation (Wang et al. 2016, eq. 9): Q(s, a) = V(s) + A(s, a) - mean_a' A(s, a').

    Subtracting the mean makes V and A identifiable (any constant moved between them would
    otherwise give the same Q). value [B, 1] or [B]; advantages [B, A] -> [B, A].
    """
    if advantages.ndim != 2 or value.shape not in ((advantages.shape[0],), (advantages.shape[0], 1)):
        raise ValueError(f"expected value [B] or [B, 1] and advantages [B, A], got {list(value.shape)} and {list(advantages.shape)}")
    return value.reshape(-1, 1) + advantages - advantages.mean(dim=1, keepdim=True)


def categorical_support(v_min: float, v_max: float, atoms: int) -> Tensor:
    """The C51 atoms z_j = v_min + j dz, j = 0..K-1, with dz = (v_max - v_min) / (K - 1)."""
    if atoms < 2 or not v_min < v_max:
        raise ValueError(f"expected atoms >= 2 and v_min < v_max, got atoms={atoms}, v_min={v_min}, v_max={v_max}")
    return torch.linspace(v_min, v_max, atoms)


def categorical_projection(next_probs: Tensor, rewards: Tensor, discounts: Tensor, support: Tensor) -> Tensor:
    """The C51 target distribution Phi T z (Bellemare et al. 2017, Algorithm 1).

        Tz_j = clamp(r + discount * z_j, v_min, v_max)
        b_j  = (Tz_j - v_min) / dz,   l = floor(b_j),   u = ceil(b_j)
        m_l += p_j (u - b_j),   m_u += p_j (b_j - l)

    where p = next_probs is the distribution at (s', a*). When b_j is integral, l == u and both
    weights are 0, so Algorithm 1 as written would lose p_j; here it all goes to l.
    next_probs [B, K]; rewards, discounts [B]; support [K], evenly spaced -> [B, K].
    """
    _check_bootstrap(rewards, discounts, next_probs=next_probs)
    atoms = next_probs.shape[1]
    if support.shape != (atoms,) or atoms < 2:
        raise ValueError(f"expected support of shape [K={atoms}] with K >= 2, got {list(support.shape)}")
    v_min = support[0]
    dz = (support[-1] - v_min) / (atoms - 1)
    tz = rewards[:, None] + discounts[:, None] * support[None, :]
    # Clamping b to [0, K - 1] is clamping Tz to [v_min, v_max]; done on b because rounding can
    # put (v_max - v_min) / dz a hair above K - 1, whose ceiling would index past the last atom.
    b = ((tz - v_min) / dz).clamp(0, atoms - 1)
    lower, upper = b.floor(), b.ceil()
    lower_weight = (upper - b) + (lower == upper).to(b.dtype)
    projected = torch.zeros_like(next_probs)
    projected.scatter_add_(1, lower.long(), next_probs * lower_weight)
    projected.scatter_add_(1, upper.long(), next_probs * (b - lower))
    return projected


def categorical_q_values(probs: Tensor, support: Tensor) -> Tensor:
    """Q(s, a) = sum_j z_j p_j(s, a): the mean of each action's return distribution.

    probs [B, A, K]; support [K] -> [B, A].
    """
    if probs.ndim != 3 or support.shape != probs.shape[-1:]:
        raise ValueError(f"expected probs [B, A, K] and support [K], got {list(probs.shape)} and {list(support.shape)}")
    return probs @ support
