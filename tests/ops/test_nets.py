"""rlsuite.ops.nets: Tanh, mlp, ParallelMLP, RunningNorm, polyak_update."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from rlsuite.ops.nets import ParallelMLP, RunningNorm, Tanh, mlp, polyak_update


def tanh_inputs(dtype=torch.float32):
    x = torch.cat([
        torch.linspace(-12, 12, 2401, dtype=dtype),
        torch.tensor([0.0, 1e-4, -1e-4, 1e-7, 15.0, -15.0, 20.0, -20.0, 50.0, -50.0, 100.0, -100.0, 1e4, -1e4], dtype=dtype),
    ])
    return x


# --------------------------------------------------------------------------------------------
# Tanh
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tanh_values(dtype):
    x = tanh_inputs(dtype)
    x0 = x.clone()
    torch.testing.assert_close(Tanh()(x), torch.tanh(x), atol=1e-6, rtol=0)
    with torch.inference_mode():
        y = Tanh()(x)
    assert y.is_inference()
    torch.testing.assert_close(y, torch.tanh(x), atol=1e-6, rtol=0)
    with torch.no_grad():
        torch.testing.assert_close(Tanh()(x.clone().requires_grad_()), torch.tanh(x), atol=1e-6, rtol=0)
    assert torch.equal(x, x0)  # input not modified in place
    assert Tanh()(torch.tensor([math.inf, -math.inf])).tolist() == [1.0, -1.0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tanh_gradient(dtype):
    x = tanh_inputs(dtype)
    upstream = torch.randn(x.shape, generator=torch.Generator().manual_seed(0), dtype=dtype)
    a = x.clone().requires_grad_()
    b = x.clone().requires_grad_()
    ya, yb = Tanh()(a), torch.tanh(b)
    assert ya.requires_grad
    torch.testing.assert_close(ya, yb, atol=1e-6, rtol=0)
    (ya * upstream).sum().backward()
    (yb * upstream).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, atol=1e-6, rtol=0)
    assert torch.equal(a, x)


def test_tanh_gradient_through_non_leaf_and_gradcheck():
    torch.manual_seed(0)
    lin = nn.Linear(4, 3).double()
    lin2 = nn.Linear(4, 3).double()
    lin2.load_state_dict(lin.state_dict())
    x = torch.randn(8, 4, dtype=torch.float64) * 3
    Tanh()(lin(x)).pow(2).sum().backward()
    torch.tanh(lin2(x)).pow(2).sum().backward()
    torch.testing.assert_close(lin.weight.grad, lin2.weight.grad, atol=1e-10, rtol=0)
    torch.testing.assert_close(lin.bias.grad, lin2.bias.grad, atol=1e-10, rtol=0)
    assert torch.autograd.gradcheck(Tanh(), (torch.randn(10, dtype=torch.float64, requires_grad=True) * 2,))


# --------------------------------------------------------------------------------------------
# mlp
# --------------------------------------------------------------------------------------------


def test_mlp_shapes_and_init():
    torch.manual_seed(0)
    net = mlp(4, (32, 16), 3, out_gain=0.01)
    linears = [m for m in net if isinstance(m, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(4, 32), (32, 16), (16, 3)]
    assert [type(m) for m in net] == [nn.Linear, Tanh, nn.Linear, Tanh, nn.Linear]
    assert net(torch.randn(5, 4)).shape == (5, 3)
    assert net(torch.randn(2, 7, 4)).shape == (2, 7, 3)
    for layer, gain in zip(linears, (math.sqrt(2), math.sqrt(2), 0.01)):
        sv = torch.linalg.svdvals(layer.weight.detach())
        torch.testing.assert_close(sv, torch.full_like(sv, gain), atol=1e-5 * max(gain, 1), rtol=1e-5)
        assert torch.equal(layer.bias, torch.zeros_like(layer.bias))


def test_mlp_no_hidden_and_activations():
    net = mlp(6, (), 2)
    assert len(net) == 1 and isinstance(net[0], nn.Linear) and (net[0].in_features, net[0].out_features) == (6, 2)
    for name, cls in [("relu", nn.ReLU), ("elu", nn.ELU), ("gelu", nn.GELU), ("tanh", Tanh)]:
        assert isinstance(mlp(3, (5,), 1, activation=name)[1], cls)


# --------------------------------------------------------------------------------------------
# ParallelMLP
# --------------------------------------------------------------------------------------------

ACT = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU}


def separate_copies(par: ParallelMLP, activation: str) -> list[nn.Sequential]:
    """K standard nn.Sequential MLPs (with torch's own activations) holding the same weights."""
    nets = []
    last = len(par.weights) - 1
    for k in range(par.members):
        layers = []
        for i, (w, b) in enumerate(zip(par.weights, par.biases)):
            lin = nn.Linear(w.shape[1], w.shape[2]).to(w.dtype)
            with torch.no_grad():
                lin.weight.copy_(w[k].T)
                lin.bias.copy_(b[k, 0])
            layers.append(lin)
            if i < last:
                layers.append(ACT[activation]())
        nets.append(nn.Sequential(*layers))
    return nets


@pytest.mark.parametrize(
    "activation,batch_shape", [("tanh", (7,)), ("tanh", (2, 3)), ("tanh", ()), ("relu", (2, 3)), ("elu", (7,))]
)
def test_parallel_mlp_equals_separate_mlps(activation, batch_shape):
    torch.manual_seed(0)
    K, in_dim, out_dim = 3, 5, 2
    par = ParallelMLP(K, in_dim, (16, 8), out_dim, activation=activation, out_gains=(1.0, 0.5, 2.0))
    with torch.no_grad():  # non-zero biases so that they are tested too
        for b in par.biases:
            b.normal_()
    nets = separate_copies(par, activation)
    x = torch.randn(*batch_shape, in_dim) * 2
    x_par, x_sep = x.clone().requires_grad_(), x.clone().requires_grad_()
    out = par(x_par)
    assert out.shape == (K, *batch_shape, out_dim)
    ref = torch.stack([net(x_sep) for net in nets])
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)

    upstream = torch.randn(out.shape)
    (out * upstream).sum().backward()
    (ref * upstream).sum().backward()
    torch.testing.assert_close(x_par.grad, x_sep.grad, atol=1e-5, rtol=1e-5)
    for k, net in enumerate(nets):
        linears = [m for m in net if isinstance(m, nn.Linear)]
        for w, b, lin in zip(par.weights, par.biases, linears):
            torch.testing.assert_close(w.grad[k], lin.weight.grad.T, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(b.grad[k, 0], lin.bias.grad, atol=1e-5, rtol=1e-5)


def test_parallel_mlp_shapes_and_orthogonal_init():
    torch.manual_seed(1)
    gains = (1.0, 0.01, 3.0)
    par = ParallelMLP(3, 6, (32, 4), 2, out_gains=gains)
    assert [tuple(w.shape) for w in par.weights] == [(3, 6, 32), (3, 32, 4), (3, 4, 2)]
    assert [tuple(b.shape) for b in par.biases] == [(3, 1, 32), (3, 1, 4), (3, 1, 2)]
    for i, w in enumerate(par.weights):
        for k in range(3):
            gain = gains[k] if i == len(par.weights) - 1 else math.sqrt(2)
            sv = torch.linalg.svdvals(w[k].detach())
            assert sv.shape == (min(w.shape[1:]),)
            torch.testing.assert_close(sv, torch.full_like(sv, gain), atol=1e-5 * max(gain, 1), rtol=1e-5)
    for b in par.biases:
        assert torch.equal(b, torch.zeros_like(b))
    # members are initialized independently (not copies of one another, even up to the gain)
    for w in par.weights:
        unit = [w[k].detach() / torch.linalg.svdvals(w[k].detach())[0] for k in range(3)]
        for i in range(3):
            for j in range(i + 1, 3):
                assert not torch.allclose(unit[i], unit[j], atol=1e-3)


def test_parallel_mlp_default_gains():
    torch.manual_seed(2)
    par = ParallelMLP(2, 3, (8,), 4)
    for k in range(2):
        sv = torch.linalg.svdvals(par.weights[-1][k].detach())
        torch.testing.assert_close(sv, torch.ones_like(sv), atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------------------------
# RunningNorm
# --------------------------------------------------------------------------------------------


def test_running_norm_matches_numpy_over_all_data():
    rng = np.random.default_rng(0)
    norm = RunningNorm((3,))
    batches = [
        rng.normal([1.0, -2.0, 0.5], [1.0, 3.0, 0.2], size=(10, 3)),
        rng.normal([2.0, 0.0, 0.4], [2.0, 1.0, 0.1], size=(25, 3)),
        rng.normal([0.0, 1.0, 0.6], [0.5, 2.0, 0.3], size=(1, 3)),
        rng.normal([1.5, -1.0, 0.5], [1.0, 1.0, 0.2], size=(4, 5, 3)),  # extra batch dims
    ]
    for b in batches:
        norm.update(torch.from_numpy(b).float())
    data = np.concatenate([b.reshape(-1, 3).astype(np.float32).astype(np.float64) for b in batches])
    np.testing.assert_allclose(norm.mean.numpy(), data.mean(0), atol=1e-6, rtol=0)
    np.testing.assert_allclose(norm.var.numpy(), data.var(0), atol=1e-6, rtol=0)
    assert norm.count.item() == pytest.approx(len(data), abs=1e-6)
    assert norm.mean.dtype == norm.var.dtype == torch.float64

    x = torch.from_numpy(rng.normal(size=(6, 3))).float()
    expected = np.clip((x.double().numpy() - data.mean(0)) / np.sqrt(data.var(0) + 1e-8), -10.0, 10.0)
    out = norm(x)
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-5, rtol=1e-5)


def test_running_norm_scalar_stream():
    # one update per sample vs the closed form
    data = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0])
    norm = RunningNorm(())
    for v in data:
        norm.update(torch.tensor([v]))
    # mean = 31/8 = 3.875 ; var = mean(x^2) - mean^2 = 173/8 - 3.875^2 = 21.625 - 15.015625 = 6.609375
    assert norm.mean.item() == pytest.approx(3.875, abs=1e-6)
    assert norm.var.item() == pytest.approx(6.609375, abs=1e-6)


