"""Knowledge distillation of a teacher language model into a smaller student, the last stage of
the DeepSeek-R1 report (arXiv:2501.12948, sec. 2.4), on completions the teacher samples for
the task's prompts, fresh each step:

    loss = "sft":        -log p_S(y | x), y ~ p_T           (sequence-level KD, Kim & Rush 2016: R1's recipe)
    loss = "forward_kl": sum_t KL(p_T(. | x, y_<t) || p_S(. | x, y_<t)) tau^2
                         over the teacher's token distributions at temperature tau (Hinton et al. 2015)

The forward KL reads both models' logits over the same token ids, so the student must share the
teacher's tokenizer; "sft" re-tokenizes the teacher's text and works with any student.
`builtin-small` is a 0.15M-parameter student (the built-in model: 1.08M) with the built-in tokenizer.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, NamedTuple

import torch

from rlsuite.core.loop import Figure, Loop
from rlsuite.core.run import Run
from rlsuite.core.spec import ActsOn, AlgorithmSpec
from rlsuite.errors import check
from rlsuite.lm import models, runtime, scalar, sequences
from rlsuite.lm.config import LMConfig
from rlsuite.lm.generation import TorchGenerator
from rlsuite.lm.runtime import PromptOrder
from rlsuite.ops.lm import masked_mean, positions


@dataclasses.dataclass(frozen=True)
class DistillConfig(LMConfig):
    model: str = "builtin-small"
    """The student: 'builtin-small' (random weights), 'builtin', or a local model."""
    teacher: str = "builtin-sft"
    """The teacher: 'builtin-sft', a run (its model/ folder) or a local model."""
    loss: Literal["forward_kl", "sft"] = "forward_kl"
    total_steps: int = 400
    learning_rate: float = 2e-3
    batch_size: int = 32
    """Prompts per step, one teacher completion each."""
    teacher_temperature: float = 1.0
    """Temperature the teacher samples completions at (0: greedy)."""
    kd_temperature: float = 1.0
    """tau: both distributions are softened by it in the forward KL, and the loss scaled by tau^2."""
    warmup_steps: int = 50
    log_completions: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}.")
        check(self.teacher_temperature >= 0, f"teacher_temperature must be >= 0, got {self.teacher_temperature}.")
        check(self.kd_temperature > 0, f"kd_temperature must be > 0, got {self.kd_temperature}.")


class DistillState(NamedTuple):
    order: PromptOrder


def completion_logits(model, batch: sequences.SequenceBatch) -> torch.Tensor:
    """The logits predicting each completion token, [B, C, V] (position t's logits predict t+1)."""
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, position_ids=positions(batch.attention_mask),
                   use_cache=False).logits
    return logits[:, batch.completion_start - 1:-1].float()


def forward_kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor, mask: torch.Tensor, tau: float) -> torch.Tensor:
    """tau^2 * mean over completion tokens of KL(softmax(t / tau) || softmax(s / tau))."""
    teacher_logp = (teacher_logits / tau).log_softmax(-1)
    student_logp = (student_logits / tau).log_softmax(-1)
    kl = (teacher_logp.exp() * (teacher_logp - student_logp)).sum(-1)
    return tau ** 2 * masked_mean(kl, mask)


def sequence_nll(student_logits: torch.Tensor, batch: sequences.SequenceBatch) -> torch.Tensor:
    logp = student_logits.log_softmax(-1).gather(-1, batch.completion_ids.unsqueeze(-1)).squeeze(-1)
    return -masked_mean(logp, batch.completion_mask)


def distill_loss(config: DistillConfig, student, teacher, batch: sequences.SequenceBatch) -> torch.Tensor:
    student_logits = completion_logits(student, batch)
    if config.loss == "sft":
        return sequence_nll(student_logits, batch)
    with torch.no_grad():
        teacher_logits = completion_logits(teacher, batch)
    return forward_kl(teacher_logits, student_logits, batch.completion_mask, config.kd_temperature)


def train(config: DistillConfig, run_dir=None, **options) -> Run:
    run = runtime.setup(config)
    student, tokenizer, dp = run.model, run.tokenizer, run.dp
    dp.per_process("batch-size", config.batch_size, "prompts")
    teacher, teacher_tokenizer = models.load_model(config.teacher, seed=config.seed)
    if config.loss == "forward_kl":
        scalar.check_same_tokenizer(tokenizer, teacher_tokenizer, "teacher")
    teacher = teacher.to(device=run.device, dtype=runtime.resolve_dtype(config, run.device)).eval().requires_grad_(False)
    teacher_prompts = runtime.encode_prompts(teacher_tokenizer, run.task.train, config.max_prompt_length, "train")
    sampler = TorchGenerator(teacher, teacher_tokenizer, run.device)  # the global RNG, which checkpoints restore
    optimizer = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=config.learning_rate, weight_decay=0.01, betas=(0.9, 0.95))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / max(1, config.warmup_steps)))
    held_out = runtime.HeldOutEvaluation(run, student)
    with Loop("distill", config, run_dir, budget=config.budget, schedule=config.schedule,
              parts=dp.parts(model=student, optimizer=optimizer, scheduler=scheduler), evaluate=held_out,
              export=dp.export(student, tokenizer),
              figures={"curve.png": Figure(), "loss.png": Figure(("loss",))}, **dp.loop_options(options)) as loop:
        held_out.attach(loop)
        dp.attach(loop)
        state = loop.start(lambda: DistillState(PromptOrder()))
        trained, step_optimizer = dp.prepare(student, optimizer=optimizer)
        student.train()
        while loop.running():
            indices, order = state.order.take(config.batch_size, len(run.train_prompts), config.seed)
            indices = dp.shard(indices)
            dp.reseed(config.seed, loop.step)
            out = sampler.generate([teacher_prompts[i] for i in indices], max_new_tokens=config.max_completion_length,
                                   temperature=config.teacher_temperature)
            texts = runtime.completions_text(teacher_tokenizer, out.ids, out.mask)
            completions = ([ids[m.bool()].tolist() for ids, m in zip(out.ids.cpu(), out.mask.cpu())] if config.loss == "forward_kl"
                           else [sequences.encode_completion(tokenizer, t, config.max_completion_length) for t in texts])
            batch = sequences.collate([run.train_prompts[i] for i in indices], completions, tokenizer.pad_token_id, run.device)
            # A mean over tokens, whose count differs between processes: weighted to the global batch's mean.
            loss = dp.global_mean(distill_loss(config, trained, teacher, batch), batch.completion_mask.sum())
            grad_norm = runtime.optimizer_step(step_optimizer, loss, config.max_grad_norm)
            scheduler.step()
            state = DistillState(order)
            loop.record(1, dp.mean_metrics({"loss": loss.item(), "grad_norm": grad_norm, "learning_rate": scheduler.get_last_lr()[0]}),
                        state=state)
        return dp.finish(loop)


SPEC = AlgorithmSpec(
    name="distill",
    family="llm",
    summary="distillation of a teacher LM into a smaller student on the teacher's samples: forward KL on logits, or SFT on its text",
    config=DistillConfig,
    train=train,
    acts_on=ActsOn("text"),
    load=runtime.load_policy,
)
preset = SPEC.preset
