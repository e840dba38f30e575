"""A reward model from human (here: synthetic) preferences, the second stage of InstructGPT's RLHF
(Ouyang et al. 2022, eq. 1): a language model with a scalar head read at the completion's last
token (the EOS) is fitted to the Bradley-Terry model of the preferences,

    P(y_w > y_l | x) = sigmoid(r(x, y_w) - r(x, y_l))        L = -log sigmoid(r_w - r_l - m)

with an optional per-pair margin m (a `margin` column, Llama 2's rating gap) and optional reward
centering (Eisenstein et al. 2023): + c E[(r_w + r_l)^2] keeps rewards near zero, since the
Bradley-Terry likelihood only sees differences. The result scores text for GRPO
(`--rewards model:RUN`) and PPO-RLHF (`--reward-model RUN`); `rlsuite.load(RUN).score(...)` too.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import torch

from rlsuite.core.loop import Figure, Loop
from rlsuite.core.run import Run
from rlsuite.core.spec import ActsOn, AlgorithmSpec
from rlsuite.errors import check
from rlsuite.lm import models, runtime, scalar, sequences
from rlsuite.lm.config import LMConfig
from rlsuite.lm.runtime import PromptOrder
from rlsuite.ops import losses


@dataclasses.dataclass(frozen=True)
class RewardModelConfig(LMConfig):
    task: str = "arithmetic"
    """A preference set: 'arithmetic[:LEVEL]' or 'constraints' (built-in) or a local prompt/chosen/rejected file."""
    total_steps: int = 1000
    learning_rate: float = 1e-4
    """On the built-in model 1e-4 learned faster than 3e-4, 1e-3 or 3e-5 (bench/README.md)."""
    batch_size: int = 32
    """Preference pairs per optimizer step."""
    center_coefficient: float = 0.0
    """Weight of the reward-centering term (TRL's center_rewards_coefficient; 0.01 is the paper's)."""
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}.")
        check(self.center_coefficient >= 0, f"center_coefficient must be >= 0, got {self.center_coefficient}.")
        check(self.lora_r == 0, "lora_r is not supported for reward models (the whole model and its head are trained); use --lora-r 0.")


class RewardModelState(NamedTuple):
    order: PromptOrder


def pair_rewards(model, batch: sequences.SequenceBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """r(x, y_w) and r(x, y_l) of a collate_pairs batch: the head at each row's last real token
    (`model`: a scalar model, or its scalar.TokenScores prepared for data-parallel training)."""
    scores = scalar.sequence_scores(model, batch.input_ids, batch.attention_mask)
    half = scores.shape[0] // 2
    return scores[:half], scores[half:]


def margins_of(rows: list[dict], indices: list[int], device) -> torch.Tensor | None:
    if not all("margin" in rows[i] for i in indices):
        return None
    return torch.tensor([float(rows[i]["margin"]) for i in indices], device=device)


@torch.no_grad()
@torch.no_grad()
def pairwise_accuracy(model, pairs, pad: int, device, batch_size: int = 64) -> dict[str, float]:
    chosen, rejected = [], []
    with models.eval_mode(model):
        for start in range(0, len(pairs), batch_size):
            c, r = pair_rewards(model, sequences.collate_pairs(pairs[start:start + batch_size], pad, device))
            chosen.append(c), rejected.append(r)
    chosen, rejected = torch.cat(chosen), torch.cat(rejected)
    return {"accuracy": (chosen > rejected).float().mean().item(), "margin": (chosen - rejected).mean().item(),
            "reward_mean": torch.cat([chosen, rejected]).mean().item()}


def setup(config: RewardModelConfig) -> runtime.LMRun:
    device = runtime.setup_device(config)
    model, tokenizer = scalar.from_causal_lm(config.model, seed=config.seed)
    model = model.to(device=device, dtype=runtime.resolve_dtype(config, device))
    return runtime.prepare(config, model, tokenizer, device, preferences="paired")


def train(config: RewardModelConfig, run_dir=None, **options) -> Run:
    run = setup(config)
    model, tokenizer, pad, dp = run.model, run.tokenizer, run.tokenizer.pad_token_id, run.dp
    dp.per_process("batch-size", config.batch_size, "pairs")
    train_pairs = sequences.encode_pairs(tokenizer, run.task.train, config)
    test_pairs = sequences.encode_pairs(tokenizer, run.task.test[:config.eval_size], config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)

    scoring = {"scorer": model}  # sharded parameters: the prepared scorer, whose forward gathers the head's (FSDP)
    with Loop("reward_model", config, run_dir, budget=config.budget, schedule=config.schedule,
              parts=dp.parts(model=model, optimizer=optimizer),
              evaluate=lambda step: pairwise_accuracy(scoring["scorer"], test_pairs, pad, run.device), export=dp.export(model, tokenizer),
              figures={"curve.png": Figure(), "loss.png": Figure(("loss",))}, **dp.loop_options(options)) as loop:
        dp.attach(loop)
        state = loop.start(lambda: RewardModelState(PromptOrder()))
        scorer, step_optimizer = dp.prepare(scalar.TokenScores(model), optimizer=optimizer)
        scoring["scorer"] = scorer if dp.sharding else model
        model.train()
        while loop.running():
            indices, order = state.order.take(config.batch_size, len(train_pairs), config.seed)
            indices = dp.shard(indices)  # a mean over pairs, an equal share on each process: averaging gradients is exact
            chosen, rejected = pair_rewards(scorer, sequences.collate_pairs([train_pairs[i] for i in indices], pad, run.device))
            loss, info = losses.bradley_terry(chosen, rejected, margin=margins_of(run.task.train, indices, run.device),
                                              center_coefficient=config.center_coefficient)
            grad_norm = runtime.optimizer_step(step_optimizer, loss, config.max_grad_norm)
            state = RewardModelState(order)
            loop.record(1, dp.mean_metrics({"loss": loss.item(), "grad_norm": grad_norm, "train_accuracy": float(info["accuracy"]),
                                            "train_margin": float(info["margin"])}), state=state)
        return dp.finish(loop)


def load(config: RewardModelConfig, model_dir) -> scalar.RewardModelFunction:
    return scalar.RewardModelFunction(model_dir, config=config)


SPEC = AlgorithmSpec(
    name="reward_model",
    family="llm",
    summary="Bradley-Terry reward model: a scalar head read at the last token, optional margin and reward centering",
    config=RewardModelConfig,
    train=train,
    acts_on=ActsOn("text"),
    load=load,
)
preset = SPEC.preset
