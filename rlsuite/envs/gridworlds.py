"""The gridworlds of Sutton & Barto (2nd ed.) as Gymnasium environments that also expose their model.

Each world is a `GridWorldEnv`: observations are state indices `row * ncols + col`
(`Discrete(nrows * ncols)`), actions are `Discrete(4)` = up, right, down, left (0..3) unless noted,
and the model is a toy-text style table `env.unwrapped.P[s][a] = [(prob, next_state, reward,
terminated), ...]`, so `rlsuite.envs.tabular.FiniteMDP.from_gymnasium(env)` works on it.
Terminal (and wall) states are absorbing: every action leads back with reward 0 and
`terminated=True`, the convention of Gymnasium's FrozenLake.

Importing this module registers the ids below (with `gymnasium.make` kwargs in brackets):

    GridWorld4x4-v0     Example 4.1 / Figure 4.1: 4x4, terminal corners, -1 per step, episodic
    GridWorld5x5-v0     Example 3.5 / Figure 3.2: A->A' +10, B->B' +5, -1 off the edge, continuing
    WindyGridWorld-v0   Example 6.5: 7x10 with upward wind [king_moves=False, stay=False, stochastic_wind=False]
    DynaMaze-v0         Figure 8.2: 6x9 maze, reward 1 at the goal, 0 otherwise (gamma 0.95 in the book)

Drawing helpers: `plot_values(V, shape, policy=None, path=...)` and
`greedy_path(env, act, max_steps=...) -> (states, ascii)`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

Transition = tuple[float, int, float, bool]

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3
MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))
"""(d_row, d_col) of up, right, down, left."""
KING_MOVES = MOVES + ((-1, 1), (1, 1), (1, -1), (-1, -1))
"""The four moves, then up-right, down-right, down-left, up-left (Exercise 6.9)."""
STAY = (0, 0)
FROZEN_LAKE_MOVES = ((0, -1), (1, 0), (0, 1), (-1, 0))
"""FrozenLake's action order: left, down, right, up (CliffWalking uses MOVES' order)."""
ARROWS = {(-1, 0): "^", (0, 1): ">", (1, 0): "v", (0, -1): "<", (-1, 1): "/", (1, 1): "\\", (1, -1): "/", (-1, -1): "\\", STAY: "o"}
"""ASCII character of each move, for renderings of paths."""


class GridWorldEnv(gym.Env):
    """A gridworld given by its model P, a start distribution and what to draw in each cell.

    Dynamics are sampled from P, so the environment and the model can never disagree.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        shape: tuple[int, int],
        P: dict[int, dict[int, list[Transition]]],
        initial_state_distribution: np.ndarray,
        *,
        moves: Sequence[tuple[int, int]] = MOVES,
        labels: dict[int, str] | None = None,
        walls: Sequence[int] = (),
        render_mode: str | None = None,
    ):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}.")
        self.shape = (int(shape[0]), int(shape[1]))
        self.P = P
        self.initial_state_distribution = np.asarray(initial_state_distribution, dtype=np.float64)
        self.labels = dict(labels or {})
        self.walls = frozenset(int(w) for w in walls)
        self.render_mode = render_mode
        self.observation_space = spaces.Discrete(self.shape[0] * self.shape[1])
        self.moves = tuple(tuple(m) for m in moves)
        """(d_row, d_col) each action aims for (before wind or walls); used for drawing."""
        self.action_space = spaces.Discrete(len(self.moves))
        self.s = 0
        self.last_action: int | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.s = int(self.np_random.choice(len(self.initial_state_distribution), p=self.initial_state_distribution))
        self.last_action = None
        return self.s, {"prob": 1.0}

    def step(self, action):
        transitions = self.P[self.s][int(action)]
        i = int(self.np_random.choice(len(transitions), p=[t[0] for t in transitions])) if len(transitions) > 1 else 0
        prob, s, r, terminated = transitions[i]
        self.s, self.last_action = int(s), int(action)
        return self.s, float(r), bool(terminated), False, {"prob": float(prob)}

    def render(self):
        if self.render_mode == "ansi":
            return self.ascii() + "\n"
        if self.render_mode == "rgb_array":
            return self.rgb_array()
        return None

    def ascii(self, marks: dict[int, str] | None = None) -> str:
        """The grid as text: '#' walls, labels (S, G, A, ...), '@' the agent, marks over labels."""
        rows = []
        for r in range(self.shape[0]):
            cells = []
            for c in range(self.shape[1]):
                s = r * self.shape[1] + c
                ch = "#" if s in self.walls else self.labels.get(s, ".")
                if marks and s in marks:
                    ch = marks[s]
                if marks is None and s == self.s:
                    ch = "@"
                cells.append(ch)
            rows.append(" ".join(cells))
        return "\n".join(rows)

    def rgb_array(self, cell: int = 16) -> np.ndarray:
        colours = {"wall": (60, 60, 60), "S": (120, 170, 255), "G": (120, 220, 120), "T": (120, 220, 120), "A": (255, 200, 120), "B": (255, 200, 120)}
        nrows, ncols = self.shape
        img = np.full((nrows * cell, ncols * cell, 3), 255, dtype=np.uint8)
        for s in range(nrows * ncols):
            r, c = divmod(s, ncols)
            key = "wall" if s in self.walls else self.labels.get(s, "")[:1]
            if key in colours:
                img[r * cell:(r + 1) * cell, c * cell:(c + 1) * cell] = colours[key]
        r, c = divmod(self.s, ncols)
        q = cell // 4
        img[r * cell + q:(r + 1) * cell - q, c * cell + q:(c + 1) * cell - q] = (220, 40, 40)
        img[::cell, :] = 200
        img[:, ::cell] = 200
        return img


