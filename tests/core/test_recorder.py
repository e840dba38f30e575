"""Run-directory integrity, each case found by using the CLI as a new user would: overwrite only
what a run wrote, one writer at a time, clean leftovers of a kill, clear messages for bad paths."""

import errno
import os
import pathlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
import regression_trainer as reg  # noqa: E402

from rlsuite.cli import main  # noqa: E402
from rlsuite.core.recorder import Recorder  # noqa: E402
from rlsuite.core.run import RunDir  # noqa: E402
from rlsuite.errors import RunDirError, RunInUseError  # noqa: E402

TINY_PPO = ["--total-steps", "512", "--num-envs", "2", "--num-steps", "64", "--minibatch-size", "64",
            "--update-epochs", "1", "--eval-every", "256", "--eval-episodes", "2", "--quiet"]


def test_overwrite_deletes_only_the_files_a_run_wrote(capsys):
    assert main(["train", "value_iteration", "--env", "GridWorld4x4-v0", "--run-dir", "run", "--quiet"]) == 0
    assert Path("run/values.png").is_file()
    Path("run/notes.txt").write_text("mine")
    Path("run/data").mkdir()
    Path("run/data/keep.csv").write_text("1,2")
    assert main(["train", "q_learning", "--env", "CliffWalking-v1", "--total-steps", "1000", "--run-dir", "run", "--overwrite", "--quiet"]) == 0
    assert Path("run/notes.txt").read_text() == "mine" and Path("run/data/keep.csv").read_text() == "1,2"
    assert not Path("run/values.png").exists()  # the old run's figure, listed in its run.yaml
    assert yaml.safe_load(Path("run/run.yaml").read_text())["algo"] == "q_learning"


def test_overwrite_refuses_folders_that_are_not_provably_runs(capsys):
    Path("mine").mkdir()
    Path("mine/run.yaml").write_text("title: my thesis\n")  # a run.yaml, but not ours
    assert main(["train", "q_learning", "--run-dir", "mine", "--overwrite", "--quiet"]) == 2
    assert "not an rlsuite run directory" in capsys.readouterr().err
    assert Path("mine/run.yaml").read_text() == "title: my thesis\n"


def test_overwrite_of_the_current_directory_from_inside_a_run(capsys):
    assert main(["train", "q_learning", "--total-steps", "1000", "--run-dir", "run", "--quiet"]) == 0
    Path("run/notes.txt").write_text("mine")
    os.chdir("run")
    assert main(["train", "q_learning", "--total-steps", "1000", "--run-dir", ".", "--overwrite", "--quiet", "--seed", "2"]) == 0
    assert Path("notes.txt").read_text() == "mine"
    assert yaml.safe_load(Path("config.yaml").read_text())["seed"] == 2


def test_a_second_writer_is_refused_while_a_run_holds_the_lock():
    live = Recorder.create(Path("run"), "regression", overwrite=False)
    try:
        with pytest.raises(RunInUseError, match=f"in use by another rlsuite process \\(pid {os.getpid()}\\)"):
            reg.train(reg.RegressionConfig(), "run", overwrite=True, quiet=True)
        with pytest.raises(RunInUseError):
            Recorder.create(Path("run"), "regression", overwrite=True)
    finally:
        live.close()
    reg.train(reg.RegressionConfig(total_steps=20), "run", overwrite=True, quiet=True)


def test_two_resumes_of_one_run_cannot_run_at_once():
    reg.train(reg.RegressionConfig(total_steps=50), "run", quiet=True, callbacks=[lambda loop: loop.step == 20 and loop.request_stop()])
    first = Recorder.reopen(Path("run"), "regression")
    try:
        with pytest.raises(RunInUseError):
            reg.train(reg.RegressionConfig(total_steps=50), "run", resume=True, quiet=True)
    finally:
        first.close()
    resumed = reg.train(reg.RegressionConfig(total_steps=50), "run", resume=True, quiet=True)
    steps = resumed.metrics["step"].tolist()
    assert steps == sorted(set(steps)) == [10, 20, 30, 40, 50]  # no duplicated rows


