"""DDPG and TD3: the TD target by hand (one critic, the min of two, termination, target policy
smoothing), one critic update against hand-computed values, the delayed actor-and-target
schedule with exact Polyak moves, the behaviour policy, the Box-action error, and bit-exact
resume."""

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlsuite.algos.deep import ddpg
from rlsuite.cli import main
from rlsuite.core import checkpoint
from rlsuite.core.run import RunDir
from rlsuite.ops.policies import DeterministicActor, QFunctions
from rlsuite.rollout import offpolicy
from rlsuite.rollout.replay import ReplayBatch, ReplayBuffer

OBS = gym.spaces.Box(-10, 10, (2,), np.float32)
ACTIONS = gym.spaces.Box(-1, 1, (1,), np.float32)
DDPG_SPEC, TD3_SPEC = ddpg.SPECS


# --- networks with known outputs -----------------------------------------------------------------

def constant_actor(config, bias):
    """mu(s) = tanh(bias) for every s: all weights and hidden biases 0, so the hidden activations
    are relu(0) = 0 and the last layer outputs its bias."""
    actor = DeterministicActor(OBS, ACTIONS, config)
    with torch.no_grad():
        for p in actor.parameters():
            p.zero_()
        actor.net[-1].bias.fill_(bias)
    return actor


def constant_critic(config, values):
    """Q_k(s, a) = values[k] for every (s, a), as constant_actor. Gradients reach only the last
    biases: the last weights see zero activations and the hidden layers sit behind zero weights."""
    critic = QFunctions(OBS, ACTIONS, config, len(values))
    with torch.no_grad():
        for p in critic.parameters():
            p.zero_()
        critic.nets.biases[-1].copy_(torch.tensor(values).view(-1, 1, 1))
    return critic


def linear_critic(slopes):
    """Q_k(s, a) = 2 + slopes[k] * a, so a target read from it reveals the action it was given:
    one hidden unit h = relu(slope * a + 2) (positive for a in [-1, 1]), output h."""
    config = ddpg.TD3Config(hidden_sizes=(1,))
    critic = QFunctions(OBS, ACTIONS, config, len(slopes))
    with torch.no_grad():
        for p in critic.parameters():
            p.zero_()
        critic.nets.weights[0][:, OBS.shape[0], 0] = torch.tensor(slopes)  # the action input
        critic.nets.biases[0].fill_(2.0)
        critic.nets.weights[1].fill_(1.0)
    return critic


# Three transitions. 0: bootstraps with discount 0.5; 1: a step into a terminal state, discount 0
# (n_steps 1 would give gamma if the mask were ignored); 2: a 2-step window, R = 2, discount 0.25.
# Observations are irrelevant to the constant networks.
BATCH = ReplayBatch(
    obs=torch.zeros(3, 2),
    actions=torch.full((3, 1), 0.3),
    returns=torch.tensor([1.0, 0.0, 2.0]),
    next_obs=torch.ones(3, 2),
    discounts=torch.tensor([0.5, 0.0, 0.25]),
    n_steps=torch.tensor([1, 1, 2]),
)


def by_hand(config_class=ddpg.TD3Config, **overrides):
    return config_class(**{**dict(batch_size=3, gamma=0.5, hidden_sizes=(4,)), **overrides})


# --- the TD target -------------------------------------------------------------------------------

def test_ddpg_target_bootstraps_from_the_target_actor_by_hand():
    config = by_hand(ddpg.DDPGConfig)
    # mu'(s') = tanh(0.5) = 0.46212; Q'(s', a) = 2 + a, so Q'(s', mu'(s')) = 2.46212.
    #   y0 = 1 + 0.5 * 2.46212;  y1 = 0 (terminal: discount 0);  y2 = 2 + 0.25 * 2.46212
    y = ddpg.td_target(constant_actor(config, 0.5), linear_critic([1.0]), BATCH, config)
    q = 2 + np.tanh(0.5)
    assert y.tolist() == pytest.approx([1 + 0.5 * q, 0.0, 2 + 0.25 * q], abs=1e-6)


@pytest.mark.parametrize("values", [[0.8, 0.3], [0.3, 0.8]])
def test_td3_target_takes_the_min_of_the_target_critics(values):
    # Q'_1, Q'_2 constant 0.8 and 0.3 (either order): min 0.3, and the smoothing noise (on by
    # default) changes nothing since neither reads the action.
    #   y0 = 1 + 0.5 * 0.3 = 1.15;  y1 = 0;  y2 = 2 + 0.25 * 0.3 = 2.075
    config = by_hand()
    y = ddpg.td_target(constant_actor(config, 0.5), constant_critic(config, values), BATCH, config)
    assert y.tolist() == pytest.approx([1.15, 0.0, 2.075], abs=1e-6)


