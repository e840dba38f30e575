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


def collect_transitions(envs, cursor: EnvCursor, act: Callable[[np.ndarray], np.ndarray], buffer, steps: int,
                        to_env: Callable[[np.ndarray], np.ndarray] | None = None) -> tuple[Episodes, EnvCursor]:
    """`steps` vector steps with the behaviour policy act(obs) -> actions, each added to the
    replay buffer (reset transitions included, flagged invalid, so the buffer never samples them).
    The buffer stores act's actions; the env takes to_env(actions) when given (Box actions are
    stored in [-1, 1] and rescaled to the env's bounds)."""
    episodes = Episodes([], [])
    for _ in range(steps):
        actions = act(cursor.obs)
        step, cursor = vector_step(envs, cursor, actions if to_env is None else to_env(actions))
        buffer.add(step.obs, actions, step.rewards, step.next_obs, step.terminated, step.truncated, step.valid)
        episodes.returns.extend(step.episodes.returns)
        episodes.lengths.extend(step.episodes.lengths)
    return episodes, cursor


@torch.inference_mode()
def collect_episodes(envs, agent: OnPolicyAgent, seed: int | None = None, max_steps: int = 100_000) -> tuple[Rollout, Episodes]:
    """One whole episode in every sub-env, all started by a reset (seeded when `seed` is given),
    with the agent's stochastic policy: a Rollout [T, N] whose `valid` marks each env's steps up to
    its episode's end (T is the longest episode). Envs whose episode ended keep stepping in lock
    step (their steps are not valid and not counted). An episode still running after max_steps
    is cut there as truncated."""
    obs, _ = envs.reset(seed=seed)
    n = envs.num_envs
    active = np.ones(n, dtype=bool)
    ep_returns, ep_lengths = np.zeros(n), np.zeros(n, dtype=np.int64)
    steps: list[tuple[Tensor, ...]] = []
    while active.any():
        obs_t = agent.observe(obs, update_stats=True)
        action, logprob, value = agent.act(obs_t)
        obs, rewards, terminated, truncated, _ = envs.step(agent.env_action(action))
        truncated = truncated | (len(steps) + 1 >= max_steps)
        done = terminated | truncated
        valid = torch.tensor(active)  # a copy: `active` changes below
        steps.append((obs_t, action, logprob, value, torch.as_tensor(rewards * active, dtype=torch.float32),
                      torch.as_tensor(terminated & active, dtype=torch.float32), torch.as_tensor(done | ~active, dtype=torch.float32), valid))
        ep_returns += np.where(active, rewards, 0.0)
        ep_lengths += active
        active &= ~done
    fields = [torch.stack(column) for column in zip(*steps)]
    device = fields[0].device
    rollout = Rollout(*[f.to(device) for f in fields], next_value=torch.zeros(n, device=device))
    return rollout, Episodes(ep_returns.tolist(), ep_lengths.tolist())
