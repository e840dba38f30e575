"""C51: categorical distributional DQN (Bellemare, Dabney and Munos 2017, arXiv:1707.06887).

The network outputs, for every action, a distribution over `atoms` returns evenly spaced on
[v_min, v_max] (the support z). The target is the distribution of R + discount * Z(s', a*),
a* = argmax_a E[Z_target(s', a)], projected back onto the support (Algorithm 1,
ops.q_targets.categorical_projection); the loss is its cross-entropy with the predicted one.
Actions are greedy in the mean, Q(s, a) = sum_j z_j p_j(s, a).

Replay (with n-step returns), epsilon-greedy exploration and the schedule are DQN's, as
Stable-Baselines3 runs it (see rlsuite.algos.deep.dqn and rlsuite.rollout.offpolicy).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor, nn

from rlsuite.core import checkpoint
from rlsuite.core.run import Run
from rlsuite.core.seeding import setup_torch
from rlsuite.core.spec import ActsOn, AlgorithmSpec
from rlsuite.envs.resolver import require, resolve
from rlsuite.errors import check
from rlsuite.ops import q_targets
from rlsuite.ops.nets import mlp
from rlsuite.rollout import offpolicy
from rlsuite.rollout.replay import ReplayBatch
from rlsuite.scale import apex


@dataclasses.dataclass(frozen=True)
class C51Config(offpolicy.OffPolicyConfig):
    learning_rate: float = 2.5e-4
    """Adam step size."""
    adam_eps: float = 0.01 / 32
    """Adam's epsilon (the paper's 0.01 / batch size)."""
    atoms: int = 51
    """Number of atoms K of the support."""
    v_min: float = -10.0
    """Lowest return on the support."""
    v_max: float = 10.0
    """Highest return on the support."""


    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.atoms >= 2, f"atoms must be >= 2, got {self.atoms}.")
        check(self.v_min < self.v_max, f"v_min must be below v_max, got {self.v_min} and {self.v_max}.")
        check(self.adam_eps > 0, f"adam_eps must be > 0, got {self.adam_eps}.")


PRESETS: dict[str, dict[str, Any]] = {
    # DQN's rl-baselines3-zoo schedule (train_freq 256, 128 gradient steps, target refreshed
    # before every phase) with the support on [0, 100]: CartPole pays +1 a step, so returns
    # discounted at 0.99 lie in [0, 100), and the 51 atoms are 2 apart.
    "CartPole-v1": dict(learning_rate=2.3e-3, adam_eps=1e-8, batch_size=64, buffer_size=100_000, learning_starts=1_000,
                        gamma=0.99, target_update_every=10, train_freq=256, gradient_steps=128, exploration_fraction=0.16,
                        exploration_final_eps=0.04, hidden_sizes=(256, 256), v_min=0.0, v_max=100.0,
                        total_steps=100_000, eval_every=2_500),
}


class CategoricalQNetwork(nn.Module):
    """An MLP from observations to a return distribution per action, logits [B, A, K]."""

    def __init__(self, observation_space: spaces.Box, action_space: spaces.Discrete, config: C51Config):
        super().__init__()
        self.observation_space, self.action_space = observation_space, action_space
        self.n_actions, self.atoms = int(action_space.n), config.atoms
        self.net = mlp(int(np.prod(observation_space.shape)), config.hidden_sizes, self.n_actions * config.atoms, config.activation, out_gain=None)
        self.register_buffer("support", q_targets.categorical_support(config.v_min, config.v_max, config.atoms))
        self.epsilon = config.exploration_final_eps

    def forward(self, obs: Tensor) -> Tensor:
        """Logits of p(s, a) [B, A, K]."""
        x = obs
        for layer in self.net:  # layer.forward, not layer(): no per-call hook handling (several us a forward)
            x = layer.forward(x)
        return x.view(-1, self.n_actions, self.atoms)

    def q_values(self, obs: Tensor) -> Tensor:
        """Q(s, .) = E[Z(s, .)] [B, A]."""
        return q_targets.categorical_q_values(self(obs).softmax(-1), self.support)

    @torch.inference_mode()
    def greedy(self, obs: np.ndarray) -> np.ndarray:
        """argmax_a Q(s, a) for a batch of observations, all in one forward."""
        x = torch.as_tensor(obs, dtype=torch.float32, device=self.support.device)
        return self.q_values(x).argmax(dim=1).cpu().numpy()

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Greedy actions, or epsilon-greedy with exploration_final_eps when not deterministic."""
        if deterministic:
            return self.greedy(obs)
        return offpolicy.epsilon_greedy(self.greedy, obs, self.epsilon, self.n_actions, np.random.default_rng())


