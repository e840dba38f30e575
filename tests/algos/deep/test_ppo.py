import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import rlsuite
from rlsuite.algos.deep import ppo
from rlsuite.core import checkpoint
from rlsuite.core.run import RunDir
from rlsuite.errors import EXIT_INTERRUPTED, CheckpointError

SMALL = dict(num_envs=4, num_steps=32, minibatch_size=64, update_epochs=2, eval_every=512, eval_episodes=2, checkpoint_every=0)


def final_state(run_dir):
    return checkpoint.load_state(RunDir(run_dir).latest_checkpoint())


def assert_same_state(a, b):
    for name in ("agent", "optimizer"):
        flat_a, flat_b = torch.utils._pytree.tree_flatten(a["parts"][name])[0], torch.utils._pytree.tree_flatten(b["parts"][name])[0]
        assert len(flat_a) == len(flat_b)
        for x, y in zip(flat_a, flat_b):
            if isinstance(x, torch.Tensor):
                assert torch.equal(x, y), name
            else:
                assert x == y, name
    assert a["step"] == b["step"] and a["evaluations"] == b["evaluations"]


@pytest.mark.parametrize("env, extra", [("CartPole-v1", {}), ("Pendulum-v1", dict(normalize_obs=True, normalize_reward=True))])
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, env, extra):
    config = ppo.preset(env, seed=3, total_steps=2048, **SMALL, **extra)
    whole = ppo.train(config, tmp_path / "whole", quiet=True)

    def stop_halfway(loop):
        if loop.step >= 1024:
            loop.request_stop()

    cut = ppo.train(config, tmp_path / "cut", quiet=True, callbacks=[stop_halfway])
    assert cut.interrupted and cut.step == 1024
    assert final_state(tmp_path / "cut")["step"] == 1024
    resumed = ppo.train(config, tmp_path / "cut", resume=True, quiet=True)
    assert not resumed.interrupted and resumed.step == whole.step == 2048
    assert_same_state(final_state(tmp_path / "whole"), final_state(tmp_path / "cut"))
    for column in whole.evaluations:
        np.testing.assert_array_equal(resumed.evaluations[column], whole.evaluations[column])


def test_ctrl_c_saves_a_resumable_checkpoint_and_exits_cleanly(tmp_path):
    cmd = [sys.executable, "-m", "rlsuite.cli", "train", "ppo", "--run-dir", "run", "--total-steps", "10000000",
           "--eval-every", "0", "--log-every", "256"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    metrics = tmp_path / "run" / "metrics.csv"
    deadline = time.monotonic() + 120
    while not (metrics.is_file() and metrics.stat().st_size > 0) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, out
    assert "Resume with: rlsuite resume run" in out and "Traceback" not in out
    saved = final_state(tmp_path / "run")
    assert 0 < saved["step"] < 10_000_000
    resumed = rlsuite.resume(tmp_path / "run", total_steps=saved["step"] + 512, quiet=True)
    assert resumed.step == saved["step"] + 512 and not resumed.interrupted


def test_kl_penalty_objective_adapts_beta(tmp_path):
    config = ppo.preset("CartPole-v1", objective="kl", total_steps=1024, kl_target=0.001, **SMALL)
    run = ppo.train(config, tmp_path / "kl", quiet=True)
    assert run.step == 1024
    header, *rows = (tmp_path / "kl" / "metrics.csv").read_text().splitlines()
    assert "losses/kl_coef" in header
    betas = {row.split(",")[header.split(",").index("losses/kl_coef")] for row in rows}
    assert betas - {"1.0"}, "beta never moved from its initial value"


def test_box_actions_are_rescaled_to_the_bounds_and_policy_api(tmp_path):
    config = ppo.preset("Pendulum-v1", total_steps=512, **SMALL)
    run = ppo.train(config, tmp_path / "pend", quiet=True)
    policy = rlsuite.load(run.dir)
    single = policy.act(np.zeros(3, np.float32))
    assert single.shape == (1,) and -2.0 <= single[0] <= 2.0
    batch = policy.act(np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32))
    assert batch.shape == (5, 1) and np.all(np.abs(batch) <= 2.0)
    agent = policy.agent
    extreme = agent.env_action(torch.tensor([[-5.0], [0.0], [0.5], [5.0]]))
    np.testing.assert_allclose(extreme[:, 0], [-2.0, 0.0, 1.0, 2.0])


def test_python_api_train_with_preset_and_overrides(tmp_path):
    run = rlsuite.train("ppo", "CartPole-v1", run_dir=tmp_path / "api", quiet=True, total_steps=512, **SMALL)
    assert run.config.gamma == 0.98 and run.config.num_envs == 4
    assert run.final_eval is not None and run.timing["train_seconds"] > 0
    assert rlsuite.load(run.dir).act(np.zeros(4, np.float32)) in (0, 1)
    from rlsuite import ppo as by_name

    assert by_name is ppo


@pytest.mark.slow
def test_ppo_solves_cartpole():
    """PPO with the tuned CartPole preset reaches an evaluation mean of at least 475."""
    run = ppo.train(ppo.preset("CartPole-v1", seed=1), "run", quiet=True)
    assert run.final_eval >= 475, run.evaluations
    assert max(mean for _, mean in run.evaluations) >= 475


def test_envs_that_cannot_be_pickled_leave_a_loadable_but_not_resumable_checkpoint(tmp_path, monkeypatch):
    from rlsuite.envs import checkpointing

    def refuse(obj):
        raise TypeError("cannot pickle a subprocess")

    monkeypatch.setattr(checkpointing.cloudpickle, "dumps", refuse)
    config = ppo.preset("CartPole-v1", objective="kl", total_steps=1024, **SMALL)
    with pytest.warns(UserWarning, match="cannot be pickled"):
        first = ppo.train(config, tmp_path / "r", quiet=True, callbacks=[lambda loop: loop.request_stop()])
    assert first.interrupted and final_state(tmp_path / "r")["parts"]["envs"]["env"] is None
    assert rlsuite.load(tmp_path / "r").act(np.zeros(4, np.float32)) in (0, 1)  # still a policy
    with pytest.raises(CheckpointError, match="cannot be resumed"):
        ppo.train(config, tmp_path / "r", resume=True, quiet=True)


def read_column(run_dir, name):
    header, *rows = (run_dir / "metrics.csv").read_text().splitlines()
    column = header.split(",").index(name)
    return [float(row.split(",")[column]) for row in rows]


def test_target_kl_stops_the_epochs_early(tmp_path):
    common = dict(SMALL, update_epochs=8, total_steps=512, log_every=128)
    ppo.train(ppo.preset("CartPole-v1", target_kl=1e-12, **common), tmp_path / "stop", quiet=True)
    ppo.train(ppo.preset("CartPole-v1", **common), tmp_path / "full", quiet=True)
    assert set(read_column(tmp_path / "stop", "losses/epochs")) == {1.0}  # any KL exceeds 1e-12 after one epoch
    assert set(read_column(tmp_path / "full", "losses/epochs")) == {8.0}
