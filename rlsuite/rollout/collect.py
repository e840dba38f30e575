"""Vectorized collection: on-policy rollouts and transitions for a replay buffer, both built on
`vector_step`. Each returns what changed (the episodes that ended, the new EnvCursor)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from rlsuite.core.loop import Episodes
from rlsuite.rollout.buffers import Rollout
from rlsuite.rollout.step import EnvCursor, vector_step


class OnPolicyAgent(Protocol):
    def observe(self, obs: np.ndarray, update_stats: bool) -> Tensor: ...  # env obs -> policy input
    def act(self, obs: Tensor) -> tuple[Tensor, Tensor, Tensor]: ...  # -> (action, log-prob, value)
    def value(self, obs: Tensor) -> Tensor: ...
    def env_action(self, action: Tensor) -> np.ndarray: ...


@torch.inference_mode()
def collect_rollout(envs, agent: OnPolicyAgent, rollout: Rollout, cursor: EnvCursor) -> tuple[Episodes, EnvCursor]:
    """Step envs T times with the agent's stochastic policy, filling `rollout` in place."""
    episodes = Episodes([], [])
    for t in range(rollout.obs.shape[0]):
        obs_t = agent.observe(cursor.obs, update_stats=True)
        action, logprob, value = agent.act(obs_t)
        step, cursor = vector_step(envs, cursor, agent.env_action(action))
        rollout.obs[t] = obs_t
        rollout.actions[t] = action
        rollout.logprobs[t] = logprob
        rollout.values[t] = value
        rollout.rewards[t] = torch.as_tensor(step.rewards, dtype=torch.float32)
        rollout.terminated[t] = torch.as_tensor(step.terminated, dtype=torch.float32)
        rollout.done[t] = torch.as_tensor(step.done, dtype=torch.float32)
        rollout.valid[t] = torch.as_tensor(step.valid)
        episodes.returns.extend(step.episodes.returns)
        episodes.lengths.extend(step.episodes.lengths)
    rollout.next_value.copy_(agent.value(agent.observe(cursor.obs, update_stats=False)))
    return episodes, cursor


def collect_transitions(envs, cursor: EnvCursor, act: Callable[[np.ndarray], np.ndarray], buffer, steps: int) -> tuple[Episodes, EnvCursor]:
    """`steps` vector steps with the behaviour policy act(obs) -> env actions, each added to the
    replay buffer (reset transitions included, flagged invalid, so the buffer never samples them)."""
    episodes = Episodes([], [])
    for _ in range(steps):
        step, cursor = vector_step(envs, cursor, act(cursor.obs))
        buffer.add(step.obs, step.actions, step.rewards, step.next_obs, step.terminated, step.truncated, step.valid)
        episodes.returns.extend(step.episodes.returns)
        episodes.lengths.extend(step.episodes.lengths)
    return episodes, cursor
