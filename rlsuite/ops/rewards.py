"""Verifiable (rule-based) rewards for language-model RL: GRPO, DeepSeek-R1-Zero style.

Every reward has TRL's signature `f(completions, **columns) -> list[float | None]`:
- `completions` is a list of strings (plain) or of conversations, each a list of message dicts
  whose last message is the assistant's reply (conversational, as TRL passes them);
- dataset columns and what the trainer adds (`prompts`, `completion_ids`) arrive as keyword lists
  aligned with `completions`; unknown keywords are ignored so every reward can be given them all;
- `None` means "this reward cannot judge this sample" (e.g. an unparseable gold answer): `score`
  and TRL skip it instead of treating it as a score.

Columns are positional-or-keyword parameters (`solution`, `prompts`), defaulting to None so that a
dataset lacking one gets an InputError naming it rather than a TypeError; options are
keyword-only (`max_length`, `think_prefilled`) and are bound with `make_reward(name, **options)`.

The expected completion shape is `<think>reasoning</think> <answer>final answer</answer>`.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rlsuite.errors import InputError, UnknownNameError, require_extra, suggest

Reward = Callable[..., list]

_TAGS = ("<think>", "</think>", "<answer>", "</answer>")
_NO_TAG = r"(?:(?!</?think>|</?answer>).)*"
# fullmatch + DOTALL: the whole completion must be the two blocks. A `re.MULTILINE` pattern ending
# in `$` accepts anything after `</answer>` once it starts on a new line (the course text's bug).
_STRICT_FORMAT = re.compile(rf"<think>{_NO_TAG}</think>\s*<answer>{_NO_TAG}</answer>\s*", re.DOTALL)
# The tempered dot stops an `<answer>` from spanning another `<answer>`: the match is the last,
# innermost block, whatever the model wrote before it.
_ANSWER = re.compile(r"<answer>((?:(?!<answer>).)*?)</answer>", re.DOTALL)
_STEP = re.compile(
    r"(?i:\bstep)\s*\d+\s*[:.]"  # Step 1:
    r"|^[ \t]*\d+[.)、](?!\d)"  # numbered lines "1." / "1)" / "1、", but not "3.14"
    r"|^[ \t]*[-*•][ \t]"  # bullets
    r"|\b(?:First|Second|Third|Next|Finally),"
    r"|首先|其次|然后|接着|最后|第[一二三四五六七八九十百\d]+步",
    re.MULTILINE,
)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")
_MATH_TIMEOUT_S = 5


# --------------------------------------------------------------------------------------------
# Text helpers
# --------------------------------------------------------------------------------------------


def _message_text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    # Multimodal chat messages carry a list of parts; only the text parts are the model's words.
    if isinstance(content, Sequence) and all(isinstance(p, Mapping) for p in content):
        return "".join(p.get("text", "") for p in content if p.get("type", "text") == "text")
    raise InputError(f"{where}: message content must be a string or a list of {{'type': 'text', 'text': ...}} parts, got {type(content).__name__}.")


def completion_text(completion: str | Sequence[Mapping[str, Any]]) -> str:
    """The text of one completion, plain (a string) or conversational (a list of messages).

    TRL passes conversational completions as `[{"role": "assistant", "content": ...}]`; rewards
    that run `re` on the list itself raise TypeError, and ones that take `completion[0]` read the
    wrong message once tool calls add turns, so the reply is the LAST message's content.
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and all(isinstance(m, Mapping) for m in completion):
        last = completion[-1]
        if "content" not in last:
            raise InputError(f"the last message of a conversational completion has no 'content' key (keys: {sorted(last)}); pass messages as {{'role': 'assistant', 'content': '...'}}.")
        return _message_text(last["content"], "completion")
    raise InputError(
        f"a completion must be a string or a non-empty list of message dicts ending with the assistant's reply, got {type(completion).__name__} {completion!r:.80}."
    )


def extract_answer(text: str) -> str | None:
    """The stripped content of the LAST `<answer>...</answer>` block, or None when there is none.

    The last one, because a model that drafts an answer and then corrects itself means the
    correction; taking the first (as `re.search` does) grades the draft.
    """
    matches = _ANSWER.findall(text)
    return matches[-1].strip() if matches else None


def _reasoning(text: str) -> str:
    """The reasoning part: inside `<think>` (to `</think>` or the end), else before a lone
    `</think>` (the `<think>` was pre-filled by the chat template), else the whole text."""
    start = text.find("<think>")
    if start >= 0:
        body = text[start + len("<think>") :]
        end = body.find("</think>")
        return body if end < 0 else body[:end]
    end = text.find("</think>")
    return text if end < 0 else text[:end]


