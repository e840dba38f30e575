"""rlsuite.ops.policies (and the ParallelMLP paths they rely on): Q-functions' first member,
ParallelMLP's member and scalar-head paths, its nn.Linear-style init, the [-1, 1] -> Box bounds
mapping, the squashed Gaussian's log-std clamp, and the actor-critic with a Q critic."""

from __future__ import annotations

import math
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlsuite.ops.nets import ParallelMLP
from rlsuite.ops.policies import ActorCritic, DeterministicActor, QFunctions, SquashedGaussianActor, box_mapper, to_bounds

OBS = gym.spaces.Box(-10, 10, (3,), np.float32)
# Asymmetric bounds, so that a map ignoring low or high, or centring on 0, shows.
BOUNDS = gym.spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 10.0], np.float32))


def config(**overrides):
    return SimpleNamespace(**{**dict(hidden_sizes=(8, 6), activation="relu", log_std_init=0.0, normalize_obs=False), **overrides})


# --- ParallelMLP ---------------------------------------------------------------------------------

@pytest.mark.parametrize("out_dim", [1, 3])  # the scalar head (multiply and sum), and baddbmm
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_member_k_is_forward_k(out_dim, activation):
    torch.manual_seed(0)
    net = ParallelMLP(3, 5, (7, 4), out_dim, activation, torch_init=True)
    x = torch.randn(11, 5)
    out = net(x)
    assert out.shape == (3, 11, out_dim)
    for k in range(3):
        torch.testing.assert_close(net.member(k, x), out[k], atol=1e-6, rtol=1e-6)


def test_scalar_head_equals_plain_baddbmm():
    # The last layer with one output is computed as a multiply and a sum; the same math as the
    # batched matrix product every other layer uses (float64, so only rounding could differ).
    torch.manual_seed(1)
    net = ParallelMLP(2, 4, (6,), 1, "tanh", torch_init=True).double()
    x = torch.randn(9, 4, dtype=torch.float64)
    h = x.expand(2, -1, -1)
    h = torch.tanh(torch.baddbmm(net.biases[0], h, net.weights[0]))
    expected = torch.baddbmm(net.biases[1], h, net.weights[1])
    torch.testing.assert_close(net(x), expected, atol=1e-12, rtol=1e-12)
    # Leading batch dimensions are kept: [K, 3, 3, 1] from [3, 3, 4].
    torch.testing.assert_close(net(x[:9].reshape(3, 3, 4)), expected.reshape(2, 3, 3, 1), atol=1e-12, rtol=1e-12)


def test_torch_init_draws_within_nn_linear_bounds():
    # nn.Linear(a, b).reset_parameters: weight and bias uniform in +-1/sqrt(a) (kaiming_uniform
    # with a = sqrt(5) gives gain sqrt(1/3), bound gain sqrt(3 / a) = 1/sqrt(a)).
    torch.manual_seed(2)
    net = ParallelMLP(2, 64, (32,), 1, torch_init=True)
    for weight, bias in zip(net.weights, net.biases):
        bound = 1 / math.sqrt(weight.shape[1])
        reference = torch.nn.Linear(weight.shape[1], weight.shape[2])
        assert reference.weight.abs().max() <= bound and reference.bias.abs().max() <= bound  # the bound is nn.Linear's
        for values in (weight.detach(), bias.detach()):
            assert values.abs().max() <= bound
        # Uniform over the whole interval, not a narrower one: std bound / sqrt(3), extremes near +-bound.
        w = weight.detach()
        assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.1)
        assert w.max() > 0.9 * bound and w.min() < -0.9 * bound
        assert not torch.equal(w[0], w[1])  # each member drawn apart
    assert bool((net.biases[0] != 0).all())  # biases drawn too, unlike the orthogonal init


# --- Q-functions ---------------------------------------------------------------------------------

def test_q_functions_first_is_forward_0():
    torch.manual_seed(3)
    critic = QFunctions(OBS, BOUNDS, config(), 3)
    obs, actions = torch.randn(10, 3), torch.rand(10, 2) * 2 - 1
    q = critic(obs, actions)
    assert q.shape == (3, 10)
    torch.testing.assert_close(critic.first(obs, actions), q[0], atol=1e-6, rtol=1e-6)
    assert not torch.allclose(q[0], q[1])  # the members really differ, so [0] is a real choice


# --- Box actions ---------------------------------------------------------------------------------

