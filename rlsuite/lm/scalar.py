"""Scalar-headed language models: the reward model and the value model of RLHF.

Both are a causal LM's transformer with a linear head giving one number per token, stored as a
transformers `*ForSequenceClassification` model with num_labels=1, the layout TRL and the Hub use
for reward models, so a reward model trained here loads there and the other way round. The head
is read at every token (values, `token_scores`) or at a sequence's last real token (rewards,
`sequence_scores`), the EOS when the completion ended.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from rlsuite.errors import ConfigError, InputError, require_extra
from rlsuite.lm import models, parallel
from rlsuite.ops.lm import positions


def from_causal_lm(name: str, *, seed: int = 0):
    """(scalar model, tokenizer) whose transformer starts from a causal LM ('builtin',
    'builtin-sft', a local folder or a run) and whose head starts at zero, so every sequence
    scores 0 before training (as a value model should before it has seen a return)."""
    require_extra("transformers", "llm")
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    if name == models.BUILTIN:
        tokenizer = models.build_tokenizer()
        causal = models.build_model(tokenizer, seed)
        model = _sequence_class_of(causal.config)
        model.model.load_state_dict(causal.model.state_dict())
    else:
        causal_dir = _model_dir(models.BUILTIN_SFT_DIR if name == models.BUILTIN_SFT else Path(name).expanduser())
        tokenizer = AutoTokenizer.from_pretrained(causal_dir, local_files_only=True)
        models.check_tokenizer(tokenizer, str(causal_dir))
        config = AutoConfig.from_pretrained(causal_dir, local_files_only=True, num_labels=1)
        with _quiet_transformers():  # "Some weights were newly initialized": the head, on purpose
            model = AutoModelForSequenceClassification.from_pretrained(causal_dir, config=config, local_files_only=True)
    torch.nn.init.zeros_(_head(model).weight)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def load(path: str | Path):
    """(scalar model, tokenizer) saved by a reward-model run (its folder or its model/ folder)."""
    require_extra("transformers", "llm")
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    directory = _model_dir(Path(path).expanduser())
    import json

    architectures = json.loads((directory / "config.json").read_text()).get("architectures") or []
    if not any(a.endswith("ForSequenceClassification") for a in architectures):
        raise InputError(f"{directory} holds a {', '.join(architectures) or 'model'}, not a reward model "
                         f"(a *ForSequenceClassification with one label); train one with `rlsuite train reward_model`.")
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
        with _quiet_transformers():
            model = AutoModelForSequenceClassification.from_pretrained(directory, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load the reward model in {directory} ({type(exc).__name__}: {exc}).") from None
    if model.config.num_labels != 1:
        raise InputError(f"{directory} has {model.config.num_labels} labels; a reward model has one scalar output.")
    models.check_tokenizer(tokenizer, str(directory))
    return model, tokenizer


def check_same_tokenizer(policy_tokenizer, other_tokenizer, what: str) -> None:
    """Scoring a policy's token ids with another model needs the very same vocabulary."""
    if policy_tokenizer.get_vocab() != other_tokenizer.get_vocab():
        raise InputError(
            f"the {what}'s tokenizer differs from the policy's ({len(other_tokenizer)} vs {len(policy_tokenizer)} tokens, or "
            f"other ids): it would read the policy's token ids as different text. Train the {what} from the policy's base "
            f"model (e.g. --model {models.BUILTIN_SFT} for the built-in policy), or score text with a reward function instead."
        )


