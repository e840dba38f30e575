"""Storage for on-policy rollouts: preallocated time-major tensors [T, N, ...]."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Rollout:
    obs: Tensor  # [T, N, *obs_shape], as the policy saw them (normalized if it normalizes)
    actions: Tensor  # [T, N, *action_shape], as sampled (before rescaling to the env's bounds)
    logprobs: Tensor  # [T, N]
    values: Tensor  # [T, N]
    rewards: Tensor  # [T, N]
    terminated: Tensor  # [T, N]
    done: Tensor  # [T, N], terminated or truncated
    valid: Tensor  # [T, N], False on NEXT_STEP autoreset transitions, which carry no experience
    next_value: Tensor  # [N], V of the observation after the last step

    @classmethod
    def allocate(cls, steps: int, num_envs: int, obs_shape: tuple, action_shape: tuple, action_dtype: torch.dtype, device) -> Rollout:
        def zeros(*shape, dtype=torch.float32):
            return torch.zeros((steps, num_envs, *shape), dtype=dtype, device=device)

        return cls(
            obs=zeros(*obs_shape),
            actions=zeros(*action_shape, dtype=action_dtype),
            logprobs=zeros(),
            values=zeros(),
            rewards=zeros(),
            terminated=zeros(),
            done=zeros(),
            valid=zeros(dtype=torch.bool),
            next_value=torch.zeros(num_envs, device=device),
        )

    @property
    def next_values(self) -> Tensor:
        """V(s_{t+1}) for every t; under NEXT_STEP autoreset the observation after an episode's
        last step is its final observation, so this is what a truncated episode bootstraps on."""
        return torch.cat([self.values[1:], self.next_value[None]])