def test_td3_min_follows_whichever_critic_is_lower_at_the_action():
    # Q'_1 = 2 + a, Q'_2 = 2 - a: min = 2 - |a|, Q'_2 at mu' = tanh(0.5) and Q'_1 at tanh(-0.5).
    config = by_hand(target_policy_noise=0.0)
    for bias in (0.5, -0.5):
        y = ddpg.td_target(constant_actor(config, bias), linear_critic([1.0, -1.0]), BATCH, config)
        q = 2 - np.tanh(0.5)
        assert y.tolist() == pytest.approx([1 + 0.5 * q, 0.0, 2 + 0.25 * q], abs=1e-6)


@pytest.mark.parametrize("terminate", [True, False])
def test_termination_stops_bootstrapping_and_truncation_does_not(terminate):
    # Through the replay buffer: 0 -> 1 (r = 1), then 1 -> 2 (r = 1) ends the episode by
    # termination or by a time limit. gamma = 0.5, Q' = 0.8 constant:
    #   from 0:             y = 1 + 0.5 * 0.8 = 1.4
    #   from 1, truncated:  y = 1.4           from 1, terminated: y = 1
    config = by_hand(batch_size=64)
    buffer = ReplayBuffer(8, 1, OBS.shape, ACTIONS.shape, action_dtype=np.float32)
    zero_action = np.zeros((1, 1), np.float32)
    buffer.add(np.zeros((1, 2)), zero_action, [1.0], [[1.0, 0.0]], [False], [False], [True])
    buffer.add([[1.0, 0.0]], zero_action, [1.0], [[2.0, 0.0]], [terminate], [not terminate], [True])
    batch = offpolicy.sample_phase(buffer, np.random.default_rng(0), 1, config, torch.device("cpu"))
    from_end = batch.obs[:, 0] == 1
    assert 0 < float(from_end.float().mean()) < 1  # both transitions were drawn
    y = ddpg.td_target(constant_actor(config, 0.0), constant_critic(config, [0.8, 0.9]), batch, config)
    expected = torch.where(from_end & terminate, 1.0, 1.4)
    torch.testing.assert_close(y, expected)


def test_target_policy_smoothing_clips_the_noise_then_the_action():
    # Q'(s', a) = 2 + a reveals the smoothed action: a' = (y - R) / discount - 2. mu'(s') =
    # tanh(1) = 0.7616 and a noise std of 100: nearly every eps lies beyond the clip c = 0.5, so
    # a' = 0.2616 or clamp(1.2616, -1, 1) = 1, and never outside [mu' - c, min(mu' + c, 1)].
    config = by_hand(batch_size=256, target_policy_noise=100.0, target_noise_clip=0.5)
    batch = ReplayBatch(obs=torch.zeros(256, 2), actions=torch.zeros(256, 1), returns=torch.zeros(256),
                        next_obs=torch.zeros(256, 2), discounts=torch.ones(256), n_steps=torch.ones(256))
    actor, critic = constant_actor(config, 1.0), linear_critic([1.0])  # built first: their init draws too
    torch.manual_seed(7)
    with torch.no_grad():
        y = ddpg.td_target(actor, critic, batch, config)
    smoothed = y - 2
    mu = np.tanh(1.0)
    assert float(smoothed.min()) >= mu - 0.5 - 1e-6 and float(smoothed.max()) <= 1.0
    assert float(smoothed.min()) == pytest.approx(mu - 0.5, abs=1e-6)  # the clip is reached...
    assert float(smoothed.max()) == 1.0  # ...and so is the action bound
    # The same draws, redone: a' = clip(mu' + clip(100 eps, -0.5, 0.5), -1, 1).
    torch.manual_seed(7)
    eps = torch.randn(256, 1)
    expected = (torch.tanh(torch.tensor(1.0)) + (eps * 100).clamp(-0.5, 0.5)).clamp(-1, 1)[:, 0]
    torch.testing.assert_close(smoothed, expected, atol=1e-6, rtol=0)


