"""TRPO: the Fisher-vector products and the CG direction against explicit matrices, the KL bound of
the accepted step (also when the full step breaks it), the value member untouched by the policy
step, the Discrete-observation error, bit-exact resume, and (slow) learning on CartPole."""

import math
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.func import functional_call

from rlsuite.algos.deep import trpo
from rlsuite.cli import main
from rlsuite.core import checkpoint
from rlsuite.core.run import RunDir
from rlsuite.ops.distributions import Categorical, DiagGaussian, kl_divergence
from rlsuite.ops.natural_gradient import conjugate_gradient
from rlsuite.ops.policies import ActorCritic

sys.path.insert(0, str(Path(__file__).parent))
from learning import solves  # noqa: E402

OBS = gym.spaces.Box(-1, 1, (2,))
SPACES = {"discrete": gym.spaces.Discrete(3), "box": gym.spaces.Box(-1, 1, (2,))}


def tiny_agent(action_space, seed=0):
    """A float64 ActorCritic with one hidden layer of 2 and N(0, 1) weights (the default small
    last-layer init would make the Fisher nearly 0), on 8 random observations, with actions
    sampled from it and advantages N(0, 1)."""
    cfg = trpo.TRPOConfig(hidden_sizes=(2,))
    agent = ActorCritic(OBS, action_space, cfg).double()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in agent.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype))
        obs = torch.randn(8, 2, generator=generator, dtype=torch.float64)
        torch.manual_seed(seed)
        actions = agent(obs)[0].sample()
    advantages = torch.randn(8, generator=generator, dtype=torch.float64)
    return agent, obs, actions, advantages


def explicit_fisher(agent, obs):
    """The Hessian of mean_s KL(pi_old(.|s) || pi_theta(.|s)) at theta = theta_old, by
    torch.autograd.functional.hessian over the flat parameter vector (in agent.parameters() order)."""
    names = [name for name, _ in agent.named_parameters()]
    params = list(agent.parameters())
    shapes = [p.shape for p in params]
    old = torch.cat([p.detach().reshape(-1) for p in params])
    with torch.no_grad():
        old_dist, _ = agent(obs)

    def mean_kl(flat):
        chunks = flat.split([math.prod(s) for s in shapes])
        new_dist, _ = functional_call(agent, {n: c.view(s) for n, c, s in zip(names, chunks, shapes)}, (obs,))
        return kl_divergence(old_dist, new_dist).mean()

    return torch.autograd.functional.hessian(mean_kl, old)


def spy_on_cg(monkeypatch):
    """Wraps trpo's conjugate_gradient: records g, (F + damping I) v for the unit vectors (while
    the KL graph is alive, at theta_old) and the direction CG returns."""
    seen = {}

    def spy(matrix_vector, b, iterations):
        n = b.numel()
        seen["g"] = b.clone()
        seen["fisher_columns"] = torch.stack([matrix_vector(e) for e in torch.eye(n, dtype=b.dtype)], dim=1)
        seen["direction"] = conjugate_gradient(matrix_vector, b, iterations)
        return seen["direction"]

    monkeypatch.setattr(trpo, "conjugate_gradient", spy)
    return seen


def value_member(agent):
    return [p[1].detach().clone() for p in agent.nets.parameters()]


@pytest.mark.parametrize("kind", ["discrete", "box"])
def test_fisher_vector_products_are_the_damped_hessian_of_the_mean_kl(monkeypatch, kind):
    agent, obs, actions, advantages = tiny_agent(SPACES[kind])
    hessian = explicit_fisher(agent, obs)
    seen = spy_on_cg(monkeypatch)
    cfg = trpo.TRPOConfig(hidden_sizes=(2,), cg_damping=0.1, cg_iterations=hessian.shape[0])
    trpo.policy_step(agent, obs, actions, advantages, cfg)
    # (F + 0.1 I) e_i for every unit vector e_i is column i of the damped Hessian.
    damped = hessian + 0.1 * torch.eye(hessian.shape[0], dtype=hessian.dtype)
    torch.testing.assert_close(seen["fisher_columns"], damped, rtol=1e-9, atol=1e-12)
    assert hessian.abs().max() > 1e-2  # a Fisher worth comparing against


