"""Independent Q-learning (Tan 1993, "Multi-Agent Reinforcement Learning: Independent vs.
Cooperative Agents"): every agent runs tabular Q-learning (Sutton & Barto eq. 6.8) on its own
observation and reward, treating its teammates as part of the environment.

    Q_i(o, a) <- Q_i(o, a) + alpha [r_i + gamma max_a' Q_i(o', a') - Q_i(o, a)]

o' is agent i's next observation; the max term is dropped when agent i's trajectory terminated
(it reached its goal and left), kept when it was truncated by the time limit. The teammates keep
learning too, so agent i's environment is not stationary: the classic caveat of IQL, which works
on small cooperative tasks such as rlsuite/grid_goals_v0.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from rlsuite.core import config as configs
from rlsuite.core.loop import Episodes, Loop
from rlsuite.core.run import Run
from rlsuite.core.seeding import derive_seed
from rlsuite.core.spec import ActsOn, AlgorithmSpec
from rlsuite.envs.checkpointing import CheckpointableEnv
from rlsuite.envs.evaluation import TeamEvaluator, team_figures
from rlsuite.envs.multiagent import MultiAgentVectorEnv, parse_env_kwargs
from rlsuite.envs.resolver import require, resolve
from rlsuite.errors import check
from rlsuite.ops import td
from rlsuite.rollout.multiagent import TeamCursor


@dataclasses.dataclass(frozen=True)
class IQLConfig(configs.TrainConfig):
    env: str = "rlsuite/grid_goals_v0"
    """A multi-agent env whose agents observe one integer each (Discrete), e.g. rlsuite/grid_goals_v0."""
    env_kwargs: tuple[str, ...] = ()
    """Keyword arguments of the env's parallel_env() as key=value, values read as YAML (e.g. N=4 local_ratio=0 max_cycles=50)."""
    total_steps: int = 200_000
    """Environment steps to train for (one step of one env copy, all agents acting)."""
    eval_every: int = 20_000
    eval_episodes: int = 32
    num_envs: int = 4
    """Parallel copies of the env (their updates are applied one copy after another)."""
    gamma: float = 0.98
    alpha: float = 0.2
    """Step size of the TD update, in (0, 1]."""
    epsilon: float = 0.1
    """Probability of a uniformly random action in each agent's epsilon-greedy behaviour policy."""

    def __post_init__(self) -> None:
        super().__post_init__()
        parse_env_kwargs(self.env_kwargs)
        check(self.num_envs >= 1, f"num_envs must be >= 1, got {self.num_envs}.")
        check(0 <= self.gamma <= 1, f"gamma must be in [0, 1], got {self.gamma}.")
        check(0 < self.alpha <= 1, f"alpha (step size) must be in (0, 1], got {self.alpha}.")
        check(0 <= self.epsilon <= 1, f"epsilon must be in [0, 1], got {self.epsilon}.")


PRESETS: dict[str, dict[str, Any]] = {"rlsuite/grid_goals_v0": {}}
ITERATION_STEPS = 100
"""Vector steps between the loop's bookkeeping (evaluations and checkpoints fall between iterations)."""


