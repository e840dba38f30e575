"""TeamActorCritic, the networks of MAPPO and IPPO: decentralized execution (an agent's action
never depends on another's observation), what each critic reads, the shared actor's agent id,
IPPO's separate parameters, ParallelMLP.each, value normalization, predict, save and load."""

import math

import numpy as np
import pytest
import torch
from gymnasium import spaces

from rlsuite.algos.marl import mappo
from rlsuite.core import checkpoint
from rlsuite.ops.nets import ParallelMLP, RunningNorm
from rlsuite.ops.policies import TeamActorCritic

A, STATE_DIM, N_ACTIONS = 3, 7, 5
BOX = spaces.Box(-np.inf, np.inf, (4,), np.float32)
DISCRETE = spaces.Discrete(6, start=2)


def make_team(variant, one=BOX, seed=0, **overrides):
    config = mappo.MAPPOConfig(**{**dict(hidden_sizes=(8,), activation="tanh"), **overrides})
    if isinstance(one, spaces.Discrete):
        team_space = spaces.Box(one.start, one.start + one.n - 1, (A,), np.int64)
    else:
        team_space = spaces.Box(-np.inf, np.inf, (A, *one.shape), np.float32)
    torch.manual_seed(seed)
    agent = TeamActorCritic(team_space, spaces.Discrete(N_ACTIONS), config, state_dim=STATE_DIM, agent_observation_space=one,
                            value_norm=config.value_norm, **mappo.VARIANTS[variant]._asdict())
    # Random weights everywhere (the actor's orthogonal init with gain 0.01 gives near-uniform
    # policies, whose argmax is noise): every input visibly moves every output it may reach.
    generator = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for p in agent.parameters():
            p.copy_(torch.randn(p.shape, generator=generator))
    return config, agent


def observations(one, batch, seed=0):
    rng = np.random.default_rng(seed)
    if isinstance(one, spaces.Discrete):
        return rng.integers(one.start, one.start + one.n, size=(batch, A))
    return rng.normal(size=(batch, A, *one.shape)).astype(np.float32)


def perturbed(obs, one, j):
    """obs with agent j's observation changed in every row (and nobody else's)."""
    out = obs.copy()
    if isinstance(one, spaces.Discrete):
        out[:, j] = one.start + (out[:, j] - one.start + 1) % one.n
    else:
        out[:, j] += 1.5
    return out


VARIANTS = ["mappo", "ippo"]
SPACES = [pytest.param(BOX, id="box"), pytest.param(DISCRETE, id="discrete")]


def test_discrete_observations_are_one_hot_from_the_space_start():
    _, agent = make_team("mappo", DISCRETE)
    features = agent.features(np.array([[2, 7, 4]]))  # start = 2: 2 -> index 0, 7 -> index 5, 4 -> index 2
    expected = torch.zeros(1, 3, 6)
    expected[0, 0, 0] = expected[0, 1, 5] = expected[0, 2, 2] = 1.0
    assert torch.equal(features, expected)


