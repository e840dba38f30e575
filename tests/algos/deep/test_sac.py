"""SAC: one update against hand-computed values (critic target with the entropy term, critics,
actor), the temperature's direction and its analytic gradient, the Polyak interval, the frozen
critics of the actor step, the Box-action error, bit-exact resume, and (slow) Pendulum."""

import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlsuite.algos.deep import sac
from rlsuite.cli import main
from rlsuite.ops.policies import QFunctions, SquashedGaussianActor
from rlsuite.rollout.replay import ReplayBatch

sys.path.insert(0, str(Path(__file__).parent))
from learning import solves  # noqa: E402
from test_ddpg import assert_same_checkpoint  # noqa: E402

OBS = gym.spaces.Box(-10, 10, (2,), np.float32)
ACTIONS = gym.spaces.Box(-1, 1, (1,), np.float32)
LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


def constant_actor(config, mean, log_std):
    """pi(.|s) = tanh(N(mean, exp(log_std)^2)) for every s: all weights and hidden biases 0, so the
    last layer outputs its bias [mean, log_std]; gradients reach only that bias."""
    actor = SquashedGaussianActor(OBS, ACTIONS, config)
    with torch.no_grad():
        for p in actor.parameters():
            p.zero_()
        actor.net[-1].bias.copy_(torch.tensor([mean, log_std]))
    return actor


def constant_critic(config, values):
    """Q_k(s, a) = values[k] for every (s, a); gradients reach only the last biases."""
    critic = QFunctions(OBS, ACTIONS, config, len(values))
    with torch.no_grad():
        for p in critic.parameters():
            p.zero_()
        critic.nets.biases[-1].copy_(torch.tensor(values).view(-1, 1, 1))
    return critic


def make_nets(config, actor, critic, critic_target, alpha, learned, lr=1.0):
    temperature = sac.Temperature(alpha, learned)
    nets = {"actor": actor, "critic": critic, "critic_target": critic_target.requires_grad_(False), "temperature": temperature,
            "actor_optimizer": torch.optim.SGD(actor.parameters(), lr=lr),
            "critic_optimizer": torch.optim.SGD(critic.parameters(), lr=lr)}
    if learned:
        nets["temperature_optimizer"] = torch.optim.SGD(temperature.parameters(), lr=lr)
    return nets


def random_nets(config, alpha=0.2, learned=True, lr=0.1, seed=0):
    """Default-initialized nets, the target critics differing from the critics (so a Polyak move shows)."""
    torch.manual_seed(seed)
    return make_nets(config, SquashedGaussianActor(OBS, ACTIONS, config), QFunctions(OBS, ACTIONS, config, config.critics),
                     QFunctions(OBS, ACTIONS, config, config.critics), alpha, learned, lr)


# As in test_dqn: 0 bootstraps with discount 0.5; 1 steps into a terminal state (discount 0);
# 2 is a 2-step window (R = 2, discount 0.25).
BATCH = ReplayBatch(
    obs=torch.zeros(3, 2),
    actions=torch.full((3, 1), 0.3),
    returns=torch.tensor([1.0, 0.0, 2.0]),
    next_obs=torch.ones(3, 2),
    discounts=torch.tensor([0.5, 0.0, 0.25]),
    n_steps=torch.tensor([1, 1, 2]),
)


def random_batch(rows, seed=1):
    g = torch.Generator().manual_seed(seed)
    return ReplayBatch(obs=torch.randn(rows, 2, generator=g), actions=torch.rand(rows, 1, generator=g) * 2 - 1,
                       returns=torch.randn(rows, generator=g), next_obs=torch.randn(rows, 2, generator=g),
                       discounts=torch.full((rows,), 0.9), n_steps=torch.ones(rows))


def params(net):
    return [p.detach().clone() for p in net.parameters()]


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


# --- one update by hand --------------------------------------------------------------------------

