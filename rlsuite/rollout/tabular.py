"""Glue shared by the model-free tabular methods (rlsuite/algos/tabular): space checks, the
episode driver, training through TrainingLoop, averaged learning curves and the greedy policy.

An algorithm file supplies an *agent*: any object with

    begin(s) -> a                                        choose A from S at the start of an episode
    step(s, a, r, s2, terminated, truncated) -> a2       learn from one transition; next action
    q_values() -> Q [|S|, |A|]                           what the greedy policy acts on
    STATE: tuple of attribute names                      everything a checkpoint must hold

`run_steps` drives it on one Gymnasium env for a step or episode budget and can stop mid-episode,
so training is checkpointed and resumed exactly, between any two steps.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rlsuite.core import config as configs
from rlsuite.core import run as runs
from rlsuite.core.errors import UnsupportedEnvError
from rlsuite.core.loop import TrainingLoop
import rlsuite.envs.gridworlds  # noqa: F401  (registers WindyGridWorld-v0, DynaMaze-v0, ...)
from rlsuite.envs.vector import env_spaces, make_vector_env
from rlsuite.ops import td

ITERATION_STEPS = 1_000
"""Env steps per TrainingLoop iteration: checkpoints, evaluations and Ctrl-C happen in between."""


class Holder:
    """Exposes an agent's attributes named in `names` as state_dict/load_state_dict for TrainingLoop."""

    def __init__(self, agent: Any, names: tuple[str, ...]):
        self.agent, self.names = agent, names

    def state_dict(self) -> dict[str, Any]:
        return {name: copy.deepcopy(getattr(self.agent, name)) for name in self.names}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self.names:
            value = state[name]
            current = getattr(self.agent, name)
            if isinstance(current, np.ndarray) and np.shape(value) != current.shape:
                raise ValueError(f"{name} has shape {np.shape(value)}, expected {current.shape}")
            setattr(self.agent, name, copy.deepcopy(value))


def discrete_spaces(algo: str, env_id: str) -> tuple[spaces.Discrete, spaces.Discrete]:
    """The env's (observation, action) spaces, or UnsupportedEnvError unless both are Discrete."""
    obs_space, action_space = env_spaces(env_id)
    if not isinstance(obs_space, spaces.Discrete):
        raise UnsupportedEnvError(
            f"{algo} is a tabular method and needs a Discrete observation space (a finite set of states), "
            f"but {env_id} has {obs_space}. Use a tabular env such as CliffWalking-v1, FrozenLake-v1 or Taxi-v4, "
            "or a function-approximation method (e.g. ppo) for this env."
        )
    if obs_space.start != 0:
        raise UnsupportedEnvError(f"{algo} indexes its table by state, but {env_id}'s states start at {obs_space.start}, not 0.")
    if not isinstance(action_space, spaces.Discrete):
        raise UnsupportedEnvError(
            f"{algo} is a tabular method and needs a Discrete action space, but {env_id} has {action_space}. "
            "Use a tabular env such as CliffWalking-v1, FrozenLake-v1 or Taxi-v4."
        )
    if action_space.start != 0:
        raise UnsupportedEnvError(f"{algo} indexes its table by action, but {env_id}'s actions start at {action_space.start}, not 0.")
    return obs_space, action_space


def new_carry() -> dict[str, Any]:
    """Driver state between calls of run_steps: current state and action, running episode totals."""
    return {"s": None, "a": None, "episode_return": 0.0, "episode_length": 0, "reset_seed": None}


def run_steps(env: gym.Env, agent: Any, carry: dict[str, Any], max_steps: float = math.inf, max_episodes: float = math.inf) -> tuple[int, list[float], list[int]]:
    """Run the agent for up to max_steps env steps or until max_episodes episodes have ended,
    continuing the episode held in `carry`. Returns (steps, episode returns, episode lengths)."""
    s, a = carry["s"], carry["a"]
    ep_return, ep_length = carry["episode_return"], carry["episode_length"]
    returns: list[float] = []
    lengths: list[int] = []
    steps = 0
    while steps < max_steps and len(returns) < max_episodes:
        if s is None:
            s = int(env.reset(seed=carry["reset_seed"])[0])
            carry["reset_seed"] = None  # seed only the first episode; later ones continue its stream
            a = agent.begin(s)
        s2, r, terminated, truncated, _ = env.step(a)
        s2, r = int(s2), float(r)
        a2 = agent.step(s, a, r, s2, terminated, truncated)
        steps += 1
        ep_return += r
        ep_length += 1
        if terminated or truncated:
            returns.append(ep_return)
            lengths.append(ep_length)
            ep_return, ep_length, s, a = 0.0, 0, None, None
        else:
            s, a = s2, a2
    carry.update(s=s, a=a, episode_return=ep_return, episode_length=ep_length)
    return steps, returns, lengths


