"""TRPO's step (Schulman et al. 2015, appendix C): the natural-gradient direction F^-1 g by
conjugate gradient on Fisher-vector products, then a backtracking line search that accepts the
largest step fraction keeping the KL within its bound and improving the surrogate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor


def conjugate_gradient(matrix_vector: Callable[[Tensor], Tensor], b: Tensor, iterations: int = 10,
                       residual_tol: float = 1e-10) -> Tensor:
    """x with A x = b for a symmetric positive-definite A known only through x -> A x
    (Nocedal & Wright, algorithm 5.2). Exact in n iterations for an n x n A, in exact arithmetic."""
    x = torch.zeros_like(b)
    residual = b.clone()
    direction = b.clone()
    residual_norm = residual @ residual
    for _ in range(iterations):
        if residual_norm < residual_tol:
            break
        product = matrix_vector(direction)
        alpha = residual_norm / (direction @ product)
        x = x + alpha * direction
        residual = residual - alpha * product
        new_norm = residual @ residual
        direction = residual + (new_norm / residual_norm) * direction
        residual_norm = new_norm
    return x


class LineSearch(NamedTuple):
    fraction: float     # of the full step taken (0: none accepted, the parameters stay)
    improvement: float  # surrogate gain at the accepted step
    kl: float           # KL(pi_old || pi_new) at the accepted step


def line_search(evaluate: Callable[[float], tuple[float, float]], max_kl: float, expected_improvement: float,
                backtracks: int = 10, shrink: float = 0.5, accept_ratio: float = 0.1) -> LineSearch:
    """Try fractions 1, shrink, shrink^2, ... of the full natural step; `evaluate(f)` returns
    (surrogate gain, KL) of the parameters moved by f times the step. A fraction is accepted when
    its KL is within max_kl and its gain is positive and at least accept_ratio of the linear
    model's expected_improvement * f. The KL test comes first: no accepted step ever breaks it."""
    fraction = 1.0
    for _ in range(backtracks):
        improvement, kl = evaluate(fraction)
        if kl <= max_kl and improvement > 0 and improvement >= accept_ratio * expected_improvement * fraction:
            return LineSearch(fraction, improvement, kl)
        fraction *= shrink
    return LineSearch(0.0, 0.0, 0.0)
