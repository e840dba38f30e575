"""Atomic files and checkpoint directories: a failure at any point leaves the previous version."""

import os
import pickle

import numpy as np
import pytest
import torch

from rlsuite.core import checkpoint
from rlsuite.errors import CheckpointError


class Arrays:
    """A directory part holding one array."""

    def __init__(self, values):
        self.values = np.asarray(values)

    def save_to(self, directory):
        np.save(directory / "values.npy", self.values)

    def load_from(self, directory):
        self.values = np.load(directory / "values.npy")


def test_atomic_write_round_trip_keeps_permissions_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "f.bin"
    checkpoint.atomic_write_bytes(b"abc", path)
    assert path.read_bytes() == b"abc" and [p.name for p in tmp_path.iterdir()] == ["f.bin"]
    assert path.stat().st_mode & 0o777 == checkpoint.FILE_MODE


def test_a_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    checkpoint.atomic_write_bytes(b"old", path)

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint.os, "fsync", full_disk)
    with pytest.raises(OSError):
        checkpoint.atomic_write_bytes(b"new", path)
    monkeypatch.undo()
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_state_uses_torch_when_loaded_and_round_trips(tmp_path):
    path = checkpoint.save_state({"step": 5, "weights": torch.arange(3)}, tmp_path)
    assert path.name == "state.pt"
    payload = checkpoint.load_state(tmp_path)
    assert payload["step"] == 5 and torch.equal(payload["weights"], torch.arange(3))


def test_state_written_with_pickle_loads_too(tmp_path):
    (tmp_path / "state.pkl").write_bytes(pickle.dumps({"format": checkpoint.FORMAT, "step": 3, "q": np.eye(2)}))
    payload = checkpoint.load_state(tmp_path)
    assert payload["step"] == 3 and np.array_equal(payload["q"], np.eye(2))


def test_truncated_foreign_and_missing_states_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not an rlsuite checkpoint"):
        checkpoint.load_state(tmp_path)
    checkpoint.save_state({"step": 1, "w": torch.randn(1000)}, tmp_path)
    state = tmp_path / "state.pt"
    state.write_bytes(state.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="corrupt"):
        checkpoint.load_state(tmp_path)
    torch.save({"hello": 1}, state)
    with pytest.raises(CheckpointError, match="not a checkpoint of this rlsuite version"):
        checkpoint.load_state(tmp_path)


def test_checkpoint_directories_replace_each_other_and_hold_parts_and_export(tmp_path):
    root = tmp_path / "checkpoints"
    part = Arrays([1, 2])
    first = checkpoint.write_checkpoint(root, {"step": 1}, {"buffer": part}, lambda d: (d / "policy.txt").write_text("p1"))
    part.values = np.array([3, 4, 5])
    second = checkpoint.write_checkpoint(root, {"step": 2}, {"buffer": part}, lambda d: (d / "policy.txt").write_text("p2"))
    assert [p.name for p in root.iterdir()] == [second.name] and second.name > first.name
    assert checkpoint.latest_checkpoint(root) == second
    assert checkpoint.load_state(second)["step"] == 2
    assert (second / "model" / "policy.txt").read_text() == "p2"
    restored = Arrays([])
    restored.load_from(second / "buffer")
    assert restored.values.tolist() == [3, 4, 5]


def test_a_save_that_fails_midway_keeps_the_previous_checkpoint(tmp_path):
    root = tmp_path / "checkpoints"
    good = checkpoint.write_checkpoint(root, {"step": 1}, {}, None)

    class Broken:
        def save_to(self, directory):
            (directory / "half.npy").write_bytes(b"half")
            raise OSError(28, "No space left on device")

        def load_from(self, directory):
            pass

    with pytest.raises(OSError):
        checkpoint.write_checkpoint(root, {"step": 2}, {"buffer": Broken()}, None)
    assert checkpoint.checkpoint_dirs(root) == [good]
    assert [p.name for p in root.iterdir()] == [good.name]  # the half-written directory is gone


def test_leftovers_of_a_killed_save_are_removed_and_never_taken_for_a_checkpoint(tmp_path):
    root = tmp_path / "checkpoints"
    good = checkpoint.write_checkpoint(root, {"step": 1}, {}, None)
    (root / ".tmp-ckpt-000002-dead").mkdir()
    (root / ".tmp-ckpt-000002-dead" / "state.pt").write_bytes(b"torn")
    (tmp_path / ".tmp-metrics.csv.x").write_text("torn")
    assert checkpoint.latest_checkpoint(root) == good
    removed = checkpoint.remove_leftovers(root) + checkpoint.remove_leftovers(tmp_path)
    assert len(removed) == 2 and sorted(os.listdir(root)) == [good.name]


def test_new_directory_replaces_an_existing_one_whole(tmp_path):
    final = tmp_path / "model"
    with checkpoint.new_directory(final) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError):
        with checkpoint.new_directory(final) as tmp:
            (tmp / "a").write_text("2")
            raise RuntimeError("export failed")
    assert (final / "a").read_text() == "1" and [p.name for p in tmp_path.iterdir()] == ["model"]
    with checkpoint.new_directory(final) as tmp:
        (tmp / "b").write_text("3")
    assert sorted(os.listdir(final)) == ["b"] and [p.name for p in tmp_path.iterdir()] == ["model"]
