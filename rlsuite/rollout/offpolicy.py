"""What the off-policy methods share besides the replay buffer: Stable-Baselines3's training
loop (`run`), the minibatches of a gradient phase drawn in one call, and, for the value-based
ones (DQN and its variants, C51; `train`), SB3's epsilon schedule, epsilon-greedy acting over a
vector env and the target-network refresh clock. DDPG, TD3 and SAC use `run` directly.

The loop is SB3's:

    repeat: collect train_freq vector steps with the behaviour policy (uniformly random actions
                for the first learning_starts env steps)
            (value-based) refresh the target network as many times as fell due during those steps
            if more than learning_starts env steps were taken: one gradient phase

Target refreshes are counted in env steps, as SB3's `target_update_interval` is (its `_on_step`
runs once per vector step); since they fall due only while collecting, the target network is
fixed within a gradient phase, which is what lets a phase evaluate it once for all minibatches.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from rlsuite.core import checkpoint, config as configs
from rlsuite.core.loop import Loop
from rlsuite.core.run import Run
from rlsuite.core.seeding import derive_seed
from rlsuite.envs.checkpointing import CheckpointableEnvs
from rlsuite.envs.evaluation import EpisodeEvaluator
from rlsuite.envs.vector import make_vector_env
from rlsuite.errors import check
from rlsuite.ops.nets import polyak_update
from rlsuite.rollout.collect import collect_transitions
from rlsuite.rollout.replay import ReplayBatch, ReplayBuffer
from rlsuite.rollout.step import EnvCursor


@dataclasses.dataclass(frozen=True)
class ReplayConfig(configs.TorchConfig):
    """The fields of every off-policy method: replay and Stable-Baselines3's schedule."""

    num_envs: int = 1
    """Parallel environments; each vector step adds num_envs transitions."""
    learning_rate: float = 1e-4
    """Adam step size."""
    buffer_size: int = 1_000_000
    """Replay capacity in transitions (rounded down to a multiple of num_envs)."""
    learning_starts: int = 100
    """Env steps of uniformly random actions before the learned policy acts; gradient phases begin once more than this many were taken."""
    batch_size: int = 32
    """Transitions per gradient step."""
    gamma: float = 0.99
    """Discount factor."""
    train_freq: int = 4
    """Vector steps (env steps per env) collected between gradient phases."""
    gradient_steps: int = 1
    """Gradient steps per phase; -1: one per env step collected (train_freq * num_envs)."""
    tau: float = 1.0
    """Target networks move theta^- <- tau theta + (1 - tau) theta^- (1 copies)."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the networks."""
    activation: Literal["relu", "tanh", "elu", "gelu"] = "relu"
    """Hidden activation."""
    n_step: int = 1
    """Rewards summed before bootstrapping (1: one-step TD)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_replay_config(self)


def check_replay_config(config) -> None:
    for name in ("num_envs", "batch_size", "train_freq", "n_step"):
        check(getattr(config, name) >= 1, f"{name} must be >= 1, got {getattr(config, name)}.")
    check(config.buffer_size >= max(config.batch_size, config.num_envs),
          f"buffer_size ({config.buffer_size}) must be at least batch_size ({config.batch_size}) and num_envs ({config.num_envs}).")
    check(config.learning_starts >= 0, f"learning_starts must be >= 0, got {config.learning_starts}.")
    check(config.gradient_steps >= -1, f"gradient_steps must be >= 0, or -1 for one per env step collected; got {config.gradient_steps}.")
    check(config.learning_rate > 0, f"learning_rate must be > 0, got {config.learning_rate}.")
    check(0 <= config.gamma <= 1, f"gamma must be in [0, 1], got {config.gamma}.")
    check(0 < config.tau <= 1, f"tau must be in (0, 1] (1 copies the online network), got {config.tau}.")
    check(len(config.hidden_sizes) >= 1 and min(config.hidden_sizes) >= 1, f"hidden_sizes must be positive widths, got {config.hidden_sizes}.")


@dataclasses.dataclass(frozen=True)
class OffPolicyConfig(configs.WorkersConfig, ReplayConfig):
    """The fields of every value-based off-policy method (DQN and its variants, C51): a target
    network refreshed on a clock, epsilon-greedy exploration, gradient clipping; with backend
    'ray', Ape-X's actors collect (rlsuite.scale.apex)."""

    target_update_every: int = 10_000
    """Refresh the target network every this many env steps (SB3's target_update_interval, counted the same way: every max(target_update_every // num_envs, 1) vector steps). Refreshes fall due while collecting, never inside a gradient phase: with target_update_every <= train_freq * num_envs the target is the online network as it was before each phase."""
    exploration_fraction: float = 0.1
    """Fraction of total_steps over which epsilon decays linearly from initial to final."""
    exploration_initial_eps: float = 1.0
    """epsilon at the start of the decay."""
    exploration_final_eps: float = 0.05
    """epsilon after the decay (also what predict(deterministic=False) uses)."""
    max_grad_norm: float = 10.0
    """Global gradient-norm clip (0 disables)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_config(self)


def check_config(config) -> None:
    """Validate the fields every DQN-style config has besides ReplayConfig's."""
    check(config.target_update_every >= 1, f"target_update_every must be >= 1, got {config.target_update_every}.")
    check(0 <= config.exploration_fraction <= 1, f"exploration_fraction must be in [0, 1], got {config.exploration_fraction}.")
    for name in ("exploration_initial_eps", "exploration_final_eps"):
        check(0 <= getattr(config, name) <= 1, f"{name} must be in [0, 1], got {getattr(config, name)}.")
    check(config.max_grad_norm >= 0, f"max_grad_norm must be >= 0 (0 disables clipping), got {config.max_grad_norm}.")
    configs.check_workers(config)


