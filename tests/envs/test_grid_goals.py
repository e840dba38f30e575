"""GridGoals (rlsuite/grid_goals_v0) against dynamics, rewards and observations worked out by hand.

A 5x5 grid, cells numbered row * 5 + col (25 cells; 25 means "gone home"). Goals: agent_0 (4, 4),
agent_1 (0, 0), agent_2 (0, 4), agent_3 (4, 0). Actions: 0 stay, 1 up, 2 right, 3 down, 4 left.
"""

import numpy as np
import pytest

from rlsuite.envs.grid_goals import GridGoals, parallel_env

STAY, UP, RIGHT, DOWN, LEFT = range(5)


def placed(*positions, num_agents=None, **kwargs):
    """A reset env with its agents put on the given (row, col) cells."""
    env = GridGoals(num_agents=num_agents or len(positions), **kwargs)
    env.reset(seed=0)
    env.positions = np.array(positions, dtype=np.int64)
    return env


def act(env, *actions):
    """Step with actions for agent_0, agent_1, ... (only those still on)."""
    return env.step({f"agent_{i}": a for i, a in enumerate(actions) if f"agent_{i}" in env.agents})


def where(env):
    return [tuple(int(x) for x in p) for p in env.positions]


@pytest.mark.parametrize("action, end", [(STAY, (2, 2)), (UP, (1, 2)), (RIGHT, (2, 3)), (DOWN, (3, 2)), (LEFT, (2, 1))])
def test_moves(action, end):
    env = placed((2, 2), (0, 2))
    act(env, action, STAY)
    assert where(env) == [end, (0, 2)]


def test_walls_clip():
    env = placed((0, 2), (2, 4))
    act(env, UP, RIGHT)
    assert where(env) == [(0, 2), (2, 4)]
    env = placed((4, 1), (1, 0))
    act(env, DOWN, LEFT)
    assert where(env) == [(4, 1), (1, 0)]


@pytest.mark.parametrize("first, second", [(RIGHT, LEFT), (DOWN, UP)])
def test_two_agents_aiming_at_the_same_cell_both_stay(first, second):
    env = placed((2, 1), (2, 3)) if first == RIGHT else placed((1, 2), (3, 2))
    before = where(env)
    act(env, first, second)  # both aim at (2, 2)
    assert where(env) == before


def test_agents_block_each_other():
    env = placed((2, 1), (2, 2))  # a swap: both stay
    act(env, RIGHT, LEFT)
    assert where(env) == [(2, 1), (2, 2)]
    env = placed((2, 1), (2, 2))  # into the cell of an agent that stays: blocked
    act(env, RIGHT, STAY)
    assert where(env) == [(2, 1), (2, 2)]
    env = placed((2, 1), (2, 2))  # following an agent that moves away is fine
    act(env, RIGHT, RIGHT)
    assert where(env) == [(2, 2), (2, 3)]
    env = placed((2, 1), (2, 2))  # into a wall-clipped (staying) agent's cell: blocked
    env.positions = np.array([(0, 1), (0, 2)])
    act(env, RIGHT, UP)
    assert where(env) == [(0, 1), (0, 2)]
    env = placed((2, 1), (2, 2), (2, 3))  # a chain behind a staying agent: blocked all the way back
    act(env, RIGHT, RIGHT, STAY)
    assert where(env) == [(2, 1), (2, 2), (2, 3)]
    env = placed((1, 1), (3, 1))  # moves that pass by each other: both go
    act(env, RIGHT, RIGHT)
    assert where(env) == [(1, 2), (3, 2)]


def test_random_play_never_shares_a_cell_or_swaps():
    env = GridGoals(size=3, num_agents=4, max_cycles=400)
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(400):
        if not env.agents:
            env.reset()
        on = [env.possible_agents.index(a) for a in env.agents]
        before = env.positions.copy()
        env.step({a: int(rng.integers(5)) for a in env.agents})
        cells = [tuple(env.positions[i]) for i in on if not env.home[i]]
        assert len(cells) == len(set(cells))
        for i in on:
            assert np.abs(env.positions[i] - before[i]).sum() <= 1
            for j in on:
                assert i == j or not ((env.positions[i] == before[j]).all() and (env.positions[j] == before[i]).all())


def test_arrival_terminates_only_that_agent_and_pays_the_team_cost():
    env = placed((4, 3), (2, 2))
    obs, rewards, terminated, truncated, infos = act(env, RIGHT, STAY)
    assert where(env)[0] == (4, 4) and env.home.tolist() == [True, False]
    # one agent still out after the step: -0.1 each, +1 for the arrival
    assert rewards == pytest.approx({"agent_0": 0.9, "agent_1": -0.1})
    assert terminated == {"agent_0": True, "agent_1": False} and truncated == {"agent_0": False, "agent_1": False}
    assert env.agents == ["agent_1"] and set(infos) == {"agent_0", "agent_1"}
    assert obs == {"agent_0": 24 * 26 + 12, "agent_1": 12 * 26 + 25}  # agent_0 already counts as home in agent_1's view
    # only agent_1 acts now; agent_0's goal cell no longer blocks anyone
    env.positions[1] = (4, 3)
    obs, rewards, terminated, truncated, _ = act(env, STAY, RIGHT)
    assert where(env)[1] == (4, 4)
    assert set(obs) == set(rewards) == set(terminated) == set(truncated) == {"agent_1"}
    assert rewards["agent_1"] == pytest.approx(-0.1)  # agent_0 is home: only agent_1 still counts
    assert env.agents == ["agent_1"] and obs == {"agent_1": 24 * 26 + 25}
    env.positions[1] = (0, 1)
    obs, rewards, terminated, _, _ = act(env, STAY, LEFT)
    assert rewards == pytest.approx({"agent_1": 1.0}) and terminated == {"agent_1": True} and env.agents == []