def _texts(completions: Sequence) -> list[str]:
    if isinstance(completions, (str, bytes)) or not isinstance(completions, Sequence):
        raise InputError(f"completions must be a list (one entry per sample), got {type(completions).__name__}; wrap a single completion as [completion].")
    return [completion_text(c) for c in completions]


def _column(values: Any, name: str, n: int, reward: str) -> Sequence:
    if values is None:
        raise InputError(f"the {reward} reward needs the {name!r} column: pass {name}=[...] with one entry per completion.")
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) != n:
        got = f"{type(values).__name__} of length {len(values)}" if hasattr(values, "__len__") else type(values).__name__
        raise InputError(f"the {reward} reward needs {name} as a list with one entry per completion ({n}), got {got}.")
    return values


def _lengths(completion_ids: Any, n: int, reward: str) -> list[int]:
    if completion_ids is None:
        raise InputError(
            f"the {reward} reward measures length in tokens and needs completion_ids=[[token ids], ...] (GRPOTrainer passes it); "
            "outside GRPO, tokenize the completions and pass their ids."
        )
    ids = _column(completion_ids, "completion_ids", n, reward)
    try:
        return [len(x) for x in ids]
    except TypeError:
        raise InputError(f"the {reward} reward needs completion_ids as one list of token ids per completion, got items like {ids[0]!r:.80}.") from None