def _index(shape: tuple[int, int], r: int, c: int) -> int:
    return r * shape[1] + c


def _clip(shape: tuple[int, int], r: int, c: int) -> tuple[int, int]:
    return min(max(r, 0), shape[0] - 1), min(max(c, 0), shape[1] - 1)


def _absorbing(s: int, n_actions: int) -> dict[int, list[Transition]]:
    return {a: [(1.0, s, 0.0, True)] for a in range(n_actions)}


def _one_hot(n: int, states: Sequence[int]) -> np.ndarray:
    isd = np.zeros(n)
    isd[list(states)] = 1.0 / len(states)
    return isd


def gridworld_4x4(render_mode: str | None = None) -> GridWorldEnv:
    """Example 4.1: terminal corners 0 and 15, every transition -1, moves off the grid stay put.

    Episodes start in a uniformly random non-terminal state (the book does not fix a start).
    """
    shape = (4, 4)
    terminals = (0, 15)
    P: dict[int, dict[int, list[Transition]]] = {}
    for s in range(16):
        if s in terminals:
            P[s] = _absorbing(s, 4)
            continue
        r, c = divmod(s, 4)
        P[s] = {}
        for a, (dr, dc) in enumerate(MOVES):
            s2 = _index(shape, *_clip(shape, r + dr, c + dc))
            P[s][a] = [(1.0, s2, -1.0, s2 in terminals)]
    isd = _one_hot(16, [s for s in range(16) if s not in terminals])
    return GridWorldEnv(shape, P, isd, labels={0: "T", 15: "T"}, render_mode=render_mode)


def gridworld_5x5(render_mode: str | None = None) -> GridWorldEnv:
    """Example 3.5: from A (0,1) every action jumps to A' (4,1) with +10, from B (0,3) to B' (2,3)
    with +5; a move off the grid leaves the state unchanged with -1; all else 0. Continuing task
    (never terminates; the registered id truncates at 100 steps). Starts uniformly at random."""
    shape = (5, 5)
    A, A2, B, B2 = _index(shape, 0, 1), _index(shape, 4, 1), _index(shape, 0, 3), _index(shape, 2, 3)
    P: dict[int, dict[int, list[Transition]]] = {}
    for s in range(25):
        r, c = divmod(s, 5)
        P[s] = {}
        for a, (dr, dc) in enumerate(MOVES):
            if s == A:
                P[s][a] = [(1.0, A2, 10.0, False)]
            elif s == B:
                P[s][a] = [(1.0, B2, 5.0, False)]
            elif not (0 <= r + dr < 5 and 0 <= c + dc < 5):
                P[s][a] = [(1.0, s, -1.0, False)]
            else:
                P[s][a] = [(1.0, _index(shape, r + dr, c + dc), 0.0, False)]
    labels = {A: "A", A2: "a", B: "B", B2: "b"}
    return GridWorldEnv(shape, P, np.full(25, 1 / 25), labels=labels, render_mode=render_mode)


WIND = (0, 0, 0, 1, 1, 1, 2, 2, 1, 0)
"""Upward wind strength per column of the windy gridworld (Example 6.5)."""