def test_step_cost_counts_every_agent_still_out():
    env = placed((2, 2), (2, 0), (2, 4), num_agents=3)
    _, rewards, terminated, truncated, _ = act(env, STAY, STAY, STAY)
    assert rewards == pytest.approx({"agent_0": -0.3, "agent_1": -0.3, "agent_2": -0.3})
    assert not any(terminated.values()) and not any(truncated.values()) and env.agents == ["agent_0", "agent_1", "agent_2"]
    env.positions = np.array([(4, 3), (0, 1), (2, 4)])
    _, rewards, terminated, _, _ = act(env, RIGHT, LEFT, STAY)  # two arrive at once: one agent still out
    assert rewards == pytest.approx({"agent_0": 0.9, "agent_1": 0.9, "agent_2": -0.1})
    assert terminated == {"agent_0": True, "agent_1": True, "agent_2": False} and env.agents == ["agent_2"]


def test_truncation_at_max_cycles():
    env = placed((2, 2), (1, 1), max_cycles=3)
    for t in range(1, 4):
        _, rewards, terminated, truncated, _ = act(env, STAY, STAY)
        assert rewards == pytest.approx({"agent_0": -0.2, "agent_1": -0.2})
        assert terminated == {"agent_0": False, "agent_1": False}
        assert truncated == {"agent_0": t == 3, "agent_1": t == 3}
    assert env.agents == [] and env.steps == 3
    # arriving on the last step terminates (not truncates) that agent
    env = placed((4, 3), (1, 1), max_cycles=1)
    _, rewards, terminated, truncated, _ = act(env, RIGHT, STAY)
    assert terminated == {"agent_0": True, "agent_1": False} and truncated == {"agent_0": False, "agent_1": True}
    assert rewards == pytest.approx({"agent_0": 0.9, "agent_1": -0.1})


def test_observation_encoding_and_state():
    env = placed((1, 2), (3, 0), (0, 3), num_agents=3)
    assert env.observation_space("agent_0").n == 25 * 26 * 26 and env.action_space("agent_2").n == 5
    c0, c1, c2 = 7, 15, 3
    assert env._observations() == {"agent_0": (c0 * 26 + c1) * 26 + c2, "agent_1": (c1 * 26 + c0) * 26 + c2,
                                   "agent_2": (c2 * 26 + c0) * 26 + c1}
    state = env.state()
    assert state.shape == (3 * 26,) and state.dtype == np.float32 and state.sum() == 3
    assert np.flatnonzero(state).tolist() == [c0, 26 + c1, 52 + c2]
    env.positions[1] = (0, 1)
    obs, *_ = act(env, STAY, LEFT, STAY)  # agent_1 arrives at (0, 0)
    assert obs["agent_0"] == (c0 * 26 + 25) * 26 + c2 and obs["agent_2"] == (c2 * 26 + c0) * 26 + 25
    assert obs["agent_1"] == (0 * 26 + c0) * 26 + c2  # own cell is the goal it reached
    assert np.flatnonzero(env.state()).tolist() == [c0, 26 + 25, 52 + c2]


def test_reset_is_seeded_and_starts_off_the_goals():
    env = GridGoals(num_agents=4)
    obs, infos = env.reset(seed=3)
    first = where(env)
    assert env.agents == env.possible_agents == ["agent_0", "agent_1", "agent_2", "agent_3"] and set(infos) == set(obs)
    assert len(set(first)) == 4 and not set(first) & {(4, 4), (0, 0), (0, 4), (4, 0)}
    assert env.reset(seed=3)[0] == obs and where(env) == first
    assert len({tuple(where(env)) for _ in range(10) if env.reset()}) > 1  # unseeded resets move on


def test_bad_settings():
    with pytest.raises(ValueError, match="num_agents must be 2, 3 or 4"):
        GridGoals(num_agents=1)
    with pytest.raises(ValueError, match="num_agents must be 2, 3 or 4"):
        GridGoals(num_agents=5)
    with pytest.raises(ValueError, match="size must be >= 3"):
        GridGoals(size=2)


def test_renders():
    env = placed((1, 2), (3, 0), render_mode="ansi")
    assert env.render() == "b....\n..A..\n.....\nB....\n....a"
    env = placed((1, 2), (3, 0), render_mode="rgb_array")
    image = env.render()
    assert image.shape == (160, 160, 3) and image.dtype == np.uint8
    assert image[1 * 32 + 16, 2 * 32 + 16].tolist() == [220, 60, 60]  # agent_0's colour on its cell
    assert image[3 * 32 + 16, 0 * 32 + 16].tolist() == [60, 110, 220]
    assert image[2 * 32 + 16, 2 * 32 + 16].tolist() == [245, 245, 245]  # an empty cell
    assert GridGoals().render() is None


@pytest.mark.parametrize("num_agents", [2, 3, 4])
def test_pettingzoo_parallel_api(num_agents):
    test = pytest.importorskip("pettingzoo.test")
    test.parallel_api_test(parallel_env(num_agents=num_agents), num_cycles=200)
    test.parallel_seed_test(lambda: parallel_env(num_agents=num_agents))


@pytest.mark.parametrize("name", ["simple_spread_v3", "simple_tag_v3"])
def test_mpe2_passes_the_parallel_api_test(name):
    pytest.importorskip("mpe2")
    test = pytest.importorskip("pettingzoo.test")
    import importlib

    test.parallel_api_test(importlib.import_module(f"mpe2.{name}").parallel_env(), num_cycles=200)
