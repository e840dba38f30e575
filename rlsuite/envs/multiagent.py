"""PettingZoo parallel environments, vectorized, as the multi-agent algorithms take them.

An id names a module with a `parallel_env(**kwargs)` constructor, with `/` for dots:
`mpe2/simple_spread_v3` (the `mpe2` package, PettingZoo's Multi-Particle Environments since
PettingZoo 1.25), `pettingzoo/butterfly/pistonball_v6`, or rlsuite's own `rlsuite/grid_goals_v0`.

`MultiAgentVectorEnv` steps N copies in lock step and speaks arrays over a fixed agent order
(the env's `possible_agents`):

    obs [N, A, *obs_shape]   state [N, S]   actions [N, A]
    rewards, terminated, truncated [N, A]   alive [N, A]

- Agents that leave early: PettingZoo drops an agent from the dicts once it terminates or
  truncates. Here it keeps its slot (zeros, or the lowest Discrete observation): `alive[n, i]`
  is False while agent i is absent from copy n, and its reward, terminated and truncated are 0 there.
- The copy's episode ends when no agent is left; autoreset is Gymnasium's NEXT_STEP mode, as in
  every single-agent collector (rlsuite.rollout.step): the step that ends an episode returns the
  final observations, and the copy's next step is a reset transition whose actions are ignored.
- Observations of different lengths are zero-padded to the longest (a shared actor tells agents
  apart by their id); the agents must share one action space.
- The global state is the env's `state()`, or the concatenation of every agent's observation
  when the env has none.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from rlsuite.errors import ConfigError, MissingExtraError, UnknownNameError, UnsupportedEnvError, suggest

BUILTIN = {"rlsuite/grid_goals_v0": "rlsuite.envs.grid_goals"}
EXAMPLES = "mpe2/simple_spread_v3, mpe2/simple_tag_v3 or rlsuite/grid_goals_v0"
EXTRAS = {"mpe2": "marl", "pettingzoo": "marl"}


def is_multiagent_id(env_id: str) -> bool:
    """True for ids the resolver hands to PettingZoo: a module path, not a Gymnasium id (a
    Gymnasium namespace such as ALE/ also has a slash, so the registry is asked first)."""
    import gymnasium as gym

    import rlsuite.envs  # noqa: F401  (registers rlsuite's Gymnasium ids)

    if "/" not in env_id or env_id in gym.registry:
        return False
    package = env_id.split("/")[0]
    return env_id in BUILTIN or package in EXTRAS or package in sys.modules or not _package_missing(package)


def parallel_env_factory(env_id: str, **kwargs: Any) -> Callable[..., Any]:
    """A constructor of env_id's parallel env: `factory(render_mode=None)`. Clear messages for a
    missing package or module."""
    module_name = BUILTIN.get(env_id, env_id.replace("/", "."))
    package = module_name.split(".")[0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        package_missing = exc.name == package or _package_missing(package)
        if package_missing and package in EXTRAS:
            raise MissingExtraError(f"{env_id} needs the {package!r} package, which is not installed: pip install 'rlsuite[{EXTRAS[package]}]' "
                                    f"(or pip install {package}).") from None
        if package_missing:
            raise UnknownNameError(f"unknown environment {env_id!r}: no module {package!r} is installed. Multi-agent ids name a PettingZoo "
                                   f"module with '/' for dots, e.g. {EXAMPLES}.") from None
        known = [name for name, _ in known_ids()]
        raise UnknownNameError(f"unknown environment {env_id!r}: there is no module {exc.name!r}.{suggest(env_id, known)} "
                               f"Run `rlsuite list` to see multi-agent environments.") from None
    if not callable(getattr(module, "parallel_env", None)):
        raise UnknownNameError(f"{env_id!r} is not a PettingZoo environment: {module_name} has no parallel_env().")

    def factory(render_mode=None):
        try:
            return module.parallel_env(render_mode=render_mode, **kwargs)
        except TypeError as exc:  # an unknown keyword, most often
            raise ConfigError(f"{env_id}'s parallel_env() does not take env_kwargs {kwargs}: {exc}.") from None

    return factory


def parse_env_kwargs(items: tuple[str, ...]) -> dict[str, Any]:
    """("N=4", "local_ratio=0", "continuous_actions=false") -> keyword arguments of parallel_env(),
    each value read as YAML (numbers, booleans, strings)."""
    import yaml

    kwargs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(f"env_kwargs entries are key=value (e.g. N=4 max_cycles=50), got {item!r}.")
        try:
            kwargs[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            kwargs[key.strip()] = value
    return kwargs


def known_ids() -> list[tuple[str, str]]:
    """(id, where it comes from) of the built-in task and of mpe2's tasks, found without importing them."""
    import pkgutil

    found = [(env_id, "built in") for env_id in BUILTIN]
    spec = importlib.util.find_spec("mpe2")
    if spec is None:
        return found + [("mpe2/...", "the Multi-Particle Environments: pip install 'rlsuite[marl]'")]
    names = sorted(m.name for m in pkgutil.iter_modules(spec.submodule_search_locations) if m.name.startswith("simple"))
    return found + [(f"mpe2/{name}", "mpe2") for name in names]