@torch.no_grad()
def target_distribution(target_net: CategoricalQNetwork, batch: ReplayBatch[Tensor]) -> Tensor:
    """Phi T Z for every row of batch [N, K] (Algorithm 1): the target network's distribution at
    a* = argmax_a E[Z_target(s', a)], shifted by R and scaled by the discount, projected."""
    next_probs = offpolicy.forward_in_chunks(target_net, batch.next_obs).softmax(-1)  # [N, A, K]
    best = q_targets.categorical_q_values(next_probs, target_net.support).argmax(dim=1)
    next_probs = next_probs[torch.arange(len(best), device=best.device), best]
    return q_targets.categorical_projection(next_probs, batch.returns, batch.discounts, target_net.support)


def update(q_net: CategoricalQNetwork, target_net: CategoricalQNetwork, optimizer: torch.optim.Optimizer, batch: ReplayBatch[Tensor], config: C51Config) -> dict[str, float]:
    """One gradient phase: a step on each consecutive batch_size rows of `batch`, minimizing the
    cross-entropy -sum_j m_j log p_j(s, a) with the target m. The target network is fixed within
    the phase, so every row's target distribution is computed up front, in one go."""
    size = config.batch_size
    steps = batch.obs.shape[0] // size
    params = list(q_net.parameters())
    targets = target_distribution(target_net, batch)
    batch_rows = torch.arange(size, device=targets.device)
    losses, log_probs = [], []
    for k in range(steps):
        rows = slice(k * size, (k + 1) * size)
        logits = q_net(batch.obs[rows])[batch_rows, batch.actions[rows]]  # [B, K] at the actions taken
        log_p = F.log_softmax(logits, dim=-1)
        loss = -(targets[rows] * log_p).sum(-1).mean()
        for p in params:  # optimizer.zero_grad(set_to_none=True), without its profiler hooks
            p.grad = None
        loss.backward()
        if config.max_grad_norm > 0:
            offpolicy.clip_grad_norm([p.grad for p in params], config.max_grad_norm)
        optimizer.step()
        # Kept as tensors: an .item() per step would cost a conversion (and, on a GPU, a wait) each.
        losses.append(loss.detach())
        log_probs.append(log_p.detach())
    q = torch.cat(log_probs).exp() @ q_net.support  # Q(s, a) of the actions taken
    return {"losses/cross_entropy": float(torch.stack(losses).mean()), "losses/q_values": float(q.mean()), "losses/gradient_steps": steps}


def train(config: C51Config, run_dir=None, **options: Any) -> Run:
    """Train C51; returns the Run. `options` are the Loop's (resume, overwrite, quiet, callbacks)."""
    env = resolve(config.env)
    require(env, "c51", SPEC.acts_on)
    device = setup_torch(config)
    q_net = CategoricalQNetwork(env.observation_space, env.action_space, config).to(device)
    optimizer = torch.optim.Adam(q_net.parameters(), lr=config.learning_rate, eps=config.adam_eps, fused=device.type in ("cpu", "cuda"))
    if config.backend == "ray":  # Ape-X: Ray actors collect, this process learns
        return apex.train("c51", config, q_net, optimizer, update, run_dir, **options)
    return offpolicy.train("c51", config, q_net, optimizer, update, run_dir, **options)


def load(config, directory: Path) -> CategoricalQNetwork:
    """The trained network saved in directory (a run's model/); `.predict(obs)` acts greedily."""
    return checkpoint.load_network(CategoricalQNetwork, config, directory)


SPEC = AlgorithmSpec(
    name="c51",
    family="deep",
    summary="C51 categorical distributional DQN: a return distribution on fixed atoms, cross-entropy to the projected target; discrete actions",
    config=C51Config,
    presets=PRESETS,
    train=train,
    load=load,
    acts_on=ActsOn("gymnasium", observations=("Box",), actions=("Discrete",)),
)
preset = SPEC.preset
