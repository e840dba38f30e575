"""Kahneman-Tversky Optimization (Ethayarajh et al. 2024, arXiv:2402.01306): alignment from
unpaired thumbs-up / thumbs-down completions. The implicit reward r = log pi(y|x) / pi_ref(y|x)
is valued against a reference point z0 = KL(pi || pi_ref), as prospect theory values outcomes
against a status quo (eq. 7):

    desirable y:   lambda_D (1 - sigmoid(beta (r - z0)))
    undesirable y: lambda_U (1 - sigmoid(beta (z0 - r)))

z0 is estimated from mismatched pairs, as the paper and TRL do: completion i+1 given prompt i is
a sample unrelated to the prompt, so the batch mean of log pi / pi_ref over such pairs estimates
the KL; it is clamped at 0 and not differentiated. Paired preference data is unpaired on the way
in (chosen: desirable, rejected: undesirable).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import torch

from rlsuite.core.loop import Figure, Loop
from rlsuite.core.run import Run
from rlsuite.core.spec import ActsOn, AlgorithmSpec
from rlsuite.errors import DataError, check
from rlsuite.lm import models, parallel, runtime, sequences
from rlsuite.lm.config import LMConfig
from rlsuite.lm.runtime import PromptOrder
from rlsuite.ops import losses


@dataclasses.dataclass(frozen=True)
class KTOConfig(LMConfig):
    task: str = "arithmetic"
    """Unpaired prompt/completion/label rows, or a preference set (built-in or a file) that is unpaired."""
    total_steps: int = 300
    learning_rate: float = 1e-4
    batch_size: int = 16
    """Labelled completions per optimizer step (at least 2: the KL estimate pairs each prompt with another's completion)."""
    beta: float = 0.1
    desirable_weight: float = 1.0
    """lambda_D; with unbalanced data the paper keeps lambda_D n_D / (lambda_U n_U) in [1, 4/3]."""
    undesirable_weight: float = 1.0
    log_completions: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.batch_size >= 2, f"batch_size must be >= 2 (the KL reference point pairs each prompt with another row's completion), got {self.batch_size}.")
        check(self.beta > 0, f"beta must be > 0, got {self.beta}.")
        check(self.desirable_weight > 0 and self.undesirable_weight > 0, "desirable_weight and undesirable_weight must be > 0.")


class KTOState(NamedTuple):
    order: PromptOrder


def encode_rows(tokenizer, rows: list[dict], config: KTOConfig) -> list[tuple[list[int], list[int]]]:
    prompts = runtime.encode_prompts(tokenizer, rows, config.max_prompt_length, "KTO")
    return [(p, sequences.encode_completion(tokenizer, r["completion"], config.max_completion_length)) for p, r in zip(prompts, rows)]


def mismatched(rows: list[tuple[list[int], list[int]]]) -> list[tuple[list[int], list[int]]]:
    """Prompt i with completion i+1 (cyclically): samples from a policy that ignores the prompt."""
    return [(rows[i][0], rows[(i + 1) % len(rows)][1]) for i in range(len(rows))]


def batch_of(rows, pad: int, device) -> sequences.SequenceBatch:
    return sequences.collate([p for p, _ in rows], [c for _, c in rows], pad, device)


def kto_step(config: KTOConfig, model, reference, optimizer, rows, labels: torch.Tensor, pad: int, device,
             dp=parallel.SINGLE) -> dict[str, float]:
    """One step on the global batch `rows`, of which this process takes its share `dp.shard`: the
    KL pairs each prompt with the next row's completion across the whole batch, averaged over all."""
    batch = batch_of(dp.shard(rows), pad, device)
    labels = dp.shard(labels)
    logp = sequences.sequence_logprobs(model, batch)
    with torch.no_grad():
        shifted = batch_of(dp.shard(mismatched(rows)), pad, device)
        kl = dp.mean(sequences.sequence_logprobs(model, shifted) - sequences.sequence_logprobs(reference, shifted)).clamp(min=0)
        ref_logp = sequences.sequence_logprobs(reference, batch)
    ratios = logp - ref_logp
    loss, info = losses.kto(ratios[labels], ratios[~labels], kl, config.beta, config.desirable_weight, config.undesirable_weight)
    grad_norm = runtime.optimizer_step(optimizer, loss, config.max_grad_norm)
    return {"loss": loss.item(), "grad_norm": grad_norm, "kl": kl.item(), **{k: float(v) for k, v in info.items()}}


