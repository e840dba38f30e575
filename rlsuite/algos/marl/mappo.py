"""Multi-Agent PPO (Yu et al. 2022, "The Surprising Effectiveness of PPO in Cooperative
Multi-Agent Games", arXiv:2103.01955) and independent PPO, its baseline (de Witt et al. 2020).

Both are PPO's clipped surrogate with GAE, per agent, on a team's rollout [T, N, A]:

    A_i,t  = GAE over agent i's own rewards and values (its trajectory ends when it leaves)
    L      = mean over agents on at step t of  min(r A, clip(r, 1 - eps, 1 + eps) A)
             - vf_coef * 0.5 (V_i - target_i)^2 + ent_coef * H[pi_i]

What tells them apart is a row of VARIANTS:
- mappo: one actor shared by all agents, reading its own observation and its one-hot agent id
  (centralized training, decentralized execution: an agent never sees another's observation
  when it acts); a centralized critic V_i(s) on the global state and the agent id; values
  standardized by the running statistics of their targets (the paper's value normalization).
- ippo: each agent its own actor and its own critic on its own observation, learning as if the
  others were part of the environment.
Agents that left early are masked out of every loss (the paper's "death masking" by omission).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from rlsuite.core import checkpoint, config as configs
from rlsuite.core.loop import Episodes, Loop
from rlsuite.core.run import Run
from rlsuite.core.seeding import derive_seed, setup_torch
from rlsuite.core.spec import ActsOn, AlgorithmSpec
from rlsuite.envs.checkpointing import CheckpointableEnv
from rlsuite.envs.evaluation import TeamEvaluator, team_figures
from rlsuite.envs.multiagent import MultiAgentVectorEnv, parse_env_kwargs
from rlsuite.envs.resolver import require, resolve
from rlsuite.errors import check
from rlsuite.ops import losses, returns
from rlsuite.ops.policies import TeamActorCritic
from rlsuite.rollout.multiagent import TeamCursor, TeamRollout, collect_team_rollout


class Variant(NamedTuple):
    shared: bool
    """One actor and one critic for all agents (with agent ids), or one of each per agent."""
    centralized: bool
    """The critic reads the global state, or the agent's own observation."""


VARIANTS = {"mappo": Variant(shared=True, centralized=True), "ippo": Variant(shared=False, centralized=False)}


@dataclasses.dataclass(frozen=True)
class MAPPOConfig(configs.TorchConfig):
    env: str = "mpe2/simple_spread_v3"
    """A multi-agent PettingZoo id (module path with '/'): mpe2/simple_spread_v3, mpe2/simple_tag_v3, rlsuite/grid_goals_v0."""
    env_kwargs: tuple[str, ...] = ()
    """Keyword arguments of the env's parallel_env() as key=value, values read as YAML (e.g. N=4 local_ratio=0 max_cycles=50)."""
    total_steps: int = 300_000
    """Environment steps to train for (one step of one env copy, all agents acting)."""
    eval_every: int = 25_000
    eval_episodes: int = 32
    num_envs: int = 16
    """Parallel copies of the env."""
    num_steps: int = 100
    """Steps per copy in each rollout (four simple_spread episodes)."""
    num_minibatches: int = 1
    """Minibatches per epoch; each holds whole env steps (all agents of a step together)."""
    update_epochs: int = 10
    learning_rate: float = 7e-4
    anneal_lr: bool = False
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_coef: float = 0.2
    clip_value_loss: bool = False
    """Clip the value update to old value +- clip_coef (on the normalized scale with value_norm)."""
    ent_coef: float = 0.01
    vf_coef: float = 1.0
    max_grad_norm: float = 10.0
    """Global gradient-norm clip (0 disables)."""
    value_norm: bool = True
    """Standardize value targets by their running mean and variance (MAPPO's value normalization)."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: Literal["tanh", "relu", "elu", "gelu"] = "relu"

    @property
    def batch_steps(self) -> int:
        return self.num_envs * self.num_steps

    def __post_init__(self) -> None:
        super().__post_init__()
        parse_env_kwargs(self.env_kwargs)
        for name in ("num_envs", "num_steps", "num_minibatches", "update_epochs"):
            check(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}.")
        check(self.num_minibatches <= self.batch_steps, f"num_minibatches {self.num_minibatches} exceeds the rollout's "
              f"num_envs * num_steps = {self.batch_steps} env steps.")
        check(self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}.")
        check(0 <= self.gamma <= 1 and 0 <= self.gae_lambda <= 1, "gamma and gae_lambda must be in [0, 1].")
        check(self.clip_coef > 0, f"clip_coef must be > 0, got {self.clip_coef}.")
        for name in ("ent_coef", "vf_coef", "max_grad_norm"):
            check(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}.")
        check(len(self.hidden_sizes) >= 1 and min(self.hidden_sizes) >= 1, f"hidden_sizes must be positive widths, got {self.hidden_sizes}.")


PRESETS: dict[str, dict[str, Any]] = {
    "mpe2/simple_spread_v3": {},
    "mpe2/simple_tag_v3": dict(total_steps=500_000),
    "rlsuite/grid_goals_v0": dict(total_steps=100_000, eval_every=10_000, num_steps=50, gamma=0.98),
}


def targets_and_advantages(rollout: TeamRollout, config: MAPPOConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-agent GAE (A_i,t) and value targets (A_i,t + V_i,t), [T, N, A], in reward units."""
    return returns.gae(rollout.rewards, rollout.values, rollout.next_values, rollout.terminated, rollout.done, config.gamma, config.gae_lambda)


