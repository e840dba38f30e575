"""Glue shared by the model-free tabular methods (rlsuite/algos/tabular): their common config
fields, space checks, the episode driver, training through TrainingLoop, averaged learning curves,
the greedy policy, and the module-level entry points (`train`, `averaged_returns`, ...) built
from an algorithm file's Agent.

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
import dataclasses
import math
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rlsuite.core import config as configs
from rlsuite.core import run as runs
from rlsuite.core.errors import UnsupportedEnvError, check
from rlsuite.core.loop import TrainingLoop
import rlsuite.envs.gridworlds  # noqa: F401  (registers WindyGridWorld-v0, DynaMaze-v0, ...)
from rlsuite.envs.vector import env_spaces, make_vector_env
from rlsuite.ops import td

ITERATION_STEPS = 1_000
"""Env steps per TrainingLoop iteration: checkpoints, evaluations and Ctrl-C happen in between."""

TD_PRESETS: dict[str, dict[str, Any]] = {
    "CliffWalking-v1": dict(gamma=1.0, alpha=0.5, epsilon=0.1, total_steps=20_000),
    "FrozenLake-v1": dict(gamma=0.99, alpha=0.1, epsilon=0.1, total_steps=200_000, eval_every=20_000, eval_episodes=100),
    "Taxi-v4": dict(gamma=0.99, alpha=0.5, epsilon=0.1, total_steps=100_000, eval_every=10_000),
}
"""env id -> tuned config fields of the one-step TD control methods (sarsa, expected_sarsa,
q_learning, double_q_learning), the PRESETS of their algorithm files."""

MakeAgent = Callable[[int, int, np.random.Generator], Any]
"""make_agent(n_states, n_actions, rng) -> a fresh agent."""


@dataclasses.dataclass(frozen=True)
class TabularControlConfig(configs.TrainConfig):
    """Fields of every model-free tabular control method. An algorithm's Config subclasses this,
    redeclaring a field to change its default (with a docstring only if its meaning differs) and
    adding its own fields and checks."""

    env: str = "CliffWalking-v1"
    """Gymnasium environment id with Discrete observations and actions (see `rlsuite list`)."""
    total_steps: int = 20_000
    """Environment steps to train for."""
    eval_every: int = 2_000
    """Evaluate the greedy policy every this many steps (0: only at the end)."""
    checkpoint_every: int = 10_000
    """Save a resumable checkpoint every this many steps (and always at the end or on Ctrl-C)."""
    log_every: int = 1_000
    """Write averaged training metrics every this many steps."""
    gamma: float = 1.0
    """Discount factor (1: the undiscounted episodic task of the book's examples)."""
    alpha: float = 0.5
    """Step size of the TD update, in (0, 1]."""
    epsilon: float = 0.1
    """Probability of a uniformly random action in the epsilon-greedy behaviour policy."""
    eval_max_steps: int = 1_000
    """Cut evaluation episodes after this many steps when the env has no time limit of its own."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(0 <= self.gamma <= 1, f"gamma must be in [0, 1], got {self.gamma}.")
        self.check_alpha()
        check(0 <= self.epsilon <= 1, f"epsilon must be in [0, 1], got {self.epsilon}.")
        check(self.eval_max_steps >= 1, f"eval_max_steps must be >= 1, got {self.eval_max_steps}.")

    def check_alpha(self) -> None:
        """alpha is a constant step size; a method that also accepts other values overrides this."""
        check(0 < self.alpha <= 1, f"alpha (step size) must be in (0, 1], got {self.alpha}.")


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
    """The greedy policy argmax_a Q(s, a) of a saved run (Q1 + Q2 for double Q-learning);
    `.predict(states)` gives actions. The `load_policy` of every model-free tabular method."""
    return GreedyPolicy(payload["q"])


def make_eval_envs(env_id: str, n: int, max_steps: int) -> gym.vector.VectorEnv:
    """n sync copies of env_id; a greedy tabular policy can walk in circles forever (e.g. into a
    wall of CliffWalking), so envs without a time limit get one."""
    return make_vector_env(env_id, n, mode="sync", default_time_limit=max_steps)


def train_tabular(
    algo: str,
    config: TabularControlConfig,
    make_agent: MakeAgent,
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
        make_eval_envs=lambda n: make_eval_envs(config.env, n, config.eval_max_steps),
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
    make_agent: MakeAgent,
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


# The module-level entry points of an algorithm file (see rlsuite.core.registry), built from its
# Agent class, whose constructor is Agent(n_states, n_actions, config, rng).


def agent_factory(Agent: type) -> Callable[[TabularControlConfig], MakeAgent]:
    """config -> make_agent(n_states, n_actions, rng) = Agent(n_states, n_actions, config, rng)."""

    def factory(config: TabularControlConfig) -> MakeAgent:
        """make_agent(n_states, n_actions, rng) for rlsuite.rollout.tabular (training, averaged curves)."""
        return lambda n_states, n_actions, rng: Agent(n_states, n_actions, config, rng)

    return factory


def averaged_returns_of(Agent: type) -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """`averaged_returns(config, runs, episodes, make_env=None)` for Agent."""
    make_agent = agent_factory(Agent)

    def curves(config: TabularControlConfig, runs: int, episodes: int, make_env=None) -> tuple[np.ndarray, np.ndarray]:
        """Online returns and lengths [runs, episodes] of independent agents (e.g. Example 6.6's curves)."""
        return averaged_returns(make_agent(config), make_env or config.env, runs, episodes, config.seed)

    return curves


def trainer(algo: str, Agent: type) -> Callable[..., runs.Run]:
    """`train(config, run_dir=None, *, overwrite, resume, quiet, callbacks)` of algorithm `algo`."""
    make_agent = agent_factory(Agent)

    def train(config: TabularControlConfig, run_dir=None, *, overwrite: bool = False, resume: bool = False, quiet: bool = False, callbacks=()) -> runs.Run:
        return train_tabular(algo, config, make_agent(config), run_dir, overwrite=overwrite, resume=resume, quiet=quiet, callbacks=callbacks)

    train.__doc__ = f"Train {algo} on config.env; returns the Run (directory, evaluations, timing)."
    return train
