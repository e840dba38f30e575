"""Agents shared by the deep algorithms: an on-policy actor-critic (PPO, TRPO, the
policy-gradient ladder) and the actors and Q-functions of off-policy continuous control (DDPG,
TD3, SAC). Box actions are learned in [-1, 1] and rescaled to the env's bounds on the way out.

Every agent has the spaces it was built for and `predict(obs, deterministic)`, which is what
`checkpoint.save_network` and `load_network` need.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor, nn

from rlsuite.ops.distributions import Categorical, DiagGaussian, TanhGaussian
from rlsuite.ops.nets import ParallelMLP, RunningNorm, mlp


def to_bounds(unit: Tensor, low: Tensor, high: Tensor) -> np.ndarray:
    """Actions in [-1, 1] (clipped there first) mapped linearly onto [low, high], as env actions."""
    return (low + 0.5 * (unit.clamp(-1.0, 1.0) + 1.0) * (high - low)).cpu().numpy()


def box_mapper(action_space: spaces.Box):
    """unit actions [N, d] in [-1, 1] (NumPy) -> env actions, as to_bounds does with tensors."""
    low, high = action_space.low.astype(np.float32), action_space.high.astype(np.float32)
    return lambda unit: low + 0.5 * (np.clip(unit, -1.0, 1.0) + 1.0) * (high - low)


class BoxRescale(nn.Module):
    """Maps actions in [-1, 1] to the env's [low, high] (kept as buffers, so a saved agent knows them)."""

    def __init__(self, action_space: spaces.Box):
        super().__init__()
        self.register_buffer("action_low", torch.as_tensor(action_space.low, dtype=torch.float32))
        self.register_buffer("action_high", torch.as_tensor(action_space.high, dtype=torch.float32))

    def forward(self, unit: Tensor) -> np.ndarray:
        return to_bounds(unit, self.action_low, self.action_high)