def update(agent: TeamActorCritic, optimizer: torch.optim.Optimizer, rollout: TeamRollout, config: MAPPOConfig) -> dict[str, float]:
    """PPO epochs on one team rollout; a minibatch is a set of env steps with all their agents,
    and every mean runs over the agents that were on (valid)."""
    with torch.no_grad():
        advantages, targets = targets_and_advantages(rollout, config)
    steps_with_agents = rollout.valid.flatten(0, 1).any(-1)  # reset transitions carry no agent
    obs, states, actions, old_logp, old_values, valid = (x.flatten(0, 1)[steps_with_agents] for x in (
        rollout.obs, rollout.states, rollout.actions, rollout.logprobs, rollout.values, rollout.valid))
    advantages, targets = (x.flatten(0, 1)[steps_with_agents] for x in (advantages, targets))
    advantages = torch.where(valid, (advantages - advantages[valid].mean()) / (advantages[valid].std() + 1e-8), 0.0)
    norm = agent.value_norm
    if norm is not None:
        norm.update(targets[valid])
        targets, old_values = norm(targets), norm(old_values)
    params = list(agent.parameters())
    stats = []
    for _ in range(config.update_epochs):
        for idx in torch.randperm(obs.shape[0], device=obs.device).tensor_split(config.num_minibatches):
            mask = valid[idx]
            dist = agent.policy(obs[idx])
            values = agent.normalized_values(obs[idx], states[idx])
            policy_loss, info = losses.ppo_clip(dist.log_prob(actions[idx])[mask], old_logp[idx][mask], advantages[idx][mask], config.clip_coef)
            value_loss = losses.value_loss(values[mask], targets[idx][mask], old_values[idx][mask], config.clip_coef if config.clip_value_loss else None)
            entropy = dist.entropy()[mask].mean()
            loss = policy_loss + config.vf_coef * value_loss - config.ent_coef * entropy
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.max_grad_norm > 0:
                nn.utils.clip_grad_norm_(params, config.max_grad_norm)
            optimizer.step()
            stats.append(torch.stack([policy_loss.detach(), value_loss.detach(), entropy.detach(), info["approx_kl"], info["clip_fraction"]]))
    means = dict(zip(("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction"), torch.stack(stats).mean(0).tolist()))
    return {f"losses/{name}": value for name, value in means.items()}


def make_agent(variant: Variant, config: MAPPOConfig, envs: MultiAgentVectorEnv) -> TeamActorCritic:
    one = envs.spaces.observation_space
    if isinstance(one, spaces.Discrete):
        team = spaces.Box(one.start, one.start + one.n - 1, (envs.num_agents,), np.int64)
    else:
        team = spaces.Box(-np.inf, np.inf, (envs.num_agents, *one.shape), np.float32)
    return TeamActorCritic(team, envs.spaces.action_space, config, state_dim=envs.spaces.state_dim, agent_observation_space=one,
                           value_norm=config.value_norm, **variant._asdict())


def per_agent_metrics(episodes_agent_returns: np.ndarray, agents: tuple[str, ...]) -> dict[str, float]:
    if not len(episodes_agent_returns):
        return {}
    return {f"charts/return_{name}": float(episodes_agent_returns[:, i].mean()) for i, name in enumerate(agents)}


def train_variant(algo: str, config: MAPPOConfig, run_dir=None, **options: Any) -> Run:
    """Train `algo` (a key of VARIANTS); returns the Run. `options` are the Loop's."""
    env_kwargs = parse_env_kwargs(config.env_kwargs)
    require(resolve(config.env, **env_kwargs), algo, ACTS_ON)
    device = setup_torch(config)
    envs = CheckpointableEnv(MultiAgentVectorEnv(config.env, config.num_envs, **env_kwargs))
    agent = make_agent(VARIANTS[algo], config, envs.env).to(device)
    optimizer = torch.optim.Adam(agent.parameters(), lr=config.learning_rate, eps=1e-5)
    agents = envs.env.agents
    with Loop(
        algo, config, run_dir, budget=config.budget, schedule=config.schedule,
        parts={"agent": agent, "optimizer": optimizer, "envs": envs},
        evaluate=TeamEvaluator(config.env, config.eval_episodes, agent.predict, config.seed, env_kwargs),
        export=lambda directory: checkpoint.save_network(agent, directory),
        figures=team_figures(agents), **options,
    ) as loop:
        cursor = loop.start(lambda: TeamCursor.reset(envs.env, derive_seed(config.seed, "train-envs")))
        while loop.running():
            if config.anneal_lr:
                optimizer.param_groups[0]["lr"] = (1.0 - loop.step / config.total_steps) * config.learning_rate
            rollout, episodes, cursor = collect_team_rollout(envs.env, agent, config.num_steps, cursor)
            metrics = update(agent, optimizer, rollout, config) | per_agent_metrics(episodes.agent_returns, agents)
            loop.record(config.batch_steps, metrics, episodes=Episodes(episodes.returns, episodes.lengths), state=cursor)
        return loop.finish()


def load(config: MAPPOConfig, directory: Path) -> TeamActorCritic:
    """The trained team saved in directory; `.predict(obs [B, A, ...])` -> actions [B, A]."""
    return checkpoint.load_network(TeamActorCritic, config, directory)


ACTS_ON = ActsOn("pettingzoo", observations=("Box", "Discrete"), actions=("Discrete",))


def _spec(name: str, summary: str) -> AlgorithmSpec:
    return AlgorithmSpec(name=name, family="marl", summary=summary, config=MAPPOConfig, presets=PRESETS,
                         train=lambda config, run_dir=None, **options: train_variant(name, config, run_dir, **options),
                         load=load, acts_on=ACTS_ON)


SPECS = (
    _spec("mappo", "Multi-Agent PPO: shared actor with agent ids, centralized critic on the global state, value normalization"),
    _spec("ippo", "Independent PPO: each agent its own actor and critic on its own observation (the MARL baseline)"),
)
