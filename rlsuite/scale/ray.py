"""Rollout workers as Ray actors (`--backend ray --num-workers N`).

Synchronous collection for the on-policy methods (PPO, TRPO, A2C and the actor-critic rungs),
as RLlib's and IMPALA-less A2C's synchronous sampling: each iteration the learner puts its
weights in Ray's object store once, every worker loads them, steps its own num_envs / N envs
with its own copy of the policy (rlsuite.rollout.collect.collect_rollout, the very function the
local backend runs) and sends back its [T, num_envs / N] slice of the rollout; the learner
writes the slices side by side into its [T, num_envs] rollout and updates as it always does.
The algorithm file does not know which backend collected.

A worker that dies (its simulator crashed, its node went away) is replaced by a new one with
fresh envs, the event goes to the run's events.log, and the replacement collects the slice
with the same weights, so the batch the learner sees keeps its shape. After
max_worker_restarts replacements the run stops with an error; its last checkpoint resumes it.

Checkpoints hold each worker's envs, cursor and torch RNG (the "envs" part), so a resumed run
continues every worker's episodes where they were. With --normalize-obs a worker normalizes by
the learner's statistics as of the round's weights plus what it has seen since; the learner
merges every worker's observations into its own statistics after each round.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from rlsuite.core.loop import Episodes
from rlsuite.core.seeding import derive_seed
from rlsuite.errors import CheckpointError, RLSuiteError
from rlsuite.rollout import onpolicy
from rlsuite.rollout.buffers import Rollout
from rlsuite.rollout.collect import collect_rollout
from rlsuite.rollout.step import EnvCursor
from rlsuite.scale.runtime import init_ray


class WorkersFailedError(RLSuiteError):
    """Rollout workers kept dying: more restarts than the config allows."""


class RolloutWorker:
    """One Ray actor: its own training envs and a CPU copy of the agent."""

    def __init__(self, config, make_agent: Callable[[], torch.nn.Module], num_envs: int, seed: int):
        torch.set_num_threads(max(config.torch_threads, 1))
        torch.manual_seed(seed)
        self.envs = onpolicy.make_envs(config, num_envs)
        self.agent = make_agent()
        self.rollout = onpolicy.allocate_rollout(config, self.agent, torch.device("cpu"), num_envs)
        self.cursor = EnvCursor.reset(self.envs, seed)

    def collect(self, weights: dict[str, torch.Tensor]) -> tuple[Rollout, Episodes, np.ndarray | None]:
        """The rollout slice, its finished episodes, and the raw observations the agent's
        normalizer took in (None without --normalize-obs), for the learner's statistics."""
        self.agent.load_state_dict(weights)
        agent = self.agent if self.agent.obs_norm is None else _RecordingObservations(self.agent)
        episodes, self.cursor = collect_rollout(self.envs, agent, self.rollout, self.cursor)
        return self.rollout, episodes, None if agent is self.agent else np.stack(agent.seen)

    def get_state(self) -> bytes:
        return pickle.dumps({"envs": self.envs.state_dict(), "cursor": self.cursor, "torch_rng": torch.get_rng_state()})

    def set_state(self, blob: bytes) -> None:
        state = pickle.loads(blob)
        self.envs.load_state_dict(state["envs"])
        self.cursor = state["cursor"]
        torch.set_rng_state(state["torch_rng"])

    def close(self) -> None:
        self.envs.close()


class _RecordingObservations:
    """The agent as collect_rollout sees it, keeping the observations its normalizer takes in."""

    def __init__(self, agent):
        self.agent, self.seen = agent, []

    def observe(self, obs: np.ndarray, update_stats: bool) -> torch.Tensor:
        if update_stats:
            self.seen.append(obs)
        return self.agent.observe(obs, update_stats)

    def __getattr__(self, name: str):
        return getattr(self.agent, name)


