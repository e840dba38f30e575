"""Agents shared by the deep algorithms: an on-policy actor-critic (PPO, TRPO, the
policy-gradient ladder) and the actors and Q-functions of off-policy continuous control (DDPG,
TD3, SAC). Box actions are learned in [-1, 1] and rescaled to the env's bounds on the way out.

Every agent has the spaces it was built for and `predict(obs, deterministic)`, which is what
`checkpoint.save_network` and `load_network` need.
"""

from __future__ import annotations

import math
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


# --- multi-agent (MAPPO, IPPO) --------------------------------------------------------------------

class TeamActorCritic(nn.Module):
    """The actors and critics of a team of A agents with one Discrete action space.

    shared: one actor (and one critic) for all agents, reading the agent's one-hot id beside its
    input (MAPPO's parameter sharing); otherwise one network per agent, on its own input only.
    centralized: the critic reads the global state (V_i(s), one value per agent); otherwise the
    agent's own observation. The actor always reads only its agent's observation, so execution is
    decentralized. With value_norm the critic predicts values standardized by the running mean
    and variance of the value targets (the MAPPO paper's value normalization); `value` returns
    them in reward units.

    observation_space is the team's: [A, *one agent's observation shape] (Discrete observations
    as integers, one-hot encoded here); predict(obs [B, A, ...]) -> actions [B, A].
    """

    def __init__(self, observation_space: spaces.Box, action_space: spaces.Discrete, config, *, state_dim: int,
                 agent_observation_space: spaces.Space, shared: bool, centralized: bool, value_norm: bool):
        super().__init__()
        self.observation_space, self.action_space = observation_space, action_space
        self.agent_observation_space = agent_observation_space
        self.num_agents = observation_space.shape[0]
        self.shared, self.centralized = shared, centralized
        self.rebuild_kwargs = dict(state_dim=state_dim, agent_observation_space=agent_observation_space,
                                   shared=shared, centralized=centralized, value_norm=value_norm)
        self.discrete_obs = isinstance(agent_observation_space, spaces.Discrete)
        obs_dim = int(agent_observation_space.n) if self.discrete_obs else int(np.prod(agent_observation_space.shape))
        members, id_dim = (1, self.num_agents) if shared else (self.num_agents, 0)
        self.actor = ParallelMLP(members, obs_dim + id_dim, config.hidden_sizes, int(action_space.n), config.activation,
                                 out_gains=(0.01,) * members)
        self.critic = ParallelMLP(members, (state_dim if centralized else obs_dim) + id_dim, config.hidden_sizes, 1, config.activation)
        self.value_norm = RunningNorm((), clip=math.inf) if value_norm else None
        self.register_buffer("agent_ids", torch.eye(self.num_agents))

    def features(self, obs: np.ndarray | Tensor) -> Tensor:
        """Observations [..., A, *obs_shape] as the networks' float inputs [..., A, obs_dim]."""
        device = self.agent_ids.device
        if self.discrete_obs:
            index = torch.as_tensor(obs, device=device).long() - int(self.agent_observation_space.start)
            return nn.functional.one_hot(index, int(self.agent_observation_space.n)).float()
        return torch.as_tensor(obs, dtype=torch.float32, device=device)

    def _run(self, net: ParallelMLP, x: Tensor) -> Tensor:
        """net on per-agent inputs x [B, A, in] -> [B, A, out]."""
        if self.shared:
            ids = self.agent_ids.expand(*x.shape[:-1], self.num_agents)
            return net(torch.cat([x, ids], -1))[0]
        return net.each(x.transpose(0, 1)).transpose(0, 1)

    def policy(self, features: Tensor) -> Categorical:
        """pi_i(. | o_i) for every agent: logits [B, A, n_actions]."""
        return Categorical(self._run(self.actor, features))

    def critic_input(self, features: Tensor, state: Tensor) -> Tensor:
        if not self.centralized:
            return features
        return state.unsqueeze(-2).expand(*state.shape[:-1], self.num_agents, state.shape[-1])

    def normalized_values(self, features: Tensor, state: Tensor) -> Tensor:
        """The critic's output [B, A] (standardized when value_norm is on)."""
        return self._run(self.critic, self.critic_input(features, state))[..., 0]

    def value(self, features: Tensor, state: Tensor) -> Tensor:
        """V_i in reward units [B, A]."""
        values = self.normalized_values(features, state)
        return values if self.value_norm is None else self.value_norm.denormalize(values)

    def act(self, features: Tensor, state: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Sampled actions, their log-probabilities and the values, each [B, A]."""
        dist = self.policy(features)
        actions = dist.sample()
        return actions, dist.log_prob(actions), self.value(features, state)

    @torch.inference_mode()
    def predict(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        dist = self.policy(self.features(obs))
        return (dist.mode() if deterministic else dist.sample()).cpu().numpy()
