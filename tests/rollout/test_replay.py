"""Exact-answer tests for rlsuite.rollout.replay.

Every stored observation encodes where it came from (obs = [t, env], t the global step), so a
sampled batch says which window it started at; each field is then compared with a table
computed by hand. gamma = 0.5 keeps the hand arithmetic exact in float32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rlsuite.rollout.replay import ReplayBatch, ReplayBuffer


def make_buffer(capacity, num_envs=1, **kw):
    return ReplayBuffer(capacity, num_envs, obs_shape=(2,), action_shape=(), **kw)


def add_step(buf, t, rewards, terminated=None, truncated=None, valid=None):
    """Vector step t: obs = [t, env], next_obs = [100 + t, env] (the final obs when the step ends
    an episode), action = 10 t + env."""
    n = buf.num_envs
    env = np.arange(n)
    buf.add(
        obs=np.stack([np.full(n, t), env], axis=1).astype(np.float32),
        actions=10 * t + env,
        rewards=np.asarray(rewards, dtype=np.float32),
        next_obs=np.stack([np.full(n, 100 + t), env], axis=1).astype(np.float32),
        terminated=np.zeros(n, bool) if terminated is None else np.asarray(terminated),
        truncated=np.zeros(n, bool) if truncated is None else np.asarray(truncated),
        valid=np.ones(n, bool) if valid is None else np.asarray(valid),
    )


def starts(batch):
    return [(int(t), int(e)) for t, e in batch.obs]


def check_windows(batch, expected):
    """expected: {(t, env): (returns, m, next_t, discount)}; every sample must match its start."""
    for b, key in enumerate(starts(batch)):
        assert key in expected, f"sampled a start that must never be sampled: {key}"
        ret, m, next_t, discount = expected[key]
        t, env = key
        assert batch.actions[b] == 10 * t + env
        assert batch.returns[b] == ret, (key, batch.returns[b], ret)
        assert batch.n_steps[b] == m, (key, batch.n_steps[b], m)
        assert tuple(batch.next_obs[b]) == (100 + next_t, env), (key, batch.next_obs[b])
        assert batch.discounts[b] == discount, (key, batch.discounts[b], discount)
    # the batch is large enough that every allowed start shows up
    assert set(starts(batch)) == set(expected)


# --------------------------------------------------------------------------------------------
# ring storage and wrap-around
# --------------------------------------------------------------------------------------------


def test_wrap_around_overwrites_oldest():
    buf = make_buffer(capacity=4)
    for t in range(3):
        add_step(buf, t, rewards=[t + 1.0])
    assert len(buf) == 3 and buf.pos == 3 and not buf.full
    for t in range(3, 6):
        add_step(buf, t, rewards=[t + 1.0])
    # rows hold t = [4, 5, 2, 3]; t = 0 and 1 were overwritten
    assert len(buf) == 4 and buf.pos == 2 and buf.full
    np.testing.assert_array_equal(buf.obs[:, 0, 0], [4, 5, 2, 3])
    batch = buf.sample(500, np.random.default_rng(0), n_step=1, gamma=0.5)
    # one step: returns = r_t = t + 1, next_obs = next_obs_t, discount = gamma = 0.5
    check_windows(batch, {(t, 0): (t + 1.0, 1, t, 0.5) for t in (2, 3, 4, 5)})


def test_len_counts_only_valid_and_follows_overwrites():
    buf = make_buffer(capacity=6, num_envs=2)  # 3 rows
    add_step(buf, 0, [0, 0], valid=[True, False])
    add_step(buf, 1, [0, 0], valid=[False, False])
    add_step(buf, 2, [0, 0], valid=[True, True])
    assert len(buf) == 3
    add_step(buf, 3, [0, 0], valid=[True, True])  # overwrites row t=0 (1 valid) with 2 valid
    assert len(buf) == 4
    add_step(buf, 4, [0, 0], valid=[False, True])  # overwrites t=1 (0 valid) with 1 valid
    assert len(buf) == 5


def test_capacity_rounds_down_to_whole_rows():
    buf = ReplayBuffer(7, 3, obs_shape=(4,), action_shape=(2,), action_dtype=np.float32)
    assert buf.capacity == 6 and buf.obs.shape == (2, 3, 4) and buf.actions.shape == (2, 3, 2)
    assert buf.actions.dtype == np.float32 and buf.terminated.dtype == bool
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(2, 3, obs_shape=(4,), action_shape=())


def test_add_rejects_wrong_shapes():
    buf = make_buffer(capacity=4, num_envs=2)
    good = dict(
        obs=np.zeros((2, 2)), actions=np.zeros(2, int), rewards=np.zeros(2), next_obs=np.zeros((2, 2)),
        terminated=np.zeros(2, bool), truncated=np.zeros(2, bool), valid=np.ones(2, bool),
    )
    buf.add(**good)
    for name, bad in [("rewards", 0.0), ("obs", np.zeros((1, 2))), ("valid", np.ones(3, bool)), ("next_obs", np.zeros(2))]:
        with pytest.raises(ValueError, match=name):
            buf.add(**dict(good, **{name: bad}))
    assert len(buf) == 2  # the rejected adds wrote nothing


# --------------------------------------------------------------------------------------------
# validity
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("valid_fraction", [0.03, 0.9])
def test_invalid_never_sampled_and_valid_sampled_uniformly(valid_fraction):
    # 0.03 mostly exercises the fallback after the rejection rounds, 0.9 the rejection alone.
    rng = np.random.default_rng(1)
    buf = make_buffer(capacity=400, num_envs=2)
    valid = rng.random((200, 2)) < valid_fraction
    valid[0, 0] = True
    for t in range(200):
        add_step(buf, t, rewards=[0, 0], valid=valid[t])
    allowed = {(t, e) for t, e in zip(*np.nonzero(valid))}
    assert len(buf) == len(allowed)
    counts = dict.fromkeys(allowed, 0)
    for _ in range(50):
        for key in starts(buf.sample(256, rng)):
            counts[key] += 1  # KeyError if an invalid start was drawn
    expected = 50 * 256 / len(allowed)
    # a uniform draw puts each count within a few standard deviations (sqrt(expected)) of the mean
    assert all(abs(c - expected) < 5 * expected**0.5 + 1 for c in counts.values()), counts


def test_sample_without_valid_transitions_raises():
    buf = make_buffer(capacity=4)
    with pytest.raises(ValueError, match="no valid transition"):
        buf.sample(8, np.random.default_rng(0))
    add_step(buf, 0, [1.0], valid=[False])
    with pytest.raises(ValueError, match="no valid transition"):
        buf.sample(8, np.random.default_rng(0))


# --------------------------------------------------------------------------------------------
# n-step windows, hand-computed (gamma = 0.5)
# --------------------------------------------------------------------------------------------

# One env, ten steps:
#   t:          0  1  2     3      4  5     6      7  8  9
#   reward:     1  2  3   100      4  5   100      6  7  8
#   ends:             term  (reset)   trunc (reset)          t=9 is the newest step
# The reset transitions (t=3, t=6) are invalid and reward 100, so any window that ran past an
# episode's end would show it.
EPISODES = dict(
    rewards=[1, 2, 3, 100, 4, 5, 100, 6, 7, 8],
    terminated={2},
    truncated={5},
    invalid={3, 6},
)


def episodes_buffer():
    buf = make_buffer(capacity=16)
    for t, r in enumerate(EPISODES["rewards"]):
        add_step(buf, t, [r], [t in EPISODES["terminated"]], [t in EPISODES["truncated"]], [t not in EPISODES["invalid"]])
    return buf


def test_one_step_windows():
    batch = episodes_buffer().sample(2000, np.random.default_rng(2), n_step=1, gamma=0.5)
    # returns = r_t, next_obs = next_obs_t, discount = 0.5 * (1 - terminated_t)
    expected = {(t, 0): (float(r), 1, t, 0.5) for t, r in enumerate(EPISODES["rewards"]) if t not in EPISODES["invalid"]}
    expected[(2, 0)] = (3.0, 1, 2, 0.0)  # terminated: no bootstrap
    expected[(5, 0)] = (5.0, 1, 5, 0.5)  # truncated: bootstraps from the final obs
    check_windows(batch, expected)


def test_n_step_windows_hand_computed():
    batch = episodes_buffer().sample(3000, np.random.default_rng(3), n_step=3, gamma=0.5)
    check_windows(
        batch,
        {
            # cut by termination at t=2: discount 0 whatever m is
            (0, 0): (1 + 0.5 * 2 + 0.25 * 3, 3, 2, 0.0),  # 2.75
            (1, 0): (2 + 0.5 * 3, 2, 2, 0.0),  # 3.5
            (2, 0): (3.0, 1, 2, 0.0),
            # cut by truncation at t=5: bootstraps from the final obs (next_obs_5) with gamma^m
            (4, 0): (4 + 0.5 * 5, 2, 5, 0.25),  # 6.5
            (5, 0): (5.0, 1, 5, 0.5),
            # full window t=7..9, then cut by the newest step t=9
            (7, 0): (6 + 0.5 * 7 + 0.25 * 8, 3, 9, 0.125),  # 11.5
            (8, 0): (7 + 0.5 * 8, 2, 9, 0.25),  # 11
            (9, 0): (8.0, 1, 9, 0.5),
        },
    )


def test_long_window_still_stops_at_episode_end():
    batch = episodes_buffer().sample(3000, np.random.default_rng(4), n_step=10, gamma=0.5)
    check_windows(
        batch,
        {
            (0, 0): (2.75, 3, 2, 0.0),
            (1, 0): (3.5, 2, 2, 0.0),
            (2, 0): (3.0, 1, 2, 0.0),
            (4, 0): (6.5, 2, 5, 0.25),
            (5, 0): (5.0, 1, 5, 0.5),
            (7, 0): (11.5, 3, 9, 0.125),
            (8, 0): (11.0, 2, 9, 0.25),
            (9, 0): (8.0, 1, 9, 0.5),
        },
    )


def test_truncation_and_termination_are_not_interchangeable():
    # The same data with the t=5 truncation turned into a termination: its windows lose their
    # bootstrap (discount 0.25 / 0.5 -> 0), nothing else changes.
    buf = make_buffer(capacity=16)
    for t, r in enumerate(EPISODES["rewards"]):
        add_step(buf, t, [r], [t in {2, 5}], [False], [t not in EPISODES["invalid"]])
    batch = buf.sample(3000, np.random.default_rng(5), n_step=3, gamma=0.5)
    check_windows(
        batch,
        {
            (0, 0): (2.75, 3, 2, 0.0),
            (1, 0): (3.5, 2, 2, 0.0),
            (2, 0): (3.0, 1, 2, 0.0),
            (4, 0): (6.5, 2, 5, 0.0),
            (5, 0): (5.0, 1, 5, 0.0),
            (7, 0): (11.5, 3, 9, 0.125),
            (8, 0): (11.0, 2, 9, 0.25),
            (9, 0): (8.0, 1, 9, 0.5),
        },
    )


def test_window_does_not_cross_write_position_after_wrap():
    buf = make_buffer(capacity=4)
    for t in range(6):
        add_step(buf, t, rewards=[t + 1.0])
    # rows: [t=4, t=5, t=2, t=3], write position = row 2. Chronologically t = 2, 3, 4, 5; the
    # window from t=3 wraps from the last row to row 0, the one from t=5 must stop at t=5 (row 1)
    # and not read row 2 (t=2, reward 3).
    batch = buf.sample(2000, np.random.default_rng(6), n_step=3, gamma=0.5)
    check_windows(
        batch,
        {
            (2, 0): (3 + 0.5 * 4 + 0.25 * 5, 3, 4, 0.125),  # 6.25
            (3, 0): (4 + 0.5 * 5 + 0.25 * 6, 3, 5, 0.125),  # 8
            (4, 0): (5 + 0.5 * 6, 2, 5, 0.25),  # 8, cut by the newest step
            (5, 0): (6.0, 1, 5, 0.5),
        },
    )


def test_two_envs_windows_never_mix():
    # env 0: terminates at t=1, t=2 is its reset (invalid, reward 50); env 1: one long episode.
    buf = make_buffer(capacity=8, num_envs=2)
    add_step(buf, 0, [1, 10])
    add_step(buf, 1, [2, 20], terminated=[True, False])
    add_step(buf, 2, [50, 30], valid=[False, True])
    add_step(buf, 3, [3, 40])
    batch = buf.sample(3000, np.random.default_rng(7), n_step=2, gamma=0.5)
    check_windows(
        batch,
        {
            (0, 0): (1 + 0.5 * 2, 2, 1, 0.0),  # 2, terminated
            (1, 0): (2.0, 1, 1, 0.0),
            (3, 0): (3.0, 1, 3, 0.5),  # newest step
            (0, 1): (10 + 0.5 * 20, 2, 1, 0.25),  # 20
            (1, 1): (20 + 0.5 * 30, 2, 2, 0.25),  # 35
            (2, 1): (30 + 0.5 * 40, 2, 3, 0.25),  # 50
            (3, 1): (40.0, 1, 3, 0.5),
        },
    )


def reference_window(history, t, env, n_step, gamma):
    """Walk env's own chronological history from step t; history[t] = (r, terminated, truncated)."""
    ret, m = 0.0, 0
    while m < n_step and t + m < len(history):
        r, term, trunc = history[t + m][env]
        ret += gamma**m * r
        m += 1
        if term or trunc:
            break
    term = history[t + m - 1][env][1]
    return ret, m, t + m - 1, gamma**m * (1.0 - term)


