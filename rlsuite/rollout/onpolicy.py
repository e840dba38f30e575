"""What the on-policy actor-critic methods (PPO, TRPO, the policy-gradient ladder) share besides
collection: the fields of their ActorCritic agent and envs, the training envs and the rollout."""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch

from rlsuite.core import config as configs
from rlsuite.envs.checkpointing import CheckpointableEnvs
from rlsuite.envs.vector import make_vector_env
from rlsuite.errors import check
from rlsuite.ops.policies import ActorCritic
from rlsuite.rollout.buffers import Rollout


@dataclasses.dataclass(frozen=True)
class ActorCriticConfig(configs.TorchConfig):
    """The fields rlsuite.ops.policies.ActorCritic and the training envs read."""

    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the separate policy and critic networks."""
    activation: Literal["tanh", "relu", "elu", "gelu"] = "tanh"
    """Hidden activation."""
    log_std_init: float = 0.0
    """Initial log standard deviation of the Gaussian policy (Box actions)."""
    normalize_obs: bool = False
    """Normalize observations by running statistics (kept inside the saved policy)."""
    normalize_reward: bool = False
    """Scale rewards by the running std of the discounted return (training only)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(len(self.hidden_sizes) >= 1 and min(self.hidden_sizes) >= 1, f"hidden_sizes must be positive widths, got {self.hidden_sizes}.")


def make_envs(config) -> CheckpointableEnvs:
    """config.num_envs training envs, with reward normalization by config.gamma's returns if asked."""
    return CheckpointableEnvs(make_vector_env(config.env, config.num_envs, normalize_reward=config.normalize_reward, gamma=config.gamma))


def allocate_rollout(config, agent: ActorCritic, device: torch.device) -> Rollout:
    """A rollout of config.num_steps vector steps of config.num_envs envs for the agent's spaces."""
    return Rollout.allocate(config.num_steps, config.num_envs, agent.observation_space.shape, agent.action_space.shape,
                            torch.long if agent.discrete else torch.float32, device)