def test_no_smoothing_draws_no_noise():
    config = by_hand(target_policy_noise=0.0)
    actor, critic = constant_actor(config, 1.0), linear_critic([1.0])
    before = torch.get_rng_state()
    y = ddpg.td_target(actor, critic, BATCH, config)
    assert torch.equal(torch.get_rng_state(), before)
    assert y[0].item() == pytest.approx(1 + 0.5 * (2 + np.tanh(1.0)), abs=1e-6)  # a' = mu'(s') exactly


# --- one update ----------------------------------------------------------------------------------

def by_hand_nets(config, actor_bias, critic_values, target_values, lr=1.0):
    actor, critic = constant_actor(config, actor_bias), constant_critic(config, critic_values)
    return {
        "actor": actor, "critic": critic,
        "actor_target": constant_actor(config, actor_bias).requires_grad_(False),
        "critic_target": constant_critic(config, target_values).requires_grad_(False),
        "actor_optimizer": torch.optim.SGD(actor.parameters(), lr=lr),
        "critic_optimizer": torch.optim.SGD(critic.parameters(), lr=lr),
    }


def test_critic_update_by_hand():
    # TD3, no smoothing; Q_1, Q_2 = 1.0, 0.5 and Q'_1, Q'_2 = 0.2, 0.8, so min_k Q'_k = 0.2:
    #   y = (1 + 0.5 * 0.2, 0, 2 + 0.25 * 0.2) = (1.1, 0, 2.05)
    # Loss sum_k mean_i (Q_k - y_i)^2, so dL/db_k = (2 / 3) sum_i (b_k - y_i):
    #   k = 1: b - y = (-0.1, 1.0, -1.05), sum -0.15, grad -0.1  -> b_1 <- 1.0 + 0.1 = 1.1
    #   k = 2: b - y = (-0.6, 0.5, -1.55), sum -1.65, grad -1.1  -> b_2 <- 0.5 + 1.1 = 1.6
    # loss = (0.01 + 1 + 1.1025) / 3 + (0.36 + 0.25 + 2.4025) / 3 = 5.125 / 3.
    # With policy_delay 2 the first step of the run moves no actor and no target.
    config = by_hand(target_policy_noise=0.0)
    nets = by_hand_nets(config, 0.5, [1.0, 0.5], [0.2, 0.8])
    metrics = ddpg.update(nets, BATCH, config, gradient_steps_before=0)
    assert nets["critic"].nets.biases[-1].flatten().tolist() == pytest.approx([1.1, 1.6], abs=1e-6)
    assert metrics["losses/critic_loss"] == pytest.approx(5.125 / 3, abs=1e-6)
    assert "losses/actor_loss" not in metrics


def test_actor_ascends_the_first_critic_by_hand():
    # Q_1 = 2 + a and Q_2 = 2 - a, critics held still (lr 0 for them). The actor's loss is
    # -mean Q_1(s, tanh(b)), whose gradient in b is -(1 - tanh(b)^2): b <- b + 1 - tanh(b)^2.
    # (Ascending Q_2, or min(Q_1, Q_2) = 2 - |a|, would move b the other way from 0.5.)
    config = by_hand(ddpg.DDPGConfig, hidden_sizes=(1,))
    actor = constant_actor(config, 0.5)
    critic = linear_critic([1.0, -1.0])
    nets = {"actor": actor, "critic": critic, "actor_target": copy.deepcopy(actor), "critic_target": copy.deepcopy(critic),
            "actor_optimizer": torch.optim.SGD(actor.parameters(), lr=1.0), "critic_optimizer": torch.optim.SGD(critic.parameters(), lr=0.0)}
    metrics = ddpg.update(nets, BATCH, config, gradient_steps_before=0)
    assert actor.net[-1].bias.item() == pytest.approx(0.5 + 1 - np.tanh(0.5) ** 2, abs=1e-6)
    assert metrics["losses/actor_loss"] == pytest.approx(-(2 + np.tanh(0.5)), abs=1e-6)


# --- delays and Polyak ---------------------------------------------------------------------------

def random_nets(config, seed=0):
    """Default-initialized nets whose targets differ from them (so a Polyak move is visible), SGD."""
    torch.manual_seed(seed)
    actor, critic = DeterministicActor(OBS, ACTIONS, config), QFunctions(OBS, ACTIONS, config, config.critics)
    nets = {"actor": actor, "critic": critic,
            "actor_target": DeterministicActor(OBS, ACTIONS, config).requires_grad_(False),
            "critic_target": QFunctions(OBS, ACTIONS, config, config.critics).requires_grad_(False),
            "actor_optimizer": torch.optim.SGD(actor.parameters(), lr=0.1),
            "critic_optimizer": torch.optim.SGD(critic.parameters(), lr=0.1)}
    return nets


