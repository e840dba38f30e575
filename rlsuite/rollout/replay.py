"""Off-policy replay: a ring of vector-env transitions in NumPy, sampled as n-step windows.

Conventions (the same everywhere in rlsuite), per sub-env and vector step:
- `next_obs`: the observation that followed the step; for the step that ends an episode, the
  episode's final observation (Gymnasium NEXT_STEP autoreset).
- `terminated`: the episode ended in a terminal state, whose value is 0: never bootstrap.
- `truncated`: the episode was cut by a time limit: bootstrap from `next_obs`.
- `valid`: False for the reset transition that follows an episode's end; it carries no
  experience and is never sampled.

A sampled n-step window from transition t of env i,

    m         = number of transitions t, t+1, ..., t+m-1 of env i used (1 <= m <= n)
    returns   = sum_{k<m} gamma^k r_{t+k}
    next_obs  = next_obs_{t+m-1}
    discounts = gamma^m (1 - terminated_{t+m-1})

so that the target is returns + discounts * V(next_obs). The window stops early at the first
transition that ends an episode (terminated or truncated) and at the newest transition written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np
import torch
from torch import Tensor

ArrayT = TypeVar("ArrayT", np.ndarray, Tensor)

TRANSITION_FIELDS = ("obs", "actions", "rewards", "next_obs", "terminated", "truncated", "valid")
"""What a buffer stores per transition: ReplayBuffer.add's arguments, in order, and its saved arrays."""
_META_FILE = "meta.json"
# Rejection rounds before the invalid leftovers are redrawn from an explicit list of valid slots.
_REJECTION_ROUNDS = 4


@dataclass(frozen=True)
class ReplayBatch(Generic[ArrayT]):
    obs: ArrayT  # [B, *obs_shape]
    actions: ArrayT  # [B, *action_shape]
    returns: ArrayT  # [B], sum_{k<m} gamma^k r_{t+k}
    next_obs: ArrayT  # [B, *obs_shape], the observation to bootstrap from
    discounts: ArrayT  # [B], gamma^m (1 - terminated_{t+m-1})
    n_steps: ArrayT  # [B], m

    def to_torch(self, device: torch.device | str) -> ReplayBatch[Tensor]:
        """The same batch as tensors on `device`: float32, except actions that stay integer (int64)."""

        def convert(name: str, array: np.ndarray) -> Tensor:
            dtype = torch.int64 if name == "actions" and np.issubdtype(array.dtype, np.integer) else torch.float32
            # Cast after the transfer: uint8 pixels cross to the device at a quarter of the size.
            return torch.as_tensor(array, device=device).to(dtype)

        return ReplayBatch(**{f.name: convert(f.name, getattr(self, f.name)) for f in fields(self)})