def token_scores(model, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
    """The head at every position, [B, T], with position ids that skip left padding. `model` is a
    scalar model, or a TokenScores of one (prepared for data-parallel training, too)."""
    if isinstance(parallel.unwrap(model), TokenScores):
        return model(input_ids, attention_mask)
    backbone = getattr(model, model.base_model_prefix)
    hidden = backbone(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions(attention_mask),
                      use_cache=False).last_hidden_state
    return _head(model)(hidden).squeeze(-1).float()


class TokenScores(torch.nn.Module):
    """token_scores as a module's forward: what a trainer hands to accelerate for a reward or value
    model, since token_scores reads the backbone and the head apart and would bypass a wrapper's
    forward (DDP arms its gradient averaging there)."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self._no_split_modules = getattr(model, "_no_split_modules", None)  # FSDP's auto wrap shards the model's layers one by one

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return token_scores(self.model, input_ids, attention_mask)


def sequence_scores(model, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
    """The head at each row's last real token (rows are left- or right-padded), [B]."""
    scores = token_scores(model, input_ids, attention_mask)
    last = last_index(attention_mask)
    return scores.gather(1, last.unsqueeze(1)).squeeze(1)


def last_index(mask: Tensor) -> Tensor:
    """Index of each row's last 1 in mask (0 for an all-zero row)."""
    index = torch.arange(mask.shape[1], device=mask.device)
    return (index * mask.long()).argmax(1)


def _head(model):
    head = getattr(model, "score", None)
    if head is None:
        raise InputError(f"{type(model).__name__} has no `score` head; rlsuite's reward and value models are "
                         "*ForSequenceClassification models with a linear `score` head (Llama, Qwen, Mistral, GPT-2 ...).")
    return head


def _sequence_class_of(config):
    from transformers import AutoModelForSequenceClassification

    fields = {k: v for k, v in config.to_dict().items() if k not in ("id2label", "label2id")}
    config = config.__class__(**fields, num_labels=1)
    return AutoModelForSequenceClassification.from_config(config)


def _model_dir(path: Path) -> Path:
    if (path / "config.json").is_file():
        return path
    if (path / "model" / "config.json").is_file():
        return path / "model"
    raise ConfigError(f"{path} holds no saved model (no config.json there or in its model/ folder); give a run directory "
                      f"or a folder written by save_pretrained. rlsuite never downloads models.")


class _quiet_transformers:
    def __enter__(self):
        from transformers.utils import logging

        self.level = logging.get_verbosity()
        logging.set_verbosity_error()
        logging.disable_progress_bar()

    def __exit__(self, *exc):
        from transformers.utils import logging

        logging.set_verbosity(self.level)


def reward_function(name: str, *, device="cpu", **options):
    """rewards.make_reward(name, **options), or for `model:PATH` a RewardModelFunction on `device`."""
    from rlsuite.ops import rewards

    if name.startswith(rewards.MODEL_PREFIX):
        return RewardModelFunction(name[len(rewards.MODEL_PREFIX):], device=device, **options)
    return rewards.make_reward(name, **options)


class RewardModelFunction:
    """A saved reward model as a reward function with TRL's signature, so GRPO, PPO-RLHF and
    rejection sampling take it beside the rule-based ones (`--rewards model:RUN`):

        reward(completions, prompts, **columns) -> list[float]

    It reads text and tokenizes with its own tokenizer (chat template on the prompt, the
    completion and EOS after it), so its vocabulary may differ from the policy's.
    """

    def __init__(self, path: str | Path, *, device="cpu", batch_size: int = 64, config=None):
        self.model, self.tokenizer = load(path)
        self.config = config  # the training run's, when loaded from one
        self.model.to(device).eval()
        self.device, self.batch_size, self.path = torch.device(device), batch_size, str(path)
        self.__name__ = "reward_model"

    @torch.no_grad()
    def __call__(self, completions, prompts=None, **columns) -> list[float]:
        from rlsuite.lm import runtime, sequences

        if prompts is None:
            raise InputError("a reward model scores a completion given its prompt; pass prompts= (the conversations).")
        texts = [c[-1]["content"] if isinstance(c, list) else str(c) for c in completions]
        rows = [{"prompt": p if isinstance(p, list) else [{"role": "user", "content": str(p)}]} for p in prompts]
        prompt_ids = [self.tokenizer(runtime.prompt_text(self.tokenizer, row), add_special_tokens=False)["input_ids"] for row in rows]
        limit = getattr(self.model.config, "max_position_embeddings", 1 << 30)
        scores: list[float] = []
        for start in range(0, len(texts), self.batch_size):
            chunk = slice(start, start + self.batch_size)
            completion_ids = [sequences.encode_completion(self.tokenizer, t, max(1, limit - len(p)))
                              for t, p in zip(texts[chunk], prompt_ids[chunk])]
            batch = sequences.collate(prompt_ids[chunk], completion_ids, self.tokenizer.pad_token_id, self.device)
            scores.extend(sequence_scores(self.model, batch.input_ids, batch.attention_mask).tolist())
        return scores

    def rank(self, rows: list[dict]) -> dict[str, float]:
        """Pairwise accuracy and mean margin on preference rows (prompt, chosen, rejected)."""
        prompts = [row["prompt"] for row in rows]
        chosen = torch.tensor(self([row["chosen"] for row in rows], prompts))
        rejected = torch.tensor(self([row["rejected"] for row in rows], prompts))
        return {"accuracy": (chosen > rejected).float().mean().item(), "margin": (chosen - rejected).mean().item()}

    def score(self, question: str, completion: str) -> float:
        """The reward of one answer to a question (the question becomes the user's message)."""
        return self([completion], [[{"role": "user", "content": question}]])[0]

    def __repr__(self) -> str:
        return f"RewardModelFunction({self.path!r}, {models.count_parameters(self.model):,} parameters)"
