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

import copy
import dataclasses
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import Tensor, nn

from rlsuite.core import config as configs
from rlsuite.core.loop import Loop
from rlsuite.core.run import Run
from rlsuite.core.seeding import derive_seed, setup_torch
from rlsuite.core.spec import ActsOn, AlgorithmSpec
from rlsuite.envs.checkpointing import CheckpointableEnvs
from rlsuite.envs.evaluation import EpisodeEvaluator
from rlsuite.envs.resolver import require, resolve
from rlsuite.errors import check
from rlsuite.ops import q_targets
from rlsuite.ops.nets import mlp
from rlsuite.rollout import offpolicy
from rlsuite.rollout.collect import collect_transitions
from rlsuite.rollout.replay import ReplayBatch, ReplayBuffer
from rlsuite.rollout.step import EnvCursor


@dataclasses.dataclass(frozen=True)
class C51Config(configs.TorchConfig):
    num_envs: int = 1
    """Parallel environments; each vector step adds num_envs transitions."""
    learning_rate: float = 2.5e-4
    """Adam step size."""
    adam_eps: float = 0.01 / 32
    """Adam's epsilon (the paper's 0.01 / batch size)."""
    buffer_size: int = 1_000_000
    """Replay capacity in transitions (rounded down to a multiple of num_envs)."""
    learning_starts: int = 100
    """Env steps of uniformly random actions before epsilon-greedy acting; gradient phases begin once more than this many were taken."""
    batch_size: int = 32
    """Transitions per gradient step."""
    gamma: float = 0.99
    """Discount factor."""
    train_freq: int = 4
    """Vector steps (env steps per env) collected between gradient phases."""
    gradient_steps: int = 1
    """Gradient steps per phase; -1: one per env step collected (train_freq * num_envs)."""
    target_update_every: int = 10_000
    """Refresh the target network every this many env steps, counted as SB3's DQN counts its target_update_interval (see dqn.DQNConfig)."""
    tau: float = 1.0
    """Refresh theta^- <- tau theta + (1 - tau) theta^-; 1 copies."""
    exploration_fraction: float = 0.1
    """Fraction of total_steps over which epsilon decays linearly from initial to final."""
    exploration_initial_eps: float = 1.0
    """epsilon at the start of the decay."""
    exploration_final_eps: float = 0.05
    """epsilon after the decay (also what predict(deterministic=False) uses)."""
    max_grad_norm: float = 10.0
    """Global gradient-norm clip (0 disables)."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths."""
    activation: Literal["relu", "tanh", "elu", "gelu"] = "relu"
    """Hidden activation."""
    n_step: int = 1
    """Rewards summed before bootstrapping (1: one-step)."""
    atoms: int = 51
    """Number of atoms K of the support."""
    v_min: float = -10.0
    """Lowest return on the support."""
    v_max: float = 10.0
    """Highest return on the support."""

    def __post_init__(self) -> None:
        super().__post_init__()
        offpolicy.check_config(self)
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
        self.net = mlp(int(np.prod(observation_space.shape)), config.hidden_sizes, self.n_actions * config.atoms, config.activation)
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


@dataclasses.dataclass(frozen=True)
class C51State:
    """What continues from one iteration to the next besides the networks, optimizer, envs and buffer."""

    cursor: EnvCursor
    rng: np.random.Generator
    """Draws exploration and replay minibatches."""
    since_target_update: int
    """Vector steps since the target network was last refreshed."""
    gradient_steps: int
    """Gradient steps taken so far."""


def train(config: C51Config, run_dir=None, **options: Any) -> Run:
    """Train C51; returns the Run. `options` are the Loop's (resume, overwrite, quiet, callbacks)."""
    env = resolve(config.env)
    require(env, "c51", SPEC.acts_on)
    device = setup_torch(config)
    q_net = CategoricalQNetwork(env.observation_space, env.action_space, config).to(device)
    target_net = copy.deepcopy(q_net).requires_grad_(False)
    optimizer = torch.optim.Adam(q_net.parameters(), lr=config.learning_rate, eps=config.adam_eps, fused=device.type in ("cpu", "cuda"))
    buffer = ReplayBuffer(config.buffer_size, config.num_envs, env.observation_space.shape, ())
    envs = CheckpointableEnvs(offpolicy.make_envs(config))
    with Loop(
        "c51", config, run_dir, budget=config.budget, schedule=config.schedule,
        parts={"q_net": q_net, "target_net": target_net, "optimizer": optimizer, "envs": envs, "replay": buffer},
        evaluate=EpisodeEvaluator(config.env, config.eval_episodes, q_net.greedy, config.seed),
        export=lambda directory: save_policy(q_net, directory), **options,
    ) as loop:
        state = loop.start(lambda: C51State(
            EnvCursor.reset(envs, derive_seed(config.seed, "train-envs")), np.random.default_rng(derive_seed(config.seed, "c51")), 0, 0))
        rng = state.rng
        while loop.running():
            vector_steps = min(config.train_freq, -(-(config.total_steps - loop.step) // config.num_envs))
            epsilons = iter([offpolicy.exploration_rate(loop.step + i * config.num_envs, config) for i in range(vector_steps)])
            episodes, cursor = collect_transitions(
                envs, state.cursor, lambda obs: offpolicy.epsilon_greedy(q_net.greedy, obs, next(epsilons), q_net.n_actions, rng), buffer, vector_steps
            )
            collected = vector_steps * config.num_envs
            refreshes, since = offpolicy.target_refreshes(state.since_target_update, vector_steps, config)
            offpolicy.refresh_target(target_net, q_net, config.tau, refreshes)
            metrics: dict[str, float] = {"charts/epsilon": offpolicy.exploration_rate(loop.step, config)}
            done_steps = state.gradient_steps
            steps = offpolicy.phase_steps(config, collected)
            if loop.step + collected > config.learning_starts and steps > 0:
                metrics |= update(q_net, target_net, optimizer, offpolicy.sample_phase(buffer, rng, steps, config, device), config)
                done_steps += steps
            state = C51State(cursor, rng, since, done_steps)
            loop.record(collected, metrics, episodes=episodes, state=state)
        return loop.finish()


def save_policy(q_net: CategoricalQNetwork, directory: Path) -> None:
    torch.save({"state_dict": q_net.state_dict(), "observation_space": q_net.observation_space, "action_space": q_net.action_space}, directory / "policy.pt")


def load(config: C51Config, directory: Path) -> CategoricalQNetwork:
    """The trained network saved in directory (a run's model/); `.predict(obs)` acts greedily in the mean."""
    saved = torch.load(directory / "policy.pt", map_location="cpu", weights_only=False)
    q_net = CategoricalQNetwork(saved["observation_space"], saved["action_space"], config)
    q_net.load_state_dict(saved["state_dict"])
    return q_net.eval()


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
