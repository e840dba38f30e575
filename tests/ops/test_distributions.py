"""rlsuite.ops.distributions against torch.distributions, and sampling statistics."""

from __future__ import annotations

import zlib

import pytest
import torch
from torch.distributions import Independent, Normal
from torch.distributions import Categorical as TorchCategorical

from rlsuite.ops.distributions import Categorical, DiagGaussian


def close(a, b, atol=1e-5):
    torch.testing.assert_close(a, b, atol=atol, rtol=1e-5)


# --------------------------------------------------------------------------------------------
# Categorical
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5,), (7, 3), (2, 4, 6), (1, 1, 2)])
@pytest.mark.parametrize("scale,offset", [(1.0, 0.0), (4.0, 0.0), (1.0, 50.0)])
def test_categorical_matches_torch(shape, scale, offset):
    g = torch.Generator().manual_seed(zlib.crc32(repr((shape, scale, offset)).encode()))
    logits = torch.randn(shape, generator=g) * scale + offset  # unnormalized logits
    ours, ref = Categorical(logits), TorchCategorical(logits=logits)
    actions = torch.randint(0, shape[-1], shape[:-1], generator=g)
    close(ours.log_prob(actions), ref.log_prob(actions))
    close(ours.entropy(), ref.entropy())
    assert ours.entropy().shape == shape[:-1]
    assert torch.equal(ours.mode(), ref.probs.argmax(-1))
    # normalized logits are log-probabilities
    close(ours.logits.exp(), ref.probs)


def test_categorical_log_prob_every_action_and_float_actions():
    logits = torch.tensor([[0.0, 1.0, 2.0], [3.0, -1.0, 0.5]])
    ours, ref = Categorical(logits), TorchCategorical(logits=logits)
    for a in range(3):
        actions = torch.full((2,), a)
        close(ours.log_prob(actions), ref.log_prob(actions))
        close(ours.log_prob(actions.float()), ref.log_prob(actions))  # actions stored as float
    # hand value: log softmax([0, 1, 2])_2 = 2 - log(1 + e + e^2) = 2 - 2.40760596 = -0.40760596
    close(ours.log_prob(torch.tensor([2, 0]))[0], torch.tensor(-0.40760596))


def test_categorical_log_prob_broadcasts_sample_dims():
    logits = torch.randn(4, 5, generator=torch.Generator().manual_seed(1))
    actions = torch.randint(0, 5, (4,), generator=torch.Generator().manual_seed(2))
    close(Categorical(logits).log_prob(actions), TorchCategorical(logits=logits).log_prob(actions))


def test_categorical_entropy_gradient_matches_torch():
    logits = torch.randn(3, 4, generator=torch.Generator().manual_seed(5), requires_grad=True)
    logits2 = logits.detach().clone().requires_grad_()
    actions = torch.tensor([0, 3, 1])
    (Categorical(logits).entropy().sum() + Categorical(logits).log_prob(actions).sum()).backward()
    ref = TorchCategorical(logits=logits2)
    (ref.entropy().sum() + ref.log_prob(actions).sum()).backward()
    close(logits.grad, logits2.grad)


def test_categorical_sample_frequencies_match_softmax():
    torch.manual_seed(0)
    logits = torch.tensor([[1.0, 0.0, -1.0, 2.0, 0.5], [-2.0, 3.0, 0.0, 0.0, -5.0]])
    probs = torch.softmax(logits, -1)
    n = 100_000
    samples = Categorical(logits.expand(n, 2, 5)).sample()  # [n, 2]
    assert samples.shape == (n, 2) and samples.dtype == torch.int64
    for row in range(2):
        counts = torch.bincount(samples[:, row], minlength=5).double()
        expected = n * probs[row].double()
        # chi-square with 4 degrees of freedom: P(chi2 > 30) ~ 5e-6. Classes with p -> 0 are
        # checked separately (chi2 is dominated by tiny expected counts there).
        big = expected > 50
        chi2 = ((counts[big] - expected[big]) ** 2 / expected[big]).sum().item()
        assert chi2 < 30.0, (row, counts, expected)
        torch.testing.assert_close(counts / n, probs[row].double(), atol=0.005, rtol=0)


def test_categorical_sample_is_not_mode():
    # a uniform categorical must not always return the same action (catches argmax-only sampling)
    torch.manual_seed(1)
    s = Categorical(torch.zeros(10_000, 4)).sample()
    assert set(s.tolist()) == {0, 1, 2, 3}


# --------------------------------------------------------------------------------------------
# DiagGaussian
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mean_shape,log_std_shape",
    [((3,), (3,)), ((4, 3), (3,)), ((4, 3), (4, 3)), ((2, 5, 2), (2,)), ((2, 5, 2), (5, 2)), ((6, 1), (1,))],
)
def test_diag_gaussian_matches_torch(mean_shape, log_std_shape):
    g = torch.Generator().manual_seed(zlib.crc32(repr((mean_shape, log_std_shape)).encode()))
    mean = torch.randn(mean_shape, generator=g) * 2
    log_std = torch.randn(log_std_shape, generator=g) * 0.7
    actions = mean + torch.randn(mean_shape, generator=g) * 3
    ours = DiagGaussian(mean, log_std)
    ref = Independent(Normal(mean, log_std.exp().expand_as(mean)), 1)
    close(ours.log_prob(actions), ref.log_prob(actions))
    close(ours.entropy(), ref.entropy())
    assert ours.entropy().shape == mean_shape[:-1] == ours.log_prob(actions).shape
    assert torch.equal(ours.mode(), ref.mean)


