"""What the on-policy actor-critic methods (PPO, TRPO, the policy-gradient ladder) share besides
the math: the fields of their ActorCritic agent and envs, the training envs, the rollout, and
collection in this process (LocalRollouts; rlsuite.scale.ray has the Ray workers)."""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch

from rlsuite.core import config as configs
from rlsuite.core.loop import Episodes
from rlsuite.envs.checkpointing import CheckpointableEnvs
from rlsuite.envs.vector import make_vector_env
from rlsuite.errors import check
from rlsuite.ops.policies import ActorCritic
from rlsuite.rollout.buffers import Rollout
from rlsuite.rollout.collect import collect_rollout
from rlsuite.rollout.step import EnvCursor


@dataclasses.dataclass(frozen=True)
class ActorCriticConfig(configs.WorkersConfig, configs.TorchConfig):
    """The fields rlsuite.ops.policies.ActorCritic and the training envs read, and where the
    rollouts are collected (this process, or Ray workers: rlsuite.scale.ray)."""

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
        configs.check_workers(self)


def make_envs(config, num_envs: int | None = None) -> CheckpointableEnvs:
    """config.num_envs training envs (or num_envs: a Ray worker's share), with reward
    normalization by config.gamma's returns if asked."""
    return CheckpointableEnvs(make_vector_env(config.env, num_envs or config.num_envs, normalize_reward=config.normalize_reward, gamma=config.gamma))


def allocate_rollout(config, agent: ActorCritic, device: torch.device, num_envs: int | None = None) -> Rollout:
    """A rollout of config.num_steps vector steps of config.num_envs (or num_envs) envs for the agent's spaces."""
    return Rollout.allocate(config.num_steps, num_envs or config.num_envs, agent.observation_space.shape, agent.action_space.shape,
                            torch.long if agent.discrete else torch.float32, device)


class LocalRollouts:
    """Collection in this process (backend 'local'): the training envs, stepped by collect_rollout.
    rlsuite.scale.ray.RayRollouts has the same methods over Ray workers, so an algorithm is
    written once for both; `checkpoint_part` is what goes into the Loop's parts as "envs"."""

    def __init__(self, config):
        self.envs = make_envs(config)
        self.checkpoint_part = self.envs

    def reset(self, seed: int) -> EnvCursor:
        return EnvCursor.reset(self.envs, seed)

    def collect(self, agent, rollout: Rollout, cursor: EnvCursor) -> tuple[Episodes, EnvCursor]:
        return collect_rollout(self.envs, agent, rollout, cursor)
