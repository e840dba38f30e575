"""DQN: one update against hand-computed values (every target and head), termination against
truncation end to end through the replay buffer, the Box-action error, a smoke run with the
policy API, bit-exact resume, and (slow) learning on CartPole and Acrobot."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import rlsuite
from rlsuite.algos.deep import dqn
from rlsuite.cli import main
from rlsuite.rollout import offpolicy
from rlsuite.rollout.replay import ReplayBatch

sys.path.insert(0, str(Path(__file__).parent))
from learning import solves  # noqa: E402
from clock_replay import ACTIONS, OBS, clock_phase  # noqa: E402
from test_ddpg import assert_same_checkpoint  # noqa: E402

SMALL = dict(num_envs=1, buffer_size=4_096, learning_starts=256, batch_size=32, train_freq=64, gradient_steps=16,
             target_update_every=128, hidden_sizes=(32, 32), eval_every=512, eval_episodes=2, checkpoint_every=0)


# --- one update by hand --------------------------------------------------------------------------

def constant_q(config, last_bias):
    """A QNetwork whose output is last_bias for every observation: all weights and the hidden
    biases are 0, so the hidden activations are relu(0) = 0. Gradients then reach only the last
    bias (the last weights see zero inputs; the hidden layers get zero through the zero weights),
    and a step of SGD with lr 1 subtracts dLoss/dbias from it."""
    net = dqn.QNetwork(OBS, ACTIONS, config)
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net.net[-1].bias.copy_(torch.tensor(last_bias))
    return net


# Three transitions, gamma = 0.5. 0: a step that bootstraps, discount gamma = 0.5; 1: a step into a
# terminal state, discount 0 (its n_steps of 1 would give gamma if the mask were ignored);
# 2: a 2-step window, R = 2, discount gamma^2 = 0.25. Observations are irrelevant (Q is constant).
BATCH = ReplayBatch(
    obs=torch.zeros(3, 2),
    actions=torch.tensor([0, 1, 0]),
    returns=torch.tensor([1.0, 0.0, 2.0]),
    next_obs=torch.ones(3, 2),
    discounts=torch.tensor([0.5, 0.0, 0.25]),
    n_steps=torch.tensor([1, 1, 2]),
)


def one_update(config, online_bias, target_bias):
    q_net, target_net = constant_q(config, online_bias), constant_q(config, target_bias)
    dqn.update(q_net, target_net, torch.optim.SGD(q_net.parameters(), lr=1.0), BATCH, config)
    return q_net.net[-1].bias.detach().tolist()


def by_hand_config(**overrides):
    return dqn.DQNConfig(**{**dict(batch_size=3, gamma=0.5, max_grad_norm=0.0, hidden_sizes=(4,)), **overrides})


def test_max_target_huber_by_hand():
    # Online Q(s, .) = (1.0, 0.5); target Q(s', .) = (0.2, 0.8), so max_a' Q_target(s', a') = 0.8.
    #   y0 = 1 + 0.5 * 0.8 = 1.4    q0 = Q(s, 0) = 1.0   delta0 = q - y = -0.4
    #   y1 = 0 + 0.0 * 0.8 = 0.0    q1 = Q(s, 1) = 0.5   delta1 =  0.5
    #   y2 = 2 + 0.25 * 0.8 = 2.2   q2 = Q(s, 0) = 1.0   delta2 = -1.2 -> Huber slope clipped to -1
    # Huber (mean over 3): dL/dq_i = clip(delta_i, -1, 1) / 3.
    #   bias0 <- 1.0 - (-0.4 - 1) / 3 = 1.0 + 1.4 / 3;  bias1 <- 0.5 - 0.5 / 3
    assert one_update(by_hand_config(), [1.0, 0.5], [0.2, 0.8]) == pytest.approx([1.0 + 1.4 / 3, 0.5 - 0.5 / 3], abs=1e-6)


def test_max_target_mse_by_hand():
    # The same deltas, MSE (mean of squares over 3): dL/dq_i = 2 delta_i / 3.
    #   bias0 <- 1.0 - 2 (-0.4 - 1.2) / 3 = 1.0 + 3.2 / 3;  bias1 <- 0.5 - 2 * 0.5 / 3
    assert one_update(by_hand_config(loss="mse"), [1.0, 0.5], [0.2, 0.8]) == pytest.approx([1.0 + 3.2 / 3, 0.5 - 1.0 / 3], abs=1e-6)


def test_double_target_by_hand():
    # The online network picks a' = argmax (1.0, 0.5) = 0; the target network values it: 0.2.
    # (max would take 0.8; the target network's own argmax, 1, valued by the online one, 0.5.)
    #   y0 = 1 + 0.5 * 0.2 = 1.1    delta0 = 1.0 - 1.1 = -0.1
    #   y1 = 0                      delta1 = 0.5
    #   y2 = 2 + 0.25 * 0.2 = 2.05  delta2 = -1.05 -> -1
    #   bias0 <- 1.0 + (0.1 + 1) / 3;  bias1 <- 0.5 - 0.5 / 3
    assert one_update(by_hand_config(target="double"), [1.0, 0.5], [0.2, 0.8]) == pytest.approx([1.0 + 1.1 / 3, 0.5 - 0.5 / 3], abs=1e-6)


def test_dueling_head_by_hand():
    # Last layer [V, A0, A1]. Online (0.5, 0.3, -0.1): Q = 0.5 + (0.3, -0.1) - mean 0.1 = (0.7, 0.3).
    # Target (0.0, 0.4, -0.4): Q = (0.4, -0.4), max 0.4 (a max baseline would give (0.0, -0.8)).
    #   y0 = 1 + 0.5 * 0.4 = 1.2    q0 = 0.7  delta0 = -0.5  g0 = -0.5 / 3
    #   y1 = 0                      q1 = 0.3  delta1 =  0.3  g1 =  0.3 / 3
    #   y2 = 2 + 0.25 * 0.4 = 2.1   q2 = 0.7  delta2 = -1.4  g2 = -1 / 3   (Huber)
    # dQ(s, a)/dV = 1 and dQ(s, a)/dA_j = [a == j] - 1/2, so
    #   dL/dV  = g0 + g1 + g2 = -1.2 / 3 = -0.4                       -> V  <- 0.5 + 0.4
    #   dL/dA0 = (g0 + g2) / 2 - g1 / 2 = (-1.5 - 0.3) / 6 = -0.3      -> A0 <- 0.3 + 0.3
    #   dL/dA1 = -(g0 + g2) / 2 + g1 / 2 = 0.3                         -> A1 <- -0.1 - 0.3
    new = one_update(by_hand_config(head="dueling"), [0.5, 0.3, -0.1], [0.0, 0.4, -0.4])
    assert new == pytest.approx([0.9, 0.6, -0.4], abs=1e-6)


def test_phase_steps_use_consecutive_minibatches():
    # Two gradient steps on a 6-row batch of size 3: rows 0-2, then rows 3-5 with the updated
    # network. With BATCH twice and the max target (1.0, 0.5) -> after step 1 (1 + 1.4/3, 0.5 - 0.5/3).
    config = by_hand_config()
    q_net, target_net = constant_q(config, [1.0, 0.5]), constant_q(config, [0.2, 0.8])
    doubled = ReplayBatch(**{name: torch.cat([value, value]) for name, value in vars(BATCH).items()})
    info = dqn.update(q_net, target_net, torch.optim.SGD(q_net.parameters(), lr=1.0), doubled, config)
    assert info["losses/gradient_steps"] == 2
    # Step 2 from q = (1.4667, 0.3333): delta0 = 1.4667 - 1.4 = 0.0667, delta1 = 0.3333,
    # delta2 = 1.4667 - 2.2 = -0.7333 (now inside the quadratic zone).
    b0, b1 = 1.0 + 1.4 / 3, 0.5 - 0.5 / 3
    expected = [b0 - ((b0 - 1.4) + (b0 - 2.2)) / 3, b1 - b1 / 3]
    assert q_net.net[-1].bias.detach().tolist() == pytest.approx(expected, abs=1e-6)


# --- termination and truncation, end to end -----------------------------------------------------



@pytest.mark.parametrize("terminate", [True, False])
def test_termination_stops_bootstrapping_and_truncation_does_not(terminate):
    config = by_hand_config(batch_size=32)
    batch = clock_phase(terminate, config)
    from_start = float((batch.obs[:, 0] == 0).float().mean())
    assert 0 < from_start < 1  # both kinds of transition were drawn
    q_net, target_net = constant_q(config, [1.0, 0.5]), constant_q(config, [0.2, 0.8])
    dqn.update(q_net, target_net, torch.optim.SGD(q_net.parameters(), lr=1.0), batch, config)
    # Action 0 everywhere, Q(s, 0) = 1.0; r = 1; gamma = 0.5; max_a' Q_target = 0.8.
    #   from t = 0:                       y = 1 + 0.5 * 0.8 = 1.4   delta = -0.4
    #   from t = 1, episode terminated:   y = 1                     delta =  0.0
    #   from t = 1, episode truncated:    y = 1 + 0.5 * 0.8 = 1.4   delta = -0.4
    # bias0 <- 1.0 - mean(delta): 1.0 + 0.4 * (share drawn from t = 0) or 1.0 + 0.4.
    expected = 1.0 + 0.4 * from_start if terminate else 1.4
    assert q_net.net[-1].bias[0].item() == pytest.approx(expected, abs=1e-6)


# --- errors, smoke, resume -----------------------------------------------------------------------

def test_box_actions_are_refused_before_any_run_directory(tmp_path, capsys):
    assert main(["train", "dqn", "--env", "Pendulum-v1", "--run-dir", "run", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Discrete" in err and "Pendulum-v1" in err and "for continuous control use sac" in err
    assert not (tmp_path / "run").exists()


def test_exploration_schedule_is_sb3s():
    config = dqn.DQNConfig(total_steps=1_000, learning_starts=100, exploration_fraction=0.5, exploration_final_eps=0.1)
    rates = [offpolicy.exploration_rate(step, config) for step in (0, 99, 100, 250, 500, 900)]
    # Random before learning_starts; then 1 + (step / 1000) (0.1 - 1) / 0.5 until 500, then 0.1.
    assert rates == pytest.approx([1.0, 1.0, 1 - 0.1 * 0.9 / 0.5, 1 - 0.25 * 0.9 / 0.5, 0.1, 0.1])


def test_target_refreshes_count_env_steps_like_sb3():
    # Every max(10 // 4, 1) = 2 vector steps with 4 envs: 5 vector steps from 1 since -> 3 refreshes, 0 since.
    config = dqn.DQNConfig(num_envs=4, target_update_every=10)
    assert offpolicy.target_refreshes(1, 5, config) == (3, 0)
    config = dqn.DQNConfig(num_envs=1, target_update_every=10, train_freq=256)
    assert offpolicy.target_refreshes(6, 256, config) == (26, 2)


def test_smoke_variants_from_the_cli_then_load_and_act(tmp_path):
    args = ["train", "dqn", "--env", "CartPole-v1", "--run-dir", "run", "--quiet", "--total-steps", "1024",
            "--target", "double", "--head", "dueling", "--n-step", "3", "--learning-starts", "256", "--train-freq", "64",
            "--gradient-steps", "8", "--buffer-size", "2048", "--hidden-sizes", "32", "32", "--eval-every", "512", "--eval-episodes", "2"]
    assert main(args) == 0
    policy = rlsuite.load(tmp_path / "run")
    assert (policy.config.target, policy.config.head, policy.config.n_step) == ("double", "dueling", 3)
    assert policy.act(np.zeros(4, np.float32)) in (0, 1)
    batch = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    assert policy.act(batch).shape == (5,)
    assert set(policy.act(batch, deterministic=False).tolist()) <= {0, 1}
    run = rlsuite.open_run(tmp_path / "run")
    assert run.step == 1024 and run.status == "finished"


@pytest.mark.parametrize("extra", [{}, dict(num_envs=2, target="double", head="dueling", n_step=3, tau=0.5, gradient_steps=-1, train_freq=32)])
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, extra):
    config = dqn.preset("CartPole-v1", seed=3, total_steps=2048, **{**SMALL, **extra})
    whole = dqn.train(config, tmp_path / "whole", quiet=True)
    cut = dqn.train(config, tmp_path / "cut", quiet=True, callbacks=[lambda loop: loop.step >= 1024 and loop.request_stop()])
    assert cut.interrupted and cut.step == 1024
    resumed = dqn.train(config, tmp_path / "cut", resume=True, quiet=True)
    assert not resumed.interrupted and resumed.step == whole.step == 2048
    assert_same_checkpoint(tmp_path / "whole", tmp_path / "cut", ("q_net", "target_net", "optimizer"))
    for column in whole.evaluations:
        np.testing.assert_array_equal(resumed.evaluations[column], whole.evaluations[column])


# --- learning ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_dqn_solves_cartpole_within_60k_steps():
    """Evaluation mean >= 475 within 60k env steps on at least 2 of 3 seeds (the zoo's settings)."""
    assert solves(dqn.train, lambda seed: dqn.preset("CartPole-v1", seed=seed, total_steps=60_000), (1, 2, 3), 475, 2)


@pytest.mark.slow
def test_dqn_solves_acrobot():
    """Evaluation mean >= -100 within the preset's 100k env steps on at least 2 of 3 seeds."""
    assert solves(dqn.train, lambda seed: dqn.preset("Acrobot-v1", seed=seed), (1, 2, 3), -100, 2)