def test_diag_gaussian_hand_values():
    # 1-D standard normal at 0: log p = -0.5 log(2 pi) = -0.9189385332; entropy = 0.5 + 0.5 log(2 pi) = 1.4189385332
    d = DiagGaussian(torch.zeros(1), torch.zeros(1))
    close(d.log_prob(torch.zeros(1)), torch.tensor(-0.9189385332))
    close(d.entropy(), torch.tensor(1.4189385332))
    # 2-D, sigma = e (log_std 1), x - mu = (e, 0): sum of [-0.5 - 1 - 0.91894, -0 - 1 - 0.91894] = -4.33788
    d = DiagGaussian(torch.zeros(2), torch.ones(2))
    close(d.log_prob(torch.tensor([torch.e, 0.0])), torch.tensor(-4.3378770664))


def test_diag_gaussian_gradients_match_torch():
    g = torch.Generator().manual_seed(11)
    mean = torch.randn(5, 3, generator=g, requires_grad=True)
    log_std = torch.randn(3, generator=g, requires_grad=True)
    actions = torch.randn(5, 3, generator=g)
    m2, s2 = mean.detach().clone().requires_grad_(), log_std.detach().clone().requires_grad_()
    d = DiagGaussian(mean, log_std)
    (d.log_prob(actions).sum() + d.entropy().sum()).backward()
    ref = Independent(Normal(m2, s2.exp()), 1)
    (ref.log_prob(actions).sum() + ref.entropy().sum()).backward()
    close(mean.grad, m2.grad)
    close(log_std.grad, s2.grad)


def test_diag_gaussian_sample_mean_std():
    torch.manual_seed(0)
    mean = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])
    log_std = torch.tensor([0.0, -1.0, 1.0])  # std = 1, 0.3679, 2.7183
    n = 50_000
    x = DiagGaussian(mean.expand(n, 2, 3), log_std).sample()
    assert x.shape == (n, 2, 3)
    std = log_std.exp().expand(2, 3)
    # 5 standard errors of the mean; the sample std has standard error ~ std / sqrt(2n)
    assert ((x.mean(0) - mean).abs() < 5 * std / n**0.5).all(), x.mean(0)
    assert ((x.std(0) - std).abs() < 5 * std / (2 * n) ** 0.5).all(), x.std(0)
    # independence across dimensions: correlation ~ 0
    c = torch.corrcoef(x[:, 0, :].T)
    assert (c - torch.eye(3)).abs().max() < 0.03


def test_categorical_entropy_with_a_masked_action_matches_torch():
    logits = torch.tensor([[0.0, 1.0, -float("inf")]])
    expected = torch.distributions.Categorical(logits=logits).entropy()
    assert torch.allclose(Categorical(logits).entropy(), expected)
    assert torch.isfinite(Categorical(logits).entropy()).all()


def test_tanh_gaussian_density_integrates_to_one_and_matches_torch():
    from rlsuite.ops.distributions import TanhGaussian

    mean, log_std = torch.tensor([[0.7]], dtype=torch.float64), torch.tensor([[0.3]], dtype=torch.float64)
    dist = TanhGaussian(mean, log_std)
    # A fine grid on (-1, 1): the density of a = tanh(u) integrates to 1 (the log-det term is right).
    grid = torch.linspace(-1 + 1e-9, 1 - 1e-9, 400_001, dtype=torch.float64)
    density = dist.log_prob(grid[:, None, None].expand(-1, 1, 1), eps=1e-12).exp().squeeze(-1).squeeze(-1)
    assert torch.trapezoid(density, grid).item() == pytest.approx(1.0, abs=1e-4)
    reference = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(mean, log_std.exp()), [torch.distributions.TanhTransform()])
    actions = torch.tensor([[-0.9], [-0.2], [0.0], [0.5], [0.95]], dtype=torch.float64)
    torch.testing.assert_close(dist.log_prob(actions), reference.log_prob(actions).sum(-1))


def test_tanh_gaussian_rsample_log_prob_is_exact_far_in_the_tails_and_differentiable():
    from rlsuite.ops.distributions import TanhGaussian

    torch.manual_seed(0)
    mean = torch.tensor([[12.0, -0.5, 0.0]], requires_grad=True)  # tanh(12) rounds to 1 in float32
    log_std = torch.tensor([[-1.0, 0.0, 0.5]], requires_grad=True)
    action, logp = TanhGaussian(mean, log_std).rsample()
    assert torch.isfinite(logp).all() and (action.abs() <= 1).all()
    # log(1 - tanh(u)^2) = log sech(u)^2 = -2 log cosh(u), which float64 computes accurately at u = 12
    # (1 - tanh(12)^2 itself has lost 6 digits to cancellation there)
    u = torch.tensor([0.3, -4.0, 12.0], dtype=torch.float64)
    naive = (-2 * torch.log(torch.cosh(u))).sum()
    assert TanhGaussian.log_det_jacobian(u).item() == pytest.approx(naive.item(), rel=1e-9)
    logp.sum().backward()
    assert mean.grad is not None and torch.isfinite(mean.grad).all() and log_std.grad.abs().sum() > 0
    assert TanhGaussian(mean, log_std).mode().tolist()[0][1] == pytest.approx(float(torch.tanh(torch.tensor(-0.5))))
