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


# --- Token-level RLHF (batch-major [B, T]: one row per completion, right-padded) ---------------
# mask[b, t] is 1 on the generated tokens of completion b and 0 on the padding after them.

def _last_token(mask: Tensor) -> Tensor:
    """[B, T] bool: True at each row's last generated token (none in an all-padding row)."""
    index = torch.arange(mask.shape[-1], device=mask.device)
    last = torch.where(mask, index, -1).amax(dim=-1, keepdim=True)
    return index == last


def masked_whiten(values: Tensor, mask: Tensor, shift_mean: bool = True, eps: float = 1e-8) -> Tensor:
    """(x - mean) / sqrt(var + eps) with the mean and the unbiased (n - 1) variance taken over the
    entries where mask is 1 only, as TRL's masked_whiten / masked_var; shift_mean=False adds the
    mean back (TRL whitens rewards that way, keeping their offset, and advantages with the shift).

    Masked-out entries are transformed too, and are meaningless: zero them with the mask (with
    torch.where if they may be non-finite). They never enter the statistics, even when not finite.
    With a single real entry the variance is taken as 0 (that entry becomes 0, or stays itself
    without the shift) instead of failing on 0 / 0.
    """
    mask = mask.bool()
    n = mask.sum().to(values.dtype)
    # where(), not values * mask: a non-finite padding value times 0 is NaN (in the gradient too,
    # hence zeroing before any arithmetic)
    real = torch.where(mask, values, 0)
    mean = real.sum() / n.clamp(min=1.0)
    var = torch.where(mask, (real - mean) ** 2, 0).sum() / (n - 1).clamp(min=1.0)
    whitened = (values - mean) * torch.rsqrt(var + eps)
    return whitened if shift_mean else whitened + mean


def rlhf_token_rewards(
    scores: Tensor,
    logp: Tensor,
    ref_logp: Tensor,
    mask: Tensor,
    kl_coef: float,
    estimator: str = "k1",
) -> tuple[Tensor, Tensor]:
    """Per-token rewards of RLHF with PPO (Ziegler et al. 2019; Ouyang et al. 2022, eq. 2; TRL's
    PPOTrainer): the KL penalty to the reference policy on every generated token, and the reward
    model's sequence score on the last one:
        r_t = -kl_coef * kl_t + [t = last generated token] * score
    with kl_t = log pi(o_t) - log pi_ref(o_t) ("k1", whose expectation under pi is KL(pi || pi_ref))
    or Schulman's k3 = (pi_ref/pi - 1) - log(pi_ref/pi) ("k3": >= 0 per token, lower variance).

    The last generated token is the last index where mask is 1: the EOS when the completion ended,
    the last sampled token when it was cut at the length limit. A row with no generated token gets
    no score (there is nowhere to put it) and all-zero rewards.
    scores [B]; logp, ref_logp, mask [B, T]. Returns (rewards [B, T], kl [B, T]), 0 on padding.
    """
    mask = mask.bool()
    # zero the padding first, so that whatever the log-probs hold there (TRL writes a placeholder)
    # gives a KL of exactly 0 under either estimator
    logp = torch.where(mask, logp, 0)
    ref_logp = torch.where(mask, ref_logp, 0)
    if estimator == "k1":
        kl = logp - ref_logp
    elif estimator == "k3":
        log_ratio = ref_logp - logp
        kl = torch.expm1(log_ratio) - log_ratio
    else:
        raise ValueError(f"estimator must be 'k1' or 'k3', got {estimator!r}")
    score = torch.where(_last_token(mask), scores.to(kl.dtype).unsqueeze(-1), 0)
    return -kl_coef * kl + score, kl


def token_gae(rewards: Tensor, values: Tensor, mask: Tensor, gamma: float, lam: float) -> tuple[Tensor, Tensor]:
    """GAE (see `gae`) over the tokens of each completion, batch-major [B, T]. Each completion is
    one episode: the value after its last generated token is 0 (the completion, and the episode,
    end there, whether at the EOS or at the length limit, as TRL's PPOTrainer does), so
        delta_t = r_t + gamma V_{t+1} - V_t,  delta_last = r_last - V_last,
        A_t     = delta_t + gamma lam A_{t+1}.
    Padding gets advantage 0 and return 0, and its rewards and values, finite or not, never reach
    a generated token. Returns (advantages, returns = A + V), both [B, T].
    """
    mask = mask.bool()
    rewards = torch.where(mask, rewards, 0)
    values = torch.where(mask, values, 0)
    # each row's last token and its padding end an episode: the recursion stops there, and
    # gae ignores the value after a terminated step, so next_values there may be anything
    end = _last_token(mask) | ~mask
    next_values = torch.cat((values[:, 1:], torch.zeros_like(values[:, :1])), dim=1)
    advantages, returns = gae(rewards.T, values.T, next_values.T, end.T, end.T, gamma, lam)
    return torch.where(mask, advantages.T, 0), torch.where(mask, returns.T, 0)
