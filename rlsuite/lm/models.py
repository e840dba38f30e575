"""The model and tokenizer of a language-model run: the built-in one, or any local Hugging Face
causal LM with a chat template. Nothing is ever downloaded.

The built-in model exists so that the whole pipeline (SFT, GRPO, ...) runs and learns on a laptop
CPU: a byte-level tokenizer built with `tokenizers` (every UTF-8 text encodes, Chinese included;
the R1 format tags and the chat markers are single tokens) and a ~1.1M-parameter Qwen2-shaped
decoder from a `transformers` config. `builtin` is that model with random weights; `builtin-sft`
is it after `rlsuite train sft --task arithmetic` (the recipe in SFT_RECIPE), shipped with the
package so GRPO starts at once; `scripts/make_builtin_sft.sh` remakes it.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from rlsuite.errors import ConfigError, InputError, require_extra

BUILTIN = "builtin"
BUILTIN_SFT = "builtin-sft"
BUILTIN_SMALL = "builtin-small"
BUILTIN_SFT_DIR = Path(__file__).with_name("builtin_sft")
SFT_RECIPE = "rlsuite train sft --task arithmetic --level mixed --run-dir runs/builtin-sft"

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
FORMAT_TAGS = ("<think>", "</think>", "<answer>", "</answer>")
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""ChatML, as Qwen's: one <|im_start|>role ... <|im_end|> block per message."""

BUILTIN_SHAPE = dict(hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4,
                     num_key_value_heads=4, max_position_embeddings=512, rope_theta=10_000.0, tie_word_embeddings=True)
SMALL_SHAPE = {**BUILTIN_SHAPE, "hidden_size": 64, "intermediate_size": 256, "num_hidden_layers": 2}
"""`builtin-small`: a student for distillation, about a fifth of the built-in model, same tokenizer."""


def build_tokenizer():
    """The built-in byte-level tokenizer, as a PreTrainedTokenizerFast with a chat template."""
    require_extra("tokenizers", "llm")
    require_extra("transformers", "llm")
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    # One token per byte (a BPE without merges): any text encodes, and a tiny model needs no
    # vocabulary larger than that to learn arithmetic.
    vocab = {token: i for i, token in enumerate((*SPECIAL_TOKENS, *FORMAT_TAGS, *sorted(pre_tokenizers.ByteLevel.alphabet())))}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    # Not special: decoding with skip_special_tokens keeps them, and the format reward reads them.
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in FORMAT_TAGS])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>", chat_template=CHAT_TEMPLATE,
        padding_side="left", model_max_length=BUILTIN_SHAPE["max_position_embeddings"],
    )