class TeamTables:
    """One Q-table per agent, Q[i, o, a], and the exploration RNG: a checkpoint part, and once
    exported, the team's greedy policy: predict(obs [B, A]) -> actions [B, A]."""

    def __init__(self, q: np.ndarray, rng: np.random.Generator | None = None):
        self.q, self.rng = q, rng
        self.num_agents = q.shape[0]
        self.observation_space = spaces.Box(0, q.shape[1] - 1, (self.num_agents,), np.int64)
        self.action_space = spaces.Discrete(q.shape[2])
        self.tables = {"q": q}

    def predict(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Agent i's greedy action in its own observation obs[..., i] (lowest index on ties)."""
        return td.greedy(self.q[np.arange(self.num_agents), np.asarray(obs).astype(np.int64)])

    def state_dict(self) -> dict[str, Any]:
        return {"q": self.q.copy(), "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["q"].shape != self.q.shape:
            raise ValueError(f"q has shape {state['q'].shape}, expected {self.q.shape}")
        self.q[...] = state["q"]
        self.rng.bit_generator.state = state["rng"]


def learn_step(q: np.ndarray, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_obs: np.ndarray,
               terminated: np.ndarray, acted: np.ndarray, config: IQLConfig) -> None:
    """Q-learning for every agent that acted, in place; arrays are [N, A]. Copies are applied in
    order, so two copies' updates of the same (o, a) compose."""
    for n, i in zip(*np.nonzero(acted)):
        target = td.q_learning_target(float(rewards[n, i]), config.gamma, q[i, next_obs[n, i]], bool(terminated[n, i]))
        q[i, obs[n, i], actions[n, i]] = td.td_update(q[i, obs[n, i], actions[n, i]], target, config.alpha)


def behave(q: np.ndarray, obs: np.ndarray, epsilon: float, rng: np.random.Generator) -> np.ndarray:
    """Each agent epsilon-greedy in its own Q-table (random tie-breaking): actions [N, A]."""
    agents = np.arange(q.shape[0])
    return np.array([[td.epsilon_greedy(q[i, obs[n, i]], epsilon, rng) for i in agents] for n in range(obs.shape[0])])


def train(config: IQLConfig, run_dir=None, **options: Any) -> Run:
    """Train independent Q-learners on config.env; returns the Run. `options` are the Loop's."""
    env_kwargs = parse_env_kwargs(config.env_kwargs)
    require(resolve(config.env, **env_kwargs), "iql", SPEC.acts_on)
    envs = CheckpointableEnv(MultiAgentVectorEnv(config.env, config.num_envs, **env_kwargs))
    shape = (envs.env.num_agents, int(envs.env.spaces.observation_space.n), int(envs.env.spaces.action_space.n))
    tables = TeamTables(np.zeros(shape), np.random.default_rng(derive_seed(config.seed, "explore")))
    agents = envs.env.agents
    with Loop(
        "iql", config, run_dir, budget=config.budget, schedule=config.schedule,
        parts={"agent": tables, "envs": envs},
        evaluate=TeamEvaluator(config.env, config.eval_episodes, tables.predict, config.seed, env_kwargs),
        export=lambda directory: np.save(directory / "q.npy", tables.q),
        figures=team_figures(agents), **options,
    ) as loop:
        cursor = loop.start(lambda: TeamCursor.reset(envs.env, derive_seed(config.seed, "train-envs")))
        while loop.running():
            team_returns, lengths = [], []
            vector_steps = min(ITERATION_STEPS, -(-(config.total_steps - loop.step) // config.num_envs))
            for _ in range(vector_steps):
                actions = behave(tables.q, cursor.obs, config.epsilon, tables.rng)
                step = envs.env.step(actions)
                learn_step(tables.q, cursor.obs, actions, step.rewards, step.obs, step.terminated, cursor.alive, config)
                team_returns += step.team_returns
                lengths += step.lengths
                cursor = TeamCursor(step.obs, step.state, step.alive)
            loop.record(vector_steps * config.num_envs, episodes=Episodes(team_returns, lengths), state=cursor)
        return loop.finish()


def load(config: IQLConfig, directory: Path) -> TeamTables:
    return TeamTables(np.load(directory / "q.npy"))


SPEC = AlgorithmSpec(
    name="iql",
    family="marl",
    summary="Independent Q-learning: one Q-table per agent on its own Discrete observation (rlsuite/grid_goals_v0)",
    config=IQLConfig,
    presets=PRESETS,
    train=train,
    load=load,
    acts_on=ActsOn("pettingzoo", observations=("Discrete",), actions=("Discrete",)),
)
preset = SPEC.preset
