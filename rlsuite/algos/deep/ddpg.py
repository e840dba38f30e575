"""DDPG (Lillicrap et al. 2015, arXiv:1509.02971) and TD3 (Fujimoto et al. 2018, arXiv:1802.09477).

DDPG learns a deterministic actor mu(s) and a critic Q(s, a) from replay:

    critic:  minimize (Q(s, a) - y)^2,   y = r + gamma (1 - terminated) Q'(s', mu'(s'))
    actor:   maximize Q(s, mu(s))        (the deterministic policy gradient, Silver et al. 2014)
    targets: theta' <- tau theta + (1 - tau) theta' after each actor update

TD3 is DDPG with three changes, each a field here (TD3's values are its defaults):

    critics = 2:               clipped double Q, y = r + gamma (1 - terminated) min_k Q'_k(s', a')
    target_policy_noise = 0.2: target policy smoothing, a' = clip(mu'(s') + clip(eps, -c, c), -1, 1),
                               eps ~ N(0, 0.2^2), c = target_noise_clip
    policy_delay = 2:          the actor and the targets move once per two critic updates

Exploration adds N(0, action_noise^2) to mu(s) and clips to [-1, 1]; actions are learned in
[-1, 1] and rescaled to the env's bounds. The schedule and the defaults are Stable-Baselines3's
(its DDPG is TD3 with one critic, no smoothing and no delay, as here), so rl-baselines3-zoo's
hyperparameters mean the same.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlsuite.core import checkpoint
from rlsuite.core.run import Run
from rlsuite.core.seeding import setup_torch
from rlsuite.core.spec import ActsOn, AlgorithmSpec
from rlsuite.envs.resolver import require, resolve
from rlsuite.errors import check
from rlsuite.ops.nets import frozen, polyak_update
from rlsuite.ops.policies import DeterministicActor, QFunctions, box_mapper
from rlsuite.rollout import offpolicy
from rlsuite.rollout.replay import ReplayBatch, ReplayBuffer


@dataclasses.dataclass(frozen=True)
class DDPGConfig(offpolicy.ReplayConfig):
    learning_rate: float = 1e-3
    """Adam step size of the actor and the critics."""
    batch_size: int = 256
    """Transitions per gradient step."""
    train_freq: int = 1
    """Vector steps collected between gradient phases."""
    tau: float = 0.005
    """Polyak rate of the target networks."""
    hidden_sizes: tuple[int, ...] = (400, 300)
    """Hidden layer widths of the actor and of each critic."""
    action_noise: float = 0.1
    """Std of the Gaussian exploration noise added to mu(s) in [-1, 1] (0: none)."""
    critics: int = 1
    """Critics Q_1..Q_K; the target takes their minimum (TD3: 2)."""
    policy_delay: int = 1
    """Critic updates per actor-and-target update (TD3: 2)."""
    target_policy_noise: float = 0.0
    """Std of the noise on the target action, target policy smoothing (TD3: 0.2; 0: none)."""
    target_noise_clip: float = 0.0
    """The smoothing noise is clipped to +- this (TD3: 0.5)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.critics >= 1 and self.policy_delay >= 1, f"critics and policy_delay must be >= 1, got {self.critics} and {self.policy_delay}.")
        for name in ("action_noise", "target_policy_noise", "target_noise_clip"):
            check(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}.")


@dataclasses.dataclass(frozen=True)
class TD3Config(DDPGConfig):
    critics: int = 2
    """Critics Q_1..Q_K; the target takes their minimum (clipped double Q)."""
    policy_delay: int = 2
    """Critic updates per actor-and-target update (delayed policy updates)."""
    target_policy_noise: float = 0.2
    """Std of the noise on the target action (target policy smoothing)."""
    target_noise_clip: float = 0.5
    """The smoothing noise is clipped to +- this."""


# rl-baselines3-zoo's (identical for DDPG and TD3). On Pendulum the zoo trains 20k steps with the
# first 10k random; the learning targets are stated at 30k.
PRESETS: dict[str, dict[str, Any]] = {
    "Pendulum-v1": dict(gamma=0.98, buffer_size=200_000, learning_starts=10_000, action_noise=0.1, total_steps=30_000, eval_every=2_000),
    "HalfCheetah-v5": dict(learning_starts=10_000, action_noise=0.1, total_steps=1_000_000, eval_every=10_000),
    "Hopper-v5": dict(learning_starts=10_000, action_noise=0.1, total_steps=1_000_000, eval_every=10_000),
}


def td_target(actor_target: DeterministicActor, critic_target: QFunctions, batch: ReplayBatch, config: DDPGConfig) -> torch.Tensor:
    """y = R + discount * min_k Q'_k(s', a'), a' = mu'(s') smoothed by clipped noise when asked."""
    next_actions = actor_target(batch.next_obs)
    if config.target_policy_noise > 0:
        noise = (torch.randn_like(next_actions) * config.target_policy_noise).clamp(-config.target_noise_clip, config.target_noise_clip)
        next_actions = (next_actions + noise).clamp(-1.0, 1.0)
    return batch.returns + batch.discounts * critic_target(batch.next_obs, next_actions).min(dim=0).values


