"""Rejection sampling: best-of-n completions kept as a new SFT dataset. DeepSeek-R1 (arXiv:2501.12948,
sec. 2.3.3) does this after reasoning RL: sample several answers per prompt from the RL
checkpoint, keep only the correct ones, and fine-tune on them; Llama 2 keeps the reward model's
best of n. Here each prompt gets `num_samples` completions, scored by reward functions or a reward
model (`--rewards model:RUN`); its best `keep_per_prompt` distinct completions scoring at least
`min_score` become rows of `dataset.jsonl` in the run's model/ folder, with the prompt, the
completion, the score and the task's own columns, ready for `rlsuite train sft --task RUN/model/dataset.jsonl`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from rlsuite.core.config import Budget
from rlsuite.core.loop import Figure, Loop
from rlsuite.core.run import Run
from rlsuite.core.spec import ActsOn, AlgorithmSpec
from rlsuite.errors import check
from rlsuite.lm import runtime, scalar
from rlsuite.lm.config import LMConfig
from rlsuite.lm.generation import make_generator
from rlsuite.lm.runtime import PromptOrder
from rlsuite.ops import rewards

DATASET = "dataset.jsonl"


@dataclasses.dataclass(frozen=True)
class RejectionSamplingConfig(LMConfig):
    total_steps: int = 2000
    """Prompts to sample for (the budget counts prompts, not optimizer steps)."""
    num_samples: int = 8
    """n: completions sampled per prompt."""
    batch_size: int = 32
    """Prompts per generation batch."""
    temperature: float = 1.0
    top_p: float = 1.0
    rewards: tuple[str, ...] = ("accuracy", "format")
    """Scorers (rlsuite.ops.rewards.REWARDS, or model:PATH for a trained reward model), summed with reward_weights."""
    reward_weights: tuple[float, ...] = (1.0, 0.1)
    min_score: float = 1.0
    """Keep a completion only when it scores at least this (accuracy + 0.1 format: 1.0 keeps the correct ones)."""
    keep_per_prompt: int = 1
    """The best this many distinct accepted completions of each prompt are kept."""
    generator: str = "auto"
    eval_every: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.num_samples >= 1 and self.batch_size >= 1 and self.keep_per_prompt >= 1,
              "num_samples, batch_size and keep_per_prompt must be >= 1.")
        check(self.temperature > 0, f"temperature must be > 0, got {self.temperature}.")
        check(len(self.reward_weights) == len(self.rewards), "give one reward weight per reward function.")
        unknown = [r for r in self.rewards if not rewards.is_known(r)]
        check(not unknown, f"unknown reward function(s) {', '.join(unknown)}; choose from {', '.join(rewards.REWARDS)} or model:PATH.")

    @property
    def budget(self) -> Budget:
        return Budget(self.total_steps, "prompts")


class RejectionSamplingState(NamedTuple):
    order: PromptOrder
    accepted: tuple[dict, ...] = ()


def select(texts: list[str], scores: np.ndarray, min_score: float, keep: int) -> list[int]:
    """Indices of the best `keep` distinct completions scoring >= min_score, best first (ties: first sampled)."""
    chosen, seen = [], set()
    for i in sorted(range(len(texts)), key=lambda i: -scores[i]):
        if scores[i] >= min_score and texts[i] not in seen and texts[i].strip():
            chosen.append(i)
            seen.add(texts[i])
        if len(chosen) == keep:
            break
    return chosen


def write_dataset(rows: tuple[dict, ...], directory: Path) -> None:
    with (Path(directory) / DATASET).open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def train(config: RejectionSamplingConfig, run_dir=None, **options) -> Run:
    run = runtime.setup(config, needs=("prompt",))
    dp = run.dp
    generator = make_generator(config.generator, run.model, run.tokenizer, run.device, seed=config.seed)
    scorers = {n: scalar.reward_function(n, device=run.device) for n in config.rewards}
    weights = dict(zip(config.rewards, config.reward_weights))
    state_box = [RejectionSamplingState(PromptOrder())]
    with Loop("rejection_sampling", config, run_dir, budget=config.budget, schedule=config.schedule,
              export=lambda directory: write_dataset(state_box[0].accepted, directory),
              figures={"curve.png": Figure(("acceptance_rate",))}, **dp.loop_options(options)) as loop:
        dp.attach(loop)
        state = state_box[0] = loop.start(lambda: state_box[0])
        run.model.eval()
        while loop.running():
            n = min(config.batch_size, loop.budget.total - loop.step)
            indices, order = state.order.take(n, len(run.train_prompts), config.seed)
            dp.reseed(config.seed, loop.step)
            totals, accepted, prompts_accepted = sample_and_select(config, run, generator, scorers, weights, dp.shard(indices))
            # Every process gathers every process's rows, in prompt order: the same state (and dataset) everywhere.
            totals = np.concatenate(dp.all_gather(totals))
            accepted = tuple(row for part in dp.all_gather(accepted) for row in part)
            state = state_box[0] = RejectionSamplingState(order, state.accepted + accepted)
            loop.record(n, {"acceptance_rate": dp.sum(prompts_accepted) / n, "mean_score": float(totals.mean()),
                            "best_score": float(totals.max(1).mean()), "accepted_rows": float(len(state.accepted))}, state=state)
        return dp.finish(loop)


def sample_and_select(config: RejectionSamplingConfig, run, generator, scorers, weights, indices: list[int]):
    """Sample num_samples completions for each prompt `indices`, score them, keep the best:
    (scores [prompts, n], the accepted rows, how many prompts had one)."""
    rows = [run.task.train[i] for i in indices]
    if not rows:  # a process left without prompts by the last, short batch
        return np.zeros((0, config.num_samples)), [], 0
    out = generator.generate([run.train_prompts[i] for i in indices], num_generations=config.num_samples,
                             max_new_tokens=config.max_completion_length, temperature=config.temperature, top_p=config.top_p)
    texts = runtime.completions_text(run.tokenizer, out.ids, out.mask)
    cols = runtime.columns(rows, run.task.reward_columns, config.num_samples)
    cols["prompts"] = [row["prompt"] for row in rows for _ in range(config.num_samples)]
    totals, _ = rewards.score(scorers, weights, runtime.as_conversation(texts), **cols)
    totals = np.asarray(totals, dtype=np.float64).reshape(len(rows), config.num_samples)
    accepted, prompts_accepted = [], 0
    for r, row in enumerate(rows):
        group = texts[r * config.num_samples:(r + 1) * config.num_samples]
        chosen = select(group, totals[r], config.min_score, config.keep_per_prompt)
        prompts_accepted += bool(chosen)
        kept = {k: v for k, v in row.items() if k != "completion" and _jsonable(v)}
        accepted.extend({**kept, "completion": group[i], "score": float(totals[r, i])} for i in chosen)
    return totals, accepted, prompts_accepted


def _jsonable(value) -> bool:
    try:
        json.dumps(value)
        return not (isinstance(value, float) and math.isnan(value))
    except TypeError:
        return False


SPEC = AlgorithmSpec(
    name="rejection_sampling",
    family="llm",
    summary="best-of-n sampling scored by reward functions or a reward model, written out as an SFT dataset (model/dataset.jsonl)",
    config=RejectionSamplingConfig,
    train=train,
    acts_on=ActsOn("text"),
    no_policy_reason="a rejection-sampling run has no policy: it writes a dataset, model/dataset.jsonl, for `rlsuite train sft --task RUN/model/dataset.jsonl`",
)
preset = SPEC.preset
