"""Language-model primitives: per-token log-probabilities of completions, batched sampling with a
KV cache, and masked means. Any causal LM with the Hugging Face call signature works
(`model(input_ids=, attention_mask=, position_ids=, ...)` returning `.logits`).

Layout used throughout: a batch row is `[prompt, left-padded | completion, right-padded]`, so
every completion starts at the same column P (the padded prompt width). Position ids are counted
over real tokens only, so a row's log-probs do not depend on how much padding it got.
"""

from __future__ import annotations

import functools
import inspect
from typing import Callable, NamedTuple

import torch
from torch import Tensor


def masked_mean(values: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Mean of values where mask is 1 (over `dim`, or over everything); 0 where the mask is empty."""
    mask = mask.to(values.dtype)
    if dim is None:
        return (values * mask).sum() / mask.sum().clamp(min=1.0)
    return (values * mask).sum(dim) / mask.sum(dim).clamp(min=1.0)


def positions(attention_mask: Tensor) -> Tensor:
    """Position ids that skip padding: 0 at each row's first real token (left padding included)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def _forward_logits(model, input_ids: Tensor, attention_mask: Tensor, keep: int) -> Tensor:
    """Logits of the last `keep` positions; `logits_to_keep` spares the vocabulary projection elsewhere."""
    kwargs = dict(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions(attention_mask), use_cache=False)
    if _accepts(model, "logits_to_keep"):
        kwargs["logits_to_keep"] = keep
    return model(**kwargs).logits[:, -keep:]


def token_logprobs(model, input_ids: Tensor, attention_mask: Tensor, completion_start: int, temperature: float = 1.0) -> Tensor:
    """log pi(token_t | tokens_<t) for every completion token, shape [B, T - completion_start].

    Logits at position t predict token t+1, hence the one-column shift. Padding positions get a
    value too; multiply by the completion mask. `temperature` divides the logits as sampling did,
    so the log-probs are those of the distribution the tokens were drawn from.
    """
    completion = input_ids[:, completion_start:]
    logits = _forward_logits(model, input_ids, attention_mask, completion.shape[1] + 1)[:, :-1].float()
    if temperature != 1.0:
        logits = logits / temperature
    # gather - logsumexp: the same as log_softmax then gather, without a [B, T, V] output.
    return logits.gather(-1, completion.unsqueeze(-1)).squeeze(-1) - logits.logsumexp(-1)


def group_token_logprobs(model, prompt_ids: Tensor, prompt_mask: Tensor, completion_ids: Tensor, group_size: int,
                         temperature: float = 1.0) -> Tensor:
    """token_logprobs for G completions of each prompt, running each prompt once instead of G times.

    prompt_ids [N, P] (left-padded), completion_ids [N*G, C] (prompt i's completions are rows
    i*G .. i*G+G-1). The prompt's keys and values are computed once and repeated for its G
    completions; autograd sums their gradients, so values and gradients equal the flat
    computation's (tested), at a fraction of the cost when prompts are long next to completions.
    """
    cache_name = _cache_name(model)
    prompt_mask = prompt_mask.long()
    prompt_position = positions(prompt_mask)
    kwargs = {"logits_to_keep": 1} if _accepts(model, "logits_to_keep") else {}
    out = model(input_ids=prompt_ids, attention_mask=prompt_mask, position_ids=prompt_position, use_cache=True, **kwargs)
    cache = _cache_of(out, cache_name)
    cache.batch_repeat_interleave(group_size)
    first = out.logits[:, -1:].repeat_interleave(group_size, 0)  # predicts each completion's first token
    width = completion_ids.shape[1]
    attention_mask = torch.cat([prompt_mask.repeat_interleave(group_size, 0), torch.ones_like(completion_ids)], 1)
    position = prompt_position[:, -1:].repeat_interleave(group_size, 0) + 1 + torch.arange(width, device=completion_ids.device)
    rest = model(input_ids=completion_ids[:, :-1], attention_mask=attention_mask[:, :-1], position_ids=position[:, :-1],
                 use_cache=True, **{cache_name: cache}).logits if width > 1 else first[:, :0]
    logits = torch.cat([first, rest], 1).float()
    if temperature != 1.0:
        logits = logits / temperature
    return logits.gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1) - logits.logsumexp(-1)


def _cache_of(out, cache_name: str):
    cache = getattr(out, "cache", None) if cache_name == "cache" else None
    return cache if cache is not None else out.past_key_values


class Completions(NamedTuple):
    ids: Tensor
    """[B, C] sampled tokens, right-padded with pad_token_id after EOS."""
    mask: Tensor
    """[B, C] 1 for the tokens of the completion, EOS included; 0 after it."""


def _accepts(model, name: str) -> bool:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft wraps forward in **kwargs
    return name in _forward_parameters(type(base))


