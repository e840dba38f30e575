"""Returns and advantages as pure functions over time-major tensors [T, ...].

Conventions (the same everywhere in rlsuite):
- `terminated[t]`: the episode ended at step t in a terminal state, whose value is 0.
- `done[t]`: the episode ended at step t for any reason (terminated or truncated by a time limit).
- `next_values[t]`: V(s_{t+1}), the value of the observation that followed step t, even when the
  episode ended there (for a truncated episode it is the value of the final observation, which
  must be bootstrapped; for a terminated one it is ignored).
"""

from __future__ import annotations

import torch
from torch import Tensor


def _check_same_shape(**tensors: Tensor) -> None:
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"expected equal shapes [T, ...], got {shapes}")


def discounted_return(rewards: Tensor, gamma: float) -> Tensor:
    """G_0 = sum_t gamma^t r_t over the leading (time) axis of one episode."""
    discounts = gamma ** torch.arange(rewards.shape[0], dtype=rewards.dtype, device=rewards.device)
    return torch.tensordot(discounts, rewards, dims=([0], [0]))


def reward_to_go(rewards: Tensor, done: Tensor, gamma: float, bootstrap: Tensor | None = None) -> Tensor:
    """G_t = r_t + gamma * (1 - done_t) * G_{t+1}, with G_T = bootstrap (0 by default).

    The Monte Carlo target of REINFORCE: each step's return up to the end of its own episode.
    """
    _check_same_shape(rewards=rewards, done=done)
    not_done = 1.0 - done.to(rewards.dtype)
    returns = torch.empty_like(rewards)
    running = torch.zeros_like(rewards[0]) if bootstrap is None else bootstrap.to(rewards.dtype)
    for t in reversed(range(rewards.shape[0])):
        running = rewards[t] + gamma * not_done[t] * running
        returns[t] = running
    return returns


def gae(
    rewards: Tensor,
    values: Tensor,
    next_values: Tensor,
    terminated: Tensor,
    done: Tensor,
    gamma: float,
    lam: float,
) -> tuple[Tensor, Tensor]:
    """Generalized Advantage Estimation (Schulman et al. 2016, eq. 16), returning (A, A + V).

        delta_t = r_t + gamma * (1 - terminated_t) * V(s_{t+1}) - V(s_t)
        A_t     = delta_t + gamma * lam * (1 - done_t) * A_{t+1}

    Truncation bootstraps through V(s_{t+1}) but still cuts the recursion: the next step belongs
    to a new episode.
    """
    _check_same_shape(rewards=rewards, values=values, next_values=next_values, terminated=terminated, done=done)
    dtype = values.dtype
    # where(), not multiplication by (1 - terminated): a terminal step's next value is never read,
    # even when it is not finite.
    bootstrap = torch.where(terminated.bool(), torch.zeros_like(next_values), next_values)
    deltas = rewards + gamma * bootstrap - values
    carry_on = gamma * lam * (1.0 - done.to(dtype))
    advantages = torch.empty_like(values)
    running = torch.zeros_like(values[0])
    for t in reversed(range(values.shape[0])):
        running = deltas[t] + carry_on[t] * running
        advantages[t] = running
    return advantages, advantages + values


def normalize(x: Tensor, eps: float = 1e-8) -> Tensor:
    """(x - mean) / (std + eps); the unbiased std, as PPO implementations use."""
    if x.numel() < 2:
        return x - x.mean()
    return (x - x.mean()) / (x.std() + eps)


def group_advantages(rewards: Tensor, group_size: int, scale: str = "group", eps: float = 1e-4) -> tuple[Tensor, Tensor]:
    """GRPO's advantages (Shao et al. 2024, eq. 3 with outcome rewards): each completion's reward
    minus the mean of its group (the G completions of one prompt, consecutive in `rewards`),
    divided by a standard deviation chosen by `scale`:
      "group": the group's std (the GRPO paper; TRL's default),
      "batch": the std over the whole batch (more robust when group stds are tiny),
      "none":  no division (Dr. GRPO, Liu et al. 2025: the division biases toward easy/hard prompts).
    The std is the sample (n - 1) std, as TRL computes it; `eps` keeps a tied group's advantages at 0.
    Returns (advantages [N*G], the std of each group [N]).
    """
    if rewards.ndim != 1 or rewards.numel() % group_size:
        raise ValueError(f"rewards must be 1-D with a multiple of group_size={group_size} entries, got shape {tuple(rewards.shape)}")
    grouped = rewards.view(-1, group_size)
    group_std = grouped.std(dim=1)
    advantages = (grouped - grouped.mean(dim=1, keepdim=True)).view(-1)
    if scale == "group":
        advantages = advantages / (group_std.repeat_interleave(group_size) + eps)
    elif scale == "batch":
        advantages = advantages / (rewards.std() + eps)
    elif scale != "none":
        raise ValueError(f"scale must be 'group', 'batch' or 'none', got {scale!r}")
    return advantages, group_std