def _package_missing(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is None
    except (ImportError, ValueError):
        return True


@dataclass(frozen=True)
class AgentSpaces:
    """What a multi-agent algorithm needs to know about an env, read from one copy."""

    agents: tuple[str, ...]
    observation_space: spaces.Space
    """One agent's observation space: Discrete (all agents alike) or a flat Box, padded to the longest."""
    action_space: spaces.Space
    state_dim: int


def read_spaces(env, env_id: str) -> AgentSpaces:
    agents = tuple(env.possible_agents)
    if not agents:
        raise UnsupportedEnvError(f"{env_id} has no agents.")
    observation = {a: env.observation_space(a) for a in agents}
    action = {a: env.action_space(a) for a in agents}
    if len({str(s) for s in action.values()}) > 1:
        listed = ", ".join(f"{a}: {s}" for a, s in action.items())
        raise UnsupportedEnvError(
            f"the agents of {env_id} have different action spaces ({listed}); rlsuite's multi-agent algorithms keep one action "
            "space for all agents (a shared actor outputs one distribution). Wrap the env so every agent has the same space "
            "(e.g. pad the smaller action sets with no-op actions), or train each group of alike agents as its own env."
        )
    if all(isinstance(s, spaces.Discrete) for s in observation.values()) and len({(s.n, s.start) for s in observation.values()}) == 1:
        obs_space = observation[agents[0]]
    elif all(isinstance(s, spaces.Box) and len(s.shape) == 1 for s in observation.values()):
        width = max(s.shape[0] for s in observation.values())
        obs_space = spaces.Box(-np.inf, np.inf, (width,), np.float32)
    else:
        listed = ", ".join(f"{a}: {s}" for a, s in observation.items())
        raise UnsupportedEnvError(f"{env_id}'s observations must be flat Box vectors or the same Discrete space for every agent; "
                                  f"it has {listed}. Flatten them in a wrapper.")
    observations, _ = env.reset(seed=0)
    obs, alive = empty_observations(obs_space, len(agents)), np.zeros(len(agents), dtype=bool)
    fill_observations(agents, env.agents, observations, obs_space, obs, alive)
    return AgentSpaces(agents, obs_space, action[agents[0]], int(global_state(env, obs_space, obs, alive).shape[0]))


def empty_observations(obs_space: spaces.Space, *shape: int) -> np.ndarray:
    """Observations [*shape, ...] for agents not on: zeros, or the lowest Discrete observation."""
    if isinstance(obs_space, spaces.Discrete):
        return np.full(shape, obs_space.start, dtype=np.int64)
    return np.zeros((*shape, *obs_space.shape), dtype=np.float32)


def fill_observations(agents: tuple[str, ...], live: list[str], observations: dict, obs_space: spaces.Space,
                      obs: np.ndarray, alive: np.ndarray) -> None:
    """Write one copy's observation dict into obs [A, ...] (Box ones zero-padded) and mark alive [A]."""
    for i, agent in enumerate(agents):
        if agent in observations:
            value = np.asarray(observations[agent])
            if isinstance(obs_space, spaces.Discrete):
                obs[i] = int(value)
            else:
                obs[i, :value.shape[-1]] = value.reshape(-1)
        alive[i] = agent in live


def global_state(env, obs_space: spaces.Space, obs: np.ndarray, alive: np.ndarray) -> np.ndarray:
    """env.state(), or else every agent's observation concatenated: one copy's obs [A, ...], one-hot
    when Discrete, zeros for agents not on."""
    try:
        return np.asarray(env.state(), dtype=np.float32).reshape(-1)
    except (AttributeError, NotImplementedError):
        pass
    if isinstance(obs_space, spaces.Discrete):
        one_hot = np.eye(obs_space.n, dtype=np.float32)[obs - obs_space.start]
        return (one_hot * alive[:, None]).reshape(-1)
    return (np.asarray(obs, dtype=np.float32) * alive.reshape(-1, *[1] * (obs.ndim - 1))).reshape(-1)


@dataclass(frozen=True)
class MultiAgentStep:
    """One vector step of N copies. Rows of a copy that was reset this step (its previous step
    ended an episode) hold the reset's observations with zero rewards and flags."""

    obs: np.ndarray
    state: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    alive: np.ndarray
    """[N, A]: agent i is on in copy n after this step (it will act in the next one)."""
    reset: np.ndarray
    """[N]: this step was a reset transition of copy n."""
    team_returns: list[float]
    agent_returns: list[np.ndarray]
    lengths: list[int]
    """Of the episodes that ended at this step: team return (summed over agents), per-agent returns, length."""


class MultiAgentVectorEnv:
    """N copies of a parallel env stepped in lock step, as arrays over the fixed agent order."""

    def __init__(self, env_id: str, num_envs: int, render_mode: str | None = None, **kwargs: Any):
        factory = parallel_env_factory(env_id, **kwargs)
        self.env_id, self.num_envs = env_id, num_envs
        self.envs = [factory(render_mode=render_mode) for _ in range(num_envs)]
        self.spaces = read_spaces(self.envs[0], env_id)
        self.agents = self.spaces.agents
        self.num_agents = len(self.agents)
        self._slot = {agent: i for i, agent in enumerate(self.agents)}
        self.discrete_obs = isinstance(self.spaces.observation_space, spaces.Discrete)
        self.obs_shape = () if self.discrete_obs else self.spaces.observation_space.shape
        self._needs_reset = np.zeros(num_envs, dtype=bool)
        self._returns = np.zeros((num_envs, self.num_agents))
        self._lengths = np.zeros(num_envs, dtype=np.int64)

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(obs [N, A, ...], state [N, S], alive [N, A]); copy n is seeded seed + n."""
        obs = empty_observations(self.spaces.observation_space, self.num_envs, self.num_agents)
        state = np.zeros((self.num_envs, self.spaces.state_dim), dtype=np.float32)
        alive = np.zeros((self.num_envs, self.num_agents), dtype=bool)
        for n in range(self.num_envs):
            self._reset_copy(n, None if seed is None else seed + n, obs, state, alive)
        self._needs_reset[:] = False
        return obs, state, alive

    def _reset_copy(self, n: int, seed: int | None, obs: np.ndarray, state: np.ndarray, alive: np.ndarray) -> None:
        observations, _ = self.envs[n].reset(seed=seed)
        fill_observations(self.agents, self.envs[n].agents, observations, self.spaces.observation_space, obs[n], alive[n])
        state[n] = global_state(self.envs[n], self.spaces.observation_space, obs[n], alive[n])
        self._returns[n], self._lengths[n] = 0.0, 0

    def step(self, actions: np.ndarray) -> MultiAgentStep:
        """Step every copy with actions [N, A] (entries of absent agents are ignored)."""
        shape = (self.num_envs, self.num_agents)
        obs = empty_observations(self.spaces.observation_space, *shape)
        state = np.zeros((self.num_envs, self.spaces.state_dim), dtype=np.float32)
        rewards, terminated, truncated = np.zeros(shape, dtype=np.float32), np.zeros(shape, dtype=bool), np.zeros(shape, dtype=bool)
        alive = np.zeros(shape, dtype=bool)
        reset = self._needs_reset.copy()
        team_returns, agent_returns, lengths = [], [], []
        for n, env in enumerate(self.envs):
            if reset[n]:
                self._reset_copy(n, None, obs, state, alive)
                self._needs_reset[n] = False
                continue
            live = list(env.agents)
            act = {agent: _action(actions[n, self._slot[agent]]) for agent in live}
            observations, reward, term, trunc, _ = env.step(act)
            fill_observations(self.agents, env.agents, observations, self.spaces.observation_space, obs[n], alive[n])
            for i, agent in enumerate(self.agents):
                rewards[n, i] = reward.get(agent, 0.0)
                terminated[n, i] = bool(term.get(agent, False))
                truncated[n, i] = bool(trunc.get(agent, False))
            state[n] = global_state(env, self.spaces.observation_space, obs[n], alive[n] | terminated[n] | truncated[n])
            self._returns[n] += rewards[n]
            self._lengths[n] += 1
            if not env.agents:
                team_returns.append(float(self._returns[n].sum()))
                agent_returns.append(self._returns[n].copy())
                lengths.append(int(self._lengths[n]))
                self._needs_reset[n] = True
        return MultiAgentStep(obs, state, rewards, terminated, truncated, alive, reset, team_returns, agent_returns, lengths)

    def render(self, copy: int = 0) -> Any:
        return self.envs[copy].render()

    def close(self) -> None:
        for env in self.envs:
            env.close()


def _action(value: Any) -> Any:
    array = np.asarray(value)
    return int(array) if array.ndim == 0 and np.issubdtype(array.dtype, np.integer) else array
