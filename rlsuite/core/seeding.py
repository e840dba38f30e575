"""Seeding, RNG state capture (for exact resume) and device choice."""

from __future__ import annotations

import random
import zlib
from typing import Any

import numpy as np
import torch

from rlsuite.core.errors import ConfigError


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def derive_seed(seed: int, *purpose: int | str) -> int:
    """An independent seed for one purpose of a run (e.g. "train-envs", or ("eval", k)).

    Gymnasium seeds sub-env i of a vector env with seed + i, so runs seeded 1 and 2 would share
    most of their environment streams if both used their own seed directly.
    """
    words = [seed, *(zlib.crc32(p.encode()) if isinstance(p, str) else p for p in purpose)]
    return int(np.random.SeedSequence(words).generate_state(1)[0] >> 1)


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} was asked for but CUDA is not available; use --device cpu or auto.")
    return device


def set_threads(n: int) -> None:
    if n > 0 and torch.get_num_threads() != n:
        torch.set_num_threads(n)
