"""Ape-X (Horgan et al. 2018, "Distributed Prioritized Experience Replay", arXiv:1803.00933):
DQN and C51 with `--backend ray`. Actors and the learner run apart and never wait for each other:

    actor i (a Ray worker, its own envs and a copy of the Q-network):
        repeat: act epsilon_i-greedily for train_freq vector steps; send the transitions
                to the learner; take the newest weights the learner sent with the request
    learner (this process):
        repeat: take whichever actor's transitions arrived first (ray.wait), add them to the
                shared replay, refresh the target network on its clock, run one gradient
                phase (the algorithm's own `update`), send that actor its next request with
                the newest weights

Each env copy j of the num_envs in all explores with its own fixed epsilon, the paper's ladder
epsilon_j = eps^(1 + alpha * j / (num_envs - 1)) with eps = 0.4 and alpha = 7 (one env copy:
0.4), instead of one decaying schedule; the first learning_starts env steps are uniformly random,
as in the local loop. The replay is shared by all actors but kept as one ReplayBuffer shard per
actor, so each shard stays in its actor's time order and n-step windows never join two actors'
transitions; a minibatch draws from the shards in proportion to what they hold (uniformly over
all transitions). What is not the paper's: replay is uniform, not prioritized (rlsuite's buffer
has no priorities yet), and the actors do not compute initial priorities.

Checkpoints hold the networks, the optimizer, every shard and every actor's envs. A transition
batch still on its way when a checkpoint is taken is not in it: a resumed run continues, but not
bit for bit as the uninterrupted one would.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rlsuite.core import checkpoint
from rlsuite.core.loop import Episodes, Loop
from rlsuite.core.run import Run
from rlsuite.core.seeding import derive_seed
from rlsuite.envs.checkpointing import CheckpointableEnvs
from rlsuite.envs.evaluation import EpisodeEvaluator
from rlsuite.rollout import offpolicy
from rlsuite.rollout.collect import collect_transitions
from rlsuite.rollout.replay import TRANSITION_FIELDS, ReplayBatch, ReplayBuffer
from rlsuite.rollout.step import EnvCursor
from rlsuite.scale.ray import WorkerGroup

APEX_EPSILON, APEX_ALPHA = 0.4, 7.0


def epsilon_ladder(num_envs: int, base: float = APEX_EPSILON, alpha: float = APEX_ALPHA) -> np.ndarray:
    """Ape-X's per-actor exploration rates eps^(1 + alpha * j / (N - 1)), j = 0 .. N-1 (eps for N = 1)."""
    if num_envs == 1:
        return np.array([base])
    return base ** (1.0 + alpha * np.arange(num_envs) / (num_envs - 1))


class ApexActor:
    """One Ray actor: envs, a CPU Q-network, and the epsilons of its env copies."""

    def __init__(self, config, q_net: nn.Module, num_envs: int, epsilons: np.ndarray, seed: int):
        torch.set_num_threads(max(config.torch_threads, 1))
        self.envs = CheckpointableEnvs(offpolicy.make_envs(config, num_envs))
        self.q_net = q_net
        self.epsilons = np.asarray(epsilons)
        self.rng = np.random.default_rng(seed)
        self.cursor = EnvCursor.reset(self.envs, seed)
        self.n_actions = self.q_net.n_actions

    def collect(self, weights: dict[str, torch.Tensor], vector_steps: int, uniform: bool) -> tuple[dict[str, np.ndarray], Episodes]:
        """vector_steps steps epsilon-greedily (uniformly random while `uniform`) with the learner's
        weights: the transitions as arrays [vector_steps, num_envs, ...] in ReplayBuffer.add's order."""
        self.q_net.load_state_dict(weights)
        chunk = _Chunk()
        epsilons = 1.0 if uniform else self.epsilons

        def act(obs: np.ndarray) -> np.ndarray:
            return offpolicy.epsilon_greedy(self.q_net.greedy, obs, epsilons, self.n_actions, self.rng)

        episodes, self.cursor = collect_transitions(self.envs, self.cursor, act, chunk, vector_steps)
        return chunk.arrays(), episodes

    def get_state(self) -> bytes:
        return pickle.dumps({"envs": self.envs.state_dict(), "cursor": self.cursor, "rng": self.rng})

    def set_state(self, blob: bytes) -> None:
        state = pickle.loads(blob)
        self.envs.load_state_dict(state["envs"])
        self.cursor, self.rng = state["cursor"], state["rng"]


class _Chunk:
    """A stand-in for the replay buffer on the actor's side: collect_transitions adds to it."""

    def __init__(self):
        self.steps: list[tuple] = []

    def add(self, *transition) -> None:
        self.steps.append(transition)

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: np.stack(column) for name, column in zip(TRANSITION_FIELDS, zip(*self.steps))}


