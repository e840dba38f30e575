import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rlsuite.envs import gridworlds
from rlsuite.envs.gridworlds import DOWN, LEFT, RIGHT, UP


@pytest.mark.parametrize("env_id", list(gridworlds.ENV_IDS))
def test_registered_envs_pass_the_gymnasium_checker(env_id):
    env = gym.make(env_id, render_mode="ansi")
    check_env(env.unwrapped, skip_render_check=False)
    env.reset(seed=0)
    assert isinstance(env.render(), str)


def test_windy_gridworld_matches_example_6_5():
    env = gym.make("WindyGridWorld-v0").unwrapped
    start, goal = 3 * 10 + 0, 3 * 10 + 7
    assert env.reset(seed=0)[0] == start
    # Column 3 has wind 1: moving right from (3,3) lands on (2,4).
    assert env.P[33][RIGHT] == [(1.0, 24, -1.0, False)]
    # Column 6 has wind 2, clipped at the top row: up from (1,6) ends at (0,6).
    assert env.P[16][UP] == [(1.0, 6, -1.0, False)]
    # The book's optimal 15-step path: right x9 (blown up to the top), down x4, left x2.
    s, total = start, 0.0
    for a in [RIGHT] * 9 + [DOWN] * 4 + [LEFT] * 2:
        s, r, terminated, _, _ = env.step(a)
        total += r
    assert s == goal and terminated and total == -15.0


def test_windy_gridworld_variants():
    king = gym.make("WindyGridWorld-v0", king_moves=True, stay=True).unwrapped
    assert king.action_space.n == 9
    assert king.P[0][8] == [(1.0, 0, -1.0, False)]  # stay in the windless corner
    stochastic = gym.make("WindyGridWorld-v0", stochastic_wind=True).unwrapped
    outcomes = sorted(s2 for _, s2, _, _ in stochastic.P[3 * 10 + 6][RIGHT])  # wind 2 at column 6
    assert outcomes == [7, 17, 27]  # pushed up 3, 2 or 1 rows from (3,7)


def test_five_by_five_teleports_and_edges():
    env = gym.make("GridWorld5x5-v0").unwrapped
    for a in range(4):
        assert env.P[1][a] == [(1.0, 21, 10.0, False)]
        assert env.P[3][a] == [(1.0, 13, 5.0, False)]
    assert env.P[0][UP] == [(1.0, 0, -1.0, False)]
    assert env.P[6][DOWN] == [(1.0, 11, 0.0, False)]


def test_dyna_maze_walls_and_goal():
    env = gym.make("DynaMaze-v0").unwrapped
    assert env.reset(seed=0)[0] == 2 * 9
    assert env.P[2 * 9 + 1][RIGHT] == [(1.0, 2 * 9 + 1, 0.0, False)]  # wall at (2,2)
    assert env.P[1 * 9 + 8][UP] == [(1.0, 8, 1.0, True)]
    assert len(env.walls) == 7


def test_four_by_four_terminals():
    env = gym.make("GridWorld4x4-v0").unwrapped
    assert env.P[1][LEFT] == [(1.0, 0, -1.0, True)]
    assert env.P[0][RIGHT] == [(1.0, 0, 0.0, True)]
    assert env.P[5][UP] == [(1.0, 1, -1.0, False)]


def test_greedy_path_and_plot(tmp_path):
    states, picture = gridworlds.greedy_path("WindyGridWorld-v0", lambda s: RIGHT, max_steps=5)
    assert states == [30, 31, 32, 33, 24, 15]
    assert picture.splitlines()[3].startswith("> > > >")
    states, text = gridworlds.greedy_path("Taxi-v4", lambda s: 0, max_steps=3)
    assert len(states) == 4 and "->" in text
    out = gridworlds.plot_values(np.arange(16.0), (4, 4), np.zeros(16, int), tmp_path / "v.png")
    assert out.is_file() and out.stat().st_size > 1000
