"""Setting up a language-model run and what every LM algorithm does around its update: device and
dtype, the model (with optional LoRA) and tokenizer, the task's prompts as token ids, a
resumable prompt order, held-out evaluation with the verifier, and sample completions as text.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlsuite.core.seeding import derive_seed, setup_torch
from rlsuite.errors import ConfigError, DataError
from rlsuite.lm import models, parallel
from rlsuite.lm.generation import TorchGenerator
from rlsuite.lm.parallel import DataParallel
from rlsuite.ops import rewards


@dataclasses.dataclass
class LMRun:
    """Everything an LM algorithm trains with, built from its config by `setup`."""

    config: Any
    device: torch.device
    model: Any
    tokenizer: Any
    task: Any
    train_prompts: list[list[int]]
    test_prompts: list[list[int]]
    think_prefilled: bool
    dp: DataParallel = parallel.SINGLE
    """This process's place in a data-parallel run (rlsuite.lm.parallel; SINGLE without a launcher)."""


def resolve_dtype(config, device: torch.device) -> torch.dtype:
    if config.dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    return models.torch_dtype(config.dtype)


def setup(config, *, needs: tuple[str, ...] = ("prompt", "solution"), preferences: str | None = None) -> LMRun:
    """Threads, seeds, device, model, tokenizer and task, checked before any run directory exists.
    `preferences` ("paired" or "unpaired") loads a preference task (rlsuite.envs.preferences) instead."""
    device = setup_device(config)
    model, tokenizer = models.load_model(config.model, seed=config.seed)
    model = model.to(device=device, dtype=resolve_dtype(config, device))
    if config.lora_r > 0:
        model = add_lora(model, config)
    return prepare(config, model, tokenizer, device, needs=needs, preferences=preferences)


def setup_device(config) -> torch.device:
    """Threads, seeds and this process's device: the config's, or under `accelerate launch` the one
    accelerate gives the process (rlsuite.lm.parallel)."""
    device = setup_torch(config)
    return parallel.start(config).device or device


def prepare(config, model, tokenizer, device, *, needs: tuple[str, ...] = ("prompt", "solution"), preferences: str | None = None) -> LMRun:
    """The task's rows and prompt tokens for a loaded model, with the lengths checked."""
    from rlsuite.envs import preferences as preference_sets
    from rlsuite.envs import text

    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and config.max_prompt_length + config.max_completion_length > limit:
        raise ConfigError(
            f"max_prompt_length ({config.max_prompt_length}) + max_completion_length ({config.max_completion_length}) exceeds "
            f"the model's context of {limit} tokens; lower one of them so a prompt and its completion fit."
        )
    prompt = system_prompt(config, tokenizer)
    if preferences is not None:
        load = functools.partial(preference_sets.load_preferences, unpaired=preferences == "unpaired")
        generated = config.task.partition(":")[0] in preference_sets.BUILTIN_PREFERENCES
    else:
        load = functools.partial(text.load_task, needs=needs)
        generated = config.task.partition(":")[0] == "arithmetic"
    if generated:
        level = None if ":" in config.task or not config.task.startswith("arithmetic") else config.level
        task = load(config.task, level=level, train_size=config.train_size, test_size=config.test_size, seed=config.seed,
                    system_prompt=prompt)
    else:  # files: the sizes are caps on the rows there are
        task = load(config.task, seed=config.seed, system_prompt=prompt)
        task = dataclasses.replace(task, train=task.train[:config.train_size], test=task.test[:config.test_size])
    if config.eval_size > len(task.test):
        raise ConfigError(f"eval_size ({config.eval_size}) exceeds the {len(task.test)} test prompts of {config.task}; "
                          f"lower --eval-size to {len(task.test)} or less.")
    return LMRun(
        config, device, model, tokenizer, task,
        encode_prompts(tokenizer, task.train, config.max_prompt_length, "train"),
        encode_prompts(tokenizer, task.test, config.max_prompt_length, "test"),
        think_prefilled=generation_prompt_ends_with_think(tokenizer), dp=parallel.current(),
    )


def optimizer_step(optimizer, loss: torch.Tensor, max_grad_norm: float) -> float:
    """Backward, gradient-norm clipping (0: none) and the step; returns the norm before clipping.
    An optimizer from DataParallel.prepare steps through accelerate, whose backward averages the
    gradients over processes (or hands them to DeepSpeed / FSDP): the norm is then the global one."""
    accelerator = getattr(optimizer, "rlsuite_accelerator", None)
    if accelerator is None and parallel.current().world > 1:
        raise RuntimeError("under data parallelism an optimizer must go through DataParallel.prepare, or its gradients are not averaged")
    optimizer.zero_grad(set_to_none=True)
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    limit = max_grad_norm if max_grad_norm > 0 else float("inf")
    if accelerator is None:
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(parameters, limit)
    else:
        accelerator.backward(loss)
        grad_norm = accelerator.clip_grad_norm_(parameters, limit)
    optimizer.step()
    return float(grad_norm)