def windy_gridworld(king_moves: bool = False, stay: bool = False, stochastic_wind: bool = False, render_mode: str | None = None) -> GridWorldEnv:
    """Example 6.5: 7x10, start (3,0), goal (3,7), -1 per step until the goal.

    The wind of the column the agent moves FROM pushes it up that many cells; the grid clips moves.
    king_moves: 8 actions (Exercise 6.9: up, right, down, left, then the diagonals up-right,
    down-right, down-left, up-left); stay: one more action that does not move (wind still blows).
    stochastic_wind: in windy columns the push is the column's value +1, +0 or -1 with
    probability 1/3 each (Exercise 6.10).
    """
    shape = (7, 10)
    start, goal = _index(shape, 3, 0), _index(shape, 3, 7)
    moves = list(KING_MOVES if king_moves else MOVES) + ([STAY] if stay else [])
    n_actions = len(moves)
    P: dict[int, dict[int, list[Transition]]] = {}
    for s in range(70):
        if s == goal:
            P[s] = _absorbing(s, n_actions)
            continue
        r, c = divmod(s, 10)
        P[s] = {}
        for a, (dr, dc) in enumerate(moves):
            pushes = [WIND[c]] if not (stochastic_wind and WIND[c]) else [WIND[c] - 1, WIND[c], WIND[c] + 1]
            outcome: dict[int, float] = {}
            for push in pushes:
                s2 = _index(shape, *_clip(shape, r + dr - push, c + dc))
                outcome[s2] = outcome.get(s2, 0.0) + 1.0 / len(pushes)
            P[s][a] = [(p, s2, -1.0, s2 == goal) for s2, p in outcome.items()]
    return GridWorldEnv(shape, P, _one_hot(70, [start]), moves=moves, labels={start: "S", goal: "G"}, render_mode=render_mode)


DYNA_MAZE_WALLS = ((1, 2), (2, 2), (3, 2), (4, 5), (0, 7), (1, 7), (2, 7))
"""(row, col) of the wall cells of Figure 8.2's maze."""


def dyna_maze(render_mode: str | None = None) -> GridWorldEnv:
    """Figure 8.2: 6x9 maze, start (2,0), goal (0,8); reward 1 on reaching the goal, else 0.

    Moves into a wall or off the grid leave the state unchanged. Wall cells are unreachable and
    modelled as absorbing terminal states so that they do not count as non-terminating states.
    """
    shape = (6, 9)
    start, goal = _index(shape, 2, 0), _index(shape, 0, 8)
    walls = {_index(shape, r, c) for r, c in DYNA_MAZE_WALLS}
    P: dict[int, dict[int, list[Transition]]] = {}
    for s in range(54):
        if s == goal or s in walls:
            P[s] = _absorbing(s, 4)
            continue
        r, c = divmod(s, 9)
        P[s] = {}
        for a, (dr, dc) in enumerate(MOVES):
            s2 = _index(shape, *_clip(shape, r + dr, c + dc))
            if s2 in walls:
                s2 = s
            P[s][a] = [(1.0, s2, 1.0 if s2 == goal else 0.0, s2 == goal)]
    return GridWorldEnv(shape, P, _one_hot(54, [start]), labels={start: "S", goal: "G"}, walls=sorted(walls), render_mode=render_mode)


ENV_IDS = {
    "GridWorld4x4-v0": ("gridworld_4x4", 200),
    "GridWorld5x5-v0": ("gridworld_5x5", 100),
    "WindyGridWorld-v0": ("windy_gridworld", 10_000),
    "DynaMaze-v0": ("dyna_maze", 10_000),
}
"""Registered id -> (factory in this module, max_episode_steps)."""


def register() -> None:
    """Register the ids of ENV_IDS with Gymnasium (idempotent; done on import)."""
    for env_id, (factory, max_steps) in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=f"{__name__}:{factory}", max_episode_steps=max_steps)


register()


# --- drawing helpers -------------------------------------------------------------------------


def grid_shape(env: gym.Env) -> tuple[int, int] | None:
    """(rows, cols) of a grid-shaped toy-text or rlsuite env, or None (e.g. Taxi)."""
    u = env.unwrapped
    if isinstance(u, GridWorldEnv):
        return u.shape
    n = getattr(u.observation_space, "n", -1)
    if hasattr(u, "desc") and np.asarray(u.desc).size == n:  # FrozenLake (Taxi's desc is a picture)
        return tuple(np.asarray(u.desc).shape)  # type: ignore[return-value]
    shape = getattr(u, "shape", None)
    if shape is not None and len(shape) == 2 and int(np.prod(shape)) == n:
        return (int(shape[0]), int(shape[1]))
    return None