def test_running_norm_initial_state_and_clip():
    norm = RunningNorm((2,), clip=2.0)
    x = torch.tensor([[0.5, -1.0], [100.0, -100.0], [2.0, -2.0]])
    # before any update: mean 0, var 1 -> identity (up to eps), clipped to +-2
    torch.testing.assert_close(norm(x), torch.tensor([[0.5, -1.0], [2.0, -2.0], [2.0, -2.0]]), atol=1e-6, rtol=0)
    norm.update(torch.tensor([[0.0, 0.0], [2.0, 4.0]]))  # mean [1, 2], var [1, 4]
    y = norm(torch.tensor([[1.0, 2.0], [2.0, 6.0], [1e6, -1e6], [-3.0, 2.0]]))
    # (x - mean) / std: [0, 0], [1, 2], [clip, -clip], [(-3 - 1)/1 = -4 -> -2, 0]
    torch.testing.assert_close(y, torch.tensor([[0.0, 0.0], [1.0, 2.0], [2.0, -2.0], [-2.0, 0.0]]), atol=1e-6, rtol=0)
    assert y.abs().max().item() <= 2.0


def test_running_norm_state_dict_roundtrip():
    a = RunningNorm((2,))
    a.update(torch.tensor([[1.0, 2.0], [3.0, 5.0]]))
    b = RunningNorm((2,))
    b.load_state_dict(a.state_dict())
    assert set(a.state_dict()) == {"mean", "var", "count"}
    x = torch.tensor([[0.3, 7.0]])
    assert torch.equal(a(x), b(x))


