"""What the value-based off-policy methods (DQN and its variants, C51) share besides the replay
buffer: Stable-Baselines3's epsilon schedule, epsilon-greedy acting over a vector env, the
minibatches of a gradient phase drawn in one call, and the target-network refresh clock.

The training loop these serve (written out in each algorithm file) is SB3's:

    repeat: collect train_freq vector steps, acting epsilon-greedily
            refresh the target network as many times as fell due during those steps
            if more than learning_starts env steps were taken: one gradient phase

Target refreshes are counted in env steps, as SB3's `target_update_interval` is (its `_on_step`
runs once per vector step); since they fall due only while collecting, the target network is
fixed within a gradient phase, which is what lets a phase evaluate it once for all minibatches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from rlsuite.envs.vector import make_vector_env
from rlsuite.errors import check
from rlsuite.ops.nets import polyak_update
from rlsuite.rollout.replay import ReplayBatch, ReplayBuffer


def check_config(config) -> None:
    """Validate the fields every DQN-style config has (see rlsuite.algos.deep.dqn.DQNConfig)."""
    for name in ("num_envs", "batch_size", "train_freq", "target_update_every", "n_step"):
        check(getattr(config, name) >= 1, f"{name} must be >= 1, got {getattr(config, name)}.")
    check(config.buffer_size >= max(config.batch_size, config.num_envs),
          f"buffer_size ({config.buffer_size}) must be at least batch_size ({config.batch_size}) and num_envs ({config.num_envs}).")
    check(config.learning_starts >= 0, f"learning_starts must be >= 0, got {config.learning_starts}.")
    check(config.gradient_steps >= -1, f"gradient_steps must be >= 0, or -1 for one per env step collected; got {config.gradient_steps}.")
    check(config.learning_rate > 0, f"learning_rate must be > 0, got {config.learning_rate}.")
    check(0 <= config.gamma <= 1, f"gamma must be in [0, 1], got {config.gamma}.")
    check(0 < config.tau <= 1, f"tau must be in (0, 1] (1 copies the online network), got {config.tau}.")
    check(0 <= config.exploration_fraction <= 1, f"exploration_fraction must be in [0, 1], got {config.exploration_fraction}.")
    for name in ("exploration_initial_eps", "exploration_final_eps"):
        check(0 <= getattr(config, name) <= 1, f"{name} must be in [0, 1], got {getattr(config, name)}.")
    check(config.max_grad_norm >= 0, f"max_grad_norm must be >= 0 (0 disables clipping), got {config.max_grad_norm}.")
    check(len(config.hidden_sizes) >= 1 and min(config.hidden_sizes) >= 1, f"hidden_sizes must be positive widths, got {config.hidden_sizes}.")


def make_envs(config) -> gym.vector.VectorEnv:
    """The training envs. One env steps as a plain SyncVectorEnv: Gymnasium's NumPy-vectorized
    CartPole, for instance, takes about 1.5x as long per step as the plain env when N = 1."""
    return make_vector_env(config.env, config.num_envs, mode="sync" if config.num_envs == 1 else None)


def exploration_rate(step: int, config) -> float:
    """epsilon for the vector step taken after `step` env steps: 1 (uniform random actions, SB3's
    warm-up) before learning_starts, then SB3's linear schedule from exploration_initial_eps to
    exploration_final_eps over the first exploration_fraction of total_steps, then the final value."""
    if step < config.learning_starts:
        return 1.0
    progress = step / config.total_steps
    if progress >= config.exploration_fraction:
        return config.exploration_final_eps
    return config.exploration_initial_eps + progress * (config.exploration_final_eps - config.exploration_initial_eps) / config.exploration_fraction


def epsilon_greedy(greedy: Callable[[np.ndarray], np.ndarray], obs: np.ndarray, epsilon: float, n_actions: int, rng: np.random.Generator) -> np.ndarray:
    """For each env apart, a uniformly random action with probability epsilon, else greedy(obs).

    (SB3 tosses one coin for all envs of a vector step; the same with one env.) One draw of two
    uniforms per env (the coin, and the random action as floor(u * n_actions)) is made every
    time, so the generator advances alike whatever the network says; the network runs only when
    some env acts greedily.
    """
    coin, u = rng.random((2, len(obs)))
    explore = coin < epsilon
    random_actions = (u * n_actions).astype(np.int64)
    if explore.all():
        return random_actions
    greedy_actions = greedy(obs)
    return np.where(explore, random_actions, greedy_actions) if explore.any() else greedy_actions


def phase_steps(config, env_steps: int) -> int:
    """Gradient steps of a phase that follows `env_steps` collected ones (-1: one per env step)."""
    return config.gradient_steps if config.gradient_steps >= 0 else env_steps


def sample_phase(buffer: ReplayBuffer, rng: np.random.Generator, steps: int, config, device: torch.device) -> ReplayBatch[Tensor]:
    """The minibatches of a whole gradient phase, [steps * batch_size], in one draw and one transfer.

    The buffer does not change during a phase, so this is the same distribution as drawing each
    minibatch just before its step (minibatch k is rows k * batch_size ... of the result).
    """
    return buffer.sample(steps * config.batch_size, rng, n_step=config.n_step, gamma=config.gamma).to_torch(device)


def minibatch(batch: ReplayBatch[Tensor], k: int, size: int) -> ReplayBatch[Tensor]:
    """Rows k * size ... (k + 1) * size - 1 of every field (views, no copy)."""
    rows = slice(k * size, (k + 1) * size)
    return ReplayBatch(**{f.name: getattr(batch, f.name)[rows] for f in fields(batch)})


@torch.no_grad()
def forward_in_chunks(net: nn.Module, x: Tensor, rows: int = 256) -> Tensor:
    """net(x) for a whole phase's rows, a few minibatches at a time: on CPU a 256-wide layer runs
    about twice as fast per row on 256 rows as on 8,192, whose activations outgrow the caches."""
    return torch.cat([net(chunk) for chunk in x.split(rows)]) if x.shape[0] > rows else net(x)


def clip_grad_norm(grads: list[Tensor], max_norm: float) -> Tensor:
    """torch.nn.utils.clip_grad_norm_ (scale all gradients by min(1, max_norm / (||g|| + 1e-6)),
    ||g|| the norm of all of them together) without its per-call grouping by device and dtype,
    which costs as much as the arithmetic on a small network. Returns ||g||; no host sync."""
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    torch._foreach_mul_(grads, (max_norm / (total + 1e-6)).clamp_(max=1.0))
    return total


def target_refreshes(since: int, vector_steps: int, config) -> tuple[int, int]:
    """(refreshes due, vector steps since the last one) after `vector_steps` more vector steps,
    given `since` before them. As SB3: a refresh every max(target_update_every // num_envs, 1)
    vector steps, i.e. every target_update_every env steps when num_envs divides it."""
    period = max(config.target_update_every // config.num_envs, 1)
    return divmod(since + vector_steps, period)


@torch.no_grad()
def refresh_target(target: nn.Module, online: nn.Module, tau: float, times: int) -> None:
    """`times` Polyak refreshes theta^- <- tau theta + (1 - tau) theta^- in a row, the online network
    unchanged between them (they fall due while collecting): one lerp of weight 1 - (1 - tau)^times.
    tau = 1 copies (torch's lerp of weight 1 returns the end point exactly)."""
    if times > 0:
        polyak_update(target, online, 1.0 - (1.0 - tau) ** times)