def test_one_update_by_hand():
    # Fixed alpha = 0.5; pi = tanh(N(m, s^2)), m = 0.3, log s = -0.5; Q_1, Q_2 = 1.0, 0.5 and
    # Q'_1, Q'_2 = 0.2, 0.8. The update draws eps (the actions for the actor, [3, 1]) then eps'
    # (the next actions); they are redrawn here from the same seed. With u = m + s eps:
    #   log pi(tanh u) = -eps^2 / 2 - log s - log sqrt(2 pi) - log(1 - tanh(u)^2)
    config = sac.SACConfig(ent_coef=0.5, batch_size=3, gamma=0.5, hidden_sizes=(4,), critics=2, tau=0.25)
    m, log_s, alpha = 0.3, -0.5, 0.5
    nets = make_nets(config, constant_actor(config, m, log_s), constant_critic(config, [1.0, 0.5]),
                     constant_critic(config, [0.2, 0.8]), alpha, learned=False)
    torch.manual_seed(11)
    metrics = sac.update(nets, BATCH, config, target_entropy=-1.0, gradient_steps_before=0)
    torch.manual_seed(11)
    eps, eps_next = torch.randn(3, 1).double().flatten().numpy(), torch.randn(3, 1).double().flatten().numpy()
    s = np.exp(log_s)

    def log_pi(e):
        u = m + s * e
        return -0.5 * e**2 - log_s - LOG_SQRT_2PI - np.log(1 - np.tanh(u) ** 2)

    # y = R + discount (min_k Q'_k - alpha log pi(a'|s')), min_k Q'_k = 0.2.
    R, d = np.array([1.0, 0.0, 2.0]), np.array([0.5, 0.0, 0.25])
    y = R + d * (0.2 - alpha * log_pi(eps_next))
    assert y[1] == 0.0  # the terminal row does not bootstrap, entropy term included
    # Critic loss 0.5 sum_k mean_i (b_k - y_i)^2: dL/db_k = mean_i (b_k - y_i), so with lr 1 each
    # b_k <- b_k - (b_k - mean y) = mean y.
    loss = 0.5 * (np.mean((1.0 - y) ** 2) + np.mean((0.5 - y) ** 2))
    assert metrics["losses/critic_loss"] == pytest.approx(loss, abs=1e-5)
    assert nets["critic"].nets.biases[-1].flatten().tolist() == pytest.approx([y.mean()] * 2, abs=1e-5)
    # Actor loss mean_i (alpha log pi(a_i|s) - min_k Q_k(s, a_i)); the updated critics are constant
    # in a, so only alpha log pi moves the actor. Reparameterized, u = m + s eps:
    #   d log pi / dm     = -d log(1 - tanh(u)^2) / du = 2 tanh(u)
    #   d log pi / dlog s = -1 + 2 tanh(u) s eps
    u = m + s * eps
    grad = alpha * np.array([np.mean(2 * np.tanh(u)), np.mean(-1 + 2 * np.tanh(u) * s * eps)])
    assert nets["actor"].net[-1].bias.tolist() == pytest.approx([m - grad[0], log_s - grad[1]], abs=1e-5)
    assert metrics["losses/actor_loss"] == pytest.approx(np.mean(alpha * log_pi(eps)) - y.mean(), abs=1e-5)
    assert metrics["losses/alpha"] == pytest.approx(alpha) and metrics["losses/entropy"] == pytest.approx(-np.mean(log_pi(eps)), abs=1e-5)
    # The targets then move a quarter of the way (tau = 0.25) to the new critics.
    expected_target = 0.75 * np.array([0.2, 0.8]) + 0.25 * y.mean()
    assert nets["critic_target"].nets.biases[-1].flatten().tolist() == pytest.approx(expected_target, abs=1e-5)


# --- the temperature -----------------------------------------------------------------------------

@pytest.mark.parametrize("log_std,alpha_rises", [(-3.0, True), (0.0, False)])
def test_temperature_moves_toward_the_target_entropy(log_std, alpha_rises):
    # Target entropy -1. With std e^-3 the policy's entropy -log pi is about -2.1 (below: alpha
    # must rise, to reward entropy more); with std 1 (tanh of a standard normal) about +0.7
    # (above: alpha must fall).
    config = sac.SACConfig(batch_size=64, hidden_sizes=(4,))
    nets = make_nets(config, constant_actor(config, 0.0, log_std), constant_critic(config, [0.0, 0.0]),
                     constant_critic(config, [0.0, 0.0]), 1.0, learned=True, lr=0.1)
    torch.manual_seed(0)
    metrics = sac.update(nets, random_batch(64), config, target_entropy=-1.0, gradient_steps_before=0)
    assert (metrics["losses/entropy"] < -1.0) == alpha_rises  # the premise
    assert metrics["losses/alpha"] == 1.0  # the step used alpha from before its temperature update
    alpha = nets["temperature"].alpha.item()
    assert alpha > 1.0 if alpha_rises else alpha < 1.0


def test_temperature_gradient_equals_autograds():
    config = sac.SACConfig(batch_size=16, hidden_sizes=(8,))
    nets = random_nets(config, alpha=0.3, learned=True)
    temperature = nets["temperature"]
    seen = []
    real_step = nets["temperature_optimizer"].step
    nets["temperature_optimizer"].step = lambda: seen.append(temperature.log_alpha.grad.clone()) or real_step()
    torch.manual_seed(5)
    sac.update(nets, random_batch(16), config, target_entropy=-1.5, gradient_steps_before=0)
    # The update's first draw is the actions for the batch's observations; redraw it.
    fresh = random_nets(config, alpha=0.3, learned=True)  # the actor before the update
    torch.manual_seed(5)
    _, log_prob = fresh["actor"](random_batch(16).obs).rsample()
    log_alpha = torch.tensor(float(np.log(0.3)), requires_grad=True)
    (-(log_alpha * (log_prob.detach() + -1.5)).mean()).backward()
    assert len(seen) == 1
    torch.testing.assert_close(seen[0], log_alpha.grad, rtol=1e-6, atol=1e-7)