def random_batch(rows, seed=1):
    g = torch.Generator().manual_seed(seed)
    return ReplayBatch(obs=torch.randn(rows, 2, generator=g), actions=torch.rand(rows, 1, generator=g) * 2 - 1,
                       returns=torch.randn(rows, generator=g), next_obs=torch.randn(rows, 2, generator=g),
                       discounts=torch.full((rows,), 0.9), n_steps=torch.ones(rows))


def params(net):
    return [p.detach().clone() for p in net.parameters()]


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("policy_delay,before,actor_moves", [(2, 0, False), (2, 1, True), (1, 0, True), (3, 1, False), (3, 2, True)])
def test_actor_and_targets_move_every_policy_delay_steps_of_the_run(policy_delay, before, actor_moves):
    # The step is the (before + 1)-th of the run; the actor and both targets move when
    # policy_delay divides it. tau = 0.1 so that tau and 1 - tau are far apart.
    config = by_hand(batch_size=8, hidden_sizes=(8,), tau=0.1, policy_delay=policy_delay)
    nets = random_nets(config)
    start = {name: params(nets[name]) for name in ("actor", "critic", "actor_target", "critic_target")}
    metrics = ddpg.update(nets, random_batch(8), config, gradient_steps_before=before)
    assert not same(params(nets["critic"]), start["critic"])
    assert ("losses/actor_loss" in metrics) == actor_moves
    if not actor_moves:
        for name in ("actor", "actor_target", "critic_target"):
            assert same(params(nets[name]), start[name]), name
        return
    assert not same(params(nets["actor"]), start["actor"])
    for online, target in (("actor", "actor_target"), ("critic", "critic_target")):
        # theta' <- tau theta + (1 - tau) theta', theta the online net after its step.
        for new, theta, old in zip(params(nets[target]), params(nets[online]), start[target], strict=True):
            torch.testing.assert_close(new, 0.1 * theta + 0.9 * old, atol=1e-6, rtol=0)


def test_a_phase_counts_its_steps_from_the_run_start():
    # 5 steps after 1 with policy_delay 2: run steps 2..6, so the actor moves at 2, 4 and 6.
    config = by_hand(batch_size=4, hidden_sizes=(8,), policy_delay=2)
    nets = random_nets(config)
    steps = []
    real_step = nets["actor_optimizer"].step
    nets["actor_optimizer"].step = lambda: steps.append(1) or real_step()
    ddpg.update(nets, random_batch(20), config, gradient_steps_before=1)
    assert len(steps) == 3


def test_actor_step_leaves_the_critic_and_its_gradients_alone():
    # During the actor's step the critic is frozen (its gradients stay the critic loss's), and it
    # is trainable again afterwards.
    config = by_hand(batch_size=8, hidden_sizes=(8,), policy_delay=1)
    nets = random_nets(config)
    critic = nets["critic"]
    seen = {}
    critic_step, actor_step = nets["critic_optimizer"].step, nets["actor_optimizer"].step

    def after_critic_step():
        critic_step()
        seen["critic_grads"] = [p.grad.clone() for p in critic.parameters()]

    def at_actor_step():
        seen["frozen"] = [p.requires_grad for p in critic.parameters()]
        seen["grads_then"] = [p.grad.clone() for p in critic.parameters()]
        seen["params_then"] = params(critic)
        actor_step()

    nets["critic_optimizer"].step, nets["actor_optimizer"].step = after_critic_step, at_actor_step
    ddpg.update(nets, random_batch(8), config, gradient_steps_before=0)
    assert seen["frozen"] == [False] * len(seen["frozen"])
    assert same(seen["grads_then"], seen["critic_grads"])
    assert same(params(critic), seen["params_then"])
    assert all(p.requires_grad for p in critic.parameters())


# --- the behaviour policy ------------------------------------------------------------------------

