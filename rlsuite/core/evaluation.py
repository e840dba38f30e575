"""Evaluation of a policy on a separate environment: all episodes at once as one vector env."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

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


def record_video(act: ActFn, env_id: str, path: str | Path, seed: int, fps: int | None = None, max_frames: int = 2_000) -> tuple[float, int]:
    """Render one episode with `rgb_array` and write it as a GIF (or any format imageio knows)."""
    import gymnasium as gym
    import imageio.v3 as iio

    env = gym.make(env_id, render_mode="rgb_array")
    try:
        obs, _ = env.reset(seed=seed)
        frames = [env.render()]
        total, done = 0.0, False
        while not done and len(frames) < max_frames:
            action = act(obs[None])[0]
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
            frames.append(env.render())
        fps = fps or env.metadata.get("render_fps", 30)
    finally:
        env.close()
    iio.imwrite(path, np.stack(frames), duration=1000 / fps, loop=0)
    return total, len(frames) - 1
