"""The k-armed testbed of Sutton & Barto (2nd ed.) chapter 2, as a Gymnasium env.

One step pulls one arm: the action is the arm, the reward comes from that arm, the observation is
always 0 (Discrete(1)), and an episode never terminates (it is truncated after `steps` pulls when
`steps` is given). `reset()` draws a new testbed, i.e. new true values q*(a), from the env's seed.

Gymnasium ids registered when this module is imported (each with the single env as `entry_point`
and `BanditVectorEnv` as `vector_entry_point`, so `gym.make_vec(id, num_envs=2000)` simulates
2,000 independent runs, one testbed each, as NumPy arrays):

    bandit-10                 10 arms, q*(a) ~ N(0, 1), R ~ N(q*(A), 1)      (Figures 2.2-2.4)
    bandit-10-offset4         the same with q*(a) ~ N(4, 1)                    (Figure 2.5)
    bandit-10-nonstationary   q*(a) start equal at 0 and take independent random walks,
                              q*(a) += N(0, 0.01^2) after every step         (Exercise 2.5)
    bandit-10-bernoulli       R ~ Bernoulli(p_a), p_a ~ Uniform(0, 1); q*(a) = p_a

`info` of every step holds `optimal_action` (argmax_a q*(a) when the arm was pulled) and `regret`
(q*(a*) - q*(A), the expected reward lost by this pull). Keyword arguments (`k`, `reward`, `mean`,
`walk_std`, `steps`) can be passed to `gym.make`/`gym.make_vec` to vary a testbed.
"""

from __future__ import annotations

from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from rlsuite.errors import ConfigError

Reward = Literal["gaussian", "bernoulli"]
REWARDS = ("gaussian", "bernoulli")

IDS: dict[str, dict[str, Any]] = {
    "bandit-10": dict(k=10, reward="gaussian", mean=0.0, walk_std=0.0),
    "bandit-10-offset4": dict(k=10, reward="gaussian", mean=4.0, walk_std=0.0),
    "bandit-10-nonstationary": dict(k=10, reward="gaussian", mean=0.0, walk_std=0.01),
    "bandit-10-bernoulli": dict(k=10, reward="bernoulli", mean=0.0, walk_std=0.0),
}


def _check_args(k: int, reward: str, walk_std: float, steps: int | None) -> None:
    if not (isinstance(k, (int, np.integer)) and k >= 1):
        raise ConfigError(f"a bandit needs at least one arm; got k={k!r}. Pass k >= 1 (e.g. --arms 10).")
    if reward not in REWARDS:
        raise ConfigError(f"reward must be one of {', '.join(REWARDS)}; got {reward!r}.")
    if walk_std < 0:
        raise ConfigError(f"walk_std (random-walk std of q*) must be >= 0, got {walk_std}.")
    if steps is not None and steps < 1:
        raise ConfigError(f"steps must be >= 1 or None (never truncate), got {steps}.")


def draw_q_star(rng: np.random.Generator, shape: tuple[int, ...], reward: str, mean: float, walk_std: float) -> np.ndarray:
    """A testbed's true values q*(a) for every run: shape [..., k]."""
    if reward == "bernoulli":
        return rng.uniform(0.0, 1.0, shape)
    if walk_std > 0:  # Exercise 2.5: all q*(a) start out equal, then walk apart
        return np.full(shape, float(mean))
    return rng.normal(mean, 1.0, shape)


