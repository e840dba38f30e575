"""Fixed prompt/completion text as token batches, for the algorithms that score given completions
rather than sampled ones: reward models, DPO, KTO and distillation.

A batch row is `[prompt, left-padded | completion + EOS, right-padded]`, the layout of ops/lm.py,
so every completion starts at column P and `token_logprobs` applies unchanged. A preference pair
is two rows of one batch: the B chosen completions first, then the B rejected ones, so the policy
runs once per step (as TRL's concatenated forward).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from rlsuite.lm import runtime
from rlsuite.lm.generation import pad_left
from rlsuite.ops.lm import group_token_logprobs, token_logprobs


class SequenceBatch(NamedTuple):
    input_ids: Tensor        # [B, P + C]
    attention_mask: Tensor   # [B, P + C]
    completion_start: int    # P
    completion_mask: Tensor  # [B, C]: 1 on completion tokens, the EOS included

    @property
    def completion_ids(self) -> Tensor:
        return self.input_ids[:, self.completion_start:]


def encode_completion(tokenizer, text: str, max_length: int) -> list[int]:
    """The completion's ids followed by EOS; a completion cut at max_length loses its EOS (it did not end)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return (ids + [tokenizer.eos_token_id])[:max_length]


def encode_pairs(tokenizer, rows: list[dict], config) -> list[tuple[list[int], list[int], list[int]]]:
    """(prompt, chosen, rejected) token ids of preference rows; prompts too long are an error."""
    prompts = runtime.encode_prompts(tokenizer, rows, config.max_prompt_length, "preference")
    return [(p, encode_completion(tokenizer, r["chosen"], config.max_completion_length),
             encode_completion(tokenizer, r["rejected"], config.max_completion_length)) for p, r in zip(prompts, rows)]


def collate(prompts: list[list[int]], completions: list[list[int]], pad: int, device) -> SequenceBatch:
    prompt_ids, prompt_mask = pad_left(prompts, pad)
    width = max(len(c) for c in completions)
    completion = torch.full((len(completions), width), pad, dtype=torch.long)
    completion_mask = torch.zeros_like(completion)
    for row, ids in enumerate(completions):
        completion[row, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        completion_mask[row, :len(ids)] = 1
    return SequenceBatch(torch.cat([prompt_ids, completion], 1).to(device), torch.cat([prompt_mask, completion_mask], 1).to(device),
                         prompt_ids.shape[1], completion_mask.to(device))


def collate_pairs(pairs: list[tuple[list[int], list[int], list[int]]], pad: int, device) -> SequenceBatch:
    """B pairs as 2B rows: rows 0..B-1 the chosen completions, rows B..2B-1 the rejected."""
    prompts = [p for p, _, _ in pairs]
    return collate(prompts + prompts, [c for _, c, _ in pairs] + [r for _, _, r in pairs], pad, device)


def sequence_logprobs(model, batch: SequenceBatch, *, average: bool = False) -> Tensor:
    """log pi(completion | prompt) per row: the sum of its token log-probs (or their mean), [B]."""
    return reduce_logprobs(completion_logprobs(model, batch), batch.completion_mask, average=average)


def completion_logprobs(model, batch: SequenceBatch) -> Tensor:
    """log pi of each completion token, [B, C] (padding included: mask it)."""
    return token_logprobs(model, batch.input_ids, batch.attention_mask, batch.completion_start)


def pair_logprobs(model, batch: SequenceBatch) -> Tensor:
    """completion_logprobs of a collate_pairs batch, running each pair's prompt once for both of
    its completions (ops.lm.group_token_logprobs with groups of 2: same values and gradients)."""
    half, P = batch.input_ids.shape[0] // 2, batch.completion_start
    interleave = torch.stack([torch.arange(half), torch.arange(half) + half], 1).flatten().to(batch.input_ids.device)
    logp = group_token_logprobs(model, batch.input_ids[:half, :P], batch.attention_mask[:half, :P],
                                batch.input_ids[interleave, P:], group_size=2)
    return logp[interleave.argsort()]


def reduce_logprobs(token_logp: Tensor, mask: Tensor, *, average: bool = False) -> Tensor:
    mask = mask.to(token_logp.dtype)
    total = (token_logp * mask).sum(1)
    return total / mask.sum(1).clamp(min=1.0) if average else total
