"""Atomic files and directories, and the checkpoint directory of a run.

Everything is written to a temporary name in the same folder and renamed into place, so a kill,
a full disk or a crash leaves either the old version or the new one, never a torn file.

A checkpoint is a directory `checkpoints/ckpt-NNNNNN/` holding
    state.pt (or state.pkl)   loop counters, RNG states, the state_dict of every stateful part and
                              the algorithm's explicit state: torch.save when torch is in use,
                              pickle otherwise (the NumPy-only families never import torch)
    <part>/                   each part that saves itself into a directory (a replay buffer's
                              arrays, a `save_pretrained` model)
    model/                    what the algorithm's export() writes, so a run killed before its
                              end still loads as a policy
A directory is renamed to ckpt-NNNNNN only once complete, so every ckpt-* is whole; the newest
is the checkpoint, older ones and `.tmp-*` leftovers of a killed save are removed.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import shutil
import sys
import tempfile
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from rlsuite.errors import CheckpointError

FORMAT = "rlsuite-checkpoint-v2"
CHECKPOINT_PATTERN = re.compile(r"ckpt-(\d{6,})")
TMP_PREFIX = ".tmp-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()
"""mkstemp creates files readable by the owner only; saved files get the usual permissions."""


@runtime_checkable
class DirectoryPart(Protocol):
    """A part of the training state that saves itself into a directory (large arrays, a model)."""

    def save_to(self, directory: Path) -> None: ...
    def load_from(self, directory: Path) -> None: ...


@runtime_checkable
class StatefulPart(Protocol):
    """A part saved through its state dict: torch modules and optimizers, or any such object."""

    def state_dict(self) -> Any: ...
    def load_state_dict(self, state: Any) -> Any: ...


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # not every platform opens directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(data: bytes, path: str | Path) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{TMP_PREFIX}{path.name}.")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def new_directory(final: Path) -> Iterator[Path]:
    """Yield a temporary directory beside `final`; rename it to `final` once the block succeeds.

    An existing `final` is replaced: it is renamed aside first and deleted afterwards, so a
    reader sees either the old complete directory or the new one (or, for an instant, none).
    """
    tmp = final.parent / f"{TMP_PREFIX}{final.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        for file in tmp.rglob("*"):
            if file.is_file():
                with file.open("rb") as f:
                    os.fsync(f.fileno())
        old = None
        if final.exists():
            old = final.parent / f"{TMP_PREFIX}{final.name}-old-{uuid.uuid4().hex[:8]}"
            os.replace(final, old)
        os.replace(tmp, final)
        _fsync_dir(final.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def save_state(payload: dict[str, Any], directory: Path) -> Path:
    """Write `payload` as directory/state.pt (torch.save) or, when torch is not loaded, state.pkl."""
    payload = {"format": FORMAT, **payload}
    buffer = io.BytesIO()
    if "torch" in sys.modules:
        import torch

        torch.save(payload, buffer)
        path = directory / "state.pt"
    else:
        pickle.dump(payload, buffer, protocol=pickle.HIGHEST_PROTOCOL)
        path = directory / "state.pkl"
    atomic_write_bytes(buffer.getvalue(), path)
    return path


def load_state(directory: Path) -> dict[str, Any]:
    """The payload save_state wrote into `directory`; CheckpointError for anything else."""
    path = next((p for p in (directory / "state.pt", directory / "state.pkl") if p.is_file()), None)
    if path is None:
        raise CheckpointError(f"{directory} holds no state.pt or state.pkl: it is not an rlsuite checkpoint.")
    try:
        # Checkpoints hold pickled environments and NumPy RNG states, so torch's weights_only
        # loading cannot be used: load checkpoints only from run directories you trust.
        if zipfile.is_zipfile(path):
            import torch

            payload = torch.load(path, map_location="cpu", weights_only=False)
        else:
            with path.open("rb") as f:
                payload = pickle.load(f)
    except Exception as exc:  # torch and pickle raise many types for truncated or foreign files
        raise CheckpointError(
            f"checkpoint {path} is corrupt or unreadable ({type(exc).__name__}: {exc}). "
            "Delete the checkpoints/ folder and train again, or restore it from a copy."
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a checkpoint of this rlsuite version (expected format {FORMAT}).")
    return payload


def checkpoint_dirs(root: Path) -> list[Path]:
    """The complete checkpoint directories under root, oldest first."""
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := CHECKPOINT_PATTERN.fullmatch(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def latest_checkpoint(root: Path) -> Path | None:
    dirs = checkpoint_dirs(root)
    return dirs[-1] if dirs else None


def remove_leftovers(directory: Path) -> list[Path]:
    """Delete the `.tmp-*` files and folders a killed save left in directory; returns them."""
    if not directory.is_dir():
        return []
    leftovers = [p for p in directory.iterdir() if p.name.startswith(TMP_PREFIX)]
    for path in leftovers:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return leftovers


def write_checkpoint(
    root: Path,
    payload: dict[str, Any],
    directory_parts: dict[str, DirectoryPart],
    export: Callable[[Path], None] | None,
) -> Path:
    """Write a new complete checkpoint directory under root and delete the older ones."""
    root.mkdir(exist_ok=True)
    previous = checkpoint_dirs(root)
    number = int(CHECKPOINT_PATTERN.fullmatch(previous[-1].name).group(1)) + 1 if previous else 1
    final = root / f"ckpt-{number:06d}"
    with new_directory(final) as tmp:
        for name, part in directory_parts.items():
            (tmp / name).mkdir()
            part.save_to(tmp / name)
        if export is not None:
            (tmp / "model").mkdir()
            export(tmp / "model")
        save_state(payload, tmp)
    for old in previous:
        shutil.rmtree(old, ignore_errors=True)
    return final


def save_network(net: Any, directory: Path) -> None:
    """A neural-network algorithm's export: directory/policy.pt with the weights and the spaces
    needed to rebuild the network (torch is loaded by whoever has a network to save)."""
    import torch

    torch.save({"state_dict": net.state_dict(), "observation_space": net.observation_space, "action_space": net.action_space,
                "rebuild_kwargs": getattr(net, "rebuild_kwargs", {})}, directory / "policy.pt")


def load_network(make_net: Callable[[Any, Any, Any], Any], config: Any, directory: Path) -> Any:
    """make_net(observation_space, action_space, config, **rebuild_kwargs) with the weights
    save_network wrote, in eval mode (rebuild_kwargs: what else a network's constructor needs, as
    the network recorded it; most have none)."""
    import torch

    saved = torch.load(directory / "policy.pt", map_location="cpu", weights_only=False)
    net = make_net(saved["observation_space"], saved["action_space"], config, **saved.get("rebuild_kwargs", {}))
    net.load_state_dict(saved["state_dict"])
    return net.eval()
