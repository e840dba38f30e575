"""TRPO's pieces: conjugate gradient on a matrix known only by its products, and the line search
that never accepts a step breaking the KL bound."""

import pytest
import torch

from rlsuite.ops.natural_gradient import conjugate_gradient, line_search


def test_conjugate_gradient_solves_a_small_spd_system():
    torch.manual_seed(0)
    m = torch.randn(6, 6, dtype=torch.float64)
    a = m @ m.T + 0.5 * torch.eye(6, dtype=torch.float64)  # symmetric positive definite
    b = torch.randn(6, dtype=torch.float64)
    calls = []
    x = conjugate_gradient(lambda v: calls.append(1) or a @ v, b, iterations=6)
    torch.testing.assert_close(x, torch.linalg.solve(a, b), rtol=1e-8, atol=1e-8)
    assert len(calls) <= 6  # n iterations suffice for n x n
    few = conjugate_gradient(lambda v: a @ v, b, iterations=2)
    assert torch.linalg.norm(a @ few - b) > 1e-6  # two iterations are not a solve: the count matters


def test_line_search_rejects_steps_that_break_the_kl_bound():
    # gain(f) = f (the linear model is right), KL(f) = 0.05 f^2 * 16: the full step's KL is 0.8,
    # four times the bound 0.2; f = 0.5 gives KL 0.2 (accepted: <= bound) and gain 0.5.
    seen = []

    def evaluate(f):
        seen.append(f)
        return f, 0.8 * f * f

    result = line_search(evaluate, max_kl=0.2, expected_improvement=1.0)
    assert seen == [1.0, 0.5] and result.fraction == 0.5 and result.kl == pytest.approx(0.2)
    assert result.improvement == 0.5


def test_line_search_needs_improvement_and_gives_up_cleanly():
    # KL always fine but the surrogate gets worse at every fraction: nothing is accepted.
    result = line_search(lambda f: (-f, 0.0), max_kl=0.01, expected_improvement=1.0, backtracks=5)
    assert result.fraction == 0.0 and result.improvement == 0.0
    # A gain far below the linear model's prediction is refused until the step is small enough.
    result = line_search(lambda f: (0.05 * f if f > 0.3 else 0.5 * f, 0.0), max_kl=0.01, expected_improvement=1.0)
    assert result.fraction == 0.25
    # Whatever is accepted never breaks the bound, across many random landscapes.
    generator = torch.Generator().manual_seed(1)
    for _ in range(200):
        scale, gain = torch.rand(2, generator=generator).tolist()
        out = line_search(lambda f: (gain * f - 0.3 * f * f, 5 * scale * f * f), max_kl=0.05, expected_improvement=gain)
        assert out.kl <= 0.05