@pytest.mark.parametrize("one", SPACES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_an_agents_policy_never_reads_another_agents_observation(variant, one):
    _, agent = make_team(variant, one)
    obs = observations(one, 16)
    with torch.no_grad():
        logits = agent.policy(agent.features(obs)).logits
    actions = agent.predict(obs)
    for j in range(A):
        changed = perturbed(obs, one, j)
        with torch.no_grad():
            new_logits = agent.policy(agent.features(changed)).logits
        new_actions = agent.predict(changed)
        for i in range(A):
            if i == j:
                assert not torch.allclose(new_logits[:, i], logits[:, i])  # its own observation does matter
            else:
                torch.testing.assert_close(new_logits[:, i], logits[:, i], rtol=0, atol=1e-6)
                np.testing.assert_array_equal(new_actions[:, i], actions[:, i])


@pytest.mark.parametrize("one", SPACES)
def test_mappos_critic_reads_the_global_state_and_the_agent_id_not_the_observations(one):
    _, agent = make_team("mappo", one)
    features = agent.features(observations(one, 8))
    state = torch.randn(8, STATE_DIM, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        values = agent.value(features, state)
        # every agent sees the same state; the id makes V_i(s) differ between agents
        for i in range(A):
            for k in range(i + 1, A):
                assert (values[:, i] - values[:, k]).abs().min() > 1e-4
        other_obs = agent.features(perturbed(perturbed(observations(one, 8), one, 0), one, 2))
        torch.testing.assert_close(agent.value(other_obs, state), values, rtol=0, atol=0)
        moved = agent.value(features, state + 0.5)
        assert ((moved - values).abs() > 1e-4).all()  # every agent's value depends on the state


@pytest.mark.parametrize("one", SPACES)
def test_ippos_critic_reads_only_its_own_observation(one):
    _, agent = make_team("ippo", one)
    obs = observations(one, 8)
    state = torch.randn(8, STATE_DIM, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        values = agent.value(agent.features(obs), state)
        torch.testing.assert_close(agent.value(agent.features(obs), torch.randn(8, STATE_DIM)), values, rtol=0, atol=0)
        for j in range(A):
            moved = agent.value(agent.features(perturbed(obs, one, j)), state)
            for i in range(A):
                if i == j:
                    assert ((moved[:, i] - values[:, i]).abs() > 1e-6).any()
                else:
                    torch.testing.assert_close(moved[:, i], values[:, i], rtol=0, atol=1e-6)


@pytest.mark.parametrize("one", SPACES)
def test_the_shared_actor_tells_agents_apart_by_their_id(one):
    _, agent = make_team("mappo", one)
    obs = observations(one, 8)
    obs[:, 1] = obs[:, 2] = obs[:, 0]  # every agent observes the same thing
    with torch.no_grad():
        logits = agent.policy(agent.features(obs)).logits
    for i in range(A):
        for k in range(i + 1, A):
            assert (logits[:, i] - logits[:, k]).abs().amax(-1).min() > 1e-3
    # and the id is exactly a one-hot after the observation, into the one shared network
    x = agent.features(obs)
    ids = torch.eye(A).expand(8, A, A)
    with torch.no_grad():
        expected = agent.actor.member(0, torch.cat([x, ids], -1).reshape(8 * A, -1)).reshape(8, A, N_ACTIONS)
    torch.testing.assert_close(logits, torch.log_softmax(expected, -1))  # Categorical keeps normalized logits


@pytest.mark.parametrize("one", SPACES)
def test_ippo_agents_have_separate_parameters(one):
    _, agent = make_team("ippo", one)
    assert agent.actor.members == agent.critic.members == A
    features = agent.features(observations(one, 8))
    state = torch.zeros(8, STATE_DIM)
    loss = agent.policy(features).logits[:, 0].pow(2).sum() + agent.value(features, state)[:, 0].pow(2).sum()
    loss.backward()
    for net in (agent.actor, agent.critic):
        for p in (*net.weights, *net.biases):
            assert p.grad[0].abs().sum() > 0
            assert torch.count_nonzero(p.grad[1:]) == 0  # agent 0's loss reaches agent 0's member only


def test_mappo_shares_one_actor_and_one_critic():
    _, agent = make_team("mappo")
    assert agent.actor.members == agent.critic.members == 1
    assert agent.actor.weights[0].shape == (1, 4 + A, 8)  # observation + one-hot id
    assert agent.critic.weights[0].shape == (1, STATE_DIM + A, 8)  # global state + one-hot id
    _, ippo = make_team("ippo")
    assert ippo.actor.weights[0].shape == (A, 4, 8) and ippo.critic.weights[0].shape == (A, 4, 8)


@pytest.mark.parametrize("out_dim", [1, 3], ids=["scalar-head", "wide-head"])
def test_parallel_mlp_each_runs_member_k_on_its_own_input(out_dim):
    torch.manual_seed(0)
    net = ParallelMLP(3, 4, (5, 6), out_dim, "tanh")
    with torch.no_grad():
        for b in net.biases:
            b.normal_()
    x = torch.randn(3, 7, 4)
    each = net.each(x)
    assert each.shape == (3, 7, out_dim)
    for k in range(3):
        torch.testing.assert_close(each[k], net.member(k, x[k]))
    # by hand for member 1: two tanh layers, then the linear head
    h = torch.tanh(x[1] @ net.weights[0][1] + net.biases[0][1])
    h = torch.tanh(h @ net.weights[1][1] + net.biases[1][1])
    torch.testing.assert_close(each[1], h @ net.weights[2][1] + net.biases[2][1])


def test_running_norm_denormalize_inverts_forward_unclipped():
    norm = RunningNorm((), clip=math.inf)
    norm.mean.fill_(3.0)
    norm.var.fill_(4.0)
    x = torch.tensor([-100.0, 1.0, 3.0, 5.0, 1e4])
    z = norm(x)
    torch.testing.assert_close(z, torch.tensor([-51.5, -1.0, 0.0, 1.0, 4998.5]))  # (x - 3) / 2
    torch.testing.assert_close(norm.denormalize(z), x)
    torch.testing.assert_close(norm.denormalize(torch.tensor([2.0])), torch.tensor([7.0]))  # 2 * 2 + 3


def test_value_is_the_denormalized_critic_output():
    _, agent = make_team("mappo")
    agent.value_norm.update(torch.tensor([10.0, 14.0, 12.0, 16.0]))  # mean 13, population variance 5
    assert agent.value_norm.mean.item() == pytest.approx(13.0, rel=1e-6)
    assert agent.value_norm.var.item() == pytest.approx(5.0, rel=1e-6)
    features = agent.features(observations(BOX, 6))
    state = torch.randn(6, STATE_DIM)
    with torch.no_grad():
        z = agent.normalized_values(features, state)
        torch.testing.assert_close(agent.value(features, state), z * math.sqrt(5.0) + 13.0)
        _, _, values = agent.act(features, state)
    torch.testing.assert_close(values, z * math.sqrt(5.0) + 13.0)
    _, plain = make_team("mappo", value_norm=False)
    assert plain.value_norm is None
    with torch.no_grad():
        torch.testing.assert_close(plain.value(features, state), plain.normalized_values(features, state))


@pytest.mark.parametrize("one", SPACES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_predict_gives_one_integer_action_per_agent(variant, one):
    _, agent = make_team(variant, one)
    obs = observations(one, 10)
    actions = agent.predict(obs)
    assert actions.shape == (10, A) and np.issubdtype(actions.dtype, np.integer)
    with torch.no_grad():
        np.testing.assert_array_equal(actions, agent.policy(agent.features(obs)).logits.argmax(-1).numpy())
    sampled = agent.predict(obs, deterministic=False)
    assert sampled.shape == (10, A) and ((0 <= sampled) & (sampled < N_ACTIONS)).all()


@pytest.mark.parametrize("one", SPACES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_save_and_load_keep_the_predictions(variant, one, tmp_path):
    config, agent = make_team(variant, one)
    if agent.value_norm is not None:
        agent.value_norm.update(torch.tensor([1.0, 5.0, 9.0]))
    checkpoint.save_network(agent, tmp_path)
    loaded = mappo.load(config, tmp_path)
    assert not loaded.training
    assert (loaded.shared, loaded.centralized, loaded.agent_observation_space) == (agent.shared, agent.centralized, one)
    obs = observations(one, 20, seed=5)
    np.testing.assert_array_equal(loaded.predict(obs), agent.predict(obs))
    state = torch.randn(20, STATE_DIM)
    with torch.no_grad():
        torch.testing.assert_close(loaded.value(loaded.features(obs), state), agent.value(agent.features(obs), state), rtol=0, atol=0)
    # also through load_network with a plain constructor, as any caller would
    again = checkpoint.load_network(lambda o, a, c, **kw: TeamActorCritic(o, a, c, **kw), config, tmp_path)
    np.testing.assert_array_equal(again.predict(obs), agent.predict(obs))
