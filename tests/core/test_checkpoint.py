import pytest
import torch

from rlsuite.core import checkpoint
from rlsuite.core.errors import CheckpointError


def test_round_trip_and_no_temporary_files_left(tmp_path):
    path = tmp_path / "ck.pt"
    checkpoint.save({"step": 5, "weights": torch.arange(3)}, path)
    payload = checkpoint.load(path)
    assert payload["step"] == 5 and torch.equal(payload["weights"], torch.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]


def test_a_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "ck.pt"
    checkpoint.save({"step": 1}, path)

    class Boom(Exception):
        pass

    def failing_fsync(fd):
        raise Boom

    monkeypatch.setattr(checkpoint.os, "fsync", failing_fsync)
    with pytest.raises(Boom):
        checkpoint.save({"step": 2}, path)
    monkeypatch.undo()
    assert checkpoint.load(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]


def test_missing_truncated_and_foreign_files_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        checkpoint.load(tmp_path / "missing.pt")
    path = tmp_path / "ck.pt"
    checkpoint.save({"step": 1, "w": torch.randn(1000)}, path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="corrupt"):
        checkpoint.load(path)
    torch.save({"hello": 1}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not an rlsuite checkpoint"):
        checkpoint.load(tmp_path / "foreign.pt")
