"""Finite MDPs (Sutton & Barto ch. 3) as vectorized sparse arrays, for dynamic programming.

A `FiniteMDP` stores p(s', r | s, a) through what DP needs:

    P        the continuation probabilities as a CSR matrix of shape [S*A, S] (row s*A + a),
             held as NumPy arrays `indptr`, `indices`, `probs` (no SciPy needed);
    R        the expected reward r(s, a) = sum_{s', r} p(s', r | s, a) r, shape [S, A];
    done     the probability that the transition from (s, a) terminates, shape [S, A].

Terminating transitions are left out of P, so the value after them is 0 by construction:
this is how terminal / absorbing states of Gymnasium's toy-text `P` tables get value 0.
For every (s, a), the row of P plus `done[s, a]` sums to one.

Constructors: `from_gymnasium(env_or_id)` (FrozenLake-v1, FrozenLake8x8-v1, CliffWalking-v1,
Taxi-v4 and rlsuite's gridworlds, through `env.unwrapped.P`), `from_arrays(P, R)`,
`from_function(n_states, n_actions, fn)`, `from_csr(...)` and `random_sparse(...)` for large
synthetic MDPs (100,000 states build in well under a second).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from rlsuite.errors import RLSuiteError, UnknownNameError, UnsupportedEnvError

PROB_ATOL = 1e-6
"""How far from one the probabilities of an (s, a) may sum (float rounding in toy-text tables)."""


class MDPError(RLSuiteError):
    """A transition model that is not a valid finite MDP (bad probabilities or shapes)."""


@dataclass(frozen=True, eq=False)
class FiniteMDP:
    """A finite MDP with sparse transitions; see the module docstring for the layout."""

    n_states: int
    n_actions: int
    indptr: np.ndarray
    """[S*A + 1] CSR row pointers of P."""
    indices: np.ndarray
    """[nnz] next state of each stored transition."""
    probs: np.ndarray
    """[nnz] probability of each stored (non-terminating) transition."""
    R: np.ndarray
    """[S, A] expected immediate reward."""
    done: np.ndarray
    """[S, A] probability that the transition terminates (value 0 afterwards)."""
    name: str = "mdp"
    shape: tuple[int, int] | None = None
    """Grid (rows, cols) when states are cells of a grid, for plots."""
    walls: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        S, A = self.n_states, self.n_actions
        if self.R.shape != (S, A) or self.done.shape != (S, A) or self.indptr.shape != (S * A + 1,):
            raise MDPError(f"inconsistent shapes: R {self.R.shape} and done {self.done.shape} must be ({S}, {A}), indptr {self.indptr.shape} must be ({S * A + 1},).")

    # --- constructors ---------------------------------------------------------------------

    @classmethod
    def from_csr(cls, n_states: int, n_actions: int, indptr, indices, probs, R, done=None, *, name: str = "mdp", shape=None, walls=(), validate: bool = True) -> FiniteMDP:
        """From CSR arrays of the continuation probabilities (row s*A + a) and R[S, A]."""
        S, A = int(n_states), int(n_actions)
        indptr = np.asarray(indptr, dtype=np.int64)
        indices = np.asarray(indices, dtype=np.int64)
        probs = np.asarray(probs, dtype=np.float64)
        R = np.asarray(R, dtype=np.float64)
        done = np.zeros((S, A)) if done is None else np.asarray(done, dtype=np.float64)
        if S < 1 or A < 1:
            raise MDPError(f"an MDP needs at least one state and one action, got {S} states and {A} actions.")
        if R.shape != (S, A):
            raise MDPError(f"R must have shape (n_states, n_actions) = ({S}, {A}), got {R.shape}.")
        if done.shape != (S, A):
            raise MDPError(f"done must have shape ({S}, {A}), got {done.shape}.")
        if indptr.shape != (S * A + 1,) or indptr[0] != 0 or indptr[-1] != len(indices) or len(indices) != len(probs) or np.any(np.diff(indptr) < 0):
            raise MDPError(f"CSR arrays are inconsistent: indptr must have {S * A + 1} non-decreasing entries from 0 to len(indices) = len(probs).")
        if validate:
            if len(indices) and (indices.min() < 0 or indices.max() >= S):
                raise MDPError(f"next states must lie in [0, {S}), found {indices.min()}..{indices.max()}.")
            bad = np.flatnonzero(probs < 0)
            if bad.size:
                row = int(np.searchsorted(indptr, bad[0], side="right") - 1)
                raise MDPError(f"negative transition probability {probs[bad[0]]} at (s={row // A}, a={row % A}) -> s'={indices[bad[0]]}.")
            if np.any(done < 0) or np.any(~np.isfinite(R)):
                raise MDPError("termination probabilities must be >= 0 and rewards finite.")
            totals = np.zeros(S * A)
            np.add.at(totals, np.repeat(np.arange(S * A), np.diff(indptr)), probs)
            totals += done.reshape(-1)
            wrong = np.flatnonzero(np.abs(totals - 1.0) > PROB_ATOL)
            if wrong.size:
                i = int(wrong[0])
                raise MDPError(
                    f"transition probabilities of (s={i // A}, a={i % A}) sum to {totals[i]:.10g}, not 1"
                    f"{f' ({wrong.size} state-action pairs are wrong)' if wrong.size > 1 else ''}. Fix the model so every p(.|s, a) sums to one."
                )
        return cls(S, A, indptr, indices, probs, R, done, name=name, shape=None if shape is None else tuple(shape), walls=tuple(int(w) for w in walls))

    @classmethod
    def from_transitions(cls, n_states: int, n_actions: int, table: Callable[[int, int], Iterable[tuple[float, int, float, bool]]], **kwargs) -> FiniteMDP:
        """From table(s, a) -> [(prob, next_state, reward, terminal), ...] (toy-text `P` layout)."""
        S, A = int(n_states), int(n_actions)
        rows: list[int] = []
        outcomes: list = []
        for s in range(S):
            for a in range(A):
                try:
                    listed = list(table(s, a))
                except (KeyError, IndexError):
                    raise MDPError(f"the model has no transitions for (s={s}, a={a}); every state needs all {A} actions.") from None
                if not listed:
                    raise MDPError(f"(s={s}, a={a}) has an empty list of transitions; give at least one (prob, next_state, reward, terminal).")
                for outcome in listed:
                    if len(outcome) != 4:
                        raise MDPError(f"transitions of (s={s}, a={a}) must be (prob, next_state, reward, terminal) tuples, got {outcome!r}.")
                rows += [s * A + a] * len(listed)
                outcomes += listed
        # One array of all outcomes, then vectorized checks and sums (a loop per outcome is slow).
        p, s2, r, terminal = np.array(outcomes, dtype=np.float64).T
        rows = np.asarray(rows)
        for bad, what in ((p < 0, "negative transition probability {p}"), ((s2 < 0) | (s2 >= S) | (s2 != np.round(s2)), "next state {s2:g} outside [0, {S})")):
            if bad.any():
                i = int(np.argmax(bad))
                raise MDPError(f"(s={rows[i] // A}, a={rows[i] % A}): " + what.format(p=p[i], s2=s2[i], S=S) + ".")
        R = np.bincount(rows, weights=p * r, minlength=S * A).reshape(S, A)
        is_terminal = terminal != 0
        done = np.bincount(rows[is_terminal], weights=p[is_terminal], minlength=S * A).reshape(S, A)
        kept = ~is_terminal
        indices, probs = s2[kept].astype(np.int64), p[kept]
        counts = np.bincount(rows[kept], minlength=S * A)
        indptr = np.concatenate([[0], np.cumsum(counts)])
        return cls.from_csr(S, A, indptr, indices, probs, R, done, **kwargs)

    @classmethod
    def from_function(cls, n_states: int, n_actions: int, fn: Callable[[int, int], Iterable[tuple[float, int, float, bool]]], **kwargs) -> FiniteMDP:
        """From fn(s, a) -> list of (prob, next_state, reward, terminal); terminal => value 0 after."""
        return cls.from_transitions(n_states, n_actions, fn, **kwargs)

    @classmethod
    def from_arrays(cls, P, R, terminal_states: Iterable[int] = (), **kwargs) -> FiniteMDP:
        """From dense P[S, A, S'] and R[S, A] or R[S, A, S'] (rewards on arrival in s').

        Transitions into `terminal_states` terminate, so those states have value 0.
        """
        P = np.asarray(P, dtype=np.float64)
        R = np.asarray(R, dtype=np.float64)
        if P.ndim != 3 or P.shape[0] != P.shape[2]:
            raise MDPError(f"P must have shape (n_states, n_actions, n_states), got {P.shape}.")
        S, A, _ = P.shape
        if R.shape == (S, A, S):
            R = (P * R).sum(axis=2)
        elif R.shape != (S, A):
            raise MDPError(f"R must have shape ({S}, {A}) or ({S}, {A}, {S}) to match P {P.shape}, got {R.shape}.")
        if np.any(P < 0):
            s, a, s2 = np.argwhere(P < 0)[0]
            raise MDPError(f"negative transition probability {P[s, a, s2]} at (s={s}, a={a}) -> s'={s2}.")
        terminal = np.zeros(S, bool)
        terminal[list(terminal_states)] = True
        done = P[:, :, terminal].sum(axis=2)
        cont = np.where(terminal[None, None, :], 0.0, P).reshape(S * A, S)
        rows, cols = np.nonzero(cont)
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=S * A))])
        return cls.from_csr(S, A, indptr, cols, cont[rows, cols], R, done, **kwargs)

    @classmethod
    def from_gymnasium(cls, env_or_id, **make_kwargs) -> FiniteMDP:
        """From an env (or id) whose `unwrapped.P` is a toy-text table, e.g. FrozenLake-v1, Taxi-v4."""
        import gymnasium as gym
        from gymnasium import spaces

        import rlsuite.envs.gridworlds as gridworlds  # registers the book's worlds

        env = env_or_id
        if isinstance(env_or_id, str):
            if env_or_id not in gym.registry:
                from rlsuite.errors import suggest

                raise UnknownNameError(f"unknown environment {env_or_id!r}.{suggest(env_or_id, gym.registry)}")
            env = gym.make(env_or_id, **make_kwargs)
        name = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
        if not isinstance(env.observation_space, spaces.Discrete) or not isinstance(env.action_space, spaces.Discrete):
            raise UnsupportedEnvError(
                f"dynamic programming needs Discrete observation and action spaces (a finite MDP), but {name} has "
                f"{env.observation_space} and {env.action_space}. Use FrozenLake-v1, CliffWalking-v1, Taxi-v4 or GridWorld4x4-v0."
            )
        table = getattr(env.unwrapped, "P", None)
        if not isinstance(table, dict):
            raise UnsupportedEnvError(f"{name} does not expose its model as a toy-text `P` table (env.unwrapped.P[s][a] = [(p, s', r, done), ...]); DP needs the model.")
        shape = gridworlds.grid_shape(env)
        walls = getattr(env.unwrapped, "walls", ())
        return cls.from_transitions(int(env.observation_space.n), int(env.action_space.n), lambda s, a: table[s][a], name=name, shape=shape, walls=walls)

    @classmethod
    def random_sparse(cls, n_states: int, n_actions: int, n_successors: int = 5, seed: int = 0, *, reward_scale: float = 1.0) -> FiniteMDP:
        """A continuing MDP with n_successors random next states per (s, a), Dirichlet(1) probabilities
        and N(0, reward_scale) expected rewards; built without Python loops."""
        rng = np.random.default_rng(seed)
        rows = n_states * n_actions
        indices = rng.integers(0, n_states, size=(rows, n_successors))
        probs = rng.exponential(size=(rows, n_successors))
        probs /= probs.sum(axis=1, keepdims=True)
        R = rng.normal(scale=reward_scale, size=(n_states, n_actions))
        indptr = np.arange(0, rows * n_successors + 1, n_successors)
        return cls.from_csr(n_states, n_actions, indptr, indices.reshape(-1), probs.reshape(-1), R, name=f"random-{n_states}x{n_actions}")

    # --- linear algebra -------------------------------------------------------------------

    @property
    def nnz(self) -> int:
        return len(self.indices)

    def expected_next(self, v: np.ndarray) -> np.ndarray:
        """sum_{s'} p(s' | s, a) v(s') over non-terminating transitions, shape [S, A]."""
        dense = self.__dict__.get("_dense")  # built by exact evaluation of small MDPs: no CSR needed then
        if dense is not None:
            return dense @ v
        return (self.sparse() @ v).reshape(self.n_states, self.n_actions)

    def sparse(self):
        """P as a SciPy CSR matrix [S*A, S'] (built once and cached), for compiled mat-vecs."""
        cached = self.__dict__.get("_sparse")
        if cached is None:
            import scipy.sparse

            cached = scipy.sparse.csr_matrix((self.probs, self.indices, self.indptr), shape=(self.n_states * self.n_actions, self.n_states))
            object.__setattr__(self, "_sparse", cached)
        return cached

    def dense(self) -> np.ndarray:
        """P as a dense [S, A, S'] array of continuation probabilities (small MDPs only).

        Built once and cached (read-only): exact policy evaluation asks for it every iteration.
        """
        cached = self.__dict__.get("_dense")
        if cached is None:
            P = np.zeros((self.n_states * self.n_actions, self.n_states))
            rows = np.repeat(np.arange(self.n_states * self.n_actions), np.diff(self.indptr))
            np.add.at(P, (rows, self.indices), self.probs)
            cached = P.reshape(self.n_states, self.n_actions, self.n_states)
            cached.flags.writeable = False
            object.__setattr__(self, "_dense", cached)
        return cached

    def policy_matrix(self, pi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(indptr, indices, probs, r_pi) of P_pi = sum_a pi(a|s) P[s, a] for pi of shape [S, A]."""
        S, A = self.n_states, self.n_actions
        counts = np.diff(self.indptr).reshape(S, A)
        weights = np.repeat(pi.reshape(-1), counts.reshape(-1))
        keep = np.repeat((pi > 0).reshape(-1), counts.reshape(-1))
        per_state = (counts * (pi > 0)).sum(axis=1)
        indptr = np.concatenate([[0], np.cumsum(per_state)])
        return indptr, self.indices[keep], (self.probs * weights)[keep], (pi * self.R).sum(axis=1)

    def terminating_states(self, allowed: np.ndarray | None = None) -> np.ndarray:
        """bool[S]: from which states termination is reachable when only actions with
        allowed[s, a] (default: all) may be taken. With allowed = the support of a policy this
        says whether the policy terminates with probability one from s (finite chain argument)."""
        return self._backward_search(allowed)[0]

    def proper_policy(self) -> np.ndarray:
        """int[S]: a deterministic policy that terminates with probability one from every state
        that can terminate at all (each state takes an action one step closer to termination)."""
        return self._backward_search(None)[1]

    def _backward_search(self, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        S, A = self.n_states, self.n_actions
        allowed = np.ones((S, A), bool) if allowed is None else np.asarray(allowed, bool)
        rows = np.repeat(np.arange(S * A), np.diff(self.indptr))
        live = allowed.reshape(-1)[rows] & (self.probs > 0)
        src, dst = rows[live] // A, self.indices[live]
        # Reverse adjacency (dst -> src) in CSR form for a level-by-level backward search.
        order = np.argsort(dst, kind="stable")
        rev_src = src[order]
        rev_act = (rows[live] % A)[order]
        rev_ptr = np.concatenate([[0], np.cumsum(np.bincount(dst, minlength=S))])
        exits = (self.done > 0) & allowed
        reached = exits.any(axis=1)
        action = np.argmax(exits, axis=1)
        frontier = np.flatnonzero(reached)
        while frontier.size:
            starts, ends = rev_ptr[frontier], rev_ptr[frontier + 1]
            lengths = ends - starts
            if not lengths.sum():
                break
            pos = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
            new = ~reached[rev_src[pos]]
            action[rev_src[pos][new]] = rev_act[pos][new]
            frontier = np.unique(rev_src[pos][new])
            reached[frontier] = True
        return reached, action

    def __repr__(self) -> str:
        return f"FiniteMDP({self.name}: {self.n_states} states, {self.n_actions} actions, {self.nnz} transitions)"
