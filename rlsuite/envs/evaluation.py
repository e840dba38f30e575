"""Evaluation of a policy on Gymnasium environments: all episodes at once as one vector env,
and GIFs of one episode. Algorithms hand an `EpisodeEvaluator` to the loop as `evaluate`; teams
of agents on PettingZoo envs a `TeamEvaluator`."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rlsuite.core.loop import Figure
from rlsuite.core.seeding import derive_seed
from rlsuite.envs.multiagent import MultiAgentVectorEnv

ActFn = Callable[[np.ndarray], np.ndarray]


def run_episodes(act: ActFn, envs, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One episode in each sub-env of `envs`; returns (returns, lengths), one entry per sub-env.

    Sub-envs that finish early keep stepping (Gymnasium autoresets them), but their later
    rewards are not counted, so all episodes run in lock-step batches.
    """
    obs, _ = envs.reset(seed=seed)
    n = envs.num_envs
    returns = np.zeros(n)
    lengths = np.zeros(n, dtype=np.int64)
    active = np.ones(n, dtype=bool)
    while active.any():
        obs, reward, terminated, truncated, _ = envs.step(act(obs))
        returns += np.where(active, reward, 0.0)
        lengths += active
        active &= ~(terminated | truncated)
    return returns, lengths


def episode_summary(returns: np.ndarray, lengths: np.ndarray) -> dict[str, float]:
    """The row an evaluation writes to eval.csv; mean_return first, as the headline."""
    return {
        "mean_return": float(returns.mean()),
        "std_return": float(returns.std()),
        "min_return": float(returns.min()),
        "max_return": float(returns.max()),
        "mean_length": float(lengths.mean()),
        "episodes": float(len(returns)),
    }


class EpisodeEvaluator:
    """evaluate(step) for the loop: `episodes` episodes of the deterministic policy `act`, on
    their own env copies seeded apart from training (and by step, so a resumed run evaluates
    exactly as an uninterrupted one)."""

    def __init__(self, env_id: str, episodes: int, act: ActFn, seed: int, *, max_steps: int | None = None, mode: str | None = None):
        self.env_id, self.episodes, self.act, self.seed = env_id, episodes, act, seed
        self.max_steps, self.mode = max_steps, mode
        self.envs = None

    def __call__(self, step: int) -> dict[str, float]:
        from rlsuite.envs.vector import make_vector_env

        if self.envs is None:
            self.envs = make_vector_env(self.env_id, self.episodes, mode=self.mode, default_time_limit=self.max_steps)
        returns, lengths = run_episodes(self.act, self.envs, derive_seed(self.seed, "eval", step))
        return episode_summary(returns, lengths)

    def close(self) -> None:
        if self.envs is not None:
            self.envs.close()
            self.envs = None


def quiet_rendering() -> None:
    """Render off-screen without SDL's display warnings (e.g. 'XDG_RUNTIME_DIR not set') or
    pygame's banner: rgb_array rendering needs no display."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    if "XDG_RUNTIME_DIR" not in os.environ:
        import tempfile

        os.environ["XDG_RUNTIME_DIR"] = tempfile.gettempdir()


def record_video(act: ActFn, env_id: str, path: str | Path, seed: int, fps: int | None = None, max_frames: int = 2_000) -> tuple[float, int]:
    """Render one episode with `rgb_array` and write it as a GIF (or any format imageio knows)."""
    quiet_rendering()
    import gymnasium as gym
    import imageio.v3 as iio

    env = gym.make(env_id, render_mode="rgb_array")
    try:
        obs, _ = env.reset(seed=seed)
        frames = [env.render()]
        total, done = 0.0, False
        while not done and len(frames) < max_frames:
            action = act(np.asarray(obs)[None])[0]
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
            frames.append(env.render())
        fps = fps or env.metadata.get("render_fps", 30)
    finally:
        env.close()
    iio.imwrite(path, np.stack(frames), duration=1000 / fps, loop=0)
    return total, len(frames) - 1


# --- teams (rlsuite.envs.multiagent) ---------------------------------------------------------------------------

def run_team_episodes(act: Callable[[np.ndarray], np.ndarray], envs: MultiAgentVectorEnv, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One episode in each copy with act(obs [N, A, ...]) -> actions [N, A]: (team returns [N],
    agent returns [N, A], lengths [N]). Copies that finish first idle until the last one ends."""
    obs, _, _ = envs.reset(seed=seed)
    n = envs.num_envs
    agent_returns, lengths = np.zeros((n, envs.num_agents)), np.zeros(n, dtype=np.int64)
    active = np.ones(n, dtype=bool)
    while active.any():
        step = envs.step(act(obs))
        obs = step.obs
        agent_returns += np.where(active[:, None], step.rewards, 0.0)
        lengths += active
        active &= step.alive.any(1)  # a copy whose agents have all left has ended its episode
    return agent_returns.sum(1), agent_returns, lengths


def agent_columns(agents: tuple[str, ...]) -> tuple[str, ...]:
    """The eval.csv columns of each agent's return, in the agents' order."""
    return tuple(f"return_{name}" for name in agents)


def team_figures(agents: tuple[str, ...]) -> dict:
    """The Loop's figures for a team: the team return (curve.png) and each agent's (agents.png)."""
    return {"curve.png": Figure(), "agents.png": Figure(agent_columns(agents))}


class TeamEvaluator:
    """evaluate(step) for the loop: `episodes` episodes of the deterministic joint policy on their
    own copies, seeded apart from training and by step. The row has the team return first (the
    headline), then each agent's."""

    def __init__(self, env_id: str, episodes: int, act: Callable[[np.ndarray], np.ndarray], seed: int, env_kwargs: dict | None = None):
        self.env_id, self.episodes, self.act, self.seed = env_id, episodes, act, seed
        self.env_kwargs = env_kwargs or {}
        self.envs: MultiAgentVectorEnv | None = None

    def __call__(self, step: int) -> dict[str, float]:
        if self.envs is None:
            self.envs = MultiAgentVectorEnv(self.env_id, self.episodes, **self.env_kwargs)
        team, agents, lengths = run_team_episodes(self.act, self.envs, derive_seed(self.seed, "eval", step))
        per_agent = {column: float(agents[:, i].mean()) for i, column in enumerate(agent_columns(self.envs.agents))}
        return episode_summary(team, lengths) | per_agent

    def close(self) -> None:
        if self.envs is not None:
            self.envs.close()
            self.envs = None


def record_team_video(act: Callable[[np.ndarray], np.ndarray], env_id: str, path, seed: int, max_frames: int = 2_000,
                      env_kwargs: dict | None = None) -> tuple[float, int]:
    """One episode rendered with rgb_array, written as a GIF: (team return, steps)."""
    import imageio.v3 as iio

    quiet_rendering()
    envs = MultiAgentVectorEnv(env_id, 1, render_mode="rgb_array", **(env_kwargs or {}))
    try:
        obs, _, _ = envs.reset(seed=seed)
        frames, total, on = [envs.render()], 0.0, True
        while on and len(frames) < max_frames:
            step = envs.step(act(obs))
            obs, total, on = step.obs, total + float(step.rewards.sum()), step.alive.any()
            frames.append(envs.render())
        fps = envs.envs[0].metadata.get("render_fps", 10)
    finally:
        envs.close()
    iio.imwrite(path, np.stack(frames), duration=1000 / fps, loop=0)
    return total, len(frames) - 1
