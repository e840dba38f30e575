"""Evaluation of a policy on Gymnasium environments: all episodes at once as one vector env,
and GIFs of one episode. Algorithms hand an `EpisodeEvaluator` to the loop as `evaluate`."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rlsuite.core.seeding import derive_seed

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
