"""Vectorized on-policy collection into a Rollout."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from rlsuite.envs.vector import finished_episodes
from rlsuite.rollout.buffers import Rollout


class OnPolicyAgent(Protocol):
    def observe(self, obs: np.ndarray, update_stats: bool) -> Tensor: ...  # env obs -> policy input
    def act(self, obs: Tensor) -> tuple[Tensor, Tensor, Tensor]: ...  # -> (action, log-prob, value)
    def value(self, obs: Tensor) -> Tensor: ...
    def env_action(self, action: Tensor) -> np.ndarray: ...


@torch.inference_mode()
def collect_rollout(envs, agent: OnPolicyAgent, rollout: Rollout, carry: dict[str, Any]) -> tuple[list[float], list[int]]:
    """Step envs T times with the agent's stochastic policy, filling `rollout`.

    `carry` holds what continues between rollouts: the last observation ("obs") and which envs
    ended on the previous step ("prev_done"). Returns the finished episodes' returns and lengths.
    """
    obs, prev_done = carry["obs"], carry["prev_done"]
    episode_returns: list[float] = []
    episode_lengths: list[int] = []
    for t in range(rollout.obs.shape[0]):
        obs_t = agent.observe(obs, update_stats=True)
        action, logprob, value = agent.act(obs_t)
        obs, reward, terminated, truncated, info = envs.step(agent.env_action(action))
        rollout.obs[t] = obs_t
        rollout.actions[t] = action
        rollout.logprobs[t] = logprob
        rollout.values[t] = value
        rollout.rewards[t] = torch.as_tensor(reward, dtype=torch.float32)
        rollout.terminated[t] = torch.as_tensor(terminated, dtype=torch.float32)
        rollout.valid[t] = torch.as_tensor(~prev_done)
        prev_done = terminated | truncated
        rollout.done[t] = torch.as_tensor(prev_done, dtype=torch.float32)
        returns, lengths = finished_episodes(info)
        episode_returns += returns
        episode_lengths += lengths
    rollout.next_value.copy_(agent.value(agent.observe(obs, update_stats=False)))
    carry["obs"], carry["prev_done"] = obs, prev_done
    return episode_returns, episode_lengths
