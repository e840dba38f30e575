from rlsuite.core.seeding import derive_seed


def test_derived_seeds_are_deterministic_and_far_apart():
    assert derive_seed(1, "train-envs") == derive_seed(1, "train-envs")
    seeds = {derive_seed(s, "train-envs") for s in range(100)} | {derive_seed(s, "eval", k) for s in range(10) for k in range(10)}
    assert len(seeds) == 200
    # Vector envs seed sub-env i with seed + i: derived seeds of nearby runs must not overlap that way.
    ordered = sorted(seeds)
    assert min(b - a for a, b in zip(ordered, ordered[1:])) > 64
    assert all(0 <= s < 2**31 for s in seeds)
