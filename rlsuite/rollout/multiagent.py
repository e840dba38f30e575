"""On-policy rollouts of a team: the single-agent Rollout with an agent axis, [T, N, A].

Conventions are those of rlsuite.rollout.step and rlsuite.ops.returns, per agent:
- `valid[t, n, i]`: agent i was on in copy n when step t began (so it acted). False for agents
  that left early and for the reset transition after an episode ends (no agent is on then).
- `terminated` / `done`: agent i's own trajectory ended at step t (in a terminal state / for any
  reason). Invalid rows count as done, so GAE's recursion never passes through them.
- `values[t + 1]` is V_i of the observation after step t, also after a truncation (the reset
  transition's row holds the final observation), so truncated agents bootstrap as in one-agent envs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from rlsuite.envs.multiagent import MultiAgentVectorEnv


@dataclass(frozen=True)
class TeamCursor:
    """Where the training envs stand between steps: what a checkpoint holds besides the envs."""

    obs: np.ndarray
    """[N, A, ...] each agent's current observation (empty_observations for agents not on)."""
    state: np.ndarray
    """[N, S] the global state."""
    alive: np.ndarray
    """[N, A] the agents that act at the next step."""

    @classmethod
    def reset(cls, envs: MultiAgentVectorEnv, seed: int) -> TeamCursor:
        return cls(*envs.reset(seed=seed))


@dataclass
class TeamRollout:
    obs: Tensor  # [T, N, A, obs_dim] network inputs (one-hot for Discrete observations)
    states: Tensor  # [T, N, S]
    actions: Tensor  # [T, N, A]
    logprobs: Tensor  # [T, N, A]
    values: Tensor  # [T, N, A] in reward units
    rewards: Tensor  # [T, N, A]
    terminated: Tensor  # [T, N, A]
    done: Tensor  # [T, N, A]
    valid: Tensor  # [T, N, A]
    next_value: Tensor  # [N, A]

    @property
    def next_values(self) -> Tensor:
        return torch.cat([self.values[1:], self.next_value[None]])


@dataclass(frozen=True)
class TeamEpisodes:
    """Episodes that ended during a rollout: team returns (summed over agents), lengths, and
    each agent's return [episodes, A]."""

    returns: list[float]
    lengths: list[int]
    agent_returns: np.ndarray


@torch.inference_mode()
def collect_team_rollout(envs: MultiAgentVectorEnv, agent, steps: int, cursor: TeamCursor) -> tuple[TeamRollout, TeamEpisodes, TeamCursor]:
    """`steps` vector steps with every agent sampling from its policy (agent: a TeamActorCritic)."""
    columns: dict[str, list[Tensor]] = {k: [] for k in ("obs", "states", "actions", "logprobs", "values", "rewards", "terminated", "done", "valid")}
    returns, lengths, agent_returns = [], [], []
    device = agent.agent_ids.device
    for _ in range(steps):
        features = agent.features(cursor.obs)
        state = torch.as_tensor(cursor.state, device=device)
        actions, logprobs, values = agent.act(features, state)
        step = envs.step(actions.cpu().numpy())
        valid = torch.as_tensor(cursor.alive, device=device)
        columns["obs"].append(features)
        columns["states"].append(state)
        columns["actions"].append(actions)
        columns["logprobs"].append(logprobs)
        columns["values"].append(values)
        columns["rewards"].append(torch.as_tensor(step.rewards, device=device))
        columns["terminated"].append(torch.as_tensor(step.terminated, device=device, dtype=torch.float32))
        columns["done"].append(torch.as_tensor(step.terminated | step.truncated, device=device, dtype=torch.float32).maximum((~valid).float()))
        columns["valid"].append(valid)
        returns += step.team_returns
        lengths += step.lengths
        agent_returns += step.agent_returns
        cursor = TeamCursor(step.obs, step.state, step.alive)
    next_value = agent.value(agent.features(cursor.obs), torch.as_tensor(cursor.state, device=device))
    rollout = TeamRollout(**{k: torch.stack(v) for k, v in columns.items()}, next_value=next_value)
    episodes = TeamEpisodes(returns, lengths, np.array(agent_returns).reshape(-1, envs.num_agents))
    return rollout, episodes, cursor