# --------------------------------------------------------------------------------------------
# polyak_update
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tau", [0.0, 0.005, 0.25, 1.0])
def test_polyak_update(tau):
    torch.manual_seed(0)
    target, source = nn.Linear(3, 2), nn.Linear(3, 2)
    t0 = [p.detach().clone() for p in target.parameters()]
    s0 = [p.detach().clone() for p in source.parameters()]
    polyak_update(target, source, tau)
    for t, a, b in zip(target.parameters(), t0, s0):
        torch.testing.assert_close(t.detach(), tau * b + (1 - tau) * a, atol=1e-7, rtol=0)
    for s, b in zip(source.parameters(), s0):
        assert torch.equal(s, b)  # source untouched
    # no autograd history on the targets
    assert all(p.grad_fn is None for p in target.parameters())


def test_polyak_update_hand_value_twice():
    target, source = nn.Linear(1, 1, bias=False), nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        target.weight.fill_(0.0)
        source.weight.fill_(1.0)
    polyak_update(target, source, 0.5)  # 0.5*1 + 0.5*0 = 0.5
    polyak_update(target, source, 0.5)  # 0.5*1 + 0.5*0.5 = 0.75
    assert target.weight.item() == 0.75


def test_running_norm_ignores_an_empty_batch():
    norm = RunningNorm((2,))
    norm.update(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    mean, var = norm.mean.clone(), norm.var.clone()
    norm.update(torch.zeros(0, 2))
    assert torch.equal(norm.mean, mean) and torch.equal(norm.var, var)


def test_mlp_keeps_pytorch_default_init_when_asked():
    torch.manual_seed(0)
    default = mlp(4, (256,), 2, "relu", out_gain=None)
    bound = 1 / 4**0.5  # nn.Linear's kaiming-uniform(a=sqrt(5)) bound is 1/sqrt(fan_in)
    assert default[0].weight.abs().max() <= bound and default[0].bias.abs().max() > 0
    orthogonal_net = mlp(4, (256,), 2, "relu")
    assert orthogonal_net[0].bias.abs().max() == 0
