"""Dynamic programming on a FiniteMDP (Sutton & Barto ch. 4), as pure vectorized functions.

All sweeps are synchronous (V_{k+1} computed from V_k), the variant of Section 4.1 with two arrays.

Stopping rules (max-norm, ||x|| = max_s |x(s)|):
- gamma < 1: a sweep of the Bellman operator T (for v_pi or v_*) is a gamma-contraction, so
  ||V_{k+1} - V|| <= gamma / (1 - gamma) * ||V_{k+1} - V_k||. Iteration stops when
  ||V_{k+1} - V_k|| < tol * (1 - gamma) / gamma, which GUARANTEES ||V_{k+1} - V|| < tol.
- gamma = 1 (undiscounted) is allowed only for episodic models, by this rule:
  * evaluating a policy pi: from every state, pi must reach a terminating transition with
    positive probability (checked on the transition graph restricted to pi's actions; for a finite
    chain this means pi terminates with probability one), otherwise ConfigError;
  * control (value / policy iteration): from every state SOME policy must terminate (same check
    with all actions). Value iteration then stops when ||V_{k+1} - V_k|| < tol: a residual rule,
    NOT an error bound (there is no contraction). Policy iteration starts from a policy that
    terminates (`FiniteMDP.proper_policy`); if an improvement step yields a policy that does
    not terminate (possible when loops cost nothing, e.g. FrozenLake) it raises ConfigError.
  A continuing task (e.g. the 5x5 gridworld of Example 3.5) with gamma = 1 is a ConfigError.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse

from rlsuite.errors import ConfigError, RLSuiteError
if TYPE_CHECKING:  # ops take the model as data; they import nothing but errors from rlsuite
    from rlsuite.envs.tabular import FiniteMDP


EXACT_MAX_STATES = 1_000
"""Above this many states policy iteration evaluates iteratively by default (O(S^3) solve)."""


class NotConvergedError(RLSuiteError):
    """An iterative DP method hit max_iterations before its stopping rule held."""


@dataclass
class DPResult:
    """What a DP solver returns: values, greedy policy and one history row per iteration."""

    v: np.ndarray
    q: np.ndarray
    policy: np.ndarray
    iterations: int
    converged: bool
    history: list[dict[str, float]] = field(default_factory=list)


def check_gamma(gamma: float) -> float:
    if not 0.0 <= gamma <= 1.0 or not np.isfinite(gamma):
        raise ConfigError(f"gamma must be in [0, 1], got {gamma}.")
    return float(gamma)


def check_solvable(mdp: FiniteMDP, gamma: float) -> float:
    """Raise ConfigError unless value / policy iteration may run with this gamma (module docstring)."""
    gamma = check_gamma(gamma)
    if gamma == 1.0:
        _require_episodic(mdp, None, "no policy ever terminates")
    return gamma


def stopping_threshold(gamma: float, tol: float) -> float:
    """The ||V_{k+1} - V_k|| below which ||V_{k+1} - V|| < tol (see the module docstring)."""
    if gamma == 0.0:
        return np.inf
    if gamma == 1.0:
        return tol
    return tol * (1.0 - gamma) / gamma


def _require_episodic(mdp: FiniteMDP, allowed: np.ndarray | None, what: str) -> None:
    stuck = np.flatnonzero(~mdp.terminating_states(allowed))
    if stuck.size:
        raise ConfigError(
            f"gamma = 1 needs an episodic task, but from state {stuck[0]} {what} "
            f"({stuck.size} such states in {mdp.name}). Use gamma < 1 (e.g. 0.99) for a continuing task."
        )


def as_stochastic(mdp: FiniteMDP, policy: np.ndarray) -> np.ndarray:
    """pi(a|s) as [S, A] from either actions int[S] or probabilities [S, A] (checked)."""
    policy = np.asarray(policy)
    S, A = mdp.n_states, mdp.n_actions
    if policy.shape == (S,):
        if not np.issubdtype(policy.dtype, np.integer) or policy.min() < 0 or policy.max() >= A:
            raise ConfigError(f"a deterministic policy must hold integer actions in [0, {A}).")
        pi = np.zeros((S, A))
        pi[np.arange(S), policy] = 1.0
        return pi
    if policy.shape != (S, A):
        raise ConfigError(f"policy must have shape ({S},) (actions) or ({S}, {A}) (probabilities), got {policy.shape}.")
    if np.any(policy < 0) or np.any(np.abs(policy.sum(axis=1) - 1.0) > 1e-6):
        raise ConfigError("policy probabilities must be >= 0 and sum to one in every state.")
    return policy.astype(np.float64)


def uniform_policy(mdp: FiniteMDP) -> np.ndarray:
    return np.full((mdp.n_states, mdp.n_actions), 1.0 / mdp.n_actions)


def q_from_v(mdp: FiniteMDP, v: np.ndarray, gamma: float) -> np.ndarray:
    """q(s, a) = r(s, a) + gamma sum_{s'} p(s'|s, a) v(s')  (eq. 4.6), shape [S, A]."""
    return mdp.R + gamma * mdp.expected_next(v)


def greedy_policy(q: np.ndarray, current: np.ndarray | None = None, atol: float = 0.0) -> np.ndarray:
    """argmax_a q(s, a) per state; where the current action is within atol of the best
    (atol = 0: an exact tie) the current action is kept, so policy iteration cannot cycle
    between tied actions (Section 4.3's 'policy-stable' test, with the usual tie fix)."""
    best = np.argmax(q, axis=1)
    if current is None:
        return best
    rows = np.arange(q.shape[0])
    keep = q[rows, current] >= q[rows, best] - atol
    return np.where(keep, current, best)


def policy_model(mdp: FiniteMDP, policy: np.ndarray) -> tuple[scipy.sparse.csr_matrix, np.ndarray]:
    """(P_pi, r_pi): the state-to-state transition matrix [S, S] (sparse) and expected reward [S]
    of following pi, so that v_pi = r_pi + gamma P_pi v_pi (eq. 4.4)."""
    pi = as_stochastic(mdp, policy)
    indptr, indices, probs, r_pi = mdp.policy_matrix(pi)
    return scipy.sparse.csr_matrix((probs, indices, indptr), shape=(mdp.n_states, mdp.n_states)), r_pi


def expectation_sweep(P_pi: scipy.sparse.csr_matrix, r_pi: np.ndarray, v: np.ndarray, gamma: float) -> np.ndarray:
    """One synchronous sweep of iterative policy evaluation: V_{k+1} = r_pi + gamma P_pi V_k (eq. 4.5)."""
    return r_pi + gamma * (P_pi @ v)


def optimality_sweep(mdp: FiniteMDP, v: np.ndarray, gamma: float) -> np.ndarray:
    """One synchronous sweep of value iteration: V_{k+1}(s) = max_a q_k(s, a) (eq. 4.10)."""
    return q_from_v(mdp, v, gamma).max(axis=1)


def require_terminating(mdp: FiniteMDP, policy: np.ndarray, gamma: float) -> None:
    """With gamma = 1, ConfigError unless the policy terminates from every state."""
    if check_gamma(gamma) == 1.0:
        _require_episodic(mdp, as_stochastic(mdp, policy) > 0, "this policy never terminates")


def policy_evaluation(
    mdp: FiniteMDP, policy: np.ndarray, gamma: float, tol: float = 1e-8, max_iterations: int = 100_000, v0: np.ndarray | None = None,
    sweeps: int | None = None,
) -> tuple[np.ndarray, list[dict[str, float]]]:
    """Iterative policy evaluation (box of Section 4.1, synchronous): V <- r_pi + gamma P_pi V.

    Returns (V, history) with ||V - v_pi|| < tol for gamma < 1 (see the module docstring).
    Raises NotConvergedError after max_iterations sweeps. With `sweeps`, returns v_k after exactly
    that many sweeps instead (Figure 4.1's left column), whatever its error.
    """
    if sweeps is not None and sweeps < 0:
        raise ConfigError(f"sweeps must be >= 0, got {sweeps}.")
    require_terminating(mdp, policy, gamma)
    P_pi, r_pi = policy_model(mdp, policy)
    threshold = stopping_threshold(gamma, tol)
    v = np.zeros(mdp.n_states) if v0 is None else np.asarray(v0, dtype=np.float64).copy()
    history = []
    for k in range(1, (max_iterations if sweeps is None else sweeps) + 1):
        v_new = expectation_sweep(P_pi, r_pi, v, gamma)
        delta = float(np.max(np.abs(v_new - v)))
        v = v_new
        history.append({"iteration": k, "max_change": delta, "error_bound": error_bound(gamma, delta)})
        if sweeps is None and delta < threshold:
            return v, history
    if sweeps is not None:
        return v, history
    raise NotConvergedError(f"policy evaluation did not reach tol={tol} in {max_iterations} sweeps (last change {delta:.3g}); raise max_iterations or tol.")


def error_bound(gamma: float, delta: float) -> float:
    """The guaranteed ||V_{k+1} - V|| after a sweep that changed V by delta (nan for gamma = 1)."""
    return gamma / (1.0 - gamma) * delta if gamma < 1.0 else float("nan")


def sweep_metrics(gamma: float, delta: float) -> dict[str, float]:
    """What a DP run logs per sweep: the change, and the error bound when gamma < 1 (there is none at 1)."""
    return {"max_change": delta, "error_bound": error_bound(gamma, delta)} if gamma < 1.0 else {"max_change": delta}


def policy_evaluation_exact(mdp: FiniteMDP, policy: np.ndarray, gamma: float) -> np.ndarray:
    """v_pi = (I - gamma P_pi)^{-1} r_pi (eq. 4.4 as a linear system), dense: for a few thousand states."""
    gamma = check_gamma(gamma)
    pi = as_stochastic(mdp, policy)
    if gamma == 1.0:
        _require_episodic(mdp, pi > 0, "this policy never terminates")
    P, states = mdp.dense(), np.arange(mdp.n_states)
    policy = np.asarray(policy)
    if policy.ndim == 1:  # deterministic: rows of P and R, no sum over actions
        P_pi, r_pi = P[states, policy], mdp.R[states, policy]
    else:
        P_pi, r_pi = np.einsum("sa,sat->st", pi, P), (pi * mdp.R).sum(axis=1)
    return np.linalg.solve(np.eye(mdp.n_states) - gamma * P_pi, r_pi)


def value_iteration(mdp: FiniteMDP, gamma: float, tol: float = 1e-6, max_iterations: int = 100_000, v0: np.ndarray | None = None) -> DPResult:
    """Value iteration (box of Section 4.4): V_{k+1}(s) = max_a q_k(s, a), stopped on the bound
    of the module docstring; the returned policy is greedy w.r.t. the final V."""
    gamma = check_gamma(gamma)
    if gamma == 1.0:
        _require_episodic(mdp, None, "no policy ever terminates")
    threshold = stopping_threshold(gamma, tol)
    v = np.zeros(mdp.n_states) if v0 is None else np.asarray(v0, dtype=np.float64).copy()
    history, converged, k = [], False, 0
    for k in range(1, max_iterations + 1):
        v_new = optimality_sweep(mdp, v, gamma)
        delta = float(np.max(np.abs(v_new - v)))
        v = v_new
        history.append({"iteration": k, "max_change": delta, "error_bound": error_bound(gamma, delta)})
        if delta < threshold:
            converged = True
            break
    q = q_from_v(mdp, v, gamma)
    return DPResult(v, q, greedy_policy(q), k, converged, history)


TIE_RTOL = 1e-12
"""Exactly evaluated action values closer than this (relative to their scale) count as tied:
float rounding alone separates truly tied actions by ~1e-16."""


def initial_policy(mdp: FiniteMDP, gamma: float) -> np.ndarray:
    """Policy iteration's starting policy: action 0 everywhere, or one that terminates when gamma = 1."""
    gamma = check_gamma(gamma)
    if gamma == 1.0:
        _require_episodic(mdp, None, "no policy ever terminates")
        return mdp.proper_policy()
    return np.zeros(mdp.n_states, dtype=np.int64)


def policy_iteration_step(
    mdp: FiniteMDP, policy: np.ndarray, v: np.ndarray, gamma: float, tol: float, exact: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, float]]:
    """One round of policy iteration: evaluate pi (exactly, or iteratively warm-started from v),
    then improve it greedily. Returns (v_pi, q_pi, improved policy, history row).

    The current action is kept unless another is better by more than the evaluation error (and,
    for exact evaluation, float rounding), so policy iteration cannot cycle between tied actions.
    """
    if exact:
        v_new, sweeps = policy_evaluation_exact(mdp, policy, gamma), 0
    else:
        v_new, evals = policy_evaluation(mdp, policy, gamma, tol, v0=v)
        sweeps = len(evals)
    q = q_from_v(mdp, v_new, gamma)
    atol = TIE_RTOL * max(1.0, float(np.abs(q).max())) + (0.0 if exact else 2.0 * gamma * tol)
    improved = greedy_policy(q, policy, atol)
    changes = int(np.count_nonzero(improved != policy))
    if gamma == 1.0 and changes and not mdp.terminating_states(as_stochastic(mdp, improved) > 0).all():
        raise ConfigError(
            f"undiscounted policy iteration reached a policy that never terminates in {mdp.name} (zero-reward loops "
            "tie with terminating, so eq. 4.4 has no unique solution). Use gamma < 1, value_iteration with gamma = 1, "
            "or --evaluation iterative (its larger tie margin keeps the terminating actions)."
        )
    row = {"policy_changes": changes, "max_change": float(np.max(np.abs(v_new - v))), "evaluation_sweeps": sweeps}
    return v_new, q, improved, row


def policy_iteration(
    mdp: FiniteMDP, gamma: float, tol: float = 1e-8, max_iterations: int = 1_000, exact: bool | None = None, policy0: np.ndarray | None = None
) -> DPResult:
    """Policy iteration (box of Section 4.3): evaluate pi, make it greedy, until no action changes.

    exact: evaluate by a dense linear solve (default when S <= EXACT_MAX_STATES) instead of iterative
    evaluation warm-started from the previous V (see policy_iteration_step for ties).
    """
    exact = mdp.n_states <= EXACT_MAX_STATES if exact is None else exact
    policy = initial_policy(mdp, gamma) if policy0 is None else np.asarray(policy0).copy()
    v = np.zeros(mdp.n_states)
    history = []
    for k in range(1, max_iterations + 1):
        v, q, improved, row = policy_iteration_step(mdp, policy, v, gamma, tol, exact)
        history.append({"iteration": k, **row})
        policy = improved
        if row["policy_changes"] == 0:
            return DPResult(v, q, policy, k, True, history)
    return DPResult(v, q_from_v(mdp, v, gamma), policy, max_iterations, False, history)