class ReplayBuffer:
    """The last `capacity` transitions of `num_envs` envs, time-major: arrays [capacity // num_envs, num_envs, ...].

    `capacity` is rounded down to a multiple of `num_envs`, since every add writes one row of
    `num_envs` transitions. Rewards are stored as float32, terminated/truncated/valid as bool.
    """

    def __init__(
        self,
        capacity: int,
        num_envs: int,
        obs_shape: tuple,
        action_shape: tuple,
        obs_dtype=np.float32,
        action_dtype=np.int64,
    ):
        if num_envs < 1 or capacity < num_envs:
            raise ValueError(f"capacity ({capacity}) must be at least num_envs ({num_envs}) >= 1")
        self.num_envs = num_envs
        self.rows = capacity // num_envs
        self.capacity = self.rows * num_envs

        def ring(shape: tuple, dtype) -> np.ndarray:
            return np.zeros((self.rows, num_envs, *shape), dtype=dtype)

        self.obs = ring(tuple(obs_shape), obs_dtype)
        self.actions = ring(tuple(action_shape), action_dtype)
        self.rewards = ring((), np.float32)
        self.next_obs = ring(tuple(obs_shape), obs_dtype)
        self.terminated = ring((), bool)
        self.truncated = ring((), bool)
        self.valid = ring((), bool)
        self.pos = 0  # the row the next add writes: the oldest row once full
        self.full = False
        self._num_valid = 0  # kept up to date by add, so len() does not scan the ring

    def _filled_rows(self) -> int:
        return self.rows if self.full else self.pos

    def __len__(self) -> int:
        """The number of valid transitions stored (the ones sample can draw)."""
        return self._num_valid

    def add(self, obs, actions, rewards, next_obs, terminated, truncated, valid) -> None:
        """Store one vector step; every argument is [num_envs, ...]. Overwrites the oldest row when full."""
        step = dict(obs=obs, actions=actions, rewards=rewards, next_obs=next_obs, terminated=terminated, truncated=truncated, valid=valid)
        for name, value in step.items():
            expected = getattr(self, name).shape[1:]
            # Checked explicitly: NumPy would broadcast a scalar or a [1, ...] array silently.
            if np.shape(value) != expected:
                raise ValueError(f"expected {name} of shape {expected}, got {np.shape(value)}")
        if self.full:
            self._num_valid -= int(self.valid[self.pos].sum())
        for name, value in step.items():
            getattr(self, name)[self.pos] = value
        self._num_valid += int(self.valid[self.pos].sum())
        self.pos = (self.pos + 1) % self.rows
        self.full = self.full or self.pos == 0

    def sample(self, batch_size: int, rng: np.random.Generator, n_step: int = 1, gamma: float = 0.99) -> ReplayBatch[np.ndarray]:
        """`batch_size` n-step windows whose starts are drawn uniformly (with replacement) from the
        valid stored transitions; see the module docstring for what each field holds."""
        if n_step < 1:
            raise ValueError(f"n_step must be >= 1, got {n_step}")
        if self._num_valid == 0:
            raise ValueError("cannot sample: the replay buffer holds no valid transition")
        flat = self._draw_valid(batch_size, rng)
        row, env = np.divmod(flat, self.num_envs)

        # Transitions from `row` through the newest one, in ring order: a window never reaches the
        # write position, whose slots are unwritten or (after wrap-around) the oldest data.
        newest = (self.pos - 1) % self.rows
        available = (newest - row) % self.rows + 1
        returns = np.zeros(batch_size)
        n_steps = np.zeros(batch_size, dtype=np.int64)
        extending = np.ones(batch_size, dtype=bool)
        for k in range(n_step):
            extending &= k < available
            at = (row + k) % self.rows, env
            returns += np.where(extending, gamma**k * self.rewards[at], 0.0)
            n_steps += extending
            extending &= ~(self.terminated[at] | self.truncated[at])

        last = (row + n_steps - 1) % self.rows, env
        return ReplayBatch(
            obs=self.obs[row, env],
            actions=self.actions[row, env],
            returns=returns.astype(np.float32),
            next_obs=self.next_obs[last],
            discounts=(gamma**n_steps * ~self.terminated[last]).astype(np.float32),
            n_steps=n_steps,
        )

    def _draw_valid(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        """Flat indices row * num_envs + env, uniform over the valid stored transitions."""
        valid = self.valid.reshape(-1)[: self._filled_rows() * self.num_envs]
        flat = rng.integers(valid.size, size=batch_size)
        # Rejection costs O(batch) a round and usually ends in one, since only the one reset
        # transition per episode is invalid; it never scans the ring. A mostly invalid ring would
        # need many rounds, so what is left after a few is drawn from the valid slots directly.
        # Both draws are uniform over the valid transitions, and so is their mixture.
        for _ in range(_REJECTION_ROUNDS):
            rejected = np.flatnonzero(~valid[flat])
            if rejected.size == 0:
                return flat
            flat[rejected] = rng.integers(valid.size, size=rejected.size)
        rejected = np.flatnonzero(~valid[flat])
        flat[rejected] = rng.choice(np.flatnonzero(valid), size=rejected.size)
        return flat

    def save_to(self, directory: Path) -> None:
        """Write the filled rows as one .npy per array, then meta.json (last, so that an interrupted
        save has no meta and fails to load instead of loading half a buffer)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        filled = self._filled_rows()
        for name in TRANSITION_FIELDS:
            # A leading-rows slice is a view: np.save streams it without copying the buffer.
            np.save(directory / f"{name}.npy", getattr(self, name)[:filled])
        meta = dict(capacity=self.capacity, num_envs=self.num_envs, pos=self.pos, full=self.full)
        (directory / _META_FILE).write_text(json.dumps(meta))

    def load_from(self, directory: Path) -> None:
        """Restore what save_to wrote into this buffer's arrays; everything is checked before
        anything is copied, so a mismatch raises ValueError and leaves the buffer untouched."""
        directory = Path(directory)
        meta = json.loads((directory / _META_FILE).read_text())
        if (meta["capacity"], meta["num_envs"]) != (self.capacity, self.num_envs):
            raise ValueError(
                f"saved buffer has capacity {meta['capacity']} over {meta['num_envs']} envs, "
                f"this one {self.capacity} over {self.num_envs}"
            )
        filled = self.rows if meta["full"] else meta["pos"]
        saved = {name: np.load(directory / f"{name}.npy", mmap_mode="r") for name in TRANSITION_FIELDS}
        for name, array in saved.items():
            target = getattr(self, name)
            expected = (filled, *target.shape[1:])
            if array.shape != expected or array.dtype != target.dtype:
                raise ValueError(
                    f"saved {name} is {array.dtype}{list(array.shape)}, expected {target.dtype}{list(expected)}"
                )
        for name, array in saved.items():
            getattr(self, name)[:filled] = array
        self.pos, self.full = meta["pos"], meta["full"]
        self._num_valid = int(self.valid[:filled].sum())