def update(nets: dict[str, Any], batch: ReplayBatch, config: DDPGConfig, gradient_steps_before: int) -> dict[str, float]:
    """One gradient phase: for each consecutive batch_size rows, a critic step, and every
    policy_delay-th step (counted over the whole run, as SB3 does) an actor step and the Polyak
    move of both targets."""
    actor, critic, actor_target, critic_target = nets["actor"], nets["critic"], nets["actor_target"], nets["critic_target"]
    critic_losses, actor_losses = [], []
    for k in range(batch.obs.shape[0] // config.batch_size):
        minibatch = offpolicy.minibatch(batch, k, config.batch_size)
        with torch.no_grad():
            y = td_target(actor_target, critic_target, minibatch, config)
        # Sum over critics of each one's mean squared error, as TD3's and SB3's code.
        critic_loss = (critic(minibatch.obs, minibatch.actions) - y).pow(2).mean(dim=1).sum()
        nets["critic_optimizer"].zero_grad(set_to_none=True)
        critic_loss.backward()
        nets["critic_optimizer"].step()
        critic_losses.append(critic_loss.detach())
        if (gradient_steps_before + k + 1) % config.policy_delay == 0:
            with frozen(critic):  # the actor's loss needs no gradient for the critic's weights
                actor_loss = -critic.first(minibatch.obs, actor(minibatch.obs)).mean()
                nets["actor_optimizer"].zero_grad(set_to_none=True)
                actor_loss.backward()
                nets["actor_optimizer"].step()
            polyak_update(critic_target, critic, config.tau)
            polyak_update(actor_target, actor, config.tau)
            actor_losses.append(actor_loss.detach())
    metrics = {"losses/critic_loss": float(torch.stack(critic_losses).mean())}
    if actor_losses:
        metrics["losses/actor_loss"] = float(torch.stack(actor_losses).mean())
    return metrics


def exploration(actor: DeterministicActor, config: DDPGConfig, action_dim: int):
    """The behaviour policy: uniform in [-1, 1] before learning_starts, then clip(mu(s) + noise)."""

    def noisy(obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        actions = actor.unit_actions(obs).cpu().numpy()
        if config.action_noise > 0:
            actions = actions + rng.normal(0.0, config.action_noise, actions.shape)
        return np.clip(actions, -1.0, 1.0).astype(np.float32)

    return offpolicy.after_uniform_warm_up(noisy, config, action_dim)


def make_train(name: str):
    def train(config: DDPGConfig, run_dir=None, **options: Any) -> Run:
        """Train; returns the Run. `options` are the Loop's (resume, overwrite, quiet, callbacks)."""
        env = resolve(config.env)
        require(env, name, ACTS_ON)
        device = setup_torch(config)
        actor = DeterministicActor(env.observation_space, env.action_space, config).to(device)
        critic = QFunctions(env.observation_space, env.action_space, config, config.critics).to(device)
        fused = device.type in ("cpu", "cuda")
        nets = {
            "actor": actor, "critic": critic,
            "actor_target": copy.deepcopy(actor).requires_grad_(False), "critic_target": copy.deepcopy(critic).requires_grad_(False),
            "actor_optimizer": torch.optim.Adam(actor.parameters(), lr=config.learning_rate, fused=fused),
            "critic_optimizer": torch.optim.Adam(critic.parameters(), lr=config.learning_rate, fused=fused),
        }
        action_dim = int(np.prod(env.action_space.shape))
        return offpolicy.run(
            name, config, parts=nets,
            buffer=ReplayBuffer(config.buffer_size, config.num_envs, env.observation_space.shape, (action_dim,), action_dtype=np.float32),
            behaviour=exploration(actor, config, action_dim), update=lambda batch, before: update(nets, batch, config, before),
            act=actor.predict, to_env=box_mapper(env.action_space),
            export=lambda directory: checkpoint.save_network(actor, directory), device=device, run_dir=run_dir, **options,
        )

    return train


def load(config, directory: Path) -> DeterministicActor:
    """The trained actor saved in directory (a run's model/); `.predict(obs)` acts."""
    return checkpoint.load_network(DeterministicActor, config, directory)


ACTS_ON = ActsOn("gymnasium", observations=("Box",), actions=("Box",))
SPECS = (
    AlgorithmSpec(
        name="ddpg", family="deep", config=DDPGConfig, presets=PRESETS, train=make_train("ddpg"), load=load, acts_on=ACTS_ON,
        summary="Deep Deterministic Policy Gradient: deterministic actor, Q critic, Gaussian exploration, Polyak targets; Box actions",
    ),
    AlgorithmSpec(
        name="td3", family="deep", config=TD3Config, presets=PRESETS, train=make_train("td3"), load=load, acts_on=ACTS_ON,
        summary="TD3: DDPG with clipped double Q, target policy smoothing and delayed actor updates; Box actions",
    ),
)