@pytest.mark.parametrize("n_step", [1, 3, 5])
def test_matches_reference_on_random_stream_with_wrap(n_step):
    rng = np.random.default_rng(n_step)
    num_envs, steps, gamma = 3, 50, 0.9
    buf = make_buffer(capacity=60, num_envs=num_envs)  # 20 rows: 30 of the 50 steps overwritten
    history = []
    prev_done = np.zeros(num_envs, bool)
    for t in range(steps):
        u = rng.random(num_envs)
        rewards = rng.normal(size=num_envs).astype(np.float32)
        terminated, truncated = u < 0.1, (u >= 0.1) & (u < 0.2)
        add_step(buf, t, rewards, terminated, truncated, valid=~prev_done)
        history.append([(float(r), bool(a), bool(b)) for r, a, b in zip(rewards, terminated, truncated)])
        prev_done = terminated | truncated
    batch = buf.sample(4096, rng, n_step=n_step, gamma=gamma)
    for b, (t, env) in enumerate(starts(batch)):
        assert t >= steps - 20 and (t == 0 or not (history[t - 1][env][1] or history[t - 1][env][2]))
        ret, m, next_t, discount = reference_window(history, t, env, n_step, gamma)
        assert batch.n_steps[b] == m
        assert batch.next_obs[b, 0] == 100 + next_t
        np.testing.assert_allclose(batch.returns[b], ret, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(batch.discounts[b], discount, rtol=1e-6, atol=0)


def test_sample_rejects_bad_n_step():
    with pytest.raises(ValueError, match="n_step"):
        episodes_buffer().sample(4, np.random.default_rng(0), n_step=0)


# --------------------------------------------------------------------------------------------
# batch conversion
# --------------------------------------------------------------------------------------------


def test_to_torch_dtypes_and_shapes():
    buf = ReplayBuffer(8, 2, obs_shape=(3, 2), action_shape=(), obs_dtype=np.uint8)
    for t in range(3):
        buf.add(
            np.full((2, 3, 2), 200 + t, np.uint8), np.array([t, 7]), np.ones(2), np.zeros((2, 3, 2), np.uint8),
            np.zeros(2, bool), np.zeros(2, bool), np.ones(2, bool),
        )
    batch = buf.sample(5, np.random.default_rng(0), n_step=2)
    assert batch.obs.dtype == np.uint8 and batch.actions.dtype == np.int64
    tb = batch.to_torch("cpu")
    assert isinstance(tb, ReplayBatch)
    assert tb.obs.shape == (5, 3, 2) and tb.obs.dtype == torch.float32
    assert tb.next_obs.shape == (5, 3, 2) and tb.next_obs.dtype == torch.float32
    assert tb.actions.shape == (5,) and tb.actions.dtype == torch.int64
    for name in ("returns", "discounts", "n_steps"):
        assert getattr(tb, name).shape == (5,) and getattr(tb, name).dtype == torch.float32
    np.testing.assert_array_equal(tb.obs.numpy(), batch.obs.astype(np.float32))  # 200+ survives: no wrap to int8
    np.testing.assert_array_equal(tb.actions.numpy(), batch.actions)
    np.testing.assert_array_equal(tb.discounts.numpy(), batch.discounts)


# --------------------------------------------------------------------------------------------
# save / load
# --------------------------------------------------------------------------------------------


def random_buffer(steps, capacity=12, num_envs=2, seed=0):
    rng = np.random.default_rng(seed)
    buf = make_buffer(capacity, num_envs)
    for t in range(steps):
        u = rng.random(num_envs)
        add_step(buf, t, rng.normal(size=num_envs), u < 0.2, (u >= 0.2) & (u < 0.35), valid=rng.random(num_envs) < 0.8)
    return buf


def assert_same_buffer(a, b, rows):
    for name in ("obs", "actions", "rewards", "next_obs", "terminated", "truncated", "valid"):
        x, y = getattr(a, name)[:rows], getattr(b, name)[:rows]
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)
    assert (a.pos, a.full, len(a)) == (b.pos, b.full, len(b))