def build_model(tokenizer, seed: int = 0, shape: dict | None = None):
    """The built-in decoder (or another `shape`) with freshly initialized weights (reproducible from `seed`)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                         bos_token_id=None, **(shape or BUILTIN_SHAPE))
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return Qwen2ForCausalLM(config)
    finally:
        torch.random.set_rng_state(state)


def load_model(name: str, *, seed: int = 0, dtype: str = "auto"):
    """(model, tokenizer) for `builtin`, `builtin-small`, `builtin-sft` or a local directory written by
    `save_pretrained` (a run's model/ folder included). On CPU in float32 unless dtype says otherwise."""
    require_extra("transformers", "llm")
    if name in (BUILTIN, BUILTIN_SMALL):
        tokenizer = build_tokenizer()
        return build_model(tokenizer, seed, BUILTIN_SHAPE if name == BUILTIN else SMALL_SHAPE), tokenizer
    path = BUILTIN_SFT_DIR if name == BUILTIN_SFT else Path(name).expanduser()
    if name == BUILTIN_SFT and not (path / "config.json").is_file():
        raise ConfigError(f"the built-in SFT weights are missing from {path}; remake them with scripts/make_builtin_sft.sh ({SFT_RECIPE}).")
    return load_pretrained(path, dtype=dtype)


def load_pretrained(path: Path, *, dtype: str = "auto"):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging

    logging.disable_progress_bar()  # "Loading weights" bars would break the run's progress line

    if not path.exists():
        raise ConfigError(
            f"model {str(path)!r} does not exist. rlsuite never downloads models: give a local directory written by "
            f"save_pretrained (e.g. after `huggingface-cli download` on a connected machine), a run's model/ folder, "
            f"or '{BUILTIN}' / '{BUILTIN_SFT}'."
        )
    if not (path / "config.json").is_file():
        model_dir = path / "model"  # a run directory was given
        if (model_dir / "config.json").is_file():
            path = model_dir
        else:
            raise ConfigError(f"{path} holds no config.json: it is not a saved transformers model (nor an rlsuite run with a model/ folder).")
    adapter = path / "adapter_config.json"
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        if adapter.is_file():
            require_extra("peft", "llm")
            from peft import AutoPeftModelForCausalLM

            model = AutoPeftModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch_dtype(dtype))
        else:
            model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch_dtype(dtype))
    except (OSError, ValueError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot load the model in {path} ({type(exc).__name__}: {exc}).") from None
    check_tokenizer(tokenizer, str(path))
    return model, tokenizer


def torch_dtype(name: str):
    """The torch dtype of a config's dtype name ('auto' loads in float32; the run casts it later)."""
    import torch

    table = {"auto": torch.float32, "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if name not in table:
        raise ConfigError(f"dtype must be one of {', '.join(table)}; got {name!r}.")
    return table[name]


def check_tokenizer(tokenizer: Any, where: str) -> None:
    """A tokenizer rlsuite can train with: a chat template, an EOS token and a pad token."""
    if not getattr(tokenizer, "chat_template", None):
        raise InputError(
            f"the tokenizer of {where} has no chat template, so prompts cannot be formatted as conversations. "
            "Use an instruct/chat model, or set tokenizer.chat_template (a Jinja template) and save it with save_pretrained."
        )
    if tokenizer.eos_token_id is None:
        raise InputError(f"the tokenizer of {where} has no eos_token: generation could never stop. Set tokenizer.eos_token.")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token  # the usual choice; padded positions are masked anyway


def is_builtin_tokenizer(tokenizer) -> bool:
    """True for the built-in byte-level tokenizer (also when loaded back from a saved run)."""
    return tokenizer.chat_template == CHAT_TEMPLATE and len(tokenizer) == 256 + len(SPECIAL_TOKENS) + len(FORMAT_TAGS)


@contextlib.contextmanager
def eval_mode(model):
    """The model in eval mode (no dropout) for the block, then back in the mode it was in."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def save(model, tokenizer, directory: Path, state_dict: dict | None = None) -> None:
    """save_pretrained of the model (LoRA adapters merged in, so the folder loads without peft)
    and of the tokenizer: the export of every language-model run. `state_dict`: the weights to
    write instead of the model's own (gathered whole when they are sharded over processes)."""
    from transformers.utils import logging

    logging.disable_progress_bar()  # "Writing model shards" bars would break the run's progress line
    if state_dict is None:
        merged_copy(model).save_pretrained(directory)
    else:
        import torch

        state_dict = dict(state_dict)  # a copy: save_pretrained empties the dict it is given
        # Gathered weights are separate tensors; tied ones made one again are saved once, as by the model itself.
        for tied, source in (getattr(model, "all_tied_weights_keys", None) or {}).items():
            if tied in state_dict and source in state_dict and torch.equal(state_dict[tied], state_dict[source]):
                state_dict[tied] = state_dict[source]
        model.save_pretrained(directory, state_dict=state_dict)
        _name_architecture(model, Path(directory))
    tokenizer.save_pretrained(directory)


def _name_architecture(model, directory: Path) -> None:
    """FSDP2 gives a sharded model a subclass (FSDPQwen2ForCausalLM) whose name save_pretrained
    writes as the architecture; the folder must name the class that loads it."""
    path = directory / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    names = [cls.__name__ for cls in type(model).__mro__ if cls.__module__.startswith("transformers.")]
    if names and config.get("architectures") != names[:1]:
        config["architectures"] = names[:1]
        path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def frozen_reference(model):
    """The frozen starting policy a KL is measured against: a copy of the weights, or for a LoRA
    model the model itself with its adapters disabled (no second copy)."""
    if hasattr(model, "disable_adapter"):
        return _AdaptersOff(model)
    import copy

    reference = copy.deepcopy(model).eval()
    reference.requires_grad_(False)
    return reference


class _AdaptersOff:
    def __init__(self, model):
        self.model = model

    def __call__(self, **kwargs):
        with self.model.disable_adapter():
            return self.model(**kwargs)

    def get_base_model(self):
        return self.model.get_base_model()


def merged_copy(model):
    """The model with any LoRA adapters merged into its weights (the model itself when none)."""
    if not hasattr(model, "merge_and_unload"):
        return model
    import copy

    return copy.deepcopy(model).merge_and_unload()
