"""Dynamic programming: rlsuite (rlsuite.ops.dp) vs pymdptoolbox, at equal accuracy.

Each solver is timed from raw model to values (model construction included) and must reach
max_s |V(s) - v_ref(s)| <= 1e-6, where v_ref is a dense linear solve of the optimal policy's values.
pymdptoolbox's ValueIteration stops on a span rule, so its epsilon is tightened until it reaches
the target; its PolicyIteration (eval_type 0: matrix solve) is reported as is.

Needs: pip install pymdptoolbox (imports as `mdptoolbox`; pulls SciPy).
Usage: python bench/dp_vs_mdptoolbox.py [--no-write] [--quick]
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
from results import append_section  # noqa: E402  (bench/ is on sys.path when run as a script)

from rlsuite.envs.tabular import FiniteMDP
from rlsuite.ops import dp

TARGET = 1e-6


def best_time(fn, repeats, budget=0.3, most=500):
    """Best of at least `repeats` calls, repeated (up to `most`) until `budget` seconds are spent,
    as timeit does: sub-millisecond solves need many repeats for a stable best time."""
    best, out, spent, calls = np.inf, None, 0.0, 0
    while calls < repeats or (spent < budget and calls < most):
        t = time.perf_counter()
        out = fn()
        elapsed = time.perf_counter() - t
        best, spent, calls = min(best, elapsed), spent + elapsed, calls + 1
    return best, out


def frozen_lake_raw():
    table = gym.make("FrozenLake-v1").unwrapped.P
    return table, 16, 4


def toolbox_from_table(table, S, A):
    # Terminal transitions lead to absorbing zero-reward states in FrozenLake's table, so
    # ignoring `done` gives the same values.
    P, R = np.zeros((A, S, S)), np.zeros((S, A))
    for s in range(S):
        for a in range(A):
            for p, s2, r, _ in table[s][a]:
                P[a, s, s2] += p
                R[s, a] += p * r
    return P, R


def random_raw(S, A, k, seed):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, S, size=(S * A, k))
    probs = rng.exponential(size=(S * A, k))
    probs /= probs.sum(axis=1, keepdims=True)
    R = rng.normal(size=(S, A))
    return idx, probs, R


def toolbox_from_raw(idx, probs, R, S, A):
    import scipy.sparse as sp

    k = idx.shape[1]
    rows = np.repeat(np.arange(S), k)
    P = [sp.csr_matrix((probs[a::A].reshape(-1), (rows, idx[a::A].reshape(-1))), shape=(S, S)) for a in range(A)]
    return P, R


def reference_values(P_dense, R, policy, gamma):
    """Exact v of `policy`: P_dense [S, A, S'] continuation probabilities."""
    S = len(R)
    P_pi = P_dense[np.arange(S), policy]
    return np.linalg.solve(np.eye(S) - gamma * P_pi, R[np.arange(S), policy])


def run_case(name, gamma, build_rlsuite, build_toolbox, P_dense, repeats, rows):
    import mdptoolbox.mdp as mdp_tb

    exact = dp.policy_iteration(build_rlsuite(), gamma, exact=True)
    v_ref = reference_values(P_dense, build_rlsuite().R, exact.policy, gamma)

    def err(v):
        return float(np.max(np.abs(np.asarray(v) - v_ref)))

    t, r = best_time(lambda: dp.value_iteration(build_rlsuite(), gamma, tol=TARGET), repeats)
    rows.append((name, "rlsuite value_iteration(tol=1e-6)", t, err(r.v), r.iterations, ""))
    t, r = best_time(lambda: dp.policy_iteration(build_rlsuite(), gamma, exact=True), repeats)
    rows.append((name, "rlsuite policy_iteration(exact)", t, err(r.v), r.iterations, ""))
    t, r = best_time(lambda: dp.policy_iteration(build_rlsuite(), gamma, tol=TARGET * 1e-2, exact=False), repeats)
    rows.append((name, "rlsuite policy_iteration(iterative)", t, err(r.v), r.iterations, ""))

    for eps in (1e-2, 1e-4, 1e-6, 1e-8, 1e-10, 1e-12):
        def solve_vi(eps=eps):
            P, R = build_toolbox()
            vi = mdp_tb.ValueIteration(P, R, gamma, epsilon=eps, max_iter=1_000_000)
            vi.run()
            return vi
        t, vi = best_time(solve_vi, repeats)
        e = err(vi.V)
        rows.append((name, f"mdptoolbox ValueIteration(epsilon={eps:g})", t, e, vi.iter, "" if e <= TARGET else "misses 1e-6"))
        if e <= TARGET:
            break

    def solve_pi():
        P, R = build_toolbox()
        pi = mdp_tb.PolicyIteration(P, R, gamma, max_iter=1_000, eval_type=0)
        pi.run()
        return pi
    t, pi = best_time(solve_pi, repeats)
    note = "hit max_iter (cycling?)" if pi.iter >= 1_000 else ""
    rows.append((name, "mdptoolbox PolicyIteration(matrix)", t, err(pi.V), pi.iter, note))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only; do not append to bench/RESULTS.md")
    parser.add_argument("--quick", action="store_true", help="one repeat per timing and skip the 100,000-state case")
    args = parser.parse_args()
    repeats = 1 if args.quick else 3
    rows: list[tuple] = []

    table, S, A = frozen_lake_raw()
    P_tb, _ = toolbox_from_table(table, S, A)
    fl = FiniteMDP.from_gymnasium("FrozenLake-v1")
    run_case(
        "FrozenLake-v1 (16x4, gamma 0.99)", 0.99,
        lambda: FiniteMDP.from_transitions(S, A, lambda s, a: table[s][a]),
        lambda: toolbox_from_table(table, S, A),
        fl.dense(), repeats, rows,
    )

    S, A, k = 2_000, 4, 5
    idx, probs, R = random_raw(S, A, k, seed=0)
    indptr = np.arange(0, S * A * k + 1, k)
    build = lambda: FiniteMDP.from_csr(S, A, indptr, idx.reshape(-1), probs.reshape(-1), R)  # noqa: E731
    run_case(f"random sparse ({S}x{A}, {k} successors, gamma 0.95)", 0.95, build, lambda: toolbox_from_raw(idx, probs, R, S, A), build().dense(), repeats, rows)

    big = []
    if not args.quick:
        S = 100_000
        idx, probs, R = random_raw(S, A, k, seed=1)
        t0 = time.perf_counter()
        mdp = FiniteMDP.from_csr(S, A, np.arange(0, S * A * k + 1, k), idx.reshape(-1), probs.reshape(-1), R)
        t_build = time.perf_counter() - t0
        t, vi = best_time(lambda: dp.value_iteration(mdp, 0.95, tol=TARGET), 1)
        big.append(f"100,000 states x 4 actions x 5 successors (gamma 0.95): build {t_build:.2f} s, value_iteration(tol=1e-6) {t:.2f} s ({vi.iterations} sweeps)")
        t, pi = best_time(lambda: dp.policy_iteration(mdp, 0.95, tol=TARGET * 1e-2, exact=False), 1)
        big.append(f"  policy_iteration(iterative) {t:.2f} s ({pi.iterations} improvements); max |V_vi - V_pi| = {np.max(np.abs(vi.v - pi.v)):.1e}")

    lines = ["| case | solver | seconds (best of >= %d calls, more for fast ones) | max error vs exact | iterations | note |" % repeats, "|---|---|---|---|---|---|"]
    for case, solver, t, e, it, note in rows:
        lines.append(f"| {case} | {solver} | {t:.4f} | {e:.1e} | {it} | {note} |")
    summary = []
    for case in dict.fromkeys(r[0] for r in rows):
        ours = min(r[2] for r in rows if r[0] == case and r[1].startswith("rlsuite") and r[3] <= TARGET)
        theirs = [r[2] for r in rows if r[0] == case and r[1].startswith("mdptoolbox") and r[3] <= TARGET]
        summary.append(f"{case}: fastest rlsuite {ours:.4f} s; fastest pymdptoolbox reaching 1e-6 "
                       + (f"{min(theirs):.4f} s -> speed-up {min(theirs) / ours:.1f}x" if theirs else "none"))
    text = "\n".join(lines + [""] + summary + big)
    print(text)
    if not args.no_write:
        append_section(f"`bench/dp_vs_mdptoolbox.py`, numpy {np.__version__}", text)


if __name__ == "__main__":
    main()