def move_table(env: gym.Env) -> tuple[tuple[int, int], ...]:
    """(d_row, d_col) of each action of a grid env: FrozenLake's order differs from the others'."""
    u = env.unwrapped
    if isinstance(u, GridWorldEnv):
        return u.moves
    return FROZEN_LAKE_MOVES if hasattr(u, "desc") else MOVES


def greedy_path(env: gym.Env | str, act: Callable[[int], int], max_steps: int = 100, seed: int = 0) -> tuple[list[int], str]:
    """Follow `act` (state -> action) from a reset of env for at most max_steps.

    Returns the visited states (the start state first) and an ASCII picture: the grid with each
    visited cell marked by the arrow of the action taken there ('*' where the path ends), or, for
    envs that are not grids, the state sequence as text. Works on the rlsuite gridworlds and on
    FrozenLake / CliffWalking; env may be a Gymnasium id.
    """
    if isinstance(env, str):
        env = gym.make(env)
    s, _ = env.reset(seed=seed)
    states, actions = [int(s)], []
    for _ in range(max_steps):
        a = int(act(int(s)))
        s, _, terminated, truncated, _ = env.step(a)
        actions.append(a)
        states.append(int(s))
        if terminated or truncated:
            break
    shape = grid_shape(env)
    if shape is None:
        return states, " -> ".join(map(str, states))
    u = env.unwrapped
    moves = move_table(env)
    marks = {s: ARROWS.get(moves[a], "?") if a < len(moves) else "?" for s, a in zip(states[:-1], actions)}
    marks[states[-1]] = "*"
    if isinstance(u, GridWorldEnv):
        picture = u.ascii(marks)
    else:
        desc = np.asarray(u.desc).astype(str) if hasattr(u, "desc") else np.full(shape, ".")
        rows = []
        for r in range(shape[0]):
            rows.append(" ".join(marks.get(r * shape[1] + c, desc[r, c]) for c in range(shape[1])))
        picture = "\n".join(rows)
    footer = f"\n{len(actions)} steps, {'reached a terminal state' if terminated else 'stopped (max_steps or time limit)'}" if actions else ""
    return states, picture + footer


def plot_values(
    V: np.ndarray,
    shape: tuple[int, int],
    policy: np.ndarray | None = None,
    path: str | Path = "values.png",
    *,
    title: str | None = None,
    walls: Sequence[int] = (),
    annotate: bool | None = None,
    moves: Sequence[tuple[int, int]] = KING_MOVES + (STAY,),
) -> Path:
    """Heatmap of V on the grid, with the greedy policy's arrows when `policy` (one action per
    state) is given; `moves[a]` is the (d_row, d_col) of action a (rlsuite order by default: up,
    right, down, left, then diagonals; FrozenLake uses FROZEN_LAKE_MOVES, see `move_table`). Saves a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    V = np.asarray(V, dtype=np.float64)
    nrows, ncols = shape
    if V.size != nrows * ncols:
        raise ValueError(f"V has {V.size} entries but shape {shape} has {nrows * ncols} cells.")
    grid = V.reshape(shape).copy()
    wall_mask = np.zeros(nrows * ncols, bool)
    wall_mask[list(walls)] = True
    grid = np.ma.masked_array(grid, wall_mask.reshape(shape))
    fig, ax = plt.subplots(figsize=(max(3.0, 0.6 * ncols + 1.5), max(2.5, 0.6 * nrows + 0.5)))
    im = ax.imshow(grid, cmap="viridis")
    fig.colorbar(im, ax=ax, shrink=0.8)
    if annotate is None:
        annotate = nrows * ncols <= 100
    for s in range(nrows * ncols):
        r, c = divmod(s, ncols)
        if wall_mask[s]:
            ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), 1, 1, color="0.3"))
            continue
        if annotate:
            ax.text(c, r + 0.3, f"{V[s]:.1f}", ha="center", va="center", fontsize=7, color="w")
        if policy is not None:
            a = int(np.asarray(policy).reshape(-1)[s])
            if a < len(moves) and tuple(moves[a]) != STAY:
                dr, dc = moves[a]
                ax.arrow(c - 0.2 * dc, r - 0.2 * dr - 0.05, 0.3 * dc, 0.3 * dr, head_width=0.12, length_includes_head=True, color="w")
    ax.set_xticks(range(ncols))
    ax.set_yticks(range(nrows))
    if title:
        ax.set_title(title)
    fig.tight_layout()
    from rlsuite.core.plotting import save_figure

    return save_figure(fig, path)
