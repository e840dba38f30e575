"""Supervised fine-tuning: maximize log pi(completion | prompt) on demonstrations, the loss on
completion tokens only (the prompt is given, not learned). The warm start of the R1 pipeline:
it teaches the answer format (and, on the built-in task, some arithmetic) so that RL has signal.

Data: prompt/completion rows (plain or conversational), conversational `messages` (the last
assistant message is the completion), or the built-in task's rows, whose completion is
`<think>{think}</think><answer>{solution}</answer>`. With `packing`, examples are concatenated
into rows of max length and kept apart by position ids that restart at each example
(transformers' padding-free packing: attention never crosses an example's boundary).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal, NamedTuple

import torch

from rlsuite.core.loop import Figure, Loop
from rlsuite.core.run import Run
from rlsuite.core.spec import ActsOn, AlgorithmSpec
from rlsuite.errors import DataError, check
from rlsuite.lm import models, runtime
from rlsuite.lm.config import LMConfig
from rlsuite.lm.runtime import PromptOrder
from rlsuite.ops.lm import masked_mean, positions


@dataclasses.dataclass(frozen=True)
class SFTConfig(LMConfig):
    model: str = "builtin"
    total_steps: int = 400
    learning_rate: float = 2e-3
    batch_size: int = 32
    """Examples per optimizer step."""
    warmup_steps: int = 50
    """Linear learning-rate warm-up from 0, then a cosine decay to 10% (lr_schedule=cosine)."""
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    weight_decay: float = 0.01
    packing: bool = False
    """Concatenate examples into rows of max_prompt_length + max_completion_length tokens."""
    log_completions: int = 4
    """Held-out completions written to samples.jsonl at each evaluation."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}.")
        check(self.warmup_steps >= 0, f"warmup_steps must be >= 0, got {self.warmup_steps}.")
        check(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}.")


def completion_of(row: dict, index: int) -> str:
    """The demonstration a row holds, as text."""
    if "completion" in row:
        completion = row["completion"]
        return completion[-1]["content"] if isinstance(completion, list) else str(completion)
    if "think" in row and "solution" in row:
        return f"<think>{row['think']}</think><answer>{row['solution']}</answer>"
    raise DataError(f"row {index} has no demonstration: give a `completion` column, conversational `messages` ending with the "
                    f"assistant's answer, or `think` and `solution` columns (it has: {', '.join(sorted(row))}).")


def as_demonstration(row: dict) -> dict:
    """A `messages` row becomes prompt (all but the last message) and completion (the last)."""
    if "completion" not in row and isinstance(row.get("messages"), list) and row["messages"] and row["messages"][-1].get("role") == "assistant":
        system = [m for m in row.get("prompt", []) if m.get("role") == "system"][:1]
        messages = row["messages"]
        return {**row, "prompt": system + [m for m in messages[:-1] if m.get("role") != "system"] if system else messages[:-1],
                "completion": messages[-1]["content"]}
    return row


class Example(NamedTuple):
    ids: list[int]
    labels_mask: list[int]  # 1 on completion tokens (the EOS included)


def encode_examples(tokenizer, rows: list[dict], config: SFTConfig) -> list[Example]:
    examples = []
    eos = tokenizer.eos_token_id
    for i, row in enumerate(rows):
        prompt = tokenizer(runtime.prompt_text(tokenizer, row), add_special_tokens=False)["input_ids"]
        completion = tokenizer(completion_of(row, i), add_special_tokens=False)["input_ids"]
        completion = (completion + [eos])[:config.max_completion_length]  # a cut completion loses its EOS: it did not end
        if len(prompt) > config.max_prompt_length:
            raise DataError(f"row {i}'s prompt has {len(prompt)} tokens, more than max_prompt_length={config.max_prompt_length}; raise --max-prompt-length.")
        examples.append(Example(prompt + completion, [0] * len(prompt) + [1] * len(completion)))
    return examples


def collate(examples: list[Example], pad: int, device) -> dict[str, torch.Tensor]:
    """Right-padded rows: input ids, attention mask, position ids and the loss mask."""
    width = max(len(e.ids) for e in examples)
    ids = torch.full((len(examples), width), pad, dtype=torch.long)
    attention = torch.zeros_like(ids)
    loss_mask = torch.zeros_like(ids)
    for r, e in enumerate(examples):
        ids[r, :len(e.ids)] = torch.tensor(e.ids)
        attention[r, :len(e.ids)] = 1
        loss_mask[r, :len(e.ids)] = torch.tensor(e.labels_mask)
    return {"input_ids": ids.to(device), "attention_mask": attention.to(device), "position_ids": positions(attention).to(device),
            "loss_mask": loss_mask.to(device)}