class ShardedReplay:
    """One ReplayBuffer per actor, sampled as one buffer: each draw picks a shard in proportion
    to the valid transitions it holds, so every stored transition is equally likely. A
    DirectoryPart: each shard saves into its own folder."""

    def __init__(self, shards: list[ReplayBuffer]):
        self.shards = shards

    def __len__(self) -> int:
        return sum(len(shard) for shard in self.shards)

    def add_chunk(self, index: int, arrays: dict[str, np.ndarray]) -> None:
        shard = self.shards[index]
        for t in range(len(arrays["obs"])):
            shard.add(*(arrays[name][t] for name in TRANSITION_FIELDS))

    def sample(self, batch_size: int, rng: np.random.Generator, n_step: int = 1, gamma: float = 0.99) -> ReplayBatch[np.ndarray]:
        sizes = np.array([len(shard) for shard in self.shards], dtype=np.float64)
        counts = rng.multinomial(batch_size, sizes / sizes.sum())
        parts = [shard.sample(int(count), rng, n_step, gamma) for shard, count in zip(self.shards, counts) if count > 0]
        order = rng.permutation(batch_size)  # minibatches are consecutive rows: mix the shards within each
        return ReplayBatch(**{f.name: np.concatenate([getattr(part, f.name) for part in parts])[order] for f in dataclasses.fields(ReplayBatch)})

    def save_to(self, directory: Path) -> None:
        for index, shard in enumerate(self.shards):
            shard.save_to(Path(directory) / f"shard-{index}")

    def load_from(self, directory: Path) -> None:
        for index, shard in enumerate(self.shards):
            shard.load_from(Path(directory) / f"shard-{index}")


def train(algo: str, config, q_net: nn.Module, optimizer: torch.optim.Optimizer, update: offpolicy.UpdateFn,
          run_dir=None, **options: Any) -> Run:
    """offpolicy.train's contract (the algorithm's update runs each gradient phase) with Ape-X's
    actors as the collectors, each acting with a CPU copy of q_net."""
    target_net = copy.deepcopy(q_net).requires_grad_(False)
    per_worker = config.num_envs // config.num_workers
    ladder = epsilon_ladder(config.num_envs)
    actor_net = copy.deepcopy(q_net).cpu()  # its weights come with every request
    actors = WorkerGroup(config, ApexActor, lambda index, seed: (config, actor_net, per_worker, ladder[index * per_worker:(index + 1) * per_worker], seed))
    shard_capacity = max(config.buffer_size // config.num_workers, per_worker)
    replay = ShardedReplay([ReplayBuffer(shard_capacity, per_worker, q_net.observation_space.shape, ()) for _ in range(config.num_workers)])
    device = next(q_net.parameters()).device
    chunk_steps = config.train_freq * per_worker
    # The local loop's replay ratio, gradient steps per env step, whatever the chunk size.
    ratio = offpolicy.phase_steps(config, config.train_freq * config.num_envs) / (config.train_freq * config.num_envs)
    with Loop(
        algo, config, run_dir, budget=config.budget, schedule=config.schedule,
        parts={"q_net": q_net, "target_net": target_net, "optimizer": optimizer, "envs": actors, "replay": replay},
        evaluate=EpisodeEvaluator(config.env, config.eval_episodes, q_net.greedy, config.seed),
        export=lambda directory: checkpoint.save_network(q_net, directory), **options,
    ) as loop:
        state = loop.start(lambda: offpolicy.OffPolicyState(None, np.random.default_rng(derive_seed(config.seed, algo)), 0))
        rng, done_steps = state.rng, state.gradient_steps

        def request(index: int, latest) -> tuple:
            args = (latest, config.train_freq, loop.step < config.learning_starts)
            return actors.workers[index].collect.remote(*args), args

        latest = actors.put_weights(q_net)
        pending = {}
        for index in range(config.num_workers):
            ref, args = request(index, latest)
            pending[ref] = (index, args)
        while loop.running():
            [ref], _ = actors.ray.wait(list(pending), num_returns=1)
            index, args = pending.pop(ref)
            arrays, episodes = actors.get(index, ref, "collect", *args)
            replay.add_chunk(index, arrays)
            after = loop.step + chunk_steps
            refreshes = after // config.target_update_every - loop.step // config.target_update_every
            offpolicy.refresh_target(target_net, q_net, config.tau, refreshes)
            metrics: dict[str, float] = {"charts/replay_size": len(replay)}
            phase = math.floor((after - config.learning_starts) * ratio) - done_steps if after > config.learning_starts else 0
            if phase > 0:
                metrics |= update(q_net, target_net, optimizer, offpolicy.sample_phase(replay, rng, phase, config, device), config)
                done_steps += phase
                latest = actors.put_weights(q_net)
            state = offpolicy.OffPolicyState(None, rng, done_steps)
            loop.record(chunk_steps, metrics, episodes=episodes, state=state)
            ref, args = request(index, latest)
            pending[ref] = (index, args)
        return loop.finish()