def make_envs(config, num_envs: int | None = None) -> gym.vector.VectorEnv:
    """config.num_envs training envs (or num_envs: an Ape-X actor's share). One env steps as a
    plain SyncVectorEnv: Gymnasium's NumPy-vectorized CartPole, for instance, takes about 1.5x as
    long per step as the plain env when N = 1."""
    num_envs = num_envs or config.num_envs
    return make_vector_env(config.env, num_envs, mode="sync" if num_envs == 1 else None)


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


def epsilon_greedy(greedy: Callable[[np.ndarray], np.ndarray], obs: np.ndarray, epsilon: float | np.ndarray, n_actions: int,
                   rng: np.random.Generator) -> np.ndarray:
    """For each env apart, a uniformly random action with probability epsilon (one for all, or
    one per env: Ape-X's ladder), else greedy(obs).

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


def after_uniform_warm_up(act: Callable[[np.ndarray, np.random.Generator], np.ndarray], config, action_dim: int):
    """The behaviour of continuous-action methods (DDPG, TD3, SAC): actions uniform in [-1, 1]^d
    for the first learning_starts env steps (SB3's warm-up), act(obs, rng) after."""

    def behaviour(obs: np.ndarray, step: int, rng: np.random.Generator) -> np.ndarray:
        if step < config.learning_starts:
            return rng.uniform(-1.0, 1.0, (len(obs), action_dim)).astype(np.float32)
        return act(obs, rng)

    return behaviour


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
    return ReplayBatch(**{f.name: getattr(batch, f.name)[rows] for f in dataclasses.fields(batch)})


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


@dataclasses.dataclass(frozen=True)
class OffPolicyState:
    """What continues from one iteration to the next besides the networks, optimizers, envs and buffer."""

    cursor: EnvCursor | None
    """None when Ape-X's actors hold the envs (rlsuite.scale.apex)."""
    rng: np.random.Generator
    """Draws exploration and replay minibatches (the only NumPy randomness of training besides the envs)."""
    gradient_steps: int
    """Gradient steps taken so far."""


def run(algo: str, config, *, parts: dict[str, Any], buffer: ReplayBuffer, behaviour: Callable[[np.ndarray, int, np.random.Generator], np.ndarray],
        update: Callable[[ReplayBatch[Tensor], int], dict[str, float]], act: Callable[[np.ndarray], np.ndarray], export: Callable,
        device: torch.device, to_env: Callable[[np.ndarray], np.ndarray] | None = None,
        on_collected: Callable[[int, int], dict[str, float]] | None = None, run_dir=None, **options: Any) -> Run:
    """Stable-Baselines3's off-policy schedule (module docstring) around an algorithm's pieces:

    behaviour(obs, step, rng): the actions stored for a vector step taken after `step` env steps
        (to_env maps them to what the env takes, e.g. [-1, 1] to the Box bounds);
    on_collected(step, vector_steps): called after each collection (DQN refreshes its target there);
    update(phase batch, gradient steps taken before it): one gradient phase of phase_steps(...)
        minibatches, returns metrics;
    act(obs): the deterministic policy that is evaluated; export(directory) writes it.
    Checkpoints hold `parts`, the envs and the replay buffer (as arrays)."""
    envs = CheckpointableEnvs(make_envs(config))
    with Loop(
        algo, config, run_dir, budget=config.budget, schedule=config.schedule,
        parts={**parts, "envs": envs, "replay": buffer},
        evaluate=EpisodeEvaluator(config.env, config.eval_episodes, act, config.seed), export=export, **options,
    ) as loop:
        state = loop.start(lambda: OffPolicyState(
            EnvCursor.reset(envs, derive_seed(config.seed, "train-envs")), np.random.default_rng(derive_seed(config.seed, algo)), 0))
        rng = state.rng
        while loop.running():
            # The last iteration stops at the budget instead of running past it.
            vector_steps = min(config.train_freq, -(-(config.total_steps - loop.step) // config.num_envs))
            steps = iter(range(loop.step, loop.step + vector_steps * config.num_envs, config.num_envs))
            episodes, cursor = collect_transitions(envs, state.cursor, lambda obs: behaviour(obs, next(steps), rng), buffer, vector_steps, to_env)
            collected = vector_steps * config.num_envs
            metrics = on_collected(loop.step, vector_steps) if on_collected is not None else {}
            done_steps = state.gradient_steps
            phase = phase_steps(config, collected)
            if loop.step + collected > config.learning_starts and phase > 0:
                metrics |= update(sample_phase(buffer, rng, phase, config, device), done_steps)
                done_steps += phase
            state = OffPolicyState(cursor, rng, done_steps)
            loop.record(collected, metrics, episodes=episodes, state=state)
        return loop.finish()


UpdateFn = Callable[[nn.Module, nn.Module, torch.optim.Optimizer, ReplayBatch[Tensor], Any], dict[str, float]]
"""update(q_net, target_net, optimizer, phase batch, config) -> metrics: one gradient phase."""


def train(algo: str, config: OffPolicyConfig, q_net: nn.Module, optimizer: torch.optim.Optimizer, update: UpdateFn, run_dir=None, **options: Any) -> Run:
    """Train q_net (with `greedy(obs)`, `n_actions` and its spaces) by SB3's schedule, acting
    epsilon-greedily and refreshing a target network on SB3's clock; the algorithm's `update`
    runs each gradient phase. Returns the Run."""
    target_net = copy.deepcopy(q_net).requires_grad_(False)
    period = max(config.target_update_every // config.num_envs, 1)

    def refresh_due_targets(step: int, vector_steps: int) -> dict[str, float]:
        refreshes, _ = target_refreshes((step // config.num_envs) % period, vector_steps, config)
        refresh_target(target_net, q_net, config.tau, refreshes)
        return {"charts/epsilon": exploration_rate(step, config)}

    return run(
        algo, config, parts={"q_net": q_net, "target_net": target_net, "optimizer": optimizer},
        buffer=ReplayBuffer(config.buffer_size, config.num_envs, q_net.observation_space.shape, ()),
        behaviour=lambda obs, step, rng: epsilon_greedy(q_net.greedy, obs, exploration_rate(step, config), q_net.n_actions, rng),
        update=lambda batch, _: update(q_net, target_net, optimizer, batch, config), act=q_net.greedy,
        export=lambda directory: checkpoint.save_network(q_net, directory), device=next(q_net.parameters()).device,
        on_collected=refresh_due_targets, run_dir=run_dir, **options,
    )
