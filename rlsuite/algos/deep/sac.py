"""Soft Actor-Critic (Haarnoja et al. 2018, arXiv:1801.01290; automatic temperature from
arXiv:1812.05905), maximizing E[sum_t r_t + alpha H(pi(.|s_t))] off-policy:

    critics:     minimize sum_k (Q_k(s, a) - y)^2 / 2,
                 y = r + gamma (1 - terminated) (min_k Q'_k(s', a') - alpha log pi(a'|s')),  a' ~ pi(.|s')
    actor:       minimize E_s[alpha log pi(a~|s) - min_k Q_k(s, a~)],  a~ = tanh(u), u ~ N(mean(s), std(s)^2)
                 (reparameterized; log pi carries the tanh log-det correction, ops.distributions.TanhGaussian)
    temperature: minimize -log(alpha) (log pi(a~|s) + target_entropy), target_entropy = -dim(A)
    targets:     theta'_k <- tau theta_k + (1 - tau) theta'_k

in Stable-Baselines3's order within a step (temperature, critics, actor, targets; the alpha of a
step is the one before its temperature update), with its defaults and schedule, so
rl-baselines3-zoo's hyperparameters mean the same.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rlsuite.core import checkpoint
from rlsuite.core.run import Run
from rlsuite.core.seeding import setup_torch
from rlsuite.core.spec import ActsOn, AlgorithmSpec
from rlsuite.envs.resolver import require, resolve
from rlsuite.errors import check
from rlsuite.ops.nets import frozen, polyak_update
from rlsuite.ops.policies import QFunctions, SquashedGaussianActor, box_mapper
from rlsuite.rollout import offpolicy
from rlsuite.rollout.replay import ReplayBatch, ReplayBuffer


@dataclasses.dataclass(frozen=True)
class SACConfig(offpolicy.ReplayConfig):
    learning_rate: float = 3e-4
    """Adam step size of the actor, the critics and the temperature."""
    batch_size: int = 256
    """Transitions per gradient step."""
    train_freq: int = 1
    """Vector steps collected between gradient phases."""
    tau: float = 0.005
    """Polyak rate of the target critics."""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the actor and of each critic."""
    critics: int = 2
    """Critics Q_1..Q_K; targets and the actor take their minimum."""
    ent_coef: float = 0.0
    """A fixed temperature alpha; 0 tunes it automatically toward target_entropy."""
    init_ent_coef: float = 1.0
    """Starting alpha when tuned automatically."""
    target_entropy: float | None = None
    """Entropy the tuned alpha aims for; None: -dim(A) (the paper's heuristic)."""
    target_update_interval: int = 1
    """Gradient steps between target moves."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.critics >= 1 and self.target_update_interval >= 1,
              f"critics and target_update_interval must be >= 1, got {self.critics} and {self.target_update_interval}.")
        check(self.ent_coef >= 0 and self.init_ent_coef > 0, f"ent_coef must be >= 0 and init_ent_coef > 0, got {self.ent_coef} and {self.init_ent_coef}.")


# rl-baselines3-zoo's.
PRESETS: dict[str, dict[str, Any]] = {
    "Pendulum-v1": dict(learning_rate=1e-3, total_steps=20_000, eval_every=2_000),
    "HalfCheetah-v5": dict(learning_starts=10_000, total_steps=1_000_000, eval_every=10_000),
    "Hopper-v5": dict(learning_starts=10_000, total_steps=1_000_000, eval_every=10_000),
}


class Temperature(nn.Module):
    """log alpha, learned (its log keeps alpha positive) or fixed."""

    def __init__(self, alpha: float, learned: bool):
        super().__init__()
        self.log_alpha = nn.Parameter(torch.tensor(float(np.log(alpha))), requires_grad=learned)

    @property
    def alpha(self) -> Tensor:
        return self.log_alpha.detach().exp()


def update(nets: dict[str, Any], batch: ReplayBatch, config: SACConfig, target_entropy: float, gradient_steps_before: int) -> dict[str, float]:
    """One gradient phase: the four steps of the module docstring on each consecutive batch_size rows."""
    actor, critic, critic_target, temperature = nets["actor"], nets["critic"], nets["critic_target"], nets["temperature"]
    critic_params, actor_params = list(critic.parameters()), list(actor.parameters())
    learned_alpha = temperature.log_alpha.requires_grad
    stats = []
    for k in range(batch.obs.shape[0] // config.batch_size):
        minibatch = offpolicy.minibatch(batch, k, config.batch_size)
        alpha = temperature.alpha
        actions, log_prob = actor(minibatch.obs).rsample()
        if learned_alpha:
            # The temperature loss -log(alpha) (log pi + target) is linear in log alpha: its
            # gradient, -mean(log pi + target), is set directly instead of through autograd.
            temperature.log_alpha.grad = -(log_prob.detach() + target_entropy).mean()
            nets["temperature_optimizer"].step()

        with torch.no_grad():
            next_actions, next_log_prob = actor(minibatch.next_obs).rsample()
            next_q = critic_target(minibatch.next_obs, next_actions).min(dim=0).values - alpha * next_log_prob
            y = minibatch.returns + minibatch.discounts * next_q
        critic_loss = 0.5 * (critic(minibatch.obs, minibatch.actions) - y).pow(2).mean(dim=1).sum()
        for p in critic_params:  # optimizer.zero_grad(set_to_none=True), without its profiler hooks
            p.grad = None
        critic_loss.backward()
        nets["critic_optimizer"].step()

        with frozen(critic):  # the critics (just updated, as in SB3) are fixed for the actor's step
            actor_loss = (alpha * log_prob - critic(minibatch.obs, actions).min(dim=0).values).mean()
            for p in actor_params:
                p.grad = None
            actor_loss.backward()
            nets["actor_optimizer"].step()

        if (gradient_steps_before + k + 1) % config.target_update_interval == 0:
            polyak_update(critic_target, critic, config.tau)
        stats.append(torch.stack([critic_loss.detach(), actor_loss.detach(), alpha, -log_prob.detach().mean()]))
    means = torch.stack(stats).mean(0).tolist()
    return dict(zip(("losses/critic_loss", "losses/actor_loss", "losses/alpha", "losses/entropy"), means))


def train(config: SACConfig, run_dir=None, **options: Any) -> Run:
    """Train SAC; returns the Run. `options` are the Loop's (resume, overwrite, quiet, callbacks)."""
    env = resolve(config.env)
    require(env, "sac", SPEC.acts_on)
    device = setup_torch(config)
    action_dim = int(np.prod(env.action_space.shape))
    target_entropy = -float(action_dim) if config.target_entropy is None else config.target_entropy
    actor = SquashedGaussianActor(env.observation_space, env.action_space, config).to(device)
    critic = QFunctions(env.observation_space, env.action_space, config, config.critics).to(device)
    learned_alpha = config.ent_coef == 0
    temperature = Temperature(config.init_ent_coef if learned_alpha else config.ent_coef, learned_alpha).to(device)
    fused = device.type in ("cpu", "cuda")
    nets = {
        "actor": actor, "critic": critic, "critic_target": copy.deepcopy(critic).requires_grad_(False), "temperature": temperature,
        "actor_optimizer": torch.optim.Adam(actor.parameters(), lr=config.learning_rate, fused=fused),
        "critic_optimizer": torch.optim.Adam(critic.parameters(), lr=config.learning_rate, fused=fused),
    }
    if learned_alpha:
        nets["temperature_optimizer"] = torch.optim.Adam(temperature.parameters(), lr=config.learning_rate)

    behaviour = offpolicy.after_uniform_warm_up(lambda obs, rng: actor.unit_actions(obs, deterministic=False).cpu().numpy(), config, action_dim)

    return offpolicy.run(
        "sac", config, parts=nets,
        buffer=ReplayBuffer(config.buffer_size, config.num_envs, env.observation_space.shape, (action_dim,), action_dtype=np.float32),
        behaviour=behaviour, update=lambda batch, before: update(nets, batch, config, target_entropy, before),
        act=actor.predict, to_env=box_mapper(env.action_space),
        export=lambda directory: checkpoint.save_network(actor, directory), device=device, run_dir=run_dir, **options,
    )


def load(config, directory: Path) -> SquashedGaussianActor:
    """The trained actor saved in directory (a run's model/); `.predict(obs)` acts (the mean, squashed)."""
    return checkpoint.load_network(SquashedGaussianActor, config, directory)


SPEC = AlgorithmSpec(
    name="sac",
    family="deep",
    summary="Soft Actor-Critic: tanh-squashed Gaussian, twin Q, automatic entropy tuning; Box actions",
    config=SACConfig,
    presets=PRESETS,
    train=train,
    load=load,
    acts_on=ActsOn("gymnasium", observations=("Box",), actions=("Box",)),
)
preset = SPEC.preset
