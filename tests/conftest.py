import os
import sys

import pytest

# Tests must not depend on a display or on the developer's thread settings.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


@pytest.fixture(autouse=True)
def _chdir_tmp(tmp_path, monkeypatch):
    """Every test runs in its own folder, so default run directories never collide."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One torch thread per test process when torch is loaded: the suite runs two processes on two
    cores (pytest -n 2), and two threads each fighting over them make torch many times slower."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def resumed_run_matches(tmp_path):
    """check(algo, task, metrics, **settings): 4 optimizer steps straight, and 2 + a resume to 4,
    give the same exported weights bit for bit and the same metric columns; returns both runs."""

    def check(algo: str, task: str, metrics: tuple[str, ...], **settings):
        import numpy as np
        import torch
        from safetensors.torch import load_file

        from rlsuite import api

        straight = api.train(algo, task, run_dir=tmp_path / "straight", total_steps=4, quiet=True, **settings)
        cut = api.train(algo, task, run_dir=tmp_path / "cut", total_steps=4, quiet=True,
                        callbacks=[lambda loop: loop.step == 2 and loop.request_stop()], **settings)
        assert cut.interrupted and cut.step == 2
        resumed = api.resume(tmp_path / "cut", quiet=True)
        assert resumed.step == 4 and resumed.status == "finished"
        a = load_file(straight.dir / "model" / "model.safetensors")
        b = load_file(resumed.dir / "model" / "model.safetensors")
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), key
        for key in metrics:
            assert np.array_equal(straight.metrics[key], resumed.metrics[key], equal_nan=True), key
        return straight, resumed

    return check