def system_prompt(config, tokenizer) -> str | None:
    """The system prompt a config asks for ('auto': none for the built-in model and models trained
    from it, recognized by their tokenizer: they learned the format from SFT, and the R1-Zero
    prompt would fill most of their small context)."""
    from rlsuite.envs import text

    if config.system_prompt == "none" or (config.system_prompt == "auto" and models.is_builtin_tokenizer(tokenizer)):
        return None
    return text.SYSTEM_PROMPT


def add_lora(model, config):
    from rlsuite.errors import require_extra

    require_extra("peft", "llm")
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules="all-linear", task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def prompt_text(tokenizer, row: dict) -> str:
    return tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)


def encode_prompts(tokenizer, rows: list[dict], max_length: int, split: str) -> list[list[int]]:
    """Token ids of each row's chat-formatted prompt; too long a prompt is an error (cutting it
    would cut the question)."""
    texts = [prompt_text(tokenizer, row) for row in rows]
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    too_long = [(i, len(ids)) for i, ids in enumerate(encoded) if len(ids) > max_length]
    if too_long:
        longest = max(n for _, n in too_long)
        rows_named = ", ".join(str(i) for i, _ in too_long[:5]) + (" ..." if len(too_long) > 5 else "")
        raise DataError(f"{len(too_long)} {split} prompts are longer than max_prompt_length={max_length} tokens "
                        f"(rows {rows_named}; the longest has {longest}). Raise --max-prompt-length to at least {longest}.")
    return [list(ids) for ids in encoded]


def generation_prompt_ends_with_think(tokenizer) -> bool:
    """True when the chat template pre-fills <think> (DeepSeek-R1, Qwen3): completions then start
    inside the reasoning, and the format reward must know it."""
    text = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False, add_generation_prompt=True)
    return text.rstrip().endswith("<think>")


@dataclasses.dataclass(frozen=True)
class PromptOrder:
    """Where a run is in its pass over the training prompts: epoch e visits them in the
    permutation seeded by (seed, e). Part of the checkpointed state, so resume continues it."""

    epoch: int = 0
    position: int = 0

    def take(self, n: int, size: int, seed: int) -> tuple[list[int], PromptOrder]:
        taken: list[int] = []
        epoch, position = self.epoch, self.position
        while len(taken) < n:
            order = np.random.default_rng(derive_seed(seed, "prompt-order", epoch)).permutation(size)
            chunk = order[position:position + n - len(taken)]
            taken.extend(int(i) for i in chunk)
            position += len(chunk)
            if position >= size:
                epoch, position = epoch + 1, 0
        return taken, PromptOrder(epoch, position)


def completions_text(tokenizer, ids: torch.Tensor, mask: torch.Tensor) -> list[str]:
    """Decoded completions without padding or EOS (special tokens dropped; the format tags are not special)."""
    rows = [row[m.bool()].tolist() for row, m in zip(ids.cpu(), mask.cpu())]
    return tokenizer.batch_decode(rows, skip_special_tokens=True)


def as_conversation(texts: list[str]) -> list[list[dict[str, str]]]:
    """Completions as TRL hands them to reward functions when prompts are conversational."""
    return [[{"role": "assistant", "content": t}] for t in texts]


def columns(rows: list[dict], names: tuple[str, ...], repeat: int = 1) -> dict[str, list]:
    return {name: [row[name] for row in rows for _ in range(repeat)] for name in names}