class WorkerGroup:
    """num_workers Ray actors of one class, each replaced when it dies: what the synchronous
    rollouts and Ape-X's actors share. make_args(index, seed) gives a worker's constructor
    arguments; a replacement gets a seed of its own, so it does not replay its predecessor's
    episodes. The group is a checkpoint part (the actors' get_state / set_state)."""

    def __init__(self, config, actor_class: type, make_args: Callable[[int, int], tuple]):
        self.ray = init_ray(config.ray_address, num_cpus=max(os.cpu_count() or 1, config.num_workers))
        self.config, self.make_args = config, make_args
        self.remote_class = self.ray.remote(num_cpus=1)(actor_class)
        self.restarts = 0
        self.notify: Callable[[str], None] = print
        self.workers = [self._start(index, derive_seed(config.seed, "train-envs", index)) for index in range(config.num_workers)]

    def _start(self, index: int, seed: int):
        return self.remote_class.remote(*self.make_args(index, seed))

    def attach(self, loop) -> None:
        """Restarts are reported to the loop (its events.log) from now on: the Loop calls this
        on its parts when it opens."""
        self.notify = loop.note

    def put_weights(self, module: torch.nn.Module):
        """module's weights as CPU tensors in Ray's object store, once for every worker."""
        return self.ray.put({name: value.detach().cpu() for name, value in module.state_dict().items()})

    def get(self, index: int, ref, method: str, *args: Any) -> Any:
        """The result of `ref`, a call of `method(*args)` on worker index; if the worker died, it
        is replaced and the call made again on the replacement."""
        while True:
            try:
                return self.ray.get(ref)
            except (self.ray.exceptions.RayActorError, self.ray.exceptions.WorkerCrashedError) as exc:
                self.restarts += 1
                if self.restarts > self.config.max_worker_restarts:
                    raise WorkersFailedError(
                        f"Ray rollout worker {index} died ({type(exc).__name__}) and the run has used its "
                        f"{self.config.max_worker_restarts} restarts (--max-worker-restarts); see the worker's log under "
                        "/tmp/ray/session_latest/logs. The last checkpoint resumes the run: `rlsuite resume RUN_DIR`."
                    ) from None
                self.workers[index] = self._start(index, derive_seed(self.config.seed, "train-envs", index, "restart", self.restarts))
                self.notify(f"Ray rollout worker {index} died ({type(exc).__name__}); restarted it with fresh envs "
                            f"(restart {self.restarts} of at most {self.config.max_worker_restarts}); its unfinished episodes are lost.")
                ref = getattr(self.workers[index], method).remote(*args)

    def state_dict(self) -> dict[str, Any]:
        return {"workers": self.ray.get([worker.get_state.remote() for worker in self.workers])}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        blobs = state.get("workers")
        if blobs is None or len(blobs) != len(self.workers):
            found = "local envs" if blobs is None else f"{len(blobs)} workers"
            raise CheckpointError(f"this checkpoint holds {found}, not {len(self.workers)} Ray workers: resume it with the backend and num_workers it was trained with.")
        self.ray.get([worker.set_state.remote(blob) for worker, blob in zip(self.workers, blobs)])

    def close(self) -> None:
        for worker in self.workers:
            self.ray.kill(worker)
        self.workers = []


class RayRollouts:
    """The learner's side of synchronous collection: LocalRollouts' methods (reset, collect,
    checkpoint_part) over num_workers RolloutWorker actors."""

    def __init__(self, config, make_agent: Callable[[], torch.nn.Module]):
        self.envs_per_worker = config.num_envs // config.num_workers
        self.group = WorkerGroup(config, RolloutWorker, lambda index, seed: (config, make_agent, self.envs_per_worker, seed))
        self.ray = self.group.ray
        self.checkpoint_part = self.group

    def reset(self, seed: int) -> None:
        """The workers reset their envs when they start (seeded per worker from config.seed);
        the learner holds no cursor."""
        return None

    def collect(self, agent, rollout: Rollout, cursor: None) -> tuple[Episodes, None]:
        """One synchronous round: broadcast the weights, gather every worker's slice into `rollout`."""
        weights = self.group.put_weights(agent)
        pending = [worker.collect.remote(weights) for worker in self.group.workers]
        episodes = Episodes([], [])
        for index, ref in enumerate(pending):
            part, finished, seen = self.group.get(index, ref, "collect", weights)
            columns = slice(index * self.envs_per_worker, (index + 1) * self.envs_per_worker)
            for field in dataclasses.fields(Rollout):
                target = getattr(rollout, field.name)
                if field.name == "next_value":
                    target[columns] = getattr(part, field.name).to(target.device)
                else:
                    target[:, columns] = getattr(part, field.name).to(target.device)
            episodes.returns.extend(finished.returns)
            episodes.lengths.extend(finished.lengths)
            if seen is not None:
                # Chan's merge of each worker's batch into the learner's statistics: the same
                # result as one normalizer that saw every worker's observations, which the next
                # round's weights carry back to all workers (as RLlib's MeanStdFilter syncs).
                agent.obs_norm.update(torch.tensor(seen, device=agent.obs_norm.mean.device))  # a copy: Ray hands read-only arrays
        return episodes, None

    def close(self) -> None:
        self.group.close()



def onpolicy_rollouts(config, make_agent: Callable[[], torch.nn.Module]) -> onpolicy.LocalRollouts | RayRollouts:
    """Where an on-policy algorithm collects: config.backend 'local' or 'ray'. make_agent builds
    a fresh agent like the learner's (a worker's copy; it must pickle, e.g. a functools.partial)."""
    if config.backend == "ray":
        return RayRollouts(config, make_agent)
    return onpolicy.LocalRollouts(config)
