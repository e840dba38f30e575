"""The Loop on a trainer that is not RL (tests/core/regression_trainer.py): budget in optimizer
steps, a directory part, a metric evaluation, a directory export, checkpoints, Ctrl-C, SIGTERM,
bit-exact resume, the main-process flag and the budget checks."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

sys.path.insert(0, str(Path(__file__).parent))
import regression_trainer as reg  # noqa: E402

from rlsuite.core import checkpoint  # noqa: E402
from rlsuite.core.run import RunDir  # noqa: E402
from rlsuite.errors import CheckpointError, ConfigError, NonFiniteError  # noqa: E402


def latest(run_dir):
    return checkpoint.load_state(RunDir(Path(run_dir)).latest_checkpoint())


def test_a_non_gym_trainer_runs_through_the_loop():
    run = reg.train(reg.RegressionConfig(), "run", quiet=True)
    assert run.status == "finished" and run.step == 200 and run.unit == "optimizer steps"
    assert run.evaluations["step"].tolist() == [50, 100, 150, 200]
    assert run.final_eval == run.evaluations["mse"][-1] < 0.05 and run.evaluations["r2"][-1] > 0.95
    assert run.metrics["step"].tolist() == list(range(10, 201, 10)) and "charts/optimizer_steps_per_second" in run.metrics
    assert len(run.episodes) == 0 and not (run.dir / "episodes.csv").exists()
    assert (run.dir / "model" / "weights.pt").is_file() and (run.dir / "model" / "README.txt").is_file()
    assert yaml.safe_load((run.dir / "model" / "rlsuite.yaml").read_text())["step"] == 200
    saved = latest(run.dir)
    assert saved["step"] == 200 and saved["state"].batches == 200
    assert np.load(RunDir(run.dir).latest_checkpoint() / "seen" / "x.npy").shape == (1600, 3)
    meta = yaml.safe_load((run.dir / "run.yaml").read_text())
    assert meta["status"] == "finished" and meta["unit"] == "optimizer steps" and meta["budget"] == 200
    assert any((run.dir / "tb").iterdir()) and (run.dir / "curve.png").stat().st_size > 1000


def test_interrupted_then_resumed_equals_uninterrupted():
    config = reg.RegressionConfig()
    whole = reg.train(config, "whole", quiet=True)
    cut = reg.train(config, "cut", quiet=True, callbacks=[lambda loop: loop.step == 77 and loop.request_stop()])
    assert cut.interrupted and cut.step == 77 and latest("cut")["step"] == 77
    resumed = reg.train(config, "cut", resume=True, quiet=True)
    assert resumed.step == 200 and resumed.status == "finished"
    a, b = latest("whole"), latest("cut")
    for name in ("model", "optimizer"):
        flat_a = torch.utils._pytree.tree_flatten(a["parts"][name])[0]
        flat_b = torch.utils._pytree.tree_flatten(b["parts"][name])[0]
        assert all(torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y for x, y in zip(flat_a, flat_b)), name
    assert a["evaluations"] == b["evaluations"]
    for column in ("step", "mse", "r2"):
        np.testing.assert_array_equal(whole.evaluations[column], resumed.evaluations[column])
    np.testing.assert_array_equal(whole.metrics["losses/mse"], resumed.metrics["losses/mse"])


def test_eval_at_start_evaluates_the_starting_point_once():
    config = reg.RegressionConfig(eval_at_start=True)
    whole = reg.train(config, "whole", quiet=True)
    assert whole.evaluations["step"].tolist() == [0, 50, 100, 150, 200]
    reg.train(config, "cut", quiet=True, callbacks=[lambda loop: loop.step == 77 and loop.request_stop()])
    resumed = reg.train(config, "cut", resume=True, quiet=True)  # a resumed run does not start over
    assert resumed.evaluations["step"].tolist() == [0, 50, 100, 150, 200]


def test_resume_budget_checks_change_nothing():
    reg.train(reg.RegressionConfig(total_steps=100), "run", quiet=True)
    before = {name: (Path("run") / name).read_bytes() for name in ("run.yaml", "config.yaml", "metrics.csv", "eval.csv")}
    with pytest.raises(ConfigError, match="below the 100 optimizer steps"):
        reg.train(reg.RegressionConfig(total_steps=50), "run", resume=True, quiet=True)
    with pytest.raises(ConfigError, match="already finished"):
        reg.train(reg.RegressionConfig(total_steps=100), "run", resume=True, quiet=True)
    with pytest.raises(ConfigError, match="budget must be > 0"):
        reg.train(reg.RegressionConfig(total_steps=0), "run", resume=True, quiet=True)
    assert {name: (Path("run") / name).read_bytes() for name in before} == before


def test_a_failed_resume_changes_nothing():
    reg.train(reg.RegressionConfig(total_steps=100), "run", quiet=True)
    before = {p.name: p.read_bytes() for p in Path("run").iterdir() if p.is_file()}
    state = RunDir(Path("run")).latest_checkpoint() / "state.pt"
    state.write_bytes(state.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="corrupt"):
        reg.train(reg.RegressionConfig(total_steps=300), "run", resume=True, quiet=True)
    assert {p.name: p.read_bytes() for p in Path("run").iterdir() if p.is_file()} == before
    assert yaml.safe_load(Path("run/run.yaml").read_text())["status"] == "finished"


def test_other_processes_train_but_write_nothing(tmp_path):
    run = reg.train(reg.RegressionConfig(total_steps=60), tmp_path / "worker", quiet=True, is_main_process=False)
    assert run.step == 60 and not (tmp_path / "worker").exists()


def test_non_finite_metric_stops_and_marks_the_run_failed(monkeypatch):
    calls = {"n": 0}
    original = reg.Loop.record

    def poisoned(self, amount, metrics=None, **kwargs):
        calls["n"] += 1
        metrics = {"losses/mse": float("inf")} if calls["n"] == 30 else metrics
        return original(self, amount, metrics or {}, **kwargs)

    monkeypatch.setattr(reg.Loop, "record", poisoned)
    with pytest.raises(NonFiniteError, match="losses/mse became inf at step 29"):
        reg.train(reg.RegressionConfig(checkpoint_every=20), "run", quiet=True)
    meta = yaml.safe_load(Path("run/run.yaml").read_text())
    assert meta["status"] == "failed" and meta["checkpoint_step"] == 20 and latest("run")["step"] == 20


def test_checkpoints_fall_due_by_wall_clock():
    """A run checkpoints at least every Schedule.checkpoint_seconds, so a kill loses little."""
    seen = []
    reg.train(reg.RegressionConfig(total_steps=30, eval_every=0, checkpoint_seconds=0.0), "run", quiet=True,
              callbacks=[lambda loop: seen.append(loop.recorder.meta.get("checkpoint_step"))])
    assert len({s for s in seen if s is not None}) >= 20


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_saves_a_checkpoint_exits_4_and_the_run_resumes(tmp_path, signum):
    script = Path(reg.__file__)
    proc = subprocess.Popen([sys.executable, str(script), "run", "100000000"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    metrics = tmp_path / "run" / "metrics.csv"
    deadline = time.monotonic() + 120
    while not metrics.is_file() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signum)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 4, out
    assert "Traceback" not in out
    meta = yaml.safe_load((tmp_path / "run" / "run.yaml").read_text())
    assert meta["status"] == "interrupted"
    step = latest(tmp_path / "run")["step"]
    assert 0 < step == meta["checkpoint_step"]
    resumed = reg.train(reg.RegressionConfig(total_steps=step + 5, eval_every=0), tmp_path / "run", resume=True, quiet=True)
    assert resumed.step == step + 5 and resumed.status == "finished"


def test_figures_are_drawn_from_complete_logs(monkeypatch):
    from rlsuite.core import plotting
    from rlsuite.core.tables import read_table

    rows_seen = []
    original = plotting.plot_runs

    def spy(run_dirs, out, **kwargs):
        rows_seen.append(read_table(Path(run_dirs[0]) / "metrics.csv")["step"].tolist())
        return original(run_dirs, out, **kwargs)

    monkeypatch.setattr(plotting, "plot_runs", spy)
    reg.train(reg.RegressionConfig(total_steps=95), "run", quiet=True)
    assert rows_seen == [[*range(10, 91, 10), 95]]


def test_a_checkpoint_due_by_wall_clock_is_taken_only_when_every_process_agrees():
    """Each process's clock differs; under several processes (a collective checkpoint of sharded
    weights) `agree` makes them save at the same step. Steps due by count need no agreement."""
    asked, seen = [], []

    def every_third_time(overdue: bool) -> bool:
        asked.append(overdue)
        return len(asked) % 3 == 0

    reg.train(reg.RegressionConfig(total_steps=30, eval_every=0, checkpoint_every=0, checkpoint_seconds=0.0), "run", quiet=True,
              agree=every_third_time, callbacks=[lambda loop: seen.append(loop.recorder.meta.get("checkpoint_step"))])
    assert asked and all(asked)  # each iteration's wall-clock verdict (always overdue here) goes to agree
    assert sorted({s for s in seen if s is not None}) == [3 * k - 1 for k in range(1, 11)]  # asked before every step from 0