class GreedyPolicy:
    """argmax_a Q(s, a) with a deterministic tie-break; what evaluation and rlsuite.load use."""

    def __init__(self, q: np.ndarray):
        self.q = np.asarray(q, dtype=np.float64)

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        states = np.asarray(obs).astype(np.int64)
        if states.min(initial=0) < 0 or states.max(initial=0) >= self.q.shape[0]:
            raise UnsupportedEnvError(f"states must be integers in [0, {self.q.shape[0]}), got {obs!r}.")
        return td.greedy(self.q[states])


def load_greedy(payload: dict[str, Any]) -> GreedyPolicy:
    return GreedyPolicy(payload["q"])


def make_eval_envs(env_id: str, n: int, max_steps: int) -> gym.vector.VectorEnv:
    """n sync copies of env_id; a greedy tabular policy can walk in circles forever (e.g. into a
    wall of CliffWalking), so envs without a time limit get one."""
    return make_vector_env(env_id, n, mode="sync", default_time_limit=max_steps)


def train_tabular(
    algo: str,
    config: configs.TrainConfig,
    make_agent: Callable[[int, int, np.random.Generator], Any],
    run_dir=None,
    *,
    overwrite: bool = False,
    resume: bool = False,
    quiet: bool = False,
    callbacks=(),
) -> runs.Run:
    """Train `make_agent(n_states, n_actions, rng)` on config.env with TrainingLoop: metrics.csv
    gets per-episode returns and lengths, evaluations run the greedy policy, checkpoints hold the
    agent's STATE, the driver carry and the pickled env (so resume continues mid-episode)."""
    obs_space, action_space = discrete_spaces(algo, config.env)
    run = runs.prepare(algo, config, run_dir, overwrite=overwrite, resume=resume)
    agent = make_agent(int(obs_space.n), int(action_space.n), np.random.default_rng(config.seed))
    loop = TrainingLoop(
        run, algo, config,
        modules={"agent": Holder(agent, agent.STATE)},
        make_envs=lambda: gym.make(config.env),
        make_eval_envs=lambda n: make_eval_envs(config.env, n, getattr(config, "eval_max_steps", 1_000)),
        act=lambda obs: GreedyPolicy(agent.q_values()).predict(obs),
        export=lambda: {"q": agent.q_values().copy(), "observation_space": obs_space, "action_space": action_space},
        resume=resume, quiet=quiet, callbacks=callbacks,
    )
    with loop:
        carry = loop.begin(lambda env: {**new_carry(), "reset_seed": config.seed})
        while loop.running():
            budget = min(ITERATION_STEPS, config.total_steps - loop.step)
            steps, returns, lengths = run_steps(loop.envs, agent, carry, max_steps=budget)
            carry["episodes"] = carry.get("episodes", 0) + len(returns)
            # Episodes so far: the x-axis of the book's figures (exact when log_every = ITERATION_STEPS).
            loop.record(steps, {"charts/episodes": float(carry["episodes"])}, returns, lengths)
        return loop.finish()


def averaged_returns(
    make_agent: Callable[[int, int, np.random.Generator], Any],
    make_env: Callable[[], gym.Env] | str,
    runs: int,
    episodes: int,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The book's averaged curves (e.g. Example 6.6, Figure 8.2): R independent agents, each on
    its own env and seeds, for E episodes. Returns (online returns, episode lengths), both [R, E];
    average over axis 0 for the book's "sum of rewards during episode" or "steps per episode"."""
    factory = (lambda: gym.make(make_env)) if isinstance(make_env, str) else make_env
    all_returns = np.zeros((runs, episodes))
    all_lengths = np.zeros((runs, episodes), dtype=np.int64)
    for i in range(runs):
        env = factory()
        try:
            agent = make_agent(int(env.observation_space.n), int(env.action_space.n), np.random.default_rng([seed, i]))
            carry = {**new_carry(), "reset_seed": seed * 100_003 + i}
            _, returns, lengths = run_steps(env, agent, carry, max_episodes=episodes)
        finally:
            env.close()
        all_returns[i], all_lengths[i] = returns, lengths
    return all_returns, all_lengths
