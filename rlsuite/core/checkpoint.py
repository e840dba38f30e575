"""Atomic checkpoint files: write to a temporary file in the same folder, then rename.

A checkpoint holds everything needed to continue bit-for-bit on CPU: module and optimizer
states, step counters, RNG states, the pickled environments and the config.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from rlsuite.core.errors import CheckpointError

FORMAT = "rlsuite-checkpoint-v1"


def atomic_write_bytes(data: bytes, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save(payload: dict[str, Any], path: str | Path) -> None:
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **payload}, buffer)
    atomic_write_bytes(buffer.getvalue(), path)


def load(path: str | Path, what: str = "checkpoint") -> dict[str, Any]:
    """Load a file written by save(); a clear CheckpointError for anything else."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no {what} at {path}. Train first (`rlsuite train ...`) or check the run directory.")
    try:
        # Our own files carry pickled environments and NumPy RNG states, so weights_only cannot
        # be used: load checkpoints only from run directories you trust.
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for truncated or foreign files
        raise CheckpointError(
            f"{what} {path} is corrupt or not a torch file ({type(exc).__name__}: {exc}). "
            "Delete it and retrain, or restore it from a copy."
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an rlsuite {what} (expected format {FORMAT}).")
    return payload
