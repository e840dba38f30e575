"""Smoke test of examples/sutton_barto.py: --quick writes every figure as a non-trivial PNG."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "sutton_barto.py"
FIGURES = ["figure2_2", "figure2_3", "figure2_4", "figure2_5", "figure3_5", "figure4_1", "figure6_4", "figure8_2"]


def _load_script():
    spec = importlib.util.spec_from_file_location("sutton_barto", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_quick_run_writes_every_figure(tmp_path, capsys):
    out = tmp_path / "figures"
    paths = _load_script().main(["--quick", "--out", str(out)])
    assert sorted(p.name for p in paths) == sorted(f"{name}.png" for name in FIGURES)
    printed = capsys.readouterr().out
    for name in FIGURES:
        png = out / f"{name}.png"
        assert png.is_file(), name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert png.stat().st_size > 10_000, (name, png.stat().st_size)
        assert str(png) in printed, name
    assert not list(tmp_path.glob("runs")), "bandit run directories must not be left in the working folder"
