"""Trust Region Policy Optimization (Schulman et al. 2015, arXiv:1502.05477), with GAE advantages:

    maximize  L(theta) = E[ pi_theta(a|s) / pi_old(a|s) A(s, a) ]   subject to   E_s[ KL(pi_old || pi_theta) ] <= max_kl

solved approximately each batch (appendix C):
    g = grad L at theta_old;  F = the Hessian of the mean KL at theta_old (the Fisher matrix), used
    only through products F v = grad((grad KL) . v) + cg_damping v
    s = F^-1 g by conjugate gradient (ops.natural_gradient.conjugate_gradient)
    full step = sqrt(2 max_kl / s^T F s) s, the largest step along s whose quadratic KL is max_kl
    backtracking line search on fractions 1, shrink, shrink^2, ...: the first that keeps the exact
    mean KL <= max_kl and improves L by at least accept_ratio of the linear prediction
    (ops.natural_gradient.line_search); none accepted: the policy stays.
The value function is fit separately by Adam on the GAE returns (value_epochs passes of
minibatches), as in Stable-Baselines3-contrib's TRPO, whose defaults these are.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from rlsuite.core import checkpoint
from rlsuite.core.loop import Loop
from rlsuite.core.run import Run
from rlsuite.core.seeding import derive_seed, setup_torch
from rlsuite.core.spec import ActsOn, AlgorithmSpec
from rlsuite.envs.evaluation import EpisodeEvaluator
from rlsuite.envs.resolver import require, resolve
from rlsuite.errors import check
from rlsuite.ops import losses, returns
from rlsuite.ops.distributions import DiagGaussian, kl_divergence
from rlsuite.ops.natural_gradient import conjugate_gradient, line_search
from rlsuite.ops.policies import ActorCritic
from rlsuite.rollout.buffers import Rollout
from rlsuite.rollout import onpolicy
from rlsuite.scale.ray import onpolicy_rollouts


@dataclasses.dataclass(frozen=True)
class TRPOConfig(onpolicy.ActorCriticConfig):
    num_envs: int = 1
    """Parallel environments."""
    num_steps: int = 2048
    """Steps per environment in each batch."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    max_kl: float = 0.01
    """Trust region: the bound on the mean KL(pi_old || pi) of a step."""
    cg_iterations: int = 15
    """Conjugate-gradient iterations for F^-1 g."""
    cg_damping: float = 0.1
    """Added to the Fisher matrix (F + damping I) for a well-conditioned solve."""
    line_search_shrink: float = 0.8
    """Factor of each backtracking step."""
    line_search_steps: int = 10
    """Fractions tried before giving up on the batch."""
    accept_ratio: float = 0.1
    """Minimum actual / linearly predicted improvement for a fraction to be accepted (0: any gain)."""
    normalize_advantages: bool = True
    """Standardize advantages over each batch."""
    value_learning_rate: float = 1e-3
    """Adam step size of the value function."""
    value_epochs: int = 10
    """Passes of value regression over each batch."""
    value_minibatch_size: int = 128
    """Transitions per value gradient step."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("num_envs", "num_steps", "cg_iterations", "line_search_steps", "value_epochs", "value_minibatch_size"):
            check(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}.")
        check(self.max_kl > 0 and self.cg_damping >= 0, f"max_kl must be > 0 and cg_damping >= 0, got {self.max_kl} and {self.cg_damping}.")
        check(0 < self.line_search_shrink < 1, f"line_search_shrink must be in (0, 1), got {self.line_search_shrink}.")
        check(0 <= self.gamma <= 1 and 0 <= self.gae_lambda <= 1, "gamma and gae_lambda must be in [0, 1].")
        check(self.value_learning_rate > 0, f"value_learning_rate must be > 0, got {self.value_learning_rate}.")


# rl-baselines3-zoo's (CartPole: 2 envs of 512 steps, 20 value epochs on whole batches).
PRESETS: dict[str, dict[str, Any]] = {
    "CartPole-v1": dict(num_envs=2, num_steps=512, value_minibatch_size=512, cg_damping=1e-3, gae_lambda=0.98, gamma=0.99,
                        value_learning_rate=1e-3, value_epochs=20, total_steps=100_000, eval_every=5_000),
    "Acrobot-v1": dict(num_envs=2, num_steps=1024, normalize_obs=True, normalize_reward=True, total_steps=100_000, eval_every=5_000),
    "Pendulum-v1": dict(num_envs=2, num_steps=1024, gamma=0.9, value_epochs=15, normalize_obs=True, total_steps=100_000, eval_every=5_000),
}


def flat_grad(output: Tensor, params: list[Tensor], create_graph: bool = False, retain_graph: bool | None = None) -> Tensor:
    """d output / d params as one flat vector (0 for parameters output does not reach)."""
    grads = torch.autograd.grad(output, params, create_graph=create_graph, retain_graph=retain_graph, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(params, grads)])


def set_flat(params: list[Tensor], flat: Tensor) -> None:
    with torch.no_grad():
        for p, chunk in zip(params, flat.split([p.numel() for p in params])):
            p.copy_(chunk.view_as(p))


def policy_step(agent: ActorCritic, obs: Tensor, actions: Tensor, advantages: Tensor, config: TRPOConfig) -> dict[str, float]:
    """The natural-gradient step with line search of the module docstring. The policy's parameters
    share tensors with the value network (ParallelMLP); the surrogate and the KL do not depend on
    the value member, so its entries of g, of every F v and hence of the step are exactly 0."""
    params = list(agent.parameters())
    old = torch.cat([p.detach().reshape(-1) for p in params])
    with torch.no_grad():
        old_dist, _ = agent(obs)
        if isinstance(old_dist, DiagGaussian):  # its log_std views the parameter set_flat overwrites
            old_dist = DiagGaussian(old_dist.mean, old_dist.log_std.clone())
        old_logp = old_dist.log_prob(actions)

    def surrogate() -> Tensor:
        return ((agent(obs)[0].log_prob(actions) - old_logp).exp() * advantages).mean()

    def mean_kl() -> Tensor:
        return kl_divergence(old_dist, agent(obs)[0]).mean()

    g = flat_grad(surrogate(), params)
    kl_grad = flat_grad(mean_kl(), params, create_graph=True)

    def fisher_vector(v: Tensor) -> Tensor:
        """(F + damping I) v; the KL graph is kept for the next product."""
        return flat_grad(kl_grad @ v, params, retain_graph=True) + config.cg_damping * v

    direction = conjugate_gradient(fisher_vector, g, config.cg_iterations)
    full_step = math.sqrt(2 * config.max_kl / max(float(direction @ fisher_vector(direction)), 1e-12)) * direction
    baseline = float(surrogate().detach())

    def evaluate(fraction: float) -> tuple[float, float]:
        set_flat(params, old + fraction * full_step)
        with torch.no_grad():
            return float(surrogate()) - baseline, float(mean_kl())

    result = line_search(evaluate, config.max_kl, float(g @ full_step), config.line_search_steps, config.line_search_shrink, config.accept_ratio)
    set_flat(params, old + result.fraction * full_step)
    return {"losses/surrogate_gain": result.improvement, "losses/kl": result.kl, "losses/step_fraction": result.fraction,
            "losses/accepted": float(result.fraction > 0)}


def value_steps(agent: ActorCritic, optimizer: torch.optim.Optimizer, obs: Tensor, targets: Tensor, config: TRPOConfig) -> float:
    """value_epochs passes of minibatch regression of V on the GAE returns."""
    losses_seen = []
    n = obs.shape[0]
    for _ in range(config.value_epochs):
        for idx in torch.randperm(n, device=obs.device).split(config.value_minibatch_size):
            loss = losses.value_loss(agent.value(obs[idx]), targets[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses_seen.append(loss.detach())
    return float(torch.stack(losses_seen).mean())


def update(agent: ActorCritic, value_optimizer: torch.optim.Optimizer, rollout: Rollout, config: TRPOConfig) -> dict[str, float]:
    with torch.no_grad():
        advantages, targets = returns.gae(rollout.rewards, rollout.values, rollout.next_values, rollout.terminated, rollout.done,
                                          config.gamma, config.gae_lambda)
    valid = rollout.valid
    obs, actions, advantages, targets = rollout.obs[valid], rollout.actions[valid], advantages[valid], targets[valid]
    if config.normalize_advantages:
        advantages = returns.normalize(advantages)
    metrics = policy_step(agent, obs, actions, advantages, config)
    metrics["losses/value_loss"] = value_steps(agent, value_optimizer, obs, targets, config)
    return metrics


def train(config: TRPOConfig, run_dir=None, **options: Any) -> Run:
    """Train TRPO; returns the Run. `options` are the Loop's (resume, overwrite, quiet, callbacks)."""
    env = resolve(config.env)
    require(env, "trpo", SPEC.acts_on)
    device = setup_torch(config)
    agent = ActorCritic(env.observation_space, env.action_space, config).to(device)
    # Adam over the shared tensors: the value loss reaches only the value member, whose entries
    # alone get gradients, so Adam's moments and steps for the policy's entries stay 0.
    value_optimizer = torch.optim.Adam(agent.nets.parameters(), lr=config.value_learning_rate)
    rollout = onpolicy.allocate_rollout(config, agent, device)
    rollouts = onpolicy_rollouts(config, functools.partial(ActorCritic, env.observation_space, env.action_space, config))
    with Loop(
        "trpo", config, run_dir, budget=config.budget, schedule=config.schedule,
        parts={"agent": agent, "value_optimizer": value_optimizer, "envs": rollouts.checkpoint_part},
        evaluate=EpisodeEvaluator(config.env, config.eval_episodes, agent.predict, config.seed),
        export=lambda directory: checkpoint.save_network(agent, directory), **options,
    ) as loop:
        cursor = loop.start(lambda: rollouts.reset(derive_seed(config.seed, "train-envs")))
        while loop.running():
            episodes, cursor = rollouts.collect(agent, rollout, cursor)
            metrics = update(agent, value_optimizer, rollout, config)
            loop.record(config.num_envs * config.num_steps, metrics, episodes=episodes, state=cursor)
        return loop.finish()


def load(config: TRPOConfig, directory: Path) -> ActorCritic:
    """The trained agent saved in directory (a run's model/); `.predict(obs)` acts."""
    return checkpoint.load_network(ActorCritic, config, directory)


SPEC = AlgorithmSpec(
    name="trpo",
    family="deep",
    summary="Trust Region Policy Optimization: natural gradient by conjugate gradient, KL-bounded line search, GAE; discrete and Box actions",
    config=TRPOConfig,
    presets=PRESETS,
    train=train,
    load=load,
    acts_on=ActsOn("gymnasium", observations=("Box",), actions=("Discrete", "Box")),
)
preset = SPEC.preset
