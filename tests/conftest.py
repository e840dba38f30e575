import os

import pytest

# Tests must not depend on a display or on the developer's thread settings.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


@pytest.fixture(autouse=True)
def _chdir_tmp(tmp_path, monkeypatch):
    """Every test runs in its own folder, so default run directories never collide."""
    monkeypatch.chdir(tmp_path)