def pull(rng: np.random.Generator, q_star: np.ndarray, actions: np.ndarray, reward: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Rewards of pulling arm actions[i] of testbed q_star[i], and the step's info."""
    rows = np.arange(q_star.shape[0])
    q_a = q_star[rows, actions]
    if reward == "bernoulli":
        rewards = (rng.random(q_a.shape) < q_a).astype(np.float64)
    else:
        rewards = q_a + rng.standard_normal(q_a.shape)
    optimal = q_star.argmax(axis=1)
    info = {"optimal_action": optimal, "regret": q_star[rows, optimal] - q_a}
    return rewards, info


def walk(rng: np.random.Generator, q_star: np.ndarray, reward: str, walk_std: float) -> None:
    """Non-stationary arms: an independent N(0, walk_std^2) increment for every q*(a), in place."""
    if walk_std > 0:
        q_star += rng.normal(0.0, walk_std, q_star.shape)
        if reward == "bernoulli":
            np.clip(q_star, 0.0, 1.0, out=q_star)


class BanditEnv(gym.Env):
    """One k-armed bandit run. Use `BanditVectorEnv` (or `gym.make_vec`) for many runs at once."""

    metadata = {"render_modes": []}

    def __init__(self, k: int = 10, reward: Reward = "gaussian", mean: float = 0.0, walk_std: float = 0.0, steps: int | None = None):
        _check_args(k, reward, walk_std, steps)
        self.k, self.reward, self.mean, self.walk_std, self.steps = int(k), reward, float(mean), float(walk_std), steps
        self.action_space = spaces.Discrete(self.k)
        self.observation_space = spaces.Discrete(1)
        self.q_star = np.zeros(self.k)
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        super().reset(seed=seed)
        self.q_star = draw_q_star(self.np_random, (self.k,), self.reward, self.mean, self.walk_std)
        self.t = 0
        return 0, {"optimal_action": int(self.q_star.argmax())}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(action):
            raise ValueError(f"action must be an arm in 0..{self.k - 1}, got {action!r}")
        rewards, info = pull(self.np_random, self.q_star[None], np.array([int(action)]), self.reward)
        walk(self.np_random, self.q_star[None], self.reward, self.walk_std)
        self.t += 1
        truncated = self.steps is not None and self.t >= self.steps
        return 0, float(rewards[0]), False, truncated, {"optimal_action": int(info["optimal_action"][0]), "regret": float(info["regret"][0])}


class BanditVectorEnv(VectorEnv):
    """num_envs independent runs, each its own testbed, simulated together with NumPy.

    Like Gymnasium's CartPoleVectorEnv: autoreset is NEXT_STEP, so when `steps` is given, the step
    after a run's truncation draws that run a new testbed and returns reward 0.
    """

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 1, k: int = 10, reward: Reward = "gaussian", mean: float = 0.0, walk_std: float = 0.0, steps: int | None = None):
        if num_envs < 1:
            raise ConfigError(f"a bandit testbed needs at least one run; got num_envs={num_envs}.")
        _check_args(k, reward, walk_std, steps)
        self.num_envs, self.k, self.reward, self.mean = int(num_envs), int(k), reward, float(mean)
        self.walk_std, self.steps = float(walk_std), steps
        self.single_action_space = spaces.Discrete(self.k)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.single_observation_space = spaces.Discrete(1)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.q_star = np.zeros((self.num_envs, self.k))
        self.t = np.zeros(self.num_envs, dtype=np.int64)
        self.prev_done = np.zeros(self.num_envs, dtype=bool)
        self._obs = np.zeros(self.num_envs, dtype=np.int64)
        self._all = np.ones(self.num_envs, dtype=bool)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.q_star = draw_q_star(self.np_random, (self.num_envs, self.k), self.reward, self.mean, self.walk_std)
        self.t[:] = 0
        self.prev_done[:] = False
        return self._obs.copy(), {"optimal_action": self.q_star.argmax(axis=1), "_optimal_action": self._all.copy()}

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,) or actions.min() < 0 or actions.max() >= self.k:
            raise ValueError(f"actions must be {self.num_envs} arms in 0..{self.k - 1}, got shape {actions.shape}")
        if self.prev_done.any():
            fresh = draw_q_star(self.np_random, (int(self.prev_done.sum()), self.k), self.reward, self.mean, self.walk_std)
            self.q_star[self.prev_done] = fresh
            self.t[self.prev_done] = 0
        rewards, info = pull(self.np_random, self.q_star, actions, self.reward)
        walk(self.np_random, self.q_star, self.reward, self.walk_std)
        self.t += 1
        truncated = self.t >= self.steps if self.steps is not None else np.zeros(self.num_envs, dtype=bool)
        if self.prev_done.any():
            rewards[self.prev_done] = 0.0
            info["regret"][self.prev_done] = 0.0
            self.t[self.prev_done] = 0
            truncated[self.prev_done] = False
        self.prev_done = truncated.copy()
        info["_optimal_action"] = info["_regret"] = self._all
        return self._obs.copy(), rewards, np.zeros(self.num_envs, dtype=bool), truncated, info


def register() -> None:
    for env_id, kwargs in IDS.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point="rlsuite.envs.bandits:BanditEnv",
                vector_entry_point="rlsuite.envs.bandits:BanditVectorEnv",
                kwargs=dict(kwargs),
            )


register()
