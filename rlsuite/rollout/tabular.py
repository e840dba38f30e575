"""Glue shared by the model-free tabular methods (rlsuite/algos/tabular): their common config
fields, the episode driver, training through the Loop, averaged learning curves and the greedy
policy. An algorithm file supplies an *agent*: any object with

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
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rlsuite.core import config as configs
from rlsuite.core.loop import Episodes, Loop
from rlsuite.core.run import Run
from rlsuite.core.spec import ActsOn
from rlsuite.envs.checkpointing import CheckpointableEnv
from rlsuite.envs.evaluation import EpisodeEvaluator
from rlsuite.envs.resolver import require, resolve
from rlsuite.errors import check
from rlsuite.ops import td

ITERATION_STEPS = 1_000
"""Env steps per Loop iteration: checkpoints, evaluations and Ctrl-C happen in between."""

ACTS_ON = ActsOn("gymnasium", observations=("Discrete",), actions=("Discrete",))

TD_PRESETS: dict[str, dict[str, Any]] = {
    "CliffWalking-v1": dict(gamma=1.0, alpha=0.5, epsilon=0.1, total_steps=20_000),
    "FrozenLake-v1": dict(gamma=0.99, alpha=0.1, epsilon=0.1, total_steps=200_000, eval_every=20_000, eval_episodes=100),
    "Taxi-v4": dict(gamma=0.99, alpha=0.5, epsilon=0.1, total_steps=100_000, eval_every=10_000),
}
"""env id -> tuned config fields of the one-step TD control methods (sarsa, expected_sarsa,
q_learning, double_q_learning), the presets of their algorithm files."""

MakeAgent = Callable[[int, int, np.random.Generator], Any]
"""make_agent(n_states, n_actions, rng) -> a fresh agent."""


@dataclasses.dataclass(frozen=True)
class TabularControlConfig(configs.TrainConfig):
    """Fields of every model-free tabular control method. An algorithm's config subclasses this,
    redeclaring a field to change its default (with a docstring only if its meaning differs) and
    adding its own fields and checks."""

    env: str = "CliffWalking-v1"
    """Gymnasium environment id with Discrete observations and actions (see `rlsuite list`)."""
    total_steps: int = 20_000
    """Environment steps to train for."""
    eval_every: int = 2_000
    """Evaluate the greedy policy every this many steps (0: only at the end)."""
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


class AgentState:
    """The attributes of an agent named in its STATE, as a checkpoint part."""

    def __init__(self, agent: Any):
        self.agent = agent

    def state_dict(self) -> dict[str, Any]:
        return {name: copy.deepcopy(getattr(self.agent, name)) for name in self.agent.STATE}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self.agent.STATE:
            value, current = state[name], getattr(self.agent, name)
            if isinstance(current, np.ndarray) and np.shape(value) != current.shape:
                raise ValueError(f"{name} has shape {np.shape(value)}, expected {current.shape}")
            setattr(self.agent, name, copy.deepcopy(value))


@dataclasses.dataclass(frozen=True)
class EpisodeCursor:
    """Where the driver stands between calls of run_steps."""

    s: int | None = None
    """Current state; None before the first step of an episode."""
    a: int | None = None
    """The action chosen for s."""
    episode_return: float = 0.0
    episode_length: int = 0
    reset_seed: int | None = None
    """Seed of the next reset: the first episode's only; later ones continue its stream."""


def run_steps(env: gym.Env, agent: Any, cursor: EpisodeCursor, max_steps: float = math.inf, max_episodes: float = math.inf) -> tuple[int, Episodes, EpisodeCursor]:
    """Run the agent for up to max_steps env steps or until max_episodes episodes have ended,
    continuing the episode at `cursor`. Returns (steps, finished episodes, new cursor)."""
    s, a, reset_seed = cursor.s, cursor.a, cursor.reset_seed
    ep_return, ep_length = cursor.episode_return, cursor.episode_length
    episodes = Episodes([], [])
    steps = 0
    while steps < max_steps and len(episodes.returns) < max_episodes:
        if s is None:
            s = int(env.reset(seed=reset_seed)[0])
            reset_seed = None
            a = agent.begin(s)
        s2, r, terminated, truncated, _ = env.step(a)
        s2, r = int(s2), float(r)
        a2 = agent.step(s, a, r, s2, terminated, truncated)
        steps += 1
        ep_return += r
        ep_length += 1
        if terminated or truncated:
            episodes.returns.append(ep_return)
            episodes.lengths.append(ep_length)
            ep_return, ep_length, s, a = 0.0, 0, None, None
        else:
            s, a = s2, a2
    return steps, episodes, EpisodeCursor(s, a, ep_return, ep_length, reset_seed)