def test_the_kl_hessian_is_the_fisher_written_by_hand():
    # For a Categorical policy with logits z(theta): F = mean_s J_s^T (diag(p_s) - p_s p_s^T) J_s,
    # J_s = dz(s)/dtheta, the covariance of the score; the Hessian of the mean KL at theta_old is F.
    agent, obs, _, _ = tiny_agent(SPACES["discrete"])
    names = [name for name, _ in agent.named_parameters()]
    params = list(agent.parameters())
    shapes = [p.shape for p in params]
    old = torch.cat([p.detach().reshape(-1) for p in params])

    def logits(flat):
        chunks = flat.split([math.prod(s) for s in shapes])
        return functional_call(agent, {n: c.view(s) for n, c, s in zip(names, chunks, shapes)}, (obs,))[0].logits

    jacobian = torch.autograd.functional.jacobian(logits, old)  # [S, A, P]
    p = logits(old).detach().exp()
    covariance = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
    by_hand = torch.einsum("sap,sab,sbq->pq", jacobian, covariance, jacobian) / obs.shape[0]
    torch.testing.assert_close(explicit_fisher(agent, obs), by_hand, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", ["discrete", "box"])
def test_the_step_direction_is_the_damped_fisher_solve(monkeypatch, kind):
    agent, obs, actions, advantages = tiny_agent(SPACES[kind])
    hessian = explicit_fisher(agent, obs)
    n = hessian.shape[0]
    seen = spy_on_cg(monkeypatch)
    cfg = trpo.TRPOConfig(hidden_sizes=(2,), cg_damping=0.1, cg_iterations=n, max_kl=0.01)
    old = torch.cat([p.detach().reshape(-1) for p in agent.parameters()])
    metrics = trpo.policy_step(agent, obs, actions, advantages, cfg)
    moved = torch.cat([p.detach().reshape(-1) for p in agent.parameters()]) - old
    damped = hessian + 0.1 * torch.eye(n, dtype=hessian.dtype)
    exact = torch.linalg.solve(damped, seen["g"])
    # The step taken is fraction * sqrt(2 max_kl / s^T (F + 0.1 I) s) s along that exact s.
    fraction = metrics["losses/step_fraction"]
    assert fraction > 0
    full_step = math.sqrt(2 * cfg.max_kl / float(exact @ damped @ exact)) * exact
    torch.testing.assert_close(moved, fraction * full_step, rtol=1e-3, atol=1e-5)
    # CG stops once |r|^2 < 1e-10 (its residual_tol), and every eigenvalue of F + 0.1 I is >= 0.1,
    # so |s - exact| <= |r| / 0.1 <= 1e-4; the solution itself is of order 1.
    assert torch.linalg.norm(seen["direction"] - exact) <= 1e-4 and torch.linalg.norm(exact) > 0.1
    # The value member's entries of g, hence of the exact solve, are 0 (F is 0 on them too), and
    # CG, whose iterates are combinations of g and F-products, keeps them exactly 0.
    value_entries = value_mask(agent)
    assert seen["g"][value_entries].abs().max() == 0 and seen["direction"][value_entries].abs().max() == 0
    assert exact[value_entries].abs().max() == 0


def value_mask(agent):
    """Which entries of the flat parameter vector belong to the value member (ParallelMLP member 1)."""
    masks = []
    for name, p in agent.named_parameters():
        mask = torch.zeros_like(p, dtype=torch.bool)
        if name.startswith("nets."):
            mask[1] = True
        masks.append(mask.reshape(-1))
    return torch.cat(masks)


def test_the_surrogate_gradient_is_the_mean_advantage_weighted_score(monkeypatch):
    agent, obs, actions, advantages = tiny_agent(SPACES["discrete"])
    params = list(agent.parameters())
    dist, _ = agent(obs)
    by_hand = trpo.flat_grad((dist.log_prob(actions) * advantages).mean(), params)  # ratio = 1 at theta_old
    seen = spy_on_cg(monkeypatch)
    trpo.policy_step(agent, obs, actions, advantages, trpo.TRPOConfig(hidden_sizes=(2,)))
    torch.testing.assert_close(seen["g"], by_hand, rtol=1e-12, atol=1e-14)


def old_policy(agent, obs):
    """pi_old(.|s) as a copy: a DiagGaussian's log_std is a view of the live parameter, which the
    step overwrites in place."""
    with torch.no_grad():
        dist, _ = agent(obs)
        if isinstance(dist, DiagGaussian):
            return DiagGaussian(dist.mean.clone(), dist.log_std.clone())
        return Categorical(dist.logits.clone())


def surrogate_and_kl(agent, old_dist, obs, actions, advantages):
    with torch.no_grad():
        new_dist, _ = agent(obs)
        ratio = (new_dist.log_prob(actions) - old_dist.log_prob(actions)).exp()
        return float((ratio * advantages).mean()), float(kl_divergence(old_dist, new_dist).mean())


@pytest.mark.parametrize("kind", ["discrete", "box"])
def test_policy_step_keeps_the_kl_bound_improves_and_leaves_the_value_member(kind):
    agent, obs, actions, advantages = tiny_agent(SPACES[kind])
    cfg = trpo.TRPOConfig(hidden_sizes=(2,), max_kl=0.01)
    old_dist = old_policy(agent, obs)
    value_before = value_member(agent)
    start, _ = surrogate_and_kl(agent, old_dist, obs, actions, advantages)  # ratio 1: mean(A)
    metrics = trpo.policy_step(agent, obs, actions, advantages, cfg)
    after, kl = surrogate_and_kl(agent, old_dist, obs, actions, advantages)
    assert metrics["losses/accepted"] == 1.0
    assert 0 < kl <= cfg.max_kl
    assert after > start and metrics["losses/surrogate_gain"] == pytest.approx(after - start, rel=1e-9)
    for before, now in zip(value_before, value_member(agent)):
        assert torch.equal(before, now)


def test_a_full_step_that_breaks_the_bound_is_shrunk_until_it_holds():
    # All weights 0: pi(.|s) = softmax(3, -3) everywhere (p1 = 0.0025), and the step moves only the
    # policy's last bias (the Fisher is 0 on everything else). The advantages favour the rare action.
    # The full step puts the quadratic KL 0.5 p0 p1 (Delta logit gap)^2 at max_kl = 0.5, a gap change
    # of about 1 / sqrt(p0 p1) = 20: the policy flips and the exact KL is about 14. The curvature
    # p0 p1 of the KL grows toward the uniform policy, so only a fraction of about a quarter keeps
    # the exact KL <= 0.5 (gap 6 -> ~0.8, KL ~0.35).
    cfg = trpo.TRPOConfig(hidden_sizes=(3,), max_kl=0.5, cg_damping=1e-8)
    agent = ActorCritic(OBS, gym.spaces.Discrete(2), cfg)
    with torch.no_grad():
        for weight in agent.nets.weights:
            weight.zero_()
        agent.nets.biases[-1][0, 0] = torch.tensor([3.0, -3.0])
        agent.nets.biases[-1][1, 0] = torch.tensor([0.7, 0.0])
    obs = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
    actions = torch.tensor([1, 0, 1, 0])
    advantages = torch.tensor([1.0, -1.0, 1.0, -1.0])
    old_dist = old_policy(agent, obs)
    old = torch.cat([p.detach().reshape(-1) for p in agent.parameters()])
    value_before = value_member(agent)
    metrics = trpo.policy_step(agent, obs, actions, advantages, cfg)
    new = torch.cat([p.detach().reshape(-1) for p in agent.parameters()])
    fraction = metrics["losses/step_fraction"]
    assert 0 < fraction < 1
    _, kl = surrogate_and_kl(agent, old_dist, obs, actions, advantages)
    assert kl <= cfg.max_kl and metrics["losses/surrogate_gain"] > 0
    # The full step the search backed off from does break the bound.
    trpo.set_flat(list(agent.parameters()), old + (new - old) / fraction)
    _, full_kl = surrogate_and_kl(agent, old_dist, obs, actions, advantages)
    assert full_kl > cfg.max_kl
    for before, now in zip(value_before, value_member(agent)):
        assert torch.equal(before, now)


@pytest.mark.parametrize("kind", ["discrete", "box"])
def test_the_reported_kl_is_the_exact_kl_of_the_step(kind):
    agent, obs, actions, advantages = tiny_agent(SPACES[kind])
    old_dist = old_policy(agent, obs)
    metrics = trpo.policy_step(agent, obs, actions, advantages, trpo.TRPOConfig(hidden_sizes=(2,), max_kl=0.01))
    _, kl = surrogate_and_kl(agent, old_dist, obs, actions, advantages)
    assert metrics["losses/kl"] == pytest.approx(kl, rel=1e-9)


def test_a_full_step_that_shrinks_the_std_too_far_is_shrunk_until_it_holds():
    # A 1-d Gaussian with all weights 0: mean 0, log std 0 everywhere. Actions near the mean are
    # good, far ones bad: the score of the mean, A (a - mu) / sigma^2, cancels (0.5 - 0.5 - 2 + 2 = 0),
    # so the step only lowers log std. The Fisher there is 2 (the KL's Hessian in log std), and the
    # full step sets the quadratic KL Delta^2 at max_kl = 0.09: Delta = -0.3. The exact KL
    #   log(s_q / s_p) + s_p^2 / (2 s_q^2) - 1/2 = -0.3 + 0.5 e^0.6 - 0.5 = 0.111 > 0.09,
    # so the full step must be refused (0.8 of it: -0.24 + 0.5 e^0.48 - 0.5 = 0.068 is accepted).
    cfg = trpo.TRPOConfig(hidden_sizes=(3,), max_kl=0.09, cg_damping=1e-8)
    agent = ActorCritic(OBS, gym.spaces.Box(-3, 3, (1,)), cfg)
    with torch.no_grad():
        for weight in agent.nets.weights:
            weight.zero_()
    obs = torch.randn(4, 2, generator=torch.Generator().manual_seed(0))
    actions = torch.tensor([[0.5], [-0.5], [2.0], [-2.0]])
    advantages = torch.tensor([1.0, 1.0, -1.0, -1.0])
    old_dist = old_policy(agent, obs)
    metrics = trpo.policy_step(agent, obs, actions, advantages, cfg)
    assert agent.log_std.item() < 0
    _, kl = surrogate_and_kl(agent, old_dist, obs, actions, advantages)
    assert 0 < metrics["losses/step_fraction"] < 1 and kl <= cfg.max_kl


def test_no_acceptable_fraction_leaves_the_policy_where_it_was():
    # Advantages all 0: the surrogate cannot improve, so every fraction is refused.
    agent, obs, actions, _ = tiny_agent(SPACES["discrete"])
    before = [p.detach().clone() for p in agent.parameters()]
    metrics = trpo.policy_step(agent, obs, actions, torch.zeros(8, dtype=torch.float64), trpo.TRPOConfig(hidden_sizes=(2,)))
    assert metrics["losses/accepted"] == 0.0 and metrics["losses/step_fraction"] == 0.0
    for x, y in zip(before, agent.parameters()):
        assert torch.equal(x, y)


def test_value_steps_move_only_the_value_member():
    agent, obs, _, _ = tiny_agent(SPACES["discrete"])
    agent = agent.float()
    obs = obs.float()
    policy_before = [p[0].detach().clone() for p in agent.nets.parameters()]
    value_before = value_member(agent)
    cfg = trpo.TRPOConfig(hidden_sizes=(2,), value_epochs=2, value_minibatch_size=4)
    optimizer = torch.optim.Adam(agent.nets.parameters(), lr=1e-2)
    trpo.value_steps(agent, optimizer, obs, torch.ones(8), cfg)
    for before, now in zip(policy_before, agent.nets.parameters()):
        assert torch.equal(before, now[0])
    assert any(not torch.equal(before, now) for before, now in zip(value_before, value_member(agent)))


# --- errors, resume ------------------------------------------------------------------------------

def test_discrete_observations_are_refused_before_any_run_directory(tmp_path, capsys):
    assert main(["train", "trpo", "--env", "FrozenLake-v1", "--run-dir", "run", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Box observation" in err and "FrozenLake-v1" in err and "Discrete(16)" in err
    assert not (tmp_path / "run").exists()


def final_state(run_dir):
    return checkpoint.load_state(RunDir(run_dir).latest_checkpoint())


def test_interrupted_then_resumed_equals_uninterrupted(tmp_path):
    config = trpo.preset("CartPole-v1", seed=3, total_steps=2048, num_envs=2, num_steps=256, value_minibatch_size=128,
                         value_epochs=2, hidden_sizes=(32, 32), eval_every=512, eval_episodes=2, checkpoint_every=0)
    whole = trpo.train(config, tmp_path / "whole", quiet=True)
    cut = trpo.train(config, tmp_path / "cut", quiet=True, callbacks=[lambda loop: loop.step >= 1024 and loop.request_stop()])
    assert cut.interrupted and cut.step == 1024
    resumed = trpo.train(config, tmp_path / "cut", resume=True, quiet=True)
    assert not resumed.interrupted and resumed.step == whole.step == 2048
    a, b = final_state(tmp_path / "whole"), final_state(tmp_path / "cut")
    for name in ("agent", "value_optimizer"):
        flat_a, flat_b = torch.utils._pytree.tree_flatten(a["parts"][name])[0], torch.utils._pytree.tree_flatten(b["parts"][name])[0]
        assert len(flat_a) == len(flat_b)
        for x, y in zip(flat_a, flat_b):
            assert torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y, name
    assert a["step"] == b["step"] and a["evaluations"] == b["evaluations"]
    for column in whole.evaluations:
        np.testing.assert_array_equal(resumed.evaluations[column], whole.evaluations[column])


# --- learning ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_trpo_solves_cartpole_within_100k_steps():
    """Evaluation mean >= 475 within the preset's 100k env steps on 3 of 3 seeds."""
    assert solves(trpo.train, lambda seed: trpo.preset("CartPole-v1", seed=seed), (1, 2, 3), 475, 3)
