"""Seeding, RNG state capture (for exact resume) and device choice.

torch is touched only when it is already loaded (or, in `setup_torch`, when an algorithm asks
for it), so the NumPy-only families never pay for importing it.
"""

from __future__ import annotations

import random
import sys
import zlib
from typing import Any

import numpy as np

from rlsuite.errors import ConfigError


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


def derive_seed(seed: int, *purpose: int | str) -> int:
    """An independent seed for one purpose of a run (e.g. "train-envs", or ("eval", k)).

    Gymnasium seeds sub-env i of a vector env with seed + i, so runs seeded 1 and 2 would share
    most of their environment streams if both used their own seed directly.
    """
    words = [seed, *(zlib.crc32(p.encode()) if isinstance(p, str) else p for p in purpose)]
    return int(np.random.SeedSequence(words).generate_state(1)[0] >> 1)


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state()}
    torch = sys.modules.get("torch")
    if torch is not None:
        state["torch"] = torch.get_rng_state()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "torch" in state:
        import torch

        torch.set_rng_state(state["torch"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


def resolve_device(name: str):
    """torch.device for 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'; a clear error when absent."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} was asked for but CUDA is not available; use --device cpu or auto.")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}.")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {name!r} was asked for but MPS is not available; use --device cpu or auto.")
    return device


def setup_torch(config: Any):
    """Threads, seeds and device of a torch algorithm, before any network is built (so the
    initialization is reproducible); an unavailable device fails here, before any run directory."""
    import torch

    if config.torch_threads > 0 and torch.get_num_threads() != config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    device = resolve_device(config.device)
    seed_everything(config.seed)
    return device
