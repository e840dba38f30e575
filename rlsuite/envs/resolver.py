"""One place that turns an environment id into what rlsuite needs to know about it.

    resolve("CartPole-v1") -> EnvInfo(kind="gymnasium", spaces, has_model=False, ...)
    require(info, "dqn", SPEC.acts_on)     # a clear UnsupportedEnvError when they do not fit

Kinds: "gymnasium" (any Gymnasium id), "bandit" (rlsuite's k-armed testbeds, simulated as
many runs at once), "mdp" for algorithms that need the transition model: a Gymnasium env
exposing a toy-text table `P` (FrozenLake, CliffWalking, Taxi, rlsuite's gridworlds), and
"pettingzoo" for multi-agent ids, which name a module with a `parallel_env()` (`mpe2/simple_spread_v3`,
`rlsuite/grid_goals_v0`; see rlsuite.envs.multiagent). Language-model tasks resolve in envs/text.py.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
from gymnasium import spaces

import rlsuite.envs  # noqa: F401  (registers rlsuite's ids)
from rlsuite.errors import UnknownNameError, UnsupportedEnvError, suggest

BANDIT_ENTRY_POINT = "rlsuite.envs.bandits:BanditVectorEnv"
TABULAR_EXAMPLES = "CliffWalking-v1, FrozenLake-v1 or Taxi-v4"
MULTIAGENT_EXAMPLES = "mpe2/simple_spread_v3, mpe2/simple_tag_v3 or rlsuite/grid_goals_v0"


@dataclass(frozen=True)
class EnvInfo:
    id: str
    kind: str
    observation_space: Any
    action_space: Any
    has_model: bool
    """The env exposes a toy-text transition table P, so DP can solve it."""
    max_episode_steps: int | None
    agents: tuple[str, ...] = ()
    """The agents of a multi-agent (PettingZoo) env; its spaces above are one agent's."""


def check_env_id(env_id: str) -> str:
    """The registered name of env_id (for gym.spec, which does not read module prefixes), or an
    error for an id Gymnasium does not know. 'module:EnvName-v0' imports the module first (it
    registers its envs), as gym.make does, so a user's own env needs no change to rlsuite; Ray
    workers make it by the same id wherever the module is importable."""
    module, colon, name = env_id.partition(":")
    if colon:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise UnknownNameError(f"environment {env_id!r}: cannot import module {module!r} ({exc}). "
                                   "Install it or put its folder on PYTHONPATH; 'module:EnvName-v0' imports the module, which must register EnvName-v0.") from None
        env_id = name
    if env_id not in gym.registry:
        multiagent = f" Multi-agent ids name a module with a PettingZoo parallel_env(), '/' for dots: {MULTIAGENT_EXAMPLES}." if "/" in env_id else ""
        raise UnknownNameError(f"unknown environment {env_id!r}.{suggest(env_id, gym.registry)}{multiagent} Run `rlsuite list` to see environments.")
    return env_id


def resolve(env_id: str, **kwargs: Any) -> EnvInfo:
    """What env_id is: its kind and spaces (made once, to check it can be constructed)."""
    from rlsuite.envs import multiagent

    if multiagent.is_multiagent_id(env_id):
        env = multiagent.parallel_env_factory(env_id, **kwargs)()
        try:
            agents = multiagent.read_spaces(env, env_id)
        finally:
            env.close()
        return EnvInfo(env_id, "pettingzoo", agents.observation_space, agents.action_space, False, None, agents.agents)
    spec = gym.spec(check_env_id(env_id))
    try:
        env = gym.make(env_id, **kwargs)
    except gym.error.DependencyNotInstalled as exc:
        extra = " rlsuite's extra installs it: pip install 'rlsuite[mujoco]'." if "mujoco" in str(exc).lower() else ""
        raise UnknownNameError(f"environment {env_id!r} needs an extra package: {exc}{extra}") from None
    try:
        kind = "bandit" if spec.vector_entry_point == BANDIT_ENTRY_POINT else "gymnasium"
        has_model = isinstance(getattr(env.unwrapped, "P", None), dict)
        return EnvInfo(env_id, kind, env.observation_space, env.action_space, has_model, spec.max_episode_steps)
    finally:
        env.close()


def _space_ok(space: Any, names: tuple[str, ...]) -> bool:
    if isinstance(space, spaces.Box) and "Box" in names:
        return len(space.shape) == 1  # the MLPs take flat vectors
    if isinstance(space, spaces.Discrete) and "Discrete" in names:
        return True
    return False