def evaluate(run: LMRun, model, rows: list[dict], prompts: list[list[int]], *, k: int = 1, temperature: float = 0.0,
             batch_size: int = 128, samples: int = 0) -> tuple[dict[str, float], list[dict]]:
    """Held-out accuracy with the verifier: greedy accuracy@1 (temperature 0), or pass@k and
    mean accuracy of k samples each; also strict-format compliance and completion length.
    Returns (metrics, the first `samples` completions as records). Under data parallelism each
    process decodes its share of the prompts and every process returns the metrics of all."""
    mine = run.dp.share(len(prompts))
    rows_mine, prompts_mine, own = rows[mine], prompts[mine], len(prompts[mine])
    if run.dp.sharding:  # as many prompts on every process (the filler decoded and dropped): each forward is a collective
        filler = -(-len(prompts) // run.dp.world) - own
        rows_mine, prompts_mine = list(rows_mine) + list(rows[:filler]), list(prompts_mine) + list(prompts[:filler])
    decoded = _decode(run, model, rows_mine, prompts_mine, k, temperature, batch_size, samples)
    gathered = run.dp.all_gather(tuple(part[:own * k] for part in decoded))
    correct, formatted, lengths, shown = ([x for part in parts for x in part] for parts in zip(*gathered))
    grid = np.array(correct, dtype=float).reshape(-1, k)
    valid = ~np.isnan(grid).any(axis=1)
    metrics = {"accuracy": float(np.mean(grid[valid])) if valid.any() else float("nan")}
    if k > 1:
        metrics[f"pass@{k}"] = float(np.mean(grid[valid].max(axis=1))) if valid.any() else float("nan")
    metrics["format"] = float(np.mean(formatted))
    metrics["completion_length"] = float(np.mean(lengths))
    return metrics, shown[:samples]


@torch.no_grad()
def _decode(run: LMRun, model, rows, prompts, k, temperature, batch_size, samples) -> tuple[list, list, list, list]:
    """Per completion: correct (NaN: no verdict), strict format, length; and the first `samples` as records."""
    generator = TorchGenerator(model, run.tokenizer, run.device)
    correct, formatted, lengths, shown = [], [], [], []
    for start in range(0, len(prompts), max(1, batch_size // k)):
        chunk_rows = rows[start:start + max(1, batch_size // k)]
        chunk = prompts[start:start + len(chunk_rows)]
        out = generator.generate(chunk, num_generations=k, max_new_tokens=run.config.max_completion_length, temperature=temperature)
        texts = completions_text(run.tokenizer, out.ids, out.mask)
        conversation = as_conversation(texts)
        cols = columns(chunk_rows, run.task.reward_columns, k)
        accuracy = rewards.accuracy(conversation, **cols)
        correct.extend(a if a is not None else float("nan") for a in accuracy)
        formatted.extend(rewards.strict_format(conversation, think_prefilled=run.think_prefilled))
        lengths.extend(out.mask.sum(1).tolist())
        for i, t in enumerate(texts):
            if len(shown) < samples:
                row = chunk_rows[i // k]
                shown.append({"problem": row.get("problem", row["prompt"][-1]["content"]), "completion": t,
                              "solution": row.get("solution"), "correct": accuracy[i]})
    return correct, formatted, lengths, shown


class HeldOutEvaluation:
    """The Loop's evaluate(step) for LM runs: greedy accuracy and format on the first eval_size
    test prompts; the first `log_completions` completions are appended to samples.jsonl once
    `samples_file` is set (the Loop's run directory is known only after it opens)."""

    def __init__(self, run: LMRun, model):
        self.run, self.model = run, model
        self.rows, self.prompts = run.task.test[:run.config.eval_size], run.test_prompts[:run.config.eval_size]
        self.samples_file: Path | None = None

    def __call__(self, step: int) -> dict[str, float]:
        metrics, shown = evaluate(self.run, self.model, self.rows, self.prompts, samples=self.run.config.log_completions)
        if self.samples_file is not None and shown:
            log_samples(self.samples_file, step, shown)
        return metrics

    def attach(self, loop) -> None:
        self.samples_file = loop.figure_path("samples.jsonl") if loop.recorder.writes else None


def log_samples(path: Path, step: int, records: list[dict]) -> None:
    """Append sample completions to samples.jsonl (one JSON object per line, with the step)."""
    with path.open("a", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps({"step": step, **record}, ensure_ascii=False) + "\n")


class TextPolicy:
    """A trained language model as `rlsuite.load` returns it: `answer("What is 7 * 8 - 5?")`."""

    def __init__(self, model, tokenizer, config):
        self.model, self.tokenizer, self.config = model.eval(), tokenizer, config

    def answer(self, question: str, *, temperature: float = 0.0, max_new_tokens: int | None = None, seed: int = 0) -> str:
        from rlsuite.envs import text

        row = text.make_conversation({"problem": question}, system_prompt(self.config, self.tokenizer))
        ids = self.tokenizer(prompt_text(self.tokenizer, row), add_special_tokens=False)["input_ids"]
        generator = TorchGenerator(self.model, self.tokenizer, next(self.model.parameters()).device,
                                   torch.Generator().manual_seed(seed))
        out = generator.generate([ids], max_new_tokens=max_new_tokens or self.config.max_completion_length, temperature=temperature)
        return completions_text(self.tokenizer, out.ids, out.mask)[0]

    def __repr__(self) -> str:
        return f"TextPolicy({models.count_parameters(self.model):,} parameters, task {self.config.task})"


def load_policy(config, model_dir: Path) -> TextPolicy:
    model, tokenizer = models.load_pretrained(Path(model_dir))
    return TextPolicy(model, tokenizer, config)
