"""The learning tests' driver, shared by the deep RL test files (imported by path, as clock_replay)."""

import time


def solves(train, make_config, seeds, threshold, needed):
    """Train seed after seed, each stopped at its first evaluation >= threshold; True as soon as
    `needed` seeds got there (the rest are not run). Prints what each seed did, with its curve."""
    passed = 0
    for seed in seeds:
        started = time.perf_counter()
        stop = lambda loop: loop.evaluations and loop.evaluations[-1][1]["mean_return"] >= threshold and loop.request_stop()
        run = train(make_config(seed), f"run-{seed}", quiet=True, callbacks=[stop])
        curve = ", ".join(f"{int(step)}: {ret:.0f}" for step, ret in zip(run.evaluations["step"], run.evaluations["mean_return"]))
        best = float(max(run.evaluations["mean_return"]))
        print(f"seed {seed}: best evaluation {best:.1f} by step {run.step:,} in {time.perf_counter() - started:.1f}s ({curve})")
        passed += best >= threshold
        if passed >= needed:
            return True
    return False
