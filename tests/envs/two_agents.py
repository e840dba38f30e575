"""A hand-written two-agent PettingZoo parallel env whose every number is known in advance, for
the adapter's and the collector's tests (imported by path, as tests/algos/deep/learning.py is).

TwoAgents keeps a clock t (0 after reset, +1 per step):
- agent a observes [t, 1] (Box of width 2, so it is zero-padded to 3), gets reward t and
  terminates at t == 2;
- agent b observes [t, 2, 3] (Box of width 3), gets reward 10 t and is truncated at t == horizon.
horizon is 4, or 3 + seed % 3 when reset with a seed (so copies seeded apart end apart).
A horizon-h episode: a's return 1 + 2 = 3, b's 10 (1 + ... + h), length h.
WithState's state() is [t, agents on]; parallel_env(state=...) picks the kind of state().
"""

import sys
import types

import numpy as np
from gymnasium import spaces

FAKE_ID = "fake_marl_pkg/two_agents"


class TwoAgents:
    metadata = {"name": "two_agents", "render_fps": 5}
    possible_agents = ["a", "b"]

    def __init__(self, render_mode=None, discrete=False, start=0, b_actions=3):
        self.render_mode, self.discrete, self.start, self.b_actions = render_mode, discrete, start, b_actions
        self.seeds, self.received = [], []
        self.horizon, self.t, self.agents = 4, 0, []
        self.closed = False

    def observation_space(self, agent):
        if self.discrete:
            return spaces.Discrete(6, start=self.start)
        return spaces.Box(-np.inf, np.inf, (2,) if agent == "a" else (3,), np.float32)

    def action_space(self, agent):
        return spaces.Discrete(self.b_actions if agent == "b" else 3)

    def _obs(self, agent):
        if self.discrete:  # a observes start + t, b start + t + 1
            return self.start + self.t + (agent == "b")
        return np.array([self.t, 1.0], np.float32) if agent == "a" else np.array([self.t, 2.0, 3.0], np.float32)

    def reset(self, seed=None, options=None):
        self.seeds.append(seed)
        if seed is not None:
            self.horizon = 3 + seed % 3
        self.t, self.agents = 0, ["a", "b"]
        return {a: self._obs(a) for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions):
        assert set(actions) == set(self.agents), f"actions for {set(actions)}, but on are {self.agents}"
        self.received.append(dict(actions))
        self.t += 1
        obs = {a: self._obs(a) for a in self.agents}
        rewards = {a: float(self.t if a == "a" else 10 * self.t) for a in self.agents}
        terminated = {a: a == "a" and self.t == 2 for a in self.agents}
        truncated = {a: a == "b" and self.t == self.horizon for a in self.agents}
        self.agents = [a for a in self.agents if not (terminated[a] or truncated[a])]
        return obs, rewards, terminated, truncated, {a: {} for a in obs}

    def render(self):
        return np.full((4, 6, 3), 10 * self.t, np.uint8) if self.render_mode == "rgb_array" else None

    def close(self):
        self.closed = True


class WithState(TwoAgents):
    def state(self):
        return np.array([[self.t], [len(self.agents)]], np.float32)  # 2-D on purpose: flattened to [2]


class StateNotImplemented(TwoAgents):
    def state(self):  # what pettingzoo.utils.env.ParallelEnv.state does
        raise NotImplementedError


def parallel_env(state="method", **kwargs):
    return {"method": WithState, "missing": TwoAgents, "not_implemented": StateNotImplemented}[state](**kwargs)


def install(monkeypatch) -> str:
    """Make FAKE_ID importable as the module fake_marl_pkg.two_agents for one test; returns the id."""
    package = types.ModuleType("fake_marl_pkg")
    package.__path__ = []
    module = types.ModuleType("fake_marl_pkg.two_agents")
    module.parallel_env = parallel_env
    monkeypatch.setitem(sys.modules, "fake_marl_pkg", package)
    monkeypatch.setitem(sys.modules, "fake_marl_pkg.two_agents", module)
    return FAKE_ID