class ActorCritic(nn.Module):
    """Separate policy and critic MLPs (as Stable-Baselines3's default), evaluated as one batched
    network, with optional observation normalization kept inside the saved policy.

    critic "v" learns V(s); critic "q" learns Q(s, .) for every discrete action (Q Actor-Critic).
    Reads hidden_sizes, activation, log_std_init and normalize_obs from the config.
    """

    def __init__(self, obs_space: spaces.Box, action_space: spaces.Space, config, critic: Literal["v", "q"] = "v"):
        super().__init__()
        self.observation_space, self.action_space = obs_space, action_space
        obs_dim = int(np.prod(obs_space.shape))
        self.discrete = isinstance(action_space, spaces.Discrete)
        self.action_dim = int(action_space.n) if self.discrete else int(np.prod(action_space.shape))
        if critic == "q" and not self.discrete:
            raise ValueError("a Q(s, .) critic needs Discrete actions")
        self.critic = critic
        # Member 0 is the policy (small last-layer init keeps the first policy near uniform),
        # member 1 the critic; both read the observation. They share one output width, so a V
        # critic reads its first output.
        self.nets = ParallelMLP(2, obs_dim, config.hidden_sizes, self.action_dim, config.activation, out_gains=(0.01, 1.0))
        self.obs_norm = RunningNorm(obs_space.shape) if config.normalize_obs else None
        if not self.discrete:
            self.log_std = nn.Parameter(torch.full((self.action_dim,), float(config.log_std_init)))
            # Registered on the agent itself (not a submodule) so saved policies keep their keys.
            self.register_buffer("action_low", torch.as_tensor(action_space.low, dtype=torch.float32))
            self.register_buffer("action_high", torch.as_tensor(action_space.high, dtype=torch.float32))

    def observe(self, obs: np.ndarray, update_stats: bool = False) -> Tensor:
        x = torch.as_tensor(obs, dtype=torch.float32, device=self.nets.biases[0].device)
        if self.obs_norm is None:
            return x
        if update_stats:
            self.obs_norm.update(x)
        return self.obs_norm(x)

    def forward(self, obs: Tensor) -> tuple[Categorical | DiagGaussian, Tensor]:
        """pi(.|s) and the critic: V(s) [B], or Q(s, .) [B, A]."""
        policy_out, critic_out = self.nets(obs)
        dist = Categorical(policy_out) if self.discrete else DiagGaussian(policy_out, self.log_std)
        return dist, critic_out[..., 0] if self.critic == "v" else critic_out

    def value(self, obs: Tensor) -> Tensor:
        """V(s); for a Q critic, sum_a pi(a|s) Q(s, a)."""
        dist, critic_out = self(obs)
        return critic_out if self.critic == "v" else (dist.logits.exp() * critic_out).sum(-1)

    def act(self, obs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """A sampled action, its log-probability, and V(s) (for a Q critic, Q(s, a))."""
        dist, critic_out = self(obs)
        action = dist.sample()
        value = critic_out if self.critic == "v" else critic_out.gather(-1, action[..., None]).squeeze(-1)
        return action, dist.log_prob(action), value

    def env_action(self, action: Tensor) -> np.ndarray:
        return action.cpu().numpy() if self.discrete else to_bounds(action, self.action_low, self.action_high)

    @torch.inference_mode()
    def predict(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        dist, _ = self(self.observe(obs))
        return self.env_action(dist.mode() if deterministic else dist.sample())


# --- off-policy continuous control (DDPG, TD3, SAC) ----------------------------------------------
# Plain MLPs with PyTorch's default init and ReLU, as Stable-Baselines3's off-policy policies, so
# rl-baselines3-zoo's hyperparameters mean the same here. Actions live in [-1, 1].

def box_dims(obs_space: spaces.Box, action_space: spaces.Box) -> tuple[int, int]:
    return int(np.prod(obs_space.shape)), int(np.prod(action_space.shape))


class DeterministicActor(nn.Module):
    """mu(s) = tanh(MLP(s)) in [-1, 1]^d (DDPG, TD3)."""

    def __init__(self, obs_space: spaces.Box, action_space: spaces.Box, config):
        super().__init__()
        self.observation_space, self.action_space = obs_space, action_space
        obs_dim, action_dim = box_dims(obs_space, action_space)
        self.net = mlp(obs_dim, config.hidden_sizes, action_dim, config.activation, out_gain=None)
        self.rescale = BoxRescale(action_space)

    def forward(self, obs: Tensor) -> Tensor:
        return torch.tanh(self.net(obs))

    @torch.inference_mode()
    def unit_actions(self, obs: np.ndarray) -> Tensor:
        return self(torch.as_tensor(obs, dtype=torch.float32, device=self.rescale.action_low.device))

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        return self.rescale(self.unit_actions(obs))


class SquashedGaussianActor(nn.Module):
    """pi(.|s) = tanh(N(mean(s), std(s)^2)) (SAC): one MLP torso with a mean and a log-std head
    (one last layer of 2d outputs), log std clamped to [-20, 2] as in SB3 and the SAC code."""

    LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0

    def __init__(self, obs_space: spaces.Box, action_space: spaces.Box, config):
        super().__init__()
        self.observation_space, self.action_space = obs_space, action_space
        obs_dim, self.action_dim = box_dims(obs_space, action_space)
        self.net = mlp(obs_dim, config.hidden_sizes, 2 * self.action_dim, config.activation, out_gain=None)
        self.rescale = BoxRescale(action_space)

    def forward(self, obs: Tensor) -> TanhGaussian:
        mean, log_std = self.net(obs).split(self.action_dim, dim=-1)
        return TanhGaussian(mean, log_std.clamp(self.LOG_STD_MIN, self.LOG_STD_MAX))

    @torch.inference_mode()
    def unit_actions(self, obs: np.ndarray, deterministic: bool) -> Tensor:
        dist = self(torch.as_tensor(obs, dtype=torch.float32, device=self.rescale.action_low.device))
        return dist.mode() if deterministic else dist.rsample()[0]

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        return self.rescale(self.unit_actions(obs, deterministic))


class QFunctions(nn.Module):
    """`members` independent critics Q_k(s, a) on [s, a], evaluated as one batched MLP: [K, B]."""

    def __init__(self, obs_space: spaces.Box, action_space: spaces.Box, config, members: int):
        super().__init__()
        obs_dim, action_dim = box_dims(obs_space, action_space)
        self.nets = ParallelMLP(members, obs_dim + action_dim, config.hidden_sizes, 1, config.activation, torch_init=True)

    def forward(self, obs: Tensor, actions: Tensor) -> Tensor:
        return self.nets(torch.cat([obs, actions], dim=-1))[..., 0]

    def first(self, obs: Tensor, actions: Tensor) -> Tensor:
        """Q_1(s, a) [B] alone (the critic DDPG's and TD3's actor ascends)."""
        return self.nets.member(0, torch.cat([obs, actions], dim=-1))[..., 0]