@pytest.mark.parametrize("steps", [4, 13])  # partly filled; wrapped (6 rows, 13 steps)
def test_save_load_round_trip(tmp_path: Path, steps):
    buf = random_buffer(steps)
    buf.save_to(tmp_path / "replay")
    rows = min(steps, buf.rows)
    assert np.load(tmp_path / "replay" / "obs.npy").shape == (rows, 2, 2)  # only the filled rows
    restored = random_buffer(3, seed=99)  # different contents, overwritten by the load
    restored.load_from(tmp_path / "replay")
    assert_same_buffer(buf, restored, rows)
    for n_step in (1, 3):
        a = buf.sample(64, np.random.default_rng(11), n_step=n_step, gamma=0.9)
        b = restored.sample(64, np.random.default_rng(11), n_step=n_step, gamma=0.9)
        for name in ("obs", "actions", "returns", "next_obs", "discounts", "n_steps"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


@pytest.mark.parametrize(
    "other",
    [
        lambda: make_buffer(capacity=14, num_envs=2),  # other capacity
        lambda: make_buffer(capacity=12, num_envs=3),  # other num_envs
        lambda: ReplayBuffer(12, 2, obs_shape=(3,), action_shape=()),  # other obs shape
        lambda: ReplayBuffer(12, 2, obs_shape=(2,), action_shape=(), obs_dtype=np.float64),  # other dtype
        lambda: ReplayBuffer(12, 2, obs_shape=(2,), action_shape=(1,)),  # other action shape
    ],
)
def test_load_into_mismatched_buffer_raises(tmp_path: Path, other):
    random_buffer(9).save_to(tmp_path)
    target = other()
    before = {name: getattr(target, name).copy() for name in ("obs", "actions", "valid")}
    with pytest.raises(ValueError, match="saved"):
        target.load_from(tmp_path)
    for name, array in before.items():  # nothing was copied before the check failed
        np.testing.assert_array_equal(getattr(target, name), array)
    assert (target.pos, target.full, len(target)) == (0, False, 0)