def test_resume_drops_rows_after_the_checkpoint_torn_rows_and_temporary_files():
    reg.train(reg.RegressionConfig(total_steps=100), "run", quiet=True, callbacks=[lambda loop: loop.step == 40 and loop.request_stop()])
    with open("run/metrics.csv", "a") as f:
        f.write("50,0.5,100.0\n60,0.4,1")  # a row the checkpoint does not cover, then one torn by a kill
    Path("run/.tmp-eval.csv.x1").write_text("torn")
    (RunDir(Path("run")).checkpoints_dir / ".tmp-ckpt-000009-dead").mkdir()
    run = reg.train(reg.RegressionConfig(total_steps=100), "run", resume=True, quiet=True)
    assert run.metrics["step"].tolist() == list(range(10, 101, 10))
    assert not list(Path("run").glob(".tmp-*")) and not list(RunDir(Path("run")).checkpoints_dir.glob(".tmp-*"))


@pytest.mark.parametrize("kill", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_ppo_run_loads_evaluates_and_resumes_from_its_checkpoint(tmp_path, kill, capsys):
    cmd = [sys.executable, "-m", "rlsuite.cli", "train", "ppo", "--run-dir", "run", "--total-steps", "10000000",
           "--eval-every", "0", "--checkpoint-every", "512", "--quiet"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while RunDir(tmp_path / "run").latest_checkpoint() is None and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(kill)
    out, _ = proc.communicate(timeout=120)
    os.chdir(tmp_path)
    meta = yaml.safe_load(Path("run/run.yaml").read_text())
    if kill == signal.SIGTERM:  # treated like Ctrl-C
        assert proc.returncode == 4 and meta["status"] == "interrupted" and "Traceback" not in out
    else:
        assert meta["status"] == "running"
        assert not Path("run/model").exists()
    assert main(["eval", "run", "--episodes", "2"]) == 0
    assert "over 2 episodes" in capsys.readouterr().out
    assert main(["resume", "run", "--total-steps", str(meta["checkpoint_step"] + 256), "--quiet"]) == 0
    assert yaml.safe_load(Path("run/run.yaml").read_text())["status"] == "finished"


def test_a_killed_tabular_run_loads_from_its_checkpoint(capsys):
    import rlsuite

    reg_run = rlsuite.train("q_learning", "CliffWalking-v1", run_dir="run", quiet=True, total_steps=5000,
                            callbacks=[lambda loop: loop.step == 3000 and loop.request_stop()])
    import shutil

    shutil.rmtree("run/model")  # what a SIGKILL before the end leaves: a checkpoint, no export
    policy = rlsuite.load(reg_run.dir)
    assert policy.q.shape == (48, 4) and int(policy.act(36)) in range(4)
    assert main(["eval", "run", "--episodes", "1"]) == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--run-dir", ""], "--run-dir is empty"),
        (["--run-dir", "afile/sub"], "a part of the path is a file"),
        (["--seed", str(2**32)], "seed must be in [0, 2**32 - 1]"),
        (["--device", "cuda:abc"], "device must be 'auto', 'cpu', 'cuda', 'cuda:N'"),
        (["--config", "adir"], "config file adir is a directory"),
        (["--config", "binary.yaml"], "is not a text file"),
    ],
)
def test_bad_paths_and_values_are_one_clear_message(args, message, capsys):
    Path("afile").write_text("x")
    Path("adir").mkdir()
    Path("binary.yaml").write_bytes(bytes(range(256)))
    assert main(["train", "ppo", *TINY_PPO, *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_read_only_file_system_is_a_clear_message(monkeypatch, capsys):
    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(pathlib.Path, "mkdir", read_only)
    assert main(["train", "q_learning", "--run-dir", "ro/run", "--quiet"]) == 2
    assert "the file system is read-only" in capsys.readouterr().err


def test_corrupt_run_yaml_is_a_clear_message(capsys):
    assert main(["train", "q_learning", "--total-steps", "1000", "--run-dir", "run", "--quiet"]) == 0
    Path("run/run.yaml").write_bytes(b"\x00\xff: [unclosed")
    for command in (["resume", "run"], ["eval", "run"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert "run.yaml is corrupt" in err and "Traceback" not in err
    with pytest.raises(RunDirError, match="not an rlsuite run directory"):
        Recorder.create(Path("run"), "q_learning", overwrite=True)


def test_tabular_methods_take_no_device(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "q_learning", "--device", "cuda", "--quiet"])
    assert exit_info.value.code == 2 and "--device" in capsys.readouterr().err
    assert not Path("runs").exists()