def require(info: EnvInfo, algo: str, acts_on: Any) -> None:
    """Raise UnsupportedEnvError, saying what would fit, unless algo (acting on `acts_on`) can
    train on the env."""
    if acts_on.kind == "bandit":
        if info.kind != "bandit":
            from rlsuite.envs.bandits import IDS

            raise UnsupportedEnvError(f"{algo} needs a k-armed testbed, but {info.id} is not one. Use one of: {', '.join(IDS)}.")
        return
    if acts_on.kind == "pettingzoo" and info.kind != "pettingzoo":
        raise UnsupportedEnvError(f"{algo} trains teams of agents on multi-agent PettingZoo envs, but {info.id} is a single-agent env. "
                                  f"Give a multi-agent id ({MULTIAGENT_EXAMPLES}), or train a single-agent algorithm (ppo, dqn, ...) on {info.id}.")
    if info.kind == "pettingzoo" and acts_on.kind != "pettingzoo":
        raise UnsupportedEnvError(f"{info.id} is a multi-agent env ({len(info.agents)} agents); {algo} trains one agent. "
                                  "Use a multi-agent algorithm: mappo, ippo, or iql (Discrete observations, e.g. rlsuite/grid_goals_v0).")
    if info.kind == "bandit":
        raise UnsupportedEnvError(f"{info.id} is a k-armed bandit testbed; use a bandit algorithm (epsilon_greedy, ucb, gradient_bandit, thompson) for it.")
    if acts_on.kind == "mdp" and not info.has_model:
        raise UnsupportedEnvError(
            f"{algo} solves a known model, but {info.id} exposes no transition table P. "
            f"Use a toy-text env ({TABULAR_EXAMPLES}, GridWorld4x4-v0, ...), or a model-free method such as q_learning."
        )
    obs, act = info.observation_space, info.action_space
    if info.kind == "pettingzoo":
        if acts_on.observations == ("Discrete",) and not _space_ok(obs, acts_on.observations):
            raise UnsupportedEnvError(f"{algo} keeps a Q-table per agent indexed by its observation, so it needs Discrete observations "
                                      f"(as rlsuite/grid_goals_v0 has); {info.id}'s agents observe {obs}. Use mappo or ippo for it.")
        if acts_on.actions and not _space_ok(act, acts_on.actions):
            raise UnsupportedEnvError(f"{algo} handles {' or '.join(acts_on.actions)} actions, but {info.id}'s agents have {act}. "
                                      "The mpe2 envs have Discrete actions unless made with continuous_actions=True.")
    if acts_on.observations and not _space_ok(obs, acts_on.observations):
        if acts_on.observations == ("Discrete",):
            raise UnsupportedEnvError(
                f"{algo} is a tabular method and needs a Discrete observation space (a finite set of states), "
                f"but {info.id} has {obs}. Use a tabular env such as {TABULAR_EXAMPLES}, "
                "or a function-approximation method (e.g. dqn or ppo) for this env."
            )
        kinds = " or ".join("flat Box" if n == "Box" else n for n in acts_on.observations)
        raise UnsupportedEnvError(
            f"{algo} needs a {kinds} observation space, but {info.id} has {obs}. "
            "Wrap the env (e.g. gymnasium.wrappers.FlattenObservation) or pick another algorithm."
        )
    if acts_on.actions and not _space_ok(act, acts_on.actions):
        kinds = " or ".join(acts_on.actions)
        if acts_on.actions == ("Discrete",) and isinstance(act, spaces.Box):
            hint = " It chooses among finitely many actions; for continuous control use sac, td3, ddpg, ppo, trpo or a2c."
        elif acts_on.actions == ("Box",) and isinstance(act, spaces.Discrete):
            hint = " It learns continuous actions; for a Discrete action space use dqn, ppo, a2c or trpo."
        else:
            hint = " See `rlsuite list` for algorithms that fit."
        raise UnsupportedEnvError(f"{algo} handles {kinds} action spaces, but {info.id} has {act}.{hint}")
    if acts_on.observations == ("Discrete",):  # tabular methods index their tables by state and action
        for name, space in (("states", obs), ("actions", act)):
            if space.start != 0:
                raise UnsupportedEnvError(f"{algo} indexes its tables by {name[:-1]}, but {info.id}'s {name} start at {space.start}, not 0.")
