"""Networks and running statistics shared by the deep algorithms."""

from __future__ import annotations

import contextlib
import math

import torch
from torch import Tensor, nn



def _sigmoid_tanh(x: Tensor) -> Tensor:
    return torch.sigmoid(x * 2).mul_(2).sub_(1)


class _SigmoidTanh(torch.autograd.Function):
    """tanh(x) = 2 sigmoid(2x) - 1. On CPU torch's sigmoid kernel is several times faster than its
    tanh kernel, and the backward reuses the output: d tanh = 1 - tanh^2."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        y = _sigmoid_tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return grad * (1 - y * y)


class Tanh(nn.Module):
    """Drop-in for nn.Tanh, computed through sigmoid (same values to float rounding)."""

    def forward(self, x: Tensor) -> Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            return _SigmoidTanh.apply(x)
        return _sigmoid_tanh(x)  # the same values, without autograd.Function's call overhead


ACTIVATIONS = {"tanh": Tanh, "relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU}


def mlp(in_dim: int, hidden_sizes: tuple[int, ...], out_dim: int, activation: str = "tanh", out_gain: float | None = 1.0) -> nn.Sequential:
    """MLP with orthogonal init: gain sqrt(2) on hidden layers and out_gain on the last, biases 0
    (the initialization of the PPO implementation details, Huang et al. 2022). out_gain=None keeps
    PyTorch's default nn.Linear init everywhere instead, which value-based methods use (SB3's and
    CleanRL's DQN): with orthogonal init DQN on CartPole reaches 475 but does not stay there."""
    layers: list[nn.Module] = []
    sizes = (in_dim, *hidden_sizes)
    init = (lambda layer, gain: layer) if out_gain is None else orthogonal
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [init(nn.Linear(a, b), math.sqrt(2)), ACTIVATIONS[activation]()]
    layers.append(init(nn.Linear(sizes[-1], out_dim), out_gain))
    return nn.Sequential(*layers)


def orthogonal(layer: nn.Linear, gain: float) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


class ParallelMLP(nn.Module):
    """K independent MLPs with the same layer sizes, evaluated as one batched MLP (bmm).

    Used for separate actor and critic networks, or twin Q-functions: the math is exactly that of
    K separate `mlp`s, with half (or 1/K) of the kernel launches, which dominate on small nets.
    Every member reads the same input [..., in_dim]; the output is [K, ..., out_dim].
    """

    def __init__(self, members: int, in_dim: int, hidden_sizes: tuple[int, ...], out_dim: int, activation: str = "tanh",
                 out_gains: tuple[float, ...] | None = None, torch_init: bool = False):
        """Orthogonal init (gain sqrt(2) hidden, out_gains last, biases 0) as `mlp`; torch_init
        instead draws each member as nn.Linear does by default (what SB3's off-policy nets use)."""
        super().__init__()
        sizes = (in_dim, *hidden_sizes, out_dim)
        self.members = members
        self.weights = nn.ParameterList(nn.Parameter(torch.empty(members, a, b)) for a, b in zip(sizes[:-1], sizes[1:]))
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(members, 1, b)) for b in sizes[1:])
        self.activation = ACTIVATIONS[activation]()
        out_gains = out_gains or (1.0,) * members
        for layer, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            for k in range(members):
                if torch_init:  # nn.Linear.reset_parameters on the [out, in] view
                    nn.init.kaiming_uniform_(weight.data[k].T, a=math.sqrt(5))
                    bound = 1 / math.sqrt(weight.shape[1])
                    nn.init.uniform_(bias.data[k], -bound, bound)
                else:
                    gain = out_gains[k] if layer == len(self.weights) - 1 else math.sqrt(2)
                    nn.init.orthogonal_(weight.data[k].T, gain)

    def forward(self, x: Tensor) -> Tensor:
        batch_shape = x.shape[:-1]
        h = self.each(x.reshape(1, -1, x.shape[-1]).expand(self.members, -1, -1))
        return h.reshape(self.members, *batch_shape, h.shape[-1])

    def each(self, x: Tensor) -> Tensor:
        """Member k on its own input x[k]: [K, B, in_dim] -> [K, B, out_dim] (one network per
        agent, each reading its own agent's observations)."""
        h = x
        last = len(self.weights) - 1
        for layer, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            if layer == last and weight.shape[-1] == 1:
                # A scalar head (a critic): CPU bmm with one output column is several times slower
                # than the same products as a multiply and a sum, forward and backward alike.
                h = (h * weight.transpose(1, 2)).sum(-1, keepdim=True) + bias
            else:
                h = torch.baddbmm(bias, h, weight)
            if layer < last:
                h = self.activation(h)
        return h

    def member(self, k: int, x: Tensor) -> Tensor:
        """Member k alone on x [B, in_dim] -> [B, out_dim] (what forward()[k] is, at 1/K of the cost)."""
        last = len(self.weights) - 1
        for layer, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            x = torch.addmm(bias[k], x, weight[k])
            if layer < last:
                x = self.activation(x)
        return x


class RunningNorm(nn.Module):
    """Normalizes inputs by running mean and variance (Chan et al.'s parallel update).

    Kept inside the policy as buffers, so a saved policy normalizes by itself at evaluation.
    """

    def __init__(self, shape: tuple[int, ...], clip: float = 10.0, eps: float = 1e-8):
        super().__init__()
        self.clip, self.eps = clip, eps
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(eps, dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: Tensor) -> None:
        x = x.to(torch.float64).reshape(-1, *self.mean.shape)
        if x.shape[0] == 0:
            return
        batch_mean, batch_var, n = x.mean(0), x.var(0, unbiased=False), x.shape[0]
        delta, total = batch_mean - self.mean, self.count + n
        self.mean += delta * n / total
        self.var.copy_((self.var * self.count + batch_var * n + delta.pow(2) * self.count * n / total) / total)
        self.count.copy_(total)

    def forward(self, x: Tensor) -> Tensor:
        z = (x - self.mean.to(x.dtype)) / torch.sqrt(self.var.to(x.dtype) + self.eps)
        return z.clamp(-self.clip, self.clip)

    def denormalize(self, z: Tensor) -> Tensor:
        """The inverse of forward (without its clip): z * std + mean."""
        return z * torch.sqrt(self.var.to(z.dtype) + self.eps) + self.mean.to(z.dtype)


@contextlib.contextmanager
def frozen(module: nn.Module):
    """Within the block, module's parameters take no gradient (a loss through the module, e.g. an
    actor's through its critic, reaches only the other parameters); restored on exit."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p in params:
            p.requires_grad_(True)


@torch.no_grad()
def polyak_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """theta_target <- tau * theta_source + (1 - tau) * theta_target (one fused lerp over all parameters)."""
    torch._foreach_lerp_(list(target.parameters()), list(source.parameters()), tau)
