"""A small supervised trainer that is not reinforcement learning at all, built on the same Loop
as every algorithm: the proof that the loop knows no Gymnasium.

Linear regression on synthetic data; the budget is optimizer steps; each step trains on a fresh
batch plus a replay of earlier examples (a `DirectoryPart` that saves itself as arrays, as a
replay buffer would); evaluation is a held-out metric; the export is a directory.

Run as a script (`python regression_trainer.py RUN_DIR TOTAL_STEPS`) it trains until done or
until Ctrl-C / SIGTERM, and exits 4 when interrupted.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

from rlsuite.core.config import BaseConfig, Budget, Schedule
from rlsuite.core.loop import Loop
from rlsuite.core.run import Run

TRUE_WEIGHTS = np.array([1.5, -2.0, 0.5], np.float32)


@dataclasses.dataclass(frozen=True)
class RegressionConfig(BaseConfig):
    total_steps: int = 200
    batch_size: int = 8
    learning_rate: float = 0.05
    eval_every: int = 50
    checkpoint_every: int = 0
    checkpoint_seconds: float = 60.0
    log_every: int = 10
    eval_at_start: bool = False


class SeenExamples:
    """Every example trained on so far; saved as .npy files in its own checkpoint directory."""

    def __init__(self) -> None:
        self.x = np.zeros((0, 3), np.float32)
        self.y = np.zeros(0, np.float32)

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = np.concatenate([self.x, x]), np.concatenate([self.y, y])

    def save_to(self, directory: Path) -> None:
        np.save(directory / "x.npy", self.x)
        np.save(directory / "y.npy", self.y)

    def load_from(self, directory: Path) -> None:
        self.x, self.y = np.load(directory / "x.npy"), np.load(directory / "y.npy")


@dataclasses.dataclass(frozen=True)
class DataStream:
    rng: np.random.Generator
    batches: int


def batch(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(size=(n, 3)).astype(np.float32)
    return x, (x @ TRUE_WEIGHTS + 0.1 * rng.normal(size=n)).astype(np.float32)


def train(config: RegressionConfig, run_dir=None, **options) -> Run:
    torch.manual_seed(config.seed)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    seen = SeenExamples()
    test_x, test_y = batch(np.random.default_rng([config.seed, 99]), 256)

    def evaluate(step: int) -> dict[str, float]:
        with torch.no_grad():
            error = model(torch.from_numpy(test_x))[:, 0] - torch.from_numpy(test_y)
        mse = float(error.pow(2).mean())
        return {"mse": mse, "r2": 1.0 - mse / float(test_y.var())}

    def export(directory: Path) -> None:
        torch.save(model.state_dict(), directory / "weights.pt")
        (directory / "README.txt").write_text("a linear model\n")

    schedule = Schedule(config.eval_every, config.checkpoint_every, config.checkpoint_seconds, config.log_every, config.eval_at_start)
    with Loop("regression", config, run_dir, budget=Budget(config.total_steps, "optimizer steps"), schedule=schedule,
              parts={"model": model, "optimizer": optimizer, "seen": seen}, evaluate=evaluate, export=export, **options) as loop:
        stream = loop.start(lambda: DataStream(np.random.default_rng(config.seed), 0))
        while loop.running():
            x, y = batch(stream.rng, config.batch_size)
            if len(seen.y):
                replay = stream.rng.integers(0, len(seen.y), config.batch_size)
                x_all, y_all = np.concatenate([x, seen.x[replay]]), np.concatenate([y, seen.y[replay]])
            else:
                x_all, y_all = x, y
            seen.add(x, y)
            loss = (model(torch.from_numpy(x_all))[:, 0] - torch.from_numpy(y_all)).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            stream = DataStream(stream.rng, stream.batches + 1)
            loop.record(1, {"losses/mse": loss.item()}, state=stream)
        return loop.finish()


if __name__ == "__main__":
    from regression_trainer import RegressionConfig, train  # pickled classes must not live in __main__

    run = train(RegressionConfig(total_steps=int(sys.argv[2]), eval_every=0, log_every=1000), sys.argv[1], quiet=True)
    sys.exit(4 if run.interrupted else 0)