def test_to_bounds_and_box_mapper_map_the_unit_box_onto_the_bounds():
    # low + (u + 1) / 2 (high - low), u clipped to [-1, 1] first:
    #   -1 -> low, 1 -> high, 0 -> midpoint (0, 5), -0.5 -> (-1, 2.5), +-3 -> clipped to high / low.
    unit = np.array([[-1, -1], [1, 1], [0, 0], [-0.5, -0.5], [3, -3]], np.float32)
    expected = np.array([[-2, 0], [2, 10], [0, 5], [-1, 2.5], [2, 0]], np.float32)
    low, high = torch.as_tensor(BOUNDS.low), torch.as_tensor(BOUNDS.high)
    np.testing.assert_allclose(to_bounds(torch.as_tensor(unit), low, high), expected, atol=1e-6)
    np.testing.assert_allclose(box_mapper(BOUNDS)(unit), expected, atol=1e-6)
    assert box_mapper(BOUNDS)(unit).dtype == np.float32


@pytest.mark.parametrize("bias,expected", [([50.0, -50.0], [2.0, 0.0]), ([-50.0, 50.0], [-2.0, 10.0]), ([0.0, 0.0], [0.0, 5.0])])
def test_deterministic_actor_predicts_within_the_env_bounds(bias, expected):
    # mu = tanh(last bias) with every weight 0: tanh(+-50) = +-1 exactly, the bounds' ends.
    actor = DeterministicActor(OBS, BOUNDS, config())
    with torch.no_grad():
        for p in actor.parameters():
            p.zero_()
        actor.net[-1].bias.copy_(torch.tensor(bias))
    actions = actor.predict(np.zeros((4, 3), np.float32))
    assert isinstance(actions, np.ndarray) and actions.shape == (4, 2)
    np.testing.assert_allclose(actions, np.tile(expected, (4, 1)), atol=1e-6)


def test_deterministic_actor_predictions_always_lie_within_the_bounds():
    torch.manual_seed(4)
    actor = DeterministicActor(OBS, BOUNDS, config())
    actions = actor.predict(np.random.default_rng(0).normal(0, 100, (256, 3)).astype(np.float32))
    assert (actions >= BOUNDS.low).all() and (actions <= BOUNDS.high).all()


@pytest.mark.parametrize("log_std,clamped", [(10.0, 2.0), (-50.0, -20.0), (-1.5, -1.5)])
def test_squashed_gaussian_clamps_log_std(log_std, clamped):
    space = gym.spaces.Box(-1, 1, (1,), np.float32)
    actor = SquashedGaussianActor(OBS, space, config())
    with torch.no_grad():
        for p in actor.parameters():
            p.zero_()
        actor.net[-1].bias.copy_(torch.tensor([0.25, log_std]))  # [mean, log std]
    dist = actor(torch.zeros(5, 3))
    assert dist.normal.log_std.tolist() == [[clamped]] * 5
    assert dist.normal.mean.tolist() == [[0.25]] * 5
    assert actor.predict(np.zeros((1, 3), np.float32)).item() == pytest.approx(math.tanh(0.25), abs=1e-6)  # the mean, squashed


# --- the on-policy actor-critic with a Q critic --------------------------------------------------

def test_actor_critic_q_critic_acts_with_q_of_the_action_and_values_with_the_policy_average():
    torch.manual_seed(5)
    agent = ActorCritic(OBS, gym.spaces.Discrete(4), config(activation="tanh"), critic="q")
    obs = torch.randn(64, 3)
    policy_out, q = agent.nets(obs)
    _, critic_out = agent(obs)
    torch.testing.assert_close(critic_out, q)  # Q(s, .) for every action, [B, A]
    action, log_prob, value = agent.act(obs)
    torch.testing.assert_close(value, q.gather(-1, action[:, None])[:, 0])
    torch.testing.assert_close(log_prob, torch.log_softmax(policy_out, -1).gather(-1, action[:, None])[:, 0])
    # V(s) = sum_a pi(a|s) Q(s, a).
    torch.testing.assert_close(agent.value(obs), (torch.softmax(policy_out, -1) * q).sum(-1))


def test_actor_critic_v_critic_reads_its_first_output():
    torch.manual_seed(6)
    agent = ActorCritic(OBS, gym.spaces.Discrete(4), config(), critic="v")
    obs = torch.randn(8, 3)
    torch.testing.assert_close(agent.value(obs), agent.nets(obs)[1][:, 0])


def test_actor_critic_q_critic_refuses_box_actions():
    with pytest.raises(ValueError, match="Discrete"):
        ActorCritic(OBS, BOUNDS, config(), critic="q")