@functools.lru_cache(maxsize=None)
def _forward_parameters(model_class: type) -> frozenset[str]:
    """The keyword names a model class's forward takes (inspected once per class: sampling asks every token)."""
    return frozenset(inspect.signature(model_class.forward).parameters)


def _cache_name(model) -> str:
    """transformers >= 5.24 calls the KV cache `cache`; earlier versions `past_key_values`."""
    return "cache" if _accepts(model, "cache") else "past_key_values"


def filter_top_p(logits: Tensor, top_p: float) -> Tensor:
    """Nucleus filtering: keep the smallest set of tokens whose probability reaches top_p."""
    if top_p >= 1.0:
        return logits
    sorted_logits, order = logits.sort(-1, descending=True)
    probs = sorted_logits.softmax(-1)
    # A token is dropped when the tokens ranked above it already reach top_p; the first never is.
    drop_sorted = probs.cumsum(-1) - probs >= top_p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


@torch.no_grad()
def sample(
    model,
    prompt_ids: Tensor,
    prompt_mask: Tensor,
    *,
    max_new_tokens: int,
    eos_token_ids: tuple[int, ...],
    pad_token_id: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    num_generations: int = 1,
    all_done: Callable[[bool], bool] = bool,
) -> Completions:
    """Sample `num_generations` completions per left-padded prompt (rows i*G .. i*G+G-1 for
    prompt i), one token per step with a KV cache; each prompt is run once and its cache repeated.

    temperature 0 is greedy decoding. A row stops at its first EOS token (kept in the completion,
    so the model learns to stop); the batch stops when every row has, or at max_new_tokens.
    `generator` makes sampling reproducible independently of the global RNG.
    `all_done(this batch is done) -> every process's is` keeps a process whose rows have all
    ended running the model on padding until the others end too: with parameters sharded over
    processes every forward pass is a collective (transformers calls this synced_gpus). The
    completions are the same with or without it.
    """
    device = prompt_ids.device
    cache_name = _cache_name(model)
    eos = torch.tensor(eos_token_ids, device=device)
    attention_mask = prompt_mask.long()
    position = positions(attention_mask)
    kwargs = {"logits_to_keep": 1} if _accepts(model, "logits_to_keep") else {}
    out = model(input_ids=prompt_ids, attention_mask=attention_mask, position_ids=position, use_cache=True, **kwargs)
    if num_generations > 1:
        _cache_of(out, cache_name).batch_repeat_interleave(num_generations)
        out.logits = out.logits[:, -1:].repeat_interleave(num_generations, 0)
        attention_mask = attention_mask.repeat_interleave(num_generations, 0)
        position = position.repeat_interleave(num_generations, 0)
    batch = attention_mask.shape[0]
    next_position = position[:, -1:] + 1
    tokens = torch.full((batch, max_new_tokens), pad_token_id, dtype=torch.long, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    length, done = 0, False
    for step in range(max_new_tokens):
        if not done:  # past it, the model runs on padding (all_done) and nothing is drawn
            token = _next_token(out.logits[:, -1].float(), temperature, top_p, generator).masked_fill(finished, pad_token_id)
            tokens[:, step] = token
            length = step + 1
            finished |= torch.isin(token, eos)
            done = bool(finished.all())
        if step == max_new_tokens - 1 or all_done(done):
            break
        attention_mask = torch.cat([attention_mask, torch.ones_like(attention_mask[:, :1])], dim=1)
        out = model(input_ids=token[:, None], attention_mask=attention_mask, position_ids=next_position,
                    use_cache=True, **{cache_name: _cache_of(out, cache_name)})
        next_position = next_position + 1
    tokens = tokens[:, :length]
    return Completions(tokens, completion_mask(tokens, eos_token_ids))


def _next_token(logits: Tensor, temperature: float, top_p: float, generator: torch.Generator | None) -> Tensor:
    """Greedy at temperature 0, else a draw from the nucleus of the tempered distribution."""
    if temperature == 0:
        return logits.argmax(-1)
    probs = filter_top_p(logits / temperature, top_p).softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def ends_with_stop(tokens: Tensor, mask: Tensor, eos_token_ids: tuple[int, ...]) -> Tensor:
    """[B] True where a completion's last real token is a stop token: it ended, rather than being
    cut at the length limit (False for an empty completion)."""
    last = (mask.long().sum(1) - 1).clamp(min=0)
    stopped = torch.isin(tokens.gather(1, last.unsqueeze(1)).squeeze(1), torch.tensor(eos_token_ids, device=tokens.device))
    return stopped & mask.bool().any(1)


def completion_mask(tokens: Tensor, eos_token_ids: tuple[int, ...]) -> Tensor:
    """1 up to and including each row's first EOS token, 0 after it (all 1 when there is none)."""
    is_eos = torch.isin(tokens, torch.tensor(eos_token_ids, device=tokens.device))
    eos_before = is_eos.long().cumsum(-1) - is_eos.long()  # EOS tokens strictly before t
    return (eos_before == 0).long()