@torch.no_grad()
def implicit_reward_gap(config: KTOConfig, model, reference, rows, labels: torch.Tensor, pad: int, device, batch_size: int = 64) -> dict[str, float]:
    """Held-out beta log pi / pi_ref of desirable and undesirable completions, and their gap."""
    ratios = []
    with models.eval_mode(model):
        for start in range(0, len(rows), batch_size):
            batch = batch_of(rows[start:start + batch_size], pad, device)
            ratios.append(sequences.sequence_logprobs(model, batch) - sequences.sequence_logprobs(reference, batch))
    ratios = torch.cat(ratios) * config.beta
    metrics = {}
    if labels.any():
        metrics["rewards/desirable"] = ratios[labels].mean().item()
    if (~labels).any():
        metrics["rewards/undesirable"] = ratios[~labels].mean().item()
    if len(metrics) == 2:
        metrics["rewards/gap"] = metrics["rewards/desirable"] - metrics["rewards/undesirable"]
    return metrics


def train(config: KTOConfig, run_dir=None, **options) -> Run:
    run = runtime.setup(config, preferences="unpaired")
    model, tokenizer, pad, dp = run.model, run.tokenizer, run.tokenizer.pad_token_id, run.dp
    dp.per_process("batch-size", config.batch_size, "completions")
    if len(run.task.train) < 2:
        raise DataError(f"{config.task} has {len(run.task.train)} training row(s); KTO needs at least 2.")
    reference = models.frozen_reference(model)  # built before the Loop restores a checkpoint: the starting weights
    train_rows = encode_rows(tokenizer, run.task.train, config)
    train_labels = torch.tensor([bool(r["label"]) for r in run.task.train])
    test_rows = encode_rows(tokenizer, run.task.test[:config.eval_size], config)
    test_labels = torch.tensor([bool(r["label"]) for r in run.task.test[:config.eval_size]])
    held_out = runtime.HeldOutEvaluation(run, model)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate, weight_decay=0.0)

    def evaluate(step: int) -> dict[str, float]:
        gap = implicit_reward_gap(config, model, reference, test_rows, test_labels, pad, run.device)
        return {**held_out(step), **gap} if "solution" in run.task.reward_columns else gap

    with Loop("kto", config, run_dir, budget=config.budget, schedule=config.schedule,
              parts=dp.parts(model=model, optimizer=optimizer), evaluate=evaluate,
              export=dp.export(model, tokenizer),
              figures={"curve.png": Figure(), "kl.png": Figure(("kl",))}, **dp.loop_options(options)) as loop:
        held_out.attach(loop)
        dp.attach(loop)
        state = loop.start(lambda: KTOState(PromptOrder()))
        trained, step_optimizer = dp.prepare(model, optimizer=optimizer)
        model.train()
        while loop.running():
            indices, order = state.order.take(config.batch_size, len(train_rows), config.seed)
            metrics = kto_step(config, trained, reference, step_optimizer, [train_rows[i] for i in indices],
                               train_labels[indices].to(run.device), pad, run.device, dp)
            state = KTOState(order)
            loop.record(1, dp.mean_metrics(metrics), state=state)
        return dp.finish(loop)


SPEC = AlgorithmSpec(
    name="kto",
    family="llm",
    summary="Kahneman-Tversky Optimization on unpaired desirable/undesirable completions, KL reference point from mismatched pairs",
    config=KTOConfig,
    train=train,
    acts_on=ActsOn("text"),
    load=runtime.load_policy,
)
preset = SPEC.preset
