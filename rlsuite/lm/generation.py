"""Generation behind one small interface, so an algorithm never knows which engine samples:

    generator.generate(prompts, num_generations, max_new_tokens, temperature, top_p) -> Completions
    generator.sync(model)        # after an optimizer step: the engine samples from the new weights

`TorchGenerator` runs the model being trained (rlsuite.ops.lm.sample: a KV cache, any device).
`VLLMGenerator` hands sampling to vLLM when it is installed and a CUDA GPU is present (the
`auto` choice); it keeps its own copy of the weights, refreshed by `sync`.
"""

from __future__ import annotations

from typing import Protocol

import torch

from rlsuite.errors import ConfigError
from rlsuite.lm import parallel
from rlsuite.lm.models import eval_mode
from rlsuite.ops import lm


def pad_left(sequences: list[list[int]], pad_token_id: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention mask) of token lists left-padded to the longest, as generation wants them."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, tokens in enumerate(sequences):
        if tokens:
            ids[row, width - len(tokens):] = torch.tensor(tokens)
            mask[row, width - len(tokens):] = 1
    return ids.to(device), mask.to(device)


class Generator(Protocol):
    def generate(self, prompts: list[list[int]], *, num_generations: int, max_new_tokens: int,
                 temperature: float, top_p: float) -> lm.Completions: ...

    def sync(self, model) -> None: ...


class TorchGenerator:
    """Samples from the training model itself; prompt i's G completions are rows i*G .. i*G+G-1."""

    def __init__(self, model, tokenizer, device, generator: torch.Generator | None = None):
        self.model, self.device, self.generator = model, device, generator
        self.eos_token_ids = stop_token_ids(model, tokenizer)
        self.pad_token_id = tokenizer.pad_token_id

    def generate(self, prompts, *, num_generations=1, max_new_tokens, temperature=1.0, top_p=1.0) -> lm.Completions:
        ids, mask = pad_left(prompts, self.pad_token_id, self.device)
        # A model sharded over processes (FSDP, ZeRO-3) decodes in step with the other processes.
        all_done = parallel.current().all_done if parallel.current().shards(self.model) else bool
        with eval_mode(self.model):  # no dropout while sampling: the samples come from the policy itself
            return lm.sample(self.model, ids, mask, max_new_tokens=max_new_tokens, eos_token_ids=self.eos_token_ids,
                             pad_token_id=self.pad_token_id, temperature=temperature, top_p=top_p, generator=self.generator,
                             num_generations=num_generations, all_done=all_done)

    def sync(self, model) -> None:
        pass  # it samples from the training model's own weights


def stop_token_ids(model, tokenizer) -> tuple[int, ...]:
    """The tokens that end a completion: the tokenizer's EOS and any the model's generation config adds."""
    return tuple(sorted({tokenizer.eos_token_id, *_generation_eos(model)}))


def _generation_eos(model) -> list[int]:
    """Extra stop tokens from the model's generation_config (chat models often list several)."""
    config = getattr(model, "generation_config", None)
    eos = getattr(config, "eos_token_id", None)
    if eos is None:
        return []
    return [eos] if isinstance(eos, int) else list(eos)


class VLLMGenerator:
    """vLLM sampling from a copy of the weights (colocated on the training GPU). Written after
    TRL's colocate mode and not yet run here: no GPU was at hand (scripts/gpu_check.sh runs it)."""

    def __init__(self, model_dir: str, tokenizer, seed: int, gpu_memory_utilization: float = 0.3):
        import os

        from vllm import LLM

        # In-process ("external_launcher"), as TRL's colocate mode runs it, so the engine's model
        # object is reachable for weight updates; a single process is a world of one.
        for key, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", "29517")):
            os.environ.setdefault(key, value)
        self.tokenizer = tokenizer
        self.llm = LLM(model=model_dir, seed=seed, gpu_memory_utilization=gpu_memory_utilization, enable_prefix_caching=True,
                       distributed_executor_backend="external_launcher", max_num_batched_tokens=4096)
        self.pad_token_id = tokenizer.pad_token_id

    def generate(self, prompts, *, num_generations=1, max_new_tokens, temperature=1.0, top_p=1.0) -> lm.Completions:
        from vllm import SamplingParams

        params = SamplingParams(n=num_generations, max_tokens=max_new_tokens, temperature=temperature, top_p=top_p)
        outputs = self.llm.generate([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False)
        rows = [list(choice.token_ids) for output in outputs for choice in output.outputs]
        width = max(1, max(len(r) for r in rows))
        ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r, dtype=torch.long)
            mask[i, :len(r)] = 1
        return lm.Completions(ids, mask)

    def sync(self, model) -> None:
        from rlsuite.lm.models import merged_copy

        engine_model = self.llm.llm_engine.model_executor.driver_worker.model_runner.model
        engine_model.load_weights(merged_copy(model).state_dict().items())
        self.llm.reset_prefix_cache()


def vllm_usable() -> bool:
    if not torch.cuda.is_available():
        return False
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def make_generator(choice: str, model, tokenizer, device, *, seed: int = 0) -> Generator:
    """'torch', 'vllm' or 'auto' (vLLM when it is installed, a CUDA GPU is present and the parameters
    are not sharded over processes; else torch).
    vLLM loads the model from a save_pretrained copy in a temporary folder; call `sync(model)`
    whenever the training weights change (after restoring a checkpoint too)."""
    if choice == "vllm" and not vllm_usable():
        raise ConfigError("generator 'vllm' needs vLLM installed (pip install vllm) and a CUDA GPU; use --generator torch or auto.")
    sharded = parallel.current().sharding  # vLLM's copy would need the whole weights on every process at each sync
    if choice == "vllm" and sharded:
        raise ConfigError("generator 'vllm' under FSDP or DeepSpeed ZeRO-3 is not supported; use --generator torch (auto picks it there).")
    if choice == "vllm" or (choice == "auto" and vllm_usable() and not sharded):
        import tempfile
        from pathlib import Path

        from rlsuite.lm.models import save

        directory = Path(tempfile.mkdtemp(prefix="rlsuite-vllm-"))
        save(model, tokenizer, directory)
        return VLLMGenerator(str(directory), tokenizer, seed)
    return TorchGenerator(model, tokenizer, device)