def pack(examples: list[Example], width: int, pad: int, device) -> dict[str, torch.Tensor]:
    """Examples concatenated into rows of `width` tokens (first fit, in order), position ids
    restarting at each example and no attention mask: transformers then keeps each example's
    attention within itself. Padding at a row's end is masked out of the loss."""
    rows: list[list[Example]] = []
    used: list[int] = []
    for e in examples:
        slot = next((r for r, n in enumerate(used) if n + len(e.ids) <= width), None)
        if slot is None:
            rows.append([e]), used.append(len(e.ids))
        else:
            rows[slot].append(e)
            used[slot] += len(e.ids)
    longest = max(used)
    ids = torch.full((len(rows), longest), pad, dtype=torch.long)
    position = torch.zeros_like(ids)
    loss_mask = torch.zeros_like(ids)
    for r, row in enumerate(rows):
        at = 0
        for e in row:
            n = len(e.ids)
            ids[r, at:at + n] = torch.tensor(e.ids)
            position[r, at:at + n] = torch.arange(n)
            loss_mask[r, at:at + n] = torch.tensor(e.labels_mask)
            at += n
        position[r, at:] = torch.arange(longest - at)  # the tail padding is its own masked "example"
    return {"input_ids": ids.to(device), "attention_mask": None, "position_ids": position.to(device), "loss_mask": loss_mask.to(device)}


def sft_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean negative log-likelihood of the completion tokens (the token at t+1 from logits at t)."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], position_ids=batch["position_ids"],
                   use_cache=False).logits[:, :-1].float()
    targets = batch["input_ids"][:, 1:]
    nll = logits.logsumexp(-1) - logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return masked_mean(nll, batch["loss_mask"][:, 1:])


def learning_rate_factor(config: SFTConfig, step: int) -> float:
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.lr_schedule == "constant":
        return 1.0
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.total_steps - config.warmup_steps))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


class SFTState(NamedTuple):
    order: PromptOrder


def train(config: SFTConfig, run_dir=None, **options) -> Run:
    run = runtime.setup(config, needs=("prompt",))
    model, tokenizer, dp = run.model, run.tokenizer, run.dp
    dp.per_process("batch-size", config.batch_size, "examples")
    rows = [as_demonstration(r) for r in run.task.train]
    examples = encode_examples(tokenizer, rows, config)
    held_out = runtime.HeldOutEvaluation(run, model)
    test_examples = encode_examples(tokenizer, [as_demonstration(r) for r in held_out.rows], config)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate,
                                  weight_decay=config.weight_decay, betas=(0.9, 0.95))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: learning_rate_factor(config, step))

    def evaluate(step: int) -> dict[str, float]:
        with torch.no_grad(), models.eval_mode(model):
            test_loss = float(sum(sft_loss(model, collate(test_examples[i:i + 64], tokenizer.pad_token_id, run.device))
                                  * len(test_examples[i:i + 64]) for i in range(0, len(test_examples), 64)) / len(test_examples))
        if "solution" not in run.task.reward_columns:  # demonstrations without a gold answer: the loss only
            return {"test_loss": test_loss}
        return {**held_out(step), "test_loss": test_loss}

    with Loop("sft", config, run_dir, budget=config.budget, schedule=config.schedule,
              parts=dp.parts(model=model, optimizer=optimizer, scheduler=scheduler), evaluate=evaluate,
              export=dp.export(model, tokenizer),
              figures={"curve.png": Figure(), "loss.png": Figure(("loss",))}, **dp.loop_options(options)) as loop:
        held_out.attach(loop)
        dp.attach(loop)
        state = loop.start(lambda: SFTState(PromptOrder()))
        trained, step_optimizer = dp.prepare(model, optimizer=optimizer)
        model.train()
        width = config.max_prompt_length + config.max_completion_length
        while loop.running():
            indices, order = state.order.take(config.batch_size, len(examples), config.seed)
            chosen = [examples[i] for i in dp.shard(indices)]  # every process draws the global batch and takes its share
            batch = pack(chosen, width, tokenizer.pad_token_id, run.device) if config.packing else collate(chosen, tokenizer.pad_token_id, run.device)
            # A mean over tokens, whose count differs between processes: weighted to the global batch's mean.
            loss = dp.global_mean(sft_loss(trained, batch), batch["loss_mask"][:, 1:].sum())
            grad_norm = runtime.optimizer_step(step_optimizer, loss, config.max_grad_norm)
            scheduler.step()
            state = SFTState(order)
            loop.record(1, dp.mean_metrics({"loss": loss.item(), "grad_norm": grad_norm, "learning_rate": scheduler.get_last_lr()[0],
                                            "tokens": dp.sum(float(batch["loss_mask"].sum()))}), state=state)
        return dp.finish(loop)


SPEC = AlgorithmSpec(
    name="sft",
    family="llm",
    summary="supervised fine-tuning on demonstrations, loss on completion tokens only; optional packing",
    config=SFTConfig,
    train=train,
    acts_on=ActsOn("text"),
    load=runtime.load_policy,
)
preset = SPEC.preset