def test_fixed_temperature_does_not_move():
    config = sac.SACConfig(ent_coef=0.2, batch_size=8, hidden_sizes=(8,))
    nets = random_nets(config, alpha=0.2, learned=False)
    sac.update(nets, random_batch(16), config, target_entropy=-1.0, gradient_steps_before=0)
    assert nets["temperature"].alpha.item() == pytest.approx(0.2)
    assert nets["temperature"].log_alpha.grad is None


# --- Polyak interval and frozen critics ----------------------------------------------------------

@pytest.mark.parametrize("before,steps,moves", [(0, 1, False), (1, 1, True), (0, 2, True), (2, 1, False)])
def test_targets_move_every_target_update_interval_steps_of_the_run(before, steps, moves):
    # Interval 2: the targets move after the run's 2nd, 4th, ... gradient step, and a move is
    # theta' <- tau theta + (1 - tau) theta' with the critics as they are after that step. In a
    # 2-step phase from 0 the move is at its last step, so it is the critics' final values.
    config = sac.SACConfig(batch_size=8, hidden_sizes=(8,), tau=0.1, target_update_interval=2)
    nets = random_nets(config)
    start = params(nets["critic_target"])
    sac.update(nets, random_batch(8 * steps), config, target_entropy=-1.0, gradient_steps_before=before)
    if not moves:
        assert same(params(nets["critic_target"]), start)
        return
    for new, theta, old in zip(params(nets["critic_target"]), params(nets["critic"]), start, strict=True):
        torch.testing.assert_close(new, 0.1 * theta + 0.9 * old, atol=1e-6, rtol=0)


def test_actor_step_leaves_the_critics_and_their_gradients_alone():
    # While the actor steps, every critic parameter is frozen and holds the critic loss's gradient
    # (the actor loss adds nothing to it); afterwards all are trainable again.
    config = sac.SACConfig(batch_size=8, hidden_sizes=(8,))
    nets = random_nets(config)
    critic = nets["critic"]
    seen = {}
    critic_step, actor_step = nets["critic_optimizer"].step, nets["actor_optimizer"].step

    def after_critic_step():
        critic_step()
        seen["critic_grads"] = [p.grad.clone() for p in critic.parameters()]
        seen["critic_params"] = params(critic)

    def at_actor_step():
        seen["frozen"] = [p.requires_grad for p in critic.parameters()]
        seen["grads_then"] = [p.grad.clone() for p in critic.parameters()]
        actor_step()

    nets["critic_optimizer"].step, nets["actor_optimizer"].step = after_critic_step, at_actor_step
    actor_before = params(nets["actor"])
    sac.update(nets, random_batch(8), config, target_entropy=-1.0, gradient_steps_before=0)
    assert seen["frozen"] == [False] * len(seen["frozen"])
    assert same(seen["grads_then"], seen["critic_grads"])
    assert same(params(critic), seen["critic_params"])
    assert not same(params(nets["actor"]), actor_before)
    assert all(p.requires_grad for p in critic.parameters())


# --- errors, resume, learning --------------------------------------------------------------------

def test_discrete_actions_are_refused_before_any_run_directory(tmp_path, capsys):
    assert main(["train", "sac", "--env", "CartPole-v1", "--run-dir", "run", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Box" in err and "CartPole-v1" in err
    assert not (tmp_path / "run").exists()


PARTS = ("actor", "critic", "critic_target", "temperature", "actor_optimizer", "critic_optimizer", "temperature_optimizer")


def test_interrupted_then_resumed_equals_uninterrupted(tmp_path):
    config = sac.preset("Pendulum-v1", seed=3, total_steps=600, learning_starts=100, batch_size=32, hidden_sizes=(32, 32),
                        buffer_size=1_000, eval_every=300, eval_episodes=2, checkpoint_every=0)
    whole = sac.train(config, tmp_path / "whole", quiet=True)
    cut = sac.train(config, tmp_path / "cut", quiet=True, callbacks=[lambda loop: loop.step >= 301 and loop.request_stop()])
    assert cut.interrupted and cut.step == 301
    resumed = sac.train(config, tmp_path / "cut", resume=True, quiet=True)
    assert not resumed.interrupted and resumed.step == whole.step == 600
    assert_same_checkpoint(tmp_path / "whole", tmp_path / "cut", PARTS)
    for column in whole.evaluations:
        np.testing.assert_array_equal(resumed.evaluations[column], whole.evaluations[column])


@pytest.mark.slow
def test_sac_solves_pendulum():
    """Evaluation mean >= -200 within 8k env steps on one seed (the zoo's settings, lr 1e-3)."""
    make = lambda seed: sac.preset("Pendulum-v1", seed=seed, learning_rate=1e-3, total_steps=8_000, eval_every=1_000)
    assert solves(sac.train, make, (1,), -200, 1)
