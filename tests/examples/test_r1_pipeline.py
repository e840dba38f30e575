"""Smoke test of examples/r1_pipeline.py: --quick runs every stage, each from the previous one's model."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "r1_pipeline.py"
STAGES = ["sft", "grpo", "rejection", "sft_accepted", "reward_model", "dpo", "distill"]


def _load_script():
    spec = importlib.util.spec_from_file_location("r1_pipeline", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_quick_pipeline_runs_every_stage_in_order(tmp_path, capsys):
    import rlsuite

    results = _load_script().main(["--quick", "--out", str(tmp_path)])
    assert [name for name, _, _ in results] == [s for s in STAGES if s != "rejection"]
    assert all(0.0 <= value <= 1.0 for _, _, value in results)
    for stage in STAGES:
        assert rlsuite.open_run(tmp_path / stage).status == "finished", stage
    # Each stage started from the model the previous one wrote.
    assert rlsuite.open_run(tmp_path / "grpo").config.model == str(tmp_path / "sft" / "model")
    assert rlsuite.open_run(tmp_path / "sft_accepted").config.task == str(tmp_path / "rejection" / "model" / "dataset.jsonl")
    assert rlsuite.open_run(tmp_path / "distill").config.teacher == str(tmp_path / "dpo" / "model")
    assert (tmp_path / "rejection" / "model" / "dataset.jsonl").stat().st_size > 0
    assert "R1 pipeline on arithmetic:mixed" in capsys.readouterr().out
