"""GridGoals, rlsuite's built-in cooperative multi-agent task (`rlsuite/grid_goals_v0`).

Two to four agents on a small open grid each walk to their own corner. An agent that reaches
its goal leaves the grid (it terminates while the others go on); the episode ends when all are
home or after `max_cycles` steps. Agents block each other: two agents never share a cell or swap
places, so paths that cross must be taken in turns. The reward is the team's: every agent still
on the grid receives -0.1 for each agent not yet home after the step, and an agent gets +1 when it
arrives. A team that clears the grid fast scores highest; an agent that gets home early stops
paying, but its teammates' blocking still costs it until it leaves.

Observations are one integer per agent (`Discrete`): its own cell and the cells of the others
(`cells` meaning "gone home"), so tabular independent Q-learning can index a table by it; the
global `state()` is the one-hot position of every agent. Actions: stay, up, right, down, left.

It speaks the PettingZoo parallel API without importing PettingZoo (it needs no extra package),
and passes `pettingzoo.test.parallel_api_test`.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from gymnasium import spaces

MOVES = np.array([(0, 0), (-1, 0), (0, 1), (1, 0), (0, -1)])
"""(d_row, d_col) of stay, up, right, down, left."""
STEP_COST, ARRIVAL_BONUS = 0.1, 1.0
COLOURS = np.array([(220, 60, 60), (60, 110, 220), (60, 170, 80), (200, 150, 40)], dtype=np.uint8)


class GridGoals:
    metadata = {"render_modes": ["rgb_array", "ansi"], "name": "grid_goals_v0", "is_parallelizable": True, "render_fps": 4}

    def __init__(self, size: int = 5, num_agents: int = 2, max_cycles: int = 50, render_mode: str | None = None):
        if not 2 <= num_agents <= 4:
            raise ValueError(f"num_agents must be 2, 3 or 4 (one per corner), got {num_agents}")
        if size < 3:
            raise ValueError(f"size must be >= 3, got {size}")
        self.size, self.max_cycles, self.render_mode = size, max_cycles, render_mode
        self.cells = size * size
        self.possible_agents = [f"agent_{i}" for i in range(num_agents)]
        self.agents: list[str] = []
        corners = [(size - 1, size - 1), (0, 0), (0, size - 1), (size - 1, 0)]
        self.goals = np.array(corners[:num_agents])
        self._obs_space = spaces.Discrete(self.cells * (self.cells + 1) ** (num_agents - 1))
        self._action_space = spaces.Discrete(len(MOVES))
        self._rng = np.random.default_rng()
        self.positions = np.zeros((num_agents, 2), dtype=np.int64)
        self.home = np.zeros(num_agents, dtype=bool)
        self.steps = 0

    @property
    def unwrapped(self) -> GridGoals:
        return self

    @functools.lru_cache(maxsize=None)
    def observation_space(self, agent: str) -> spaces.Space:
        return self._obs_space

    @functools.lru_cache(maxsize=None)
    def action_space(self, agent: str) -> spaces.Space:
        return self._action_space

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        goal_cells = {self._cell(g) for g in self.goals}
        free = np.array([c for c in range(self.cells) if c not in goal_cells])
        starts = self._rng.choice(free, size=len(self.possible_agents), replace=False)
        self.positions = np.stack([starts // self.size, starts % self.size], axis=1)
        self.home = np.zeros(len(self.possible_agents), dtype=bool)
        self.agents = list(self.possible_agents)
        self.steps = 0
        return self._observations(), {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        acting = [self.possible_agents.index(a) for a in self.agents]
        moves = np.zeros_like(self.positions)
        for i in acting:
            moves[i] = MOVES[int(actions[self.possible_agents[i]])]
        self.positions = self._resolve(self.positions, moves, acting)
        arrived = [i for i in acting if (self.positions[i] == self.goals[i]).all()]
        self.home[arrived] = True
        self.steps += 1
        out = int((~self.home).sum())
        observations = self._observations(acting)
        rewards = {self.possible_agents[i]: -STEP_COST * out + (ARRIVAL_BONUS if i in arrived else 0.0) for i in acting}
        terminated = {self.possible_agents[i]: i in arrived for i in acting}
        truncated = {self.possible_agents[i]: self.steps >= self.max_cycles and i not in arrived for i in acting}
        infos = {self.possible_agents[i]: {} for i in acting}
        self.agents = [a for a in self.agents if not (terminated[a] or truncated[a])]
        return observations, rewards, terminated, truncated, infos

    def _resolve(self, positions: np.ndarray, moves: np.ndarray, acting: list[int]) -> np.ndarray:
        """Moves off the grid stay put; then every move onto a cell another agent ends in (or a
        swap with it) is cancelled, all clashing agents at once (no agent has priority), until no
        two agents on the grid clash."""
        proposed = positions.copy()
        for i in acting:
            proposed[i] = np.clip(positions[i] + moves[i], 0, self.size - 1)
        while True:
            clashing = [i for i in acting if (proposed[i] != positions[i]).any() and any(
                j != i and ((proposed[i] == proposed[j]).all() or ((proposed[i] == positions[j]).all() and (proposed[j] == positions[i]).all()))
                for j in acting)]
            if not clashing:
                return proposed
            proposed[clashing] = positions[clashing]

    def _cell(self, position: np.ndarray) -> int:
        return int(position[0]) * self.size + int(position[1])

    def _where(self, i: int) -> int:
        return self.cells if self.home[i] else self._cell(self.positions[i])

    def _observations(self, agents: list[int] | None = None) -> dict[str, int]:
        """Own cell first, then the others' (cells = gone home), as one mixed-radix integer."""
        agents = range(len(self.possible_agents)) if agents is None else agents
        observations = {}
        for i in agents:
            others = [self._where(j) for j in range(len(self.possible_agents)) if j != i]
            index = self._cell(self.positions[i])
            for where in others:
                index = index * (self.cells + 1) + where
            observations[self.possible_agents[i]] = index
        return observations

    def state(self) -> np.ndarray:
        """Every agent's position one-hot over the cells plus "home": [num_agents * (cells + 1)]."""
        state = np.zeros((len(self.possible_agents), self.cells + 1), dtype=np.float32)
        for i in range(len(self.possible_agents)):
            state[i, self._where(i)] = 1.0
        return state.reshape(-1)

    def render(self) -> np.ndarray | str | None:
        if self.render_mode == "ansi":
            grid = [["." for _ in range(self.size)] for _ in range(self.size)]
            for i, goal in enumerate(self.goals):
                grid[goal[0]][goal[1]] = "abcd"[i]
            for i in range(len(self.possible_agents)):
                if not self.home[i]:
                    grid[self.positions[i][0]][self.positions[i][1]] = "ABCD"[i]
            return "\n".join("".join(row) for row in grid)
        if self.render_mode != "rgb_array":
            return None
        cell = 32
        image = np.full((self.size * cell, self.size * cell, 3), 245, dtype=np.uint8)
        image[::cell], image[:, ::cell] = 200, 200
        for i, goal in enumerate(self.goals):  # goals: a frame in the agent's colour
            r, c = goal * cell
            image[r + 2:r + cell - 2, c + 2:c + cell - 2] = COLOURS[i]
            image[r + 6:r + cell - 6, c + 6:c + cell - 6] = 245
        for i in range(len(self.possible_agents)):
            if not self.home[i]:
                r, c = self.positions[i] * cell
                image[r + 8:r + cell - 8, c + 8:c + cell - 8] = COLOURS[i]
        return image

    def close(self) -> None:
        pass


def parallel_env(**kwargs: Any) -> GridGoals:
    """The PettingZoo-style constructor the resolver calls (`rlsuite/grid_goals_v0`)."""
    return GridGoals(**kwargs)