def test_behaviour_is_uniform_before_learning_starts():
    config = ddpg.TD3Config(learning_starts=100, hidden_sizes=(4,))
    behaviour = ddpg.exploration(constant_actor(config, 0.5), config, 1)
    obs = np.zeros((1000, 2), np.float32)
    actions = behaviour(obs, 99, np.random.default_rng(0))
    assert actions.dtype == np.float32 and actions.shape == (1000, 1)
    np.testing.assert_array_equal(actions, np.random.default_rng(0).uniform(-1, 1, (1000, 1)).astype(np.float32))
    assert actions.min() < -0.99 and actions.max() > 0.99  # spans [-1, 1], not mu(s) = 0.46


def test_behaviour_adds_clipped_gaussian_noise_to_mu_after_learning_starts():
    config = ddpg.TD3Config(learning_starts=100, hidden_sizes=(4,), action_noise=0.5)
    behaviour = ddpg.exploration(constant_actor(config, 1.0), config, 1)
    obs = np.zeros((1000, 2), np.float32)
    # From step learning_starts on: clip(mu(s) + N(0, 0.5^2), -1, 1), mu(s) = tanh(1) = 0.7616.
    actions = behaviour(obs, 100, np.random.default_rng(0))
    expected = np.clip(np.tanh(1.0) + np.random.default_rng(0).normal(0, 0.5, (1000, 1)), -1, 1)
    np.testing.assert_allclose(actions, expected, atol=1e-6)
    assert actions.dtype == np.float32 and actions.min() >= -1 and actions.max() == 1.0
    # No noise: mu(s) itself.
    quiet = ddpg.exploration(constant_actor(config, 1.0), ddpg.TD3Config(hidden_sizes=(4,), action_noise=0.0), 1)
    np.testing.assert_allclose(quiet(obs[:3], 500, np.random.default_rng(0)), np.full((3, 1), np.tanh(1.0)), atol=1e-6)


# --- errors and resume ---------------------------------------------------------------------------

@pytest.mark.parametrize("algo", ["ddpg", "td3"])
def test_discrete_actions_are_refused_before_any_run_directory(tmp_path, capsys, algo):
    assert main(["train", algo, "--env", "CartPole-v1", "--run-dir", "run", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Box" in err and "CartPole-v1" in err
    assert not (tmp_path / "run").exists()


PARTS = ("actor", "critic", "actor_target", "critic_target", "actor_optimizer", "critic_optimizer")


def assert_same_checkpoint(a_dir, b_dir, parts):
    a = checkpoint.load_state(RunDir(a_dir).latest_checkpoint())
    b = checkpoint.load_state(RunDir(b_dir).latest_checkpoint())
    for name in parts:
        flat_a, flat_b = torch.utils._pytree.tree_flatten(a["parts"][name])[0], torch.utils._pytree.tree_flatten(b["parts"][name])[0]
        assert len(flat_a) == len(flat_b), name
        for x, y in zip(flat_a, flat_b):
            assert torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y, name
    assert a["step"] == b["step"] and a["evaluations"] == b["evaluations"]
    assert a["state"].gradient_steps == b["state"].gradient_steps
    assert a["state"].rng.bit_generator.state == b["state"].rng.bit_generator.state
    replay_a, replay_b = RunDir(a_dir).latest_checkpoint() / "replay", RunDir(b_dir).latest_checkpoint() / "replay"
    for path in replay_a.glob("*.npy"):
        np.testing.assert_array_equal(np.load(path), np.load(replay_b / path.name))


TINY = dict(seed=3, total_steps=600, learning_starts=100, batch_size=32, hidden_sizes=(32, 32), buffer_size=1_000,
            eval_every=300, eval_episodes=2, checkpoint_every=0)


def test_td3_interrupted_then_resumed_equals_uninterrupted(tmp_path):
    config = TD3_SPEC.preset("Pendulum-v1", **TINY)
    whole = TD3_SPEC.train(config, tmp_path / "whole", quiet=True)
    cut = TD3_SPEC.train(config, tmp_path / "cut", quiet=True, callbacks=[lambda loop: loop.step >= 301 and loop.request_stop()])
    # One gradient step per env step after the first 100: 201 by then, an odd number, so the cut
    # falls between a critic step and its delayed actor step.
    assert cut.interrupted and cut.step == 301
    resumed = TD3_SPEC.train(config, tmp_path / "cut", resume=True, quiet=True)
    assert not resumed.interrupted and resumed.step == whole.step == 600
    assert_same_checkpoint(tmp_path / "whole", tmp_path / "cut", PARTS)
    for column in whole.evaluations:
        np.testing.assert_array_equal(resumed.evaluations[column], whole.evaluations[column])