class GreedyPolicy:
    """argmax_a Q(s, a) with a deterministic tie-break: what evaluation and rlsuite.load use.
    `tables` holds q and the greedy action of every state ("policy")."""

    def __init__(self, q: np.ndarray, v: np.ndarray | None = None, policy: np.ndarray | None = None):
        self.q = np.asarray(q, dtype=np.float64)
        self.policy = td.greedy(self.q) if policy is None else np.asarray(policy, dtype=np.int64)
        self.tables = {"q": self.q, "policy": self.policy} | ({} if v is None else {"v": np.asarray(v, dtype=np.float64)})
        self.observation_space, self.action_space = spaces.Discrete(self.q.shape[0]), spaces.Discrete(self.q.shape[1])

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        return self.policy[np.asarray(obs).astype(np.int64)]


def save_tables(directory: Path, **tables: np.ndarray) -> None:
    """A tabular export: one .npy per table (q, and for DP runs v and policy)."""
    for name, table in tables.items():
        np.save(directory / f"{name}.npy", np.asarray(table))


def load_greedy(config: Any, directory: Path) -> GreedyPolicy:
    """The policy of a tabular export: greedy in q (Q1 + Q2 for double Q-learning), with v and
    the stored policy when the export has them (DP runs)."""
    tables = {p.stem: np.load(p) for p in directory.glob("*.npy")}
    return GreedyPolicy(tables["q"], tables.get("v"), tables.get("policy"))


@dataclasses.dataclass(frozen=True)
class TabularState:
    cursor: EpisodeCursor
    episodes: int
    """Episodes finished so far: the x-axis of the book's figures."""


def train_tabular(algo: str, config: TabularControlConfig, make_agent: MakeAgent, run_dir=None, **options: Any) -> Run:
    """Train `make_agent(n_states, n_actions, rng)` on config.env: metrics.csv gets per-episode
    returns and lengths, evaluations run the greedy policy, checkpoints hold the agent's STATE,
    the driver's cursor and the env (so resume continues mid-episode)."""
    info = resolve(config.env)
    require(info, algo, ACTS_ON)
    agent = make_agent(int(info.observation_space.n), int(info.action_space.n), np.random.default_rng(config.seed))
    env = CheckpointableEnv(gym.make(config.env))
    greedy = lambda obs: td.greedy(agent.q_values()[np.asarray(obs).astype(np.int64)])  # noqa: E731
    with Loop(
        algo, config, run_dir, budget=config.budget, schedule=config.schedule,
        parts={"agent": AgentState(agent), "env": env},
        evaluate=EpisodeEvaluator(config.env, config.eval_episodes, greedy, config.seed, max_steps=config.eval_max_steps, mode="sync"),
        export=lambda directory: save_tables(directory, q=agent.q_values()),
        **options,
    ) as loop:
        state = loop.start(lambda: TabularState(EpisodeCursor(reset_seed=config.seed), 0))
        while loop.running():
            budget = min(ITERATION_STEPS, config.total_steps - loop.step)
            steps, episodes, cursor = run_steps(env.env, agent, state.cursor, max_steps=budget)
            state = TabularState(cursor, state.episodes + len(episodes.returns))
            loop.record(steps, {"charts/episodes": float(state.episodes)}, episodes=episodes, state=state)
        return loop.finish()


def averaged_returns(make_agent: MakeAgent, make_env: Callable[[], gym.Env] | str, runs: int, episodes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
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
            _, finished, _ = run_steps(env, agent, EpisodeCursor(reset_seed=seed * 100_003 + i), max_episodes=episodes)
        finally:
            env.close()
        all_returns[i], all_lengths[i] = finished.returns, finished.lengths
    return all_returns, all_lengths


# The module-level entry points of an algorithm file, built from its Agent class, whose
# constructor is Agent(n_states, n_actions, config, rng).


def agent_factory(Agent: type) -> Callable[[TabularControlConfig], MakeAgent]:
    """config -> make_agent(n_states, n_actions, rng) = Agent(n_states, n_actions, config, rng)."""

    def factory(config: TabularControlConfig) -> MakeAgent:
        return lambda n_states, n_actions, rng: Agent(n_states, n_actions, config, rng)

    return factory


def averaged_returns_of(Agent: type) -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """`averaged_returns(config, runs, episodes, make_env=None)` for Agent."""
    make_agent = agent_factory(Agent)

    def curves(config: TabularControlConfig, runs: int, episodes: int, make_env=None) -> tuple[np.ndarray, np.ndarray]:
        """Online returns and lengths [runs, episodes] of independent agents (e.g. Example 6.6's curves)."""
        return averaged_returns(make_agent(config), make_env or config.env, runs, episodes, config.seed)

    return curves


def trainer(algo: str, Agent: type) -> Callable[..., Run]:
    """`train(config, run_dir=None, **options)` of algorithm `algo` (options: the Loop's)."""
    make_agent = agent_factory(Agent)

    def train(config: TabularControlConfig, run_dir=None, **options: Any) -> Run:
        return train_tabular(algo, config, make_agent(config), run_dir, **options)

    train.__doc__ = f"Train {algo} on config.env; returns the Run (directory, evaluations, timing)."
    return train
