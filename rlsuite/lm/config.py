"""The config fields every language-model algorithm has."""

from __future__ import annotations

import dataclasses
from typing import Literal

from rlsuite.core.config import DEVICE_PATTERN, BaseConfig, Budget, Schedule
from rlsuite.errors import check


@dataclasses.dataclass(frozen=True)
class LMConfig(BaseConfig):
    model: str = "builtin-sft"
    """'builtin' (random weights), 'builtin-sft' (the shipped SFT'd built-in model) or a local
    directory written by save_pretrained (a run's model/ folder too). Nothing is downloaded."""
    task: str = "arithmetic"
    """'arithmetic' (built-in, generated) or a local dataset file/folder (JSONL, JSON, Parquet,
    CSV, save_to_disk) with problem/solution or conversational prompt columns."""
    level: str = "mixed"
    """Difficulty of the arithmetic task (see rlsuite.envs.text.LEVELS); ignored for files."""
    train_size: int = 20_000
    """Training prompts (arithmetic: generated; files: at most this many rows are used)."""
    test_size: int = 500
    """Held-out prompts (arithmetic: generated; files: at most this many of the test split, else of the last 10%)."""
    system_prompt: Literal["auto", "r1-zero", "none"] = "auto"
    """'r1-zero': DeepSeek-R1-Zero's system prompt; 'none'; 'auto': none for the built-in models
    (they learn the format from SFT and the prompt would fill most of their context), else r1-zero."""
    total_steps: int = 200
    """Optimizer steps to train for."""
    learning_rate: float = 1e-4
    max_grad_norm: float = 1.0
    """Clip the gradient norm to this (0: no clipping)."""
    max_prompt_length: int = 128
    """Longest prompt in tokens; a longer prompt is an error that names it (nothing is cut)."""
    max_completion_length: int = 48
    """Most tokens generated (or trained on) per completion."""
    eval_every: int = 50
    """Evaluate held-out accuracy every this many optimizer steps (0: only at the end)."""
    eval_size: int = 500
    """Held-out prompts per evaluation (greedy decoding); at most test_size."""
    checkpoint_every: int = 0
    """Also checkpoint every this many optimizer steps (0: by time only)."""
    checkpoint_minutes: float = 2.0
    """Save a resumable checkpoint at least this often (and at the end, on Ctrl-C and SIGTERM)."""
    log_every: int = 1
    """Write averaged training metrics every this many optimizer steps."""
    lora_r: int = 0
    """LoRA rank (peft); 0 trains all weights."""
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    device: str = "auto"
    """'auto' (CUDA when available), 'cpu', 'cuda', 'cuda:N' or 'mps'."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """Weights' dtype: 'auto' is bfloat16 on a GPU that supports it, else float32."""
    torch_threads: int = 0
    """Threads torch may use on CPU (0: torch's default, one per core: language models have matrices big enough to share)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("total_steps", "train_size", "test_size", "eval_size", "max_prompt_length", "max_completion_length"):
            check(getattr(self, name) > 0, f"{name} must be > 0, got {getattr(self, name)}.")
        check(self.eval_size <= self.test_size, f"eval_size ({self.eval_size}) cannot exceed test_size ({self.test_size}).")
        check(self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}.")
        check(self.max_grad_norm >= 0, f"max_grad_norm must be >= 0 (0: no clipping), got {self.max_grad_norm}.")
        check(self.eval_every >= 0 and self.checkpoint_every >= 0, "eval_every and checkpoint_every must be >= 0 (0: only at the end / by time).")
        check(self.checkpoint_minutes > 0, f"checkpoint_minutes must be > 0, got {self.checkpoint_minutes}.")
        check(self.log_every > 0, f"log_every must be > 0, got {self.log_every}.")
        check(self.lora_r >= 0, f"lora_r must be >= 0 (0: no LoRA), got {self.lora_r}.")
        check(self.torch_threads >= 0, f"torch_threads must be >= 0, got {self.torch_threads}.")
        check(DEVICE_PATTERN.fullmatch(self.device) is not None,
              f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' (N a GPU index) or 'mps', got {self.device!r}.")

    @property
    def budget(self) -> Budget:
        return Budget(self.total_steps, "optimizer steps")

    @property
    def schedule(self) -> Schedule:
        return Schedule(self.eval_every, self.checkpoint_every, 60.0 * self.checkpoint_minutes, self.log_every, eval_at_start=True)
