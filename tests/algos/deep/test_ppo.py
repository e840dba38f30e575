import math
import signal
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np
import pytest
import torch

import rlsuite
from rlsuite.algos.deep import ppo
from rlsuite.core import checkpoint
from rlsuite.core.run import RunDir
from rlsuite.rollout.buffers import Rollout
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
    assert run.evaluations["mean_return"].max() >= 475


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


def hand_made_rollout():
    """T = 4 steps of one env, V = 0.5 everywhere: a plain step, a truncated step (bootstrap,
    but the next step belongs to a new episode), the reset transition after it (invalid), and a
    terminated step (no bootstrap)."""
    rollout = Rollout.allocate(4, 1, (4,), (), torch.long, "cpu")
    rollout.obs.normal_(generator=torch.Generator().manual_seed(0))
    rollout.actions[:, 0] = torch.tensor([0, 1, 1, 0])
    rollout.rewards[:, 0] = torch.tensor([1.0, 1.0, 0.0, 2.0])
    rollout.terminated[:, 0] = torch.tensor([0.0, 0.0, 0.0, 1.0])
    rollout.done[:, 0] = torch.tensor([0.0, 1.0, 0.0, 1.0])
    rollout.valid[:, 0] = torch.tensor([True, True, False, True])
    rollout.values.fill_(0.5)
    rollout.next_value.fill_(0.5)
    return rollout


def biased_agent(config):
    """All weights 0, so pi(.|s) = softmax([0.2, -0.3]) and V(s) = 0.5 for every s."""
    agent = ppo.ActorCritic(gym.spaces.Box(-1, 1, (4,)), gym.spaces.Discrete(2), config)
    with torch.no_grad():
        for weight in agent.nets.weights:
            weight.zero_()
        agent.nets.biases[-1][0, 0] = torch.tensor([0.2, -0.3])
        agent.nets.biases[-1][1, 0] = torch.tensor([0.5, 0.0])
    rollout = hand_made_rollout()
    pi = torch.softmax(torch.tensor([0.2, -0.3]), 0)
    rollout.logprobs[:, 0] = pi.log()[rollout.actions[:, 0]]
    return agent, rollout


def test_one_update_on_a_hand_made_batch():
    # gamma = lambda = 0.5. deltas = r + gamma (1 - terminated) V' - V:
    #   t0: 1 + 0.25 - 0.5 = 0.75; t1 (truncated, bootstraps): 0.75; t2: -0.25; t3 (terminated): 2 - 0.5 = 1.5
    # A_t = delta_t + gamma lambda (1 - done_t) A_{t+1}: A3 = 1.5, A2 = -0.25 + 0.25 * 1.5 = 0.125,
    #   A1 = 0.75 (done cuts the recursion), A0 = 0.75 + 0.25 * 0.75 = 0.9375; returns A + V.
    # Valid steps t0, t1, t3 (t2 is the reset transition): actions 0, 1, 0; A = 0.9375, 0.75, 1.5.
    config = ppo.PPOConfig(gamma=0.5, gae_lambda=0.5, update_epochs=1, minibatch_size=4, num_envs=1, num_steps=4,
                           normalize_advantages=False, max_grad_norm=0.0, ent_coef=0.0, vf_coef=0.5, hidden_sizes=(3,))
    agent, rollout = biased_agent(config)
    metrics = ppo.update(agent, torch.optim.SGD(agent.parameters(), lr=1.0), rollout, config, clip_coef=0.2, kl_coef=1.0)
    p0 = 1 / (1 + math.exp(-0.5))  # softmax([0.2, -0.3])[0]
    # ratio = 1, so d(-mean A log pi(a))/d logit_0 = -mean(A (1[a = 0] - p0)) over the valid steps:
    grad_logit0 = -(0.9375 * (1 - p0) + 0.75 * (0 - p0) + 1.5 * (1 - p0)) / 3
    # d(vf_coef * 0.5 mean (V - R)^2)/dV = 0.5 * mean(0.5 - 1.4375, 0.5 - 1.25, 0.5 - 2.0) = -0.53125
    new_policy_bias = agent.nets.biases[-1][0, 0].tolist()
    np.testing.assert_allclose(new_policy_bias, [0.2 - grad_logit0, -0.3 + grad_logit0], rtol=1e-6)
    assert agent.nets.biases[-1][1, 0, 0].item() == pytest.approx(0.5 + 0.53125)
    assert metrics["losses/value_loss"] == pytest.approx(0.5 * (0.9375**2 + 0.75**2 + 1.5**2) / 3)
    assert metrics["losses/policy_loss"] == pytest.approx(-(0.9375 + 0.75 + 1.5) / 3)
    assert metrics["losses/approx_kl"] == pytest.approx(0.0, abs=1e-7)


def test_advantages_are_normalized_over_the_valid_steps_only():
    config = ppo.PPOConfig(gamma=0.5, gae_lambda=0.5, update_epochs=1, minibatch_size=4, num_envs=1, num_steps=4,
                           normalize_advantages=True, max_grad_norm=0.0, ent_coef=0.0, vf_coef=0.5, hidden_sizes=(3,))
    agent, rollout = biased_agent(config)
    metrics = ppo.update(agent, torch.optim.SGD(agent.parameters(), lr=1.0), rollout, config, clip_coef=0.2, kl_coef=1.0)
    advantages = np.array([0.9375, 0.75, 1.5])
    normalized = (advantages - advantages.mean()) / (advantages.std(ddof=1) + 1e-8)
    assert metrics["losses/policy_loss"] == pytest.approx(-normalized.mean(), abs=1e-6)  # = 0
    p0 = 1 / (1 + math.exp(-0.5))
    grad_logit0 = -(normalized[0] * (1 - p0) + normalized[1] * (0 - p0) + normalized[2] * (1 - p0)) / 3
    assert agent.nets.biases[-1][0, 0, 0].item() == pytest.approx(0.2 - grad_logit0, rel=1e-5)
