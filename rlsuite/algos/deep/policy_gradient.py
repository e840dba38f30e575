"""The policy-gradient ladder, rung by rung as a course teaches it. Every rung follows

    grad J = E[ sum_t Psi_t grad log pi(a_t|s_t) ]

and differs only in Psi_t, the weight of each step's score (the list of Schulman et al. 2016,
arXiv:1506.02438, section 2). RUNGS is that list; each entry is a registered algorithm:

    vpg                 Psi_t = G_0 = sum_k gamma^k r_k          the whole episode's return (Williams 1992)
    reinforce           Psi_t = G_t = sum_k gamma^k r_{t+k}      reward-to-go: the past does not matter
    reinforce_baseline  Psi_t = G_t - V(s_t)                     minus a learned baseline (V fit to G_t)
    actor_critic        Psi_t = r_t + gamma V(s_{t+1}) - V(s_t)  the one-step TD error (V fit by TD(0))
    q_actor_critic      Psi_t = Q(s_t, a_t)                      a learned Q (fit by SARSA) as the critic
    a2c                 Psi_t = R^(n)_t - V(s_t)                 n-step returns over a vector env, plus an
                                                                 entropy bonus (Mnih et al. 2016, A2C)

The Monte Carlo rungs play one whole episode in every env per update (a time-limit cut ends the
return: there is no critic to bootstrap from); the bootstrapping rungs update every num_steps
vector steps, bootstrapping through time-limit cuts and never through terminal states. One
gradient step per batch on

    loss = -mean_t(Psi_t log pi(a_t|s_t)) + vf_coef * 0.5 mean_t(critic - target)^2 - ent_coef * mean_t H(pi(.|s_t)),

the means over the batch's steps (as Spinning Up and Stable-Baselines3; a course's sum over
steps and mean over episodes differs by a constant factor). The gamma^t in front of the exact
discounted gradient is dropped, as everywhere in practice.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor, nn

from rlsuite.core import checkpoint
from rlsuite.core.loop import Loop
from rlsuite.core.run import Run
from rlsuite.core.seeding import derive_seed, setup_torch
from rlsuite.core.spec import ActsOn, AlgorithmSpec
from rlsuite.envs.evaluation import EpisodeEvaluator
from rlsuite.envs.resolver import require, resolve
from rlsuite.errors import check
from rlsuite.ops import losses, returns
from rlsuite.ops.policies import ActorCritic
from rlsuite.rollout.buffers import Rollout
from rlsuite.rollout import onpolicy
from rlsuite.rollout.collect import collect_episodes
from rlsuite.scale.ray import onpolicy_rollouts


@dataclasses.dataclass(frozen=True)
class PGConfig(onpolicy.ActorCriticConfig):
    num_envs: int = 8
    """Parallel envs: episodes per update (Monte Carlo rungs), or envs stepped num_steps times per update."""
    num_steps: int = 5
    """Vector steps per update (bootstrapping rungs only; n of a2c's n-step returns)."""
    learning_rate: float = 1e-3
    """Step size of the optimizer."""
    optimizer: Literal["adam", "rmsprop"] = "adam"
    """'adam', or 'rmsprop' (alpha 0.99, eps 1e-5: A2C's, as in SB3)."""
    gamma: float = 0.99
    """Discount factor."""
    ent_coef: float = 0.0
    """Entropy bonus coefficient."""
    vf_coef: float = 0.5
    """Critic loss coefficient (rungs with a critic)."""
    max_grad_norm: float = 0.0
    """Global gradient-norm clip (0 disables)."""
    normalize_advantages: bool = False
    """Standardize Psi over each batch (off: the rungs as written)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("num_envs", "num_steps"):
            check(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}.")
        check(self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}.")
        check(0 <= self.gamma <= 1, f"gamma must be in [0, 1], got {self.gamma}.")
        for name in ("ent_coef", "vf_coef", "max_grad_norm"):
            check(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}.")


# --- Psi_t, rung by rung ---------------------------------------------------------------------------
# Each maps a batch [T, N] (and the critic's outputs on it) to (Psi, the critic's target or None).

def whole_return(batch: Rollout, config: PGConfig) -> tuple[Tensor, Tensor | None]:
    """Psi_t = G_0 for every step t of the episode (the episode starts at t = 0 of the batch)."""
    return returns.reward_to_go(batch.rewards, batch.done, config.gamma)[0].expand_as(batch.rewards), None


def reward_to_go(batch: Rollout, config: PGConfig) -> tuple[Tensor, Tensor | None]:
    """Psi_t = G_t."""
    return returns.reward_to_go(batch.rewards, batch.done, config.gamma), None


def baselined_reward_to_go(batch: Rollout, config: PGConfig) -> tuple[Tensor, Tensor | None]:
    """Psi_t = G_t - V(s_t); V regresses on G_t."""
    g = returns.reward_to_go(batch.rewards, batch.done, config.gamma)
    return g - batch.values, g


def td_error(batch: Rollout, config: PGConfig) -> tuple[Tensor, Tensor | None]:
    """Psi_t = delta_t = r_t + gamma (1 - terminated_t) V(s_{t+1}) - V(s_t); V's target is delta_t + V(s_t)."""
    return returns.gae(batch.rewards, batch.values, batch.next_values, batch.terminated, batch.done, config.gamma, 0.0)


def q_value(batch: Rollout, config: PGConfig) -> tuple[Tensor, Tensor | None]:
    """Psi_t = Q(s_t, a_t); Q's target is SARSA's r_t + gamma (1 - terminated_t) Q(s_{t+1}, a_{t+1})
    (batch.values holds Q(s_t, a_t), and the value after the last step is E_pi Q(s_T, .))."""
    _, target = returns.gae(batch.rewards, batch.values, batch.next_values, batch.terminated, batch.done, config.gamma, 0.0)
    return batch.values, target


def n_step_advantage(batch: Rollout, config: PGConfig) -> tuple[Tensor, Tensor | None]:
    """Psi_t = R^(n)_t - V(s_t), R^(n)_t = r_t + ... + gamma^(T-t) V(s_T) to the end of the batch
    (GAE with lambda = 1, as SB3's A2C); V regresses on R^(n)_t."""
    return returns.gae(batch.rewards, batch.values, batch.next_values, batch.terminated, batch.done, config.gamma, 1.0)


class Rung(NamedTuple):
    weights: Callable[[Rollout, PGConfig], tuple[Tensor, Tensor | None]]
    critic: Literal["none", "v", "q"]
    episodes: bool
    """Whole episodes per update (Monte Carlo) rather than num_steps vector steps."""


RUNGS: dict[str, Rung] = {
    "vpg": Rung(whole_return, "none", episodes=True),
    "reinforce": Rung(reward_to_go, "none", episodes=True),
    "reinforce_baseline": Rung(baselined_reward_to_go, "v", episodes=True),
    "actor_critic": Rung(td_error, "v", episodes=False),
    "q_actor_critic": Rung(q_value, "q", episodes=False),
    "a2c": Rung(n_step_advantage, "v", episodes=False),
}


def update(agent: ActorCritic, optimizer: torch.optim.Optimizer, batch: Rollout, rung: Rung, config: PGConfig) -> dict[str, float]:
    """One gradient step of the module docstring's loss on one batch."""
    with torch.no_grad():
        psi, target = rung.weights(batch, config)
    valid = batch.valid
    psi = psi[valid]
    if config.normalize_advantages:
        psi = returns.normalize(psi)
    dist, critic_out = agent(batch.obs[valid])
    actions = batch.actions[valid]
    policy_loss = -(dist.log_prob(actions) * psi).mean()
    entropy = dist.entropy().mean()
    loss = policy_loss - config.ent_coef * entropy
    metrics = {"losses/policy_loss": policy_loss.detach(), "losses/entropy": entropy.detach()}
    if rung.critic != "none":
        estimate = critic_out if rung.critic == "v" else critic_out.gather(-1, actions[:, None]).squeeze(-1)
        critic_loss = losses.value_loss(estimate, target[valid])
        loss = loss + config.vf_coef * critic_loss
        metrics["losses/value_loss"] = critic_loss.detach()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if config.max_grad_norm > 0:
        nn.utils.clip_grad_norm_(agent.parameters(), config.max_grad_norm)
    optimizer.step()
    return {name: float(value) for name, value in metrics.items()}


def make_optimizer(agent: nn.Module, config: PGConfig, device: torch.device) -> torch.optim.Optimizer:
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(agent.parameters(), lr=config.learning_rate, alpha=0.99, eps=1e-5)
    return torch.optim.Adam(agent.parameters(), lr=config.learning_rate, fused=device.type in ("cpu", "cuda"))


def make_train(name: str):
    rung = RUNGS[name]

    def train(config: PGConfig, run_dir=None, **options: Any) -> Run:
        """Train this rung; returns the Run. `options` are the Loop's (resume, overwrite, quiet, callbacks)."""
        env = resolve(config.env)
        require(env, name, ACTS_ON[rung.critic == "q"])
        device = setup_torch(config)
        agent = ActorCritic(env.observation_space, env.action_space, config, critic="q" if rung.critic == "q" else "v").to(device)
        optimizer = make_optimizer(agent, config, device)
        check(not (rung.episodes and config.backend == "ray"),
              f"{name} learns from whole episodes, which Ray workers do not collect yet; use --backend local, or a2c / actor_critic for Ray workers.")
        if rung.episodes:
            envs = onpolicy.make_envs(config)
        else:
            rollout = onpolicy.allocate_rollout(config, agent, device)
            rollouts = onpolicy_rollouts(config, functools.partial(ActorCritic, env.observation_space, env.action_space, config, critic=agent.critic))
        with Loop(
            name, config, run_dir, budget=config.budget, schedule=config.schedule,
            parts={"agent": agent, "optimizer": optimizer, "envs": envs if rung.episodes else rollouts.checkpoint_part},
            evaluate=EpisodeEvaluator(config.env, config.eval_episodes, agent.predict, config.seed),
            export=lambda directory: checkpoint.save_network(agent, directory), **options,
        ) as loop:
            # Monte Carlo rungs start fresh episodes every update: only the first reset is seeded.
            state = loop.start(lambda: None if rung.episodes else rollouts.reset(derive_seed(config.seed, "train-envs")))
            while loop.running():
                if rung.episodes:
                    batch, episodes = collect_episodes(envs, agent, derive_seed(config.seed, "train-envs") if loop.step == 0 else None)
                    steps = int(batch.valid.sum())
                else:
                    episodes, state = rollouts.collect(agent, rollout, state)
                    batch, steps = rollout, config.num_envs * config.num_steps
                metrics = update(agent, optimizer, batch, rung, config)
                loop.record(steps, metrics, episodes=episodes, state=state)
            return loop.finish()

    return train


def load(config, directory: Path) -> ActorCritic:
    """The trained agent saved in directory (a run's model/); `.predict(obs)` acts."""
    return checkpoint.load_network(ActorCritic, config, directory)


def load_q(config, directory: Path) -> ActorCritic:
    return checkpoint.load_network(lambda obs, act, cfg: ActorCritic(obs, act, cfg, critic="q"), config, directory)


ACTS_ON = {
    False: ActsOn("gymnasium", observations=("Box",), actions=("Discrete", "Box")),
    True: ActsOn("gymnasium", observations=("Box",), actions=("Discrete",)),  # Q(s, .) needs a finite action set
}

# Monte Carlo rungs: 8 episodes per update, Adam 1e-3 on CartPole (the ladder's common setting).
# a2c: rl-baselines3-zoo's (SB3's A2C defaults: RMSprop 7e-4, 5 steps, SB3's vf_coef 0.5 on an
# MSE without our 1/2 is our 1.0, max_grad_norm 0.5).
MONTE_CARLO = {
    "CartPole-v1": dict(num_envs=8, learning_rate=1e-3, total_steps=300_000, eval_every=10_000),
    "Acrobot-v1": dict(num_envs=8, learning_rate=1e-3, total_steps=300_000, eval_every=10_000),
}
BOOTSTRAPPING = {
    "CartPole-v1": dict(num_envs=8, num_steps=5, learning_rate=1e-3, total_steps=300_000, eval_every=10_000),
    "Acrobot-v1": dict(num_envs=16, num_steps=5, learning_rate=1e-3, total_steps=300_000, eval_every=10_000),
}
A2C = {
    "CartPole-v1": dict(num_envs=8, num_steps=5, optimizer="rmsprop", learning_rate=7e-4, vf_coef=1.0, max_grad_norm=0.5,
                        total_steps=300_000, eval_every=10_000),
    "Acrobot-v1": dict(num_envs=16, num_steps=5, optimizer="rmsprop", learning_rate=7e-4, vf_coef=1.0, max_grad_norm=0.5,
                       normalize_obs=True, normalize_reward=True, total_steps=500_000, eval_every=20_000),
    "Pendulum-v1": dict(num_envs=8, num_steps=8, optimizer="rmsprop", learning_rate=7e-4, gamma=0.9, vf_coef=0.8, max_grad_norm=0.5,
                        log_std_init=-2.0, normalize_obs=True, normalize_reward=True, total_steps=1_000_000, eval_every=20_000),
}
SUMMARIES = {
    "vpg": "vanilla policy gradient: every step weighted by the whole episode's return (Monte Carlo)",
    "reinforce": "REINFORCE: each step weighted by its reward-to-go (Monte Carlo)",
    "reinforce_baseline": "REINFORCE with a learned value baseline: reward-to-go minus V(s)",
    "actor_critic": "one-step actor-critic: the TD error r + gamma V(s') - V(s) weights each step",
    "q_actor_critic": "Q actor-critic: a SARSA-learned Q(s, a) weights each step; discrete actions",
    "a2c": "A2C: synchronous n-step advantage actor-critic over a vector env with an entropy bonus",
}
PRESETS = {"vpg": MONTE_CARLO, "reinforce": MONTE_CARLO, "reinforce_baseline": MONTE_CARLO,
           "actor_critic": BOOTSTRAPPING, "q_actor_critic": BOOTSTRAPPING, "a2c": A2C}

SPECS = tuple(
    AlgorithmSpec(name=name, family="deep", summary=SUMMARIES[name], config=PGConfig, presets=PRESETS[name], train=make_train(name),
                  load=load_q if rung.critic == "q" else load, acts_on=ACTS_ON[rung.critic == "q"])
    for name, rung in RUNGS.items()
)