def _check_length_option(name: str, value: Any, reward: str, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise InputError(f"the {reward} reward's {name} must be an integer >= {minimum} (tokens), got {value!r}.")


# --------------------------------------------------------------------------------------------
# Rewards
# --------------------------------------------------------------------------------------------


def _math_call(fn: Callable, *args: Any, timeout_kw: str, **kw: Any) -> Any:
    """Run a math_verify function with its SIGALRM timeout where signals work (the main thread).

    math_verify's timeout raises ValueError outside the main thread (trainers score in worker
    threads), which crashes training; there it runs without the alarm instead.
    """
    timeout = _MATH_TIMEOUT_S if threading.current_thread() is threading.main_thread() else None
    try:
        return fn(*args, **{timeout_kw: timeout}, **kw)
    except ValueError:
        if timeout is None:
            raise
        return fn(*args, **{timeout_kw: None}, **kw)


def accuracy(completions: Sequence, solution: Sequence | None = None, **kw: Any) -> list[float | None]:
    """1.0 if the answer is mathematically equal to the gold `solution`, 0.0 if not, None if the
    gold cannot be parsed.

    The answer is the last `<answer>` block, else the whole text. Both sides are parsed with
    math_verify's LaTeX extraction (NuminaMath's `\\boxed{...}` solutions) and plain-expression
    extraction (gold "14" or "-3"), so "0.5" matches `\\boxed{\\frac{1}{2}}`. An unparseable gold
    gives None (skipped): published versions give 1.0 or 0.5 there, paying the model for
    nothing. Known limit of math_verify: a bare non-numeric expression such as `x^2+1` is only
    recognised inside `$...$` or `\\boxed{}`.
    """
    try:
        from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify
    except ImportError:
        require_extra("math_verify", "llm")
        raise
    texts = _texts(completions)
    gold = _column(solution, "solution", len(texts), "accuracy")
    config = [LatexExtractionConfig(), ExprExtractionConfig()]

    def parsed(text: str) -> list:
        try:
            return _math_call(parse, text, config, timeout_kw="parsing_timeout")
        except Exception:  # a parser crash on one sample must not stop training
            return []

    gold_cache: dict[str, list] = {}  # GRPO scores a group of completions against one gold
    rewards: list[float | None] = []
    for text, sol in zip(texts, gold):
        if isinstance(sol, bool) or not isinstance(sol, (str, numbers.Real)):
            raise InputError(f"accuracy: each solution must be a string (or a number), got {type(sol).__name__} {sol!r:.80}.")
        if str(sol) not in gold_cache:
            gold_cache[str(sol)] = parsed(str(sol))
        gold_parsed = gold_cache[str(sol)]
        if not gold_parsed:
            rewards.append(None)
            continue
        answer = extract_answer(text)
        answer = text if answer is None else answer
        answer_parsed = parsed(answer) if answer.strip() else []
        try:
            ok = bool(answer_parsed) and _math_call(verify, gold_parsed, answer_parsed, timeout_kw="timeout_seconds")
        except Exception:
            ok = False
        rewards.append(1.0 if ok else 0.0)
    return rewards


def strict_format(completions: Sequence, *, think_prefilled: bool = False, **kw: Any) -> list[float]:
    """1.0 iff the completion is exactly `<think>...</think>`, optional whitespace,
    `<answer>...</answer>`, optional whitespace, with each tag once; else 0.0.

    Matched with fullmatch + DOTALL: the course text's `re.MULTILINE` + `$` lets anything after
    `</answer>` pass once it is on a new line. With `think_prefilled=True` (DeepSeek-R1 / Qwen3
    chat templates end the prompt with `<think>`) the completion is judged with `<think>`
    prepended, so it is not failed for lacking the tag, and repeating it is a second tag.
    """
    prefix = "<think>" if think_prefilled else ""
    return [1.0 if _STRICT_FORMAT.fullmatch(prefix + t) else 0.0 for t in _texts(completions)]


def tag_count(completions: Sequence, *, think_prefilled: bool = False, **kw: Any) -> list[float]:
    """0.25 for each of `<think>`, `</think>`, `<answer>`, `</answer>` that appears exactly once.

    A denser signal than strict_format early in training. The pre-filled `<think>` counts as
    present when `think_prefilled=True`; otherwise every such completion loses 0.25 for a tag
    the model was never supposed to write.
    """
    prefix = "<think>" if think_prefilled else ""
    return [0.25 * sum((prefix + t).count(tag) == 1 for tag in _TAGS) for t in _texts(completions)]


def reasoning_steps(completions: Sequence, **kw: Any) -> list[float]:
    """min(1, markers / 3): rewards explicit step-by-step reasoning.

    Markers are "Step 1:", numbered lines, bullets, "First," / "Second," / "Next," / "Finally,"
    and Chinese 首先 / 其次 / 然后 / 接着 / 最后 / 第一步. Counted only in the reasoning (inside
    `<think>`, or before `</think>` when it was pre-filled, or the whole text when there is no
    tag), so a bulleted list inside `<answer>` does not pay for reasoning.
    """
    return [min(1.0, len(_STEP.findall(_reasoning(t))) / 3) for t in _texts(completions)]


def cosine_scaled(
    completions: Sequence,
    solution: Sequence | None = None,
    *,
    max_length: int,
    min_value_wrong: float = -0.5,
    max_value_wrong: float = -0.1,
    min_value_correct: float = 0.8,
    max_value_correct: float = 1.0,
    completion_ids: Sequence | None = None,
    **kw: Any,
) -> list[float | None]:
    """Accuracy scaled by length on a cosine (Yeo et al. 2025, "Demystifying Long CoT").

    With p = min(L, max_length) / max_length, L in tokens (`completion_ids`):
    correct: min_c + (max_c - min_c)(1 + cos(pi p)) / 2, so shorter correct answers earn more;
    wrong: max_w + (min_w - max_w)(1 + cos(pi p)) / 2, from min_value_wrong at L = 0 to
    max_value_wrong at max_length, so thinking longer before a wrong answer is penalised less.
    p is clipped: the course version measures characters and does not clip, so past max_length
    the cosine wraps around and a long correct answer climbs back to full reward. None where
    accuracy is None (unparseable gold).
    """
    texts = _texts(completions)
    _check_length_option("max_length", max_length, "cosine")
    lengths = _lengths(completion_ids, len(texts), "cosine")
    correct = accuracy(completions, solution)
    rewards: list[float | None] = []
    for length, acc in zip(lengths, correct):
        if acc is None:
            rewards.append(None)
            continue
        progress = min(length, max_length) / max_length
        lo, hi = (min_value_correct, max_value_correct) if acc == 1.0 else (max_value_wrong, min_value_wrong)
        rewards.append(lo + 0.5 * (hi - lo) * (1.0 + math.cos(math.pi * progress)))
    return rewards


def repetition_penalty(completions: Sequence, *, ngram_size: int = 3, max_penalty: float = -1.0, **kw: Any) -> list[float]:
    """(1 - unique n-grams / total n-grams) * max_penalty: penalises looping text.

    Words are lower-cased whitespace tokens; text containing CJK characters has no spaces, so its
    characters are the words (whitespace splitting would see one "word" and never penalise a
    Chinese loop). Empty text or fewer than `ngram_size` words: 0.0. The course version's factory
    returns itself rather than the inner function; here options are bound with make_reward.
    """
    _check_length_option("ngram_size", ngram_size, "repetition")
    if isinstance(max_penalty, bool) or not isinstance(max_penalty, numbers.Real) or not max_penalty <= 0:
        raise InputError(f"the repetition reward's max_penalty must be a number <= 0 (it is a penalty), got {max_penalty!r}; e.g. max_penalty=-1.0.")
    rewards = []
    for text in _texts(completions):
        words = [c for c in text.lower() if not c.isspace()] if _CJK.search(text) else text.lower().split()
        total = len(words) - ngram_size + 1
        if total <= 0:
            rewards.append(0.0)
            continue
        unique = len(set(zip(*(words[i:] for i in range(ngram_size)))))
        rewards.append((1.0 - unique / total) * max_penalty + 0.0)  # + 0.0 turns -0.0 into 0.0
    return rewards


def _script(ch: str) -> str:
    name = unicodedata.name(ch, "")
    if name.startswith("CJK"):
        return "Han"
    if "LATIN" in name.split():  # includes fullwidth Latin letters
        return "Latin"
    return name.split(" ", 1)[0].title() or "Unknown"  # Cyrillic, Greek, Arabic, Hiragana, ...


def _script_counts(text: str) -> Counter:
    return Counter(_script(ch) for ch in text if ch.isalpha())


def _prompt_text(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, Sequence) and all(isinstance(m, Mapping) for m in prompt):
        users = [m for m in prompt if m.get("role") == "user"]
        if users:
            return _message_text(users[-1].get("content", ""), "prompt")
    raise InputError(f"language: each prompt must be a string or a list of messages with a 'user' message, got {type(prompt).__name__} {prompt!r:.80}.")


def language_consistency(completions: Sequence, prompts: Sequence | None = None, **kw: Any) -> list[float | None]:
    """Share of the reasoning's letters written in the prompt's dominant script (DeepSeek-R1's
    language-consistency reward, against reasoning that drifts between languages).

    Scripts come from Unicode names (Han, Latin, Cyrillic, ...). The prompt's script is that of
    the last user message (a system prompt in English must not decide it). Reasoning is inside
    `<think>`, else the whole text. No letters in the reasoning: 0.0; no letters in the prompt
    (e.g. "2+3*4=?"): None, as there is no language to be consistent with. Plain-string prompts
    are used whole, chat-template markup included. Japanese mixes Han and kana, so its reasoning
    scores the share of the prompt's majority script only.
    """
    texts = _texts(completions)
    prompt_list = _column(prompts, "prompts", len(texts), "language")
    rewards: list[float | None] = []
    for text, prompt in zip(texts, prompt_list):
        prompt_scripts = _script_counts(_prompt_text(prompt))
        if not prompt_scripts:
            rewards.append(None)
            continue
        target = prompt_scripts.most_common(1)[0][0]
        scripts = _script_counts(_reasoning(text))
        total = sum(scripts.values())
        rewards.append(scripts[target] / total if total else 0.0)
    return rewards


def soft_overlong(completions: Sequence, *, max_length: int, cache_length: int, completion_ids: Sequence | None = None, **kw: Any) -> list[float]:
    """DAPO's soft overlong punishment (Yu et al. 2025), L in tokens from `completion_ids`:
    0 for L <= max_length - cache_length, then a linear ramp to -1 at L = max_length, and -1 beyond.

    Tokens, not characters: the limit that truncates a completion is a token budget. A hard -1 at
    the limit punishes sound reasoning that merely ran long; the ramp warns before it.
    """
    texts = _texts(completions)
    _check_length_option("max_length", max_length, "overlong")
    _check_length_option("cache_length", cache_length, "overlong")
    if cache_length >= max_length:
        raise InputError(f"the overlong reward needs cache_length < max_length (the ramp lies inside the budget), got cache_length={cache_length}, max_length={max_length}.")
    start = max_length - cache_length
    rewards = []
    for length in _lengths(completion_ids, len(texts), "overlong"):
        if length <= start:
            rewards.append(0.0)
        elif length <= max_length:
            rewards.append((start - length) / cache_length)
        else:
            rewards.append(-1.0)
    return rewards


# --------------------------------------------------------------------------------------------
# Registry and combination
# --------------------------------------------------------------------------------------------

REWARDS: dict[str, Reward] = {
    "accuracy": accuracy,
    "format": strict_format,
    "tag_count": tag_count,
    "reasoning_steps": reasoning_steps,
    "cosine": cosine_scaled,
    "repetition": repetition_penalty,
    "language": language_consistency,
    "overlong": soft_overlong,
}


MODEL_PREFIX = "model:"
"""`model:PATH` names a trained reward model (a reward_model run or a saved *ForSequenceClassification);
rlsuite.lm.scalar.reward_function builds it, and the rest through make_reward."""


def is_known(name: str) -> bool:
    return name in REWARDS or (name.startswith(MODEL_PREFIX) and len(name) > len(MODEL_PREFIX))


def make_reward(name: str, **options: Any) -> Reward:
    """The reward `name` with its options bound, named `name` (TRL logs rewards by `__name__`).

    Options are the reward's keyword-only parameters, checked here: every reward accepts
    `**kwargs` for the dataset columns, so a misspelt option would otherwise vanish silently,
    and a missing required one (cosine's max_length) would fail only at the first batch.
    """
    if name not in REWARDS:
        raise UnknownNameError(f"unknown reward {name!r}; known rewards: {', '.join(REWARDS)}, or model:PATH for a "
                               f"trained reward model.{suggest(name, REWARDS)}")
    fn = REWARDS[name]
    params = inspect.signature(fn).parameters
    allowed = {p.name: p for p in params.values() if p.kind is p.KEYWORD_ONLY and p.name != "completion_ids"}
    for key in options:
        if key not in allowed:
            hint = suggest(key, allowed) or f" Options of {name!r}: {', '.join(allowed) or 'none'}."
            what = "a column passed with the batch" if key in params or key == "completion_ids" else "not an option"
            raise InputError(f"reward {name!r}: {key!r} is {what}.{hint}")
    missing = [p for p, spec in allowed.items() if spec.default is spec.empty and p not in options]
    if missing:
        raise InputError(f"reward {name!r} needs the option(s) {', '.join(missing)}: make_reward({name!r}, {missing[0]}=...).")
    bound = functools.partial(fn, **options)
    bound.__name__ = name  # type: ignore[attr-defined]
    bound.__doc__ = fn.__doc__
    return bound


def _check_output(name: str, values: Any, n: int) -> list[float | None]:
    rule = f"a reward function must return a list with one float (or None to skip) per completion ({n})"
    if not isinstance(values, (list, tuple)):
        raise InputError(f"reward {name!r} returned {type(values).__name__} {values!r:.80}; {rule}.")
    if len(values) != n:
        raise InputError(f"reward {name!r} returned a {type(values).__name__} of length {len(values)}; {rule}.")
    checked: list[float | None] = []
    for i, v in enumerate(values):
        if v is None:
            checked.append(None)
            continue
        # bool is a predicate returned by mistake far more often than a deliberate 0/1 score.
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise InputError(f"reward {name!r} returned {type(v).__name__} {v!r:.80} for completion {i}; {rule} (use float(x)).")
        if not math.isfinite(v):
            raise InputError(f"reward {name!r} returned {v!r} for completion {i}; rewards must be finite, return None to skip a sample.")
        checked.append(float(v))
    return checked


def score(
    reward_fns: Mapping[str, Reward],
    weights: Mapping[str, float] | None,
    completions: Sequence,
    **columns: Any,
) -> tuple[list[float], dict[str, list[float | None]]]:
    """Weighted sum of several rewards, plus each reward's own values for logging.

    total_i = sum of weight * r over the rewards that did not return None for sample i (TRL's
    nansum), 0.0 where all did. Every output is checked: a reward returning the wrong length, a
    string or NaN would otherwise be broadcast or propagated into the advantages silently.
    """
    if not reward_fns:
        raise InputError("score needs at least one reward function, e.g. {'accuracy': accuracy}.")
    if weights is None:
        weights = {name: 1.0 for name in reward_fns}
    extra = [k for k in weights if k not in reward_fns]
    if extra:
        raise InputError(f"weights name unknown reward(s) {extra}; rewards: {', '.join(reward_fns)}.{suggest(extra[0], reward_fns)}")
    missing = [k for k in reward_fns if k not in weights]
    if missing:
        raise InputError(f"weights lack reward(s) {missing}; give a weight for every reward, or weights=None for all 1.0.")
    for name, w in weights.items():
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not math.isfinite(w):
            raise InputError(f"the weight of reward {name!r} must be a finite number, got {w!r}.")
    n = len(completions)
    values = {name: _check_output(name, fn(completions, **columns), n) for name, fn in reward_fns.items()}
    totals = []
    for i in range(n):
        terms = [weights[name] * v[i] for name, v in values.items() if v[i] is not None]
        totals.append(float(sum(terms)) if terms else 0.0)
    return totals, values
