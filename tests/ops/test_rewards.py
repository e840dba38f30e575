"""Hand-computed tests for rlsuite.ops.rewards, focused on where published rewards go wrong."""

from __future__ import annotations

import inspect
import math
import sys
import threading

import numpy as np
import pytest

from rlsuite.errors import InputError, MissingExtraError, UnknownNameError
from rlsuite.ops.rewards import (
    REWARDS,
    accuracy,
    completion_text,
    cosine_scaled,
    extract_answer,
    language_consistency,
    make_reward,
    reasoning_steps,
    repetition_penalty,
    score,
    soft_overlong,
    strict_format,
    tag_count,
)


def chat(texts):
    """The conversational form TRL passes: one assistant message per completion."""
    return [[{"role": "assistant", "content": t}] for t in texts]


def ids(*lengths):
    return [list(range(n)) for n in lengths]


def both_forms(fn, texts, **kw):
    """Run fn on the plain and the conversational form and check they agree."""
    plain = fn(texts, **kw)
    assert fn(chat(texts), **kw) == plain
    return plain


def approx(values):
    return pytest.approx(values, abs=1e-12)


# The worked example: four answers to "What is 2 + 3 * 4?" (gold 14).
O1 = "<think> 2 + 3 = 5, 5 * 4 = 20 </think> <answer> 20 </answer>"  # formatted, wrong
O2 = "<think> 3 * 4 = 12, 2 + 12 = 14 </think> <answer> 14 </answer>"  # formatted, right
O3 = "<answer> 14 </answer>"  # right, no think
O4 = "<think> ...some gibberish reasoning... </think> <answer> 7 </answer>"  # formatted, wrong
WORKED = [O1, O2, O3, O4]


# --------------------------------------------------------------------------------------------
# completion_text / extract_answer
# --------------------------------------------------------------------------------------------


def test_completion_text_plain_and_conversational():
    assert completion_text("hi") == "hi"
    assert completion_text([{"role": "assistant", "content": "hi"}]) == "hi"
    # with tool turns the reply is the last message, not the first
    turns = [{"role": "assistant", "content": "call"}, {"role": "tool", "content": "42"}, {"role": "assistant", "content": "final"}]
    assert completion_text(turns) == "final"
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "image"}, {"type": "text", "text": "b"}]}]) == "ab"


@pytest.mark.parametrize("bad", [None, 3, [], {"role": "assistant", "content": "x"}, [{"role": "assistant"}], ["x"]])
def test_completion_text_rejects_malformed(bad):
    with pytest.raises(InputError):
        completion_text(bad)


def test_rewards_reject_a_single_string_instead_of_a_list():
    with pytest.raises(InputError, match="wrap a single completion"):
        tag_count("<think>x</think>")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("<answer> 14 </answer>", "14"),
        ("<answer>20</answer> wait, no: <answer>14</answer>", "14"),  # the last one, not the first
        ("<answer>draft <answer>14</answer>", "14"),  # an unclosed draft does not swallow the answer
        ("<answer>\n14\n</answer>\n", "14"),
        ("<answer></answer>", ""),
        ("no tags, 14", None),
        ("<answer>14", None),
        ("", None),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


# --------------------------------------------------------------------------------------------
# accuracy
# --------------------------------------------------------------------------------------------


def test_accuracy_worked_example():
    assert both_forms(accuracy, WORKED, solution=["14"] * 4) == [0.0, 1.0, 1.0, 0.0]


@pytest.mark.parametrize(
    "gold, text, expected",
    [
        ("\\boxed{\\frac{1}{2}}", "<answer>0.5</answer>", 1.0),  # NuminaMath gold vs decimal
        ("14", "<answer>14.0</answer>", 1.0),
        ("-3", "<answer>-3</answer>", 1.0),
        ("-3", "<answer>3</answer>", 0.0),
        ("The sum is $5+9$, hence the answer is $\\boxed{14}$.", "<answer>14</answer>", 1.0),  # full solution text
        ("14", "<answer>$\\frac{28}{2}$</answer>", 1.0),
        ("14", "<answer>20</answer> no wait <answer>14</answer>", 1.0),  # last answer counts
        ("14", "<answer>14</answer> no wait <answer>20</answer>", 0.0),
        ("14", "no tag, so the whole text is the answer: 14", 1.0),
        ("14", "", 0.0),  # empty completion
        ("14", "   ", 0.0),
        ("14", "<answer></answer> 14", 0.0),  # the tag is there and empty: the trailing 14 is not the answer
        ("14", "<answer>fourteen</answer>", 0.0),
        (14, "<answer>14</answer>", 1.0),  # a numeric column
    ],
)
def test_accuracy_math_equivalence(gold, text, expected):
    assert both_forms(accuracy, [text], solution=[gold]) == [expected]


@pytest.mark.parametrize("gold", ["hello world", "\\text{blue}", ""])
def test_accuracy_unparseable_gold_is_none_not_a_free_reward(gold):
    # published versions return 1.0 (or 0.5) here, paying for an ungradable sample
    assert accuracy(["<answer>hello world</answer>", ""], solution=[gold, gold]) == [None, None]


def test_accuracy_works_outside_the_main_thread():
    # math_verify's SIGALRM timeout raises ValueError in worker threads unless it is switched off
    out = []
    worker = threading.Thread(target=lambda: out.append(accuracy(["<answer>0.5</answer>", "<answer>3</answer>"], solution=["\\frac{1}{2}", "4"])))
    worker.start()
    worker.join()
    assert out == [[1.0, 0.0]]


def test_accuracy_input_errors():
    with pytest.raises(InputError, match="one entry per completion"):
        accuracy(["<answer>1</answer>"], solution=["1", "2"])
    with pytest.raises(InputError, match="solution"):
        accuracy(["<answer>1</answer>"], solution=None)
    with pytest.raises(InputError, match="solution"):
        accuracy(["<answer>1</answer>"])  # a dataset without the column
    with pytest.raises(InputError, match="string"):
        accuracy(["<answer>1</answer>"], solution=[["1"]])


def test_accuracy_without_math_verify_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "math_verify", None)  # makes `import math_verify` fail
    with pytest.raises(MissingExtraError, match=r"rlsuite\[llm\]"):
        accuracy(["<answer>1</answer>"], solution=["1"])


# --------------------------------------------------------------------------------------------
# strict_format / tag_count
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("<think>r</think><answer>a</answer>", 1.0),
        ("<think>r</think>\n<answer>a</answer>\n", 1.0),
        ("<think>\nline 1\nline 2\n</think>\n<answer>\n14\n</answer>", 1.0),  # multi-line blocks (DOTALL)
        ("<think></think><answer></answer>", 1.0),
        ("<think>r</think><answer>a</answer>\nextra text", 0.0),  # the re.MULTILINE + $ bug lets this pass
        ("<think>r</think><answer>a</answer>\n\nmore\nlines", 0.0),
        ("<think>r</think><answer>a</answer> extra", 0.0),
        ("preamble <think>r</think><answer>a</answer>", 0.0),
        (" <think>r</think><answer>a</answer>", 0.0),
        ("<think>r</think> between <answer>a</answer>", 0.0),
        ("<answer>a</answer>", 0.0),
        ("<think>r</think>", 0.0),
        ("<answer>a</answer><think>r</think>", 0.0),
        ("<think>a<think>b</think><answer>c</answer>", 0.0),  # nested think
        ("<think>r</think><answer>a</answer><answer>b</answer>", 0.0),  # second answer
        ("<think>r</think><answer>a<answer>b</answer>", 0.0),
        ("<think>r</think></think><answer>a</answer>", 0.0),
        ("", 0.0),
    ],
)
def test_strict_format(text, expected):
    assert both_forms(strict_format, [text]) == [expected]


def test_strict_format_worked_example():
    assert strict_format(WORKED) == [1.0, 1.0, 0.0, 1.0]


def test_strict_format_with_prefilled_think():
    texts = [
        "reasoning</think>\n<answer>14</answer>",  # what a Qwen3 / R1 template's completion looks like
        "<think>reasoning</think>\n<answer>14</answer>",  # repeats the pre-filled tag
        "reasoning</think>\n<answer>14</answer>\nP.S.",
    ]
    assert both_forms(strict_format, texts, think_prefilled=True) == [1.0, 0.0, 0.0]
    assert strict_format(texts) == [0.0, 1.0, 0.0]


@pytest.mark.parametrize(
    "text, prefilled, expected",
    [
        ("<think>r</think><answer>a</answer>", False, 1.0),
        ("<answer>a</answer>", False, 0.5),
        ("<think><think></think>", False, 0.25),  # <think> twice earns nothing
        ("<think>r</think><answer>a</answer><answer>b</answer>", False, 0.5),
        ("r</think><answer>a</answer>", False, 0.75),
        ("r</think><answer>a</answer>", True, 1.0),  # the template's <think> counts
        ("<think>r</think><answer>a</answer>", True, 0.75),  # now <think> appears twice
        ("", False, 0.0),
        ("", True, 0.25),
    ],
)
def test_tag_count(text, prefilled, expected):
    assert both_forms(tag_count, [text], think_prefilled=prefilled) == [expected]


# --------------------------------------------------------------------------------------------
# reasoning_steps
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("<think>Step 1: a\nStep 2: b</think><answer>1. x\n2. y\n3. z</answer>", 2 / 3),  # answer list not counted
        ("<think>First, a. Next, b. Finally, c. Second, d.</think>", 1.0),  # 4 markers, capped at 1
        ("<think>First, a. Next, b.</think><answer>c</answer>", 2 / 3),
        ("1. a\n2) b\n- c\n* d", 1.0),  # no think tag: the whole text
        ("  1. indented\n", 1 / 3),
        ("3.14 is pi\n2*3 is 6\n-3 is negative", 0.0),  # numbers and minus signs are not steps
        ("<think>首先，算乘法。然后，算加法。最后，得到答案。</think><answer>14</answer>", 1.0),
        ("<think>第一步：3*4=12。第二步：2+12=14。</think>", 2 / 3),
        ("Step 1: a</think><answer>- x\n- y\n- z</answer>", 1 / 3),  # pre-filled <think>: reasoning ends at </think>
        ("<think>just thinking</think>", 0.0),
        ("", 0.0),
    ],
)
def test_reasoning_steps(text, expected):
    assert both_forms(reasoning_steps, [text]) == approx([expected])


# --------------------------------------------------------------------------------------------
# cosine_scaled
# --------------------------------------------------------------------------------------------


def test_cosine_scaled_hand_computed_and_clipped():
    right, wrong = "<answer>14</answer>", "<answer>20</answer>"
    texts = [right] * 4 + [wrong] * 4
    lengths = [0, 50, 100, 150, 0, 50, 100, 200]
    out = both_forms(cosine_scaled, texts, solution=["14"] * 8, max_length=100, completion_ids=ids(*lengths))
    assert out == approx(
        [
            1.0,  # correct, L = 0: max_value_correct
            0.9,  # 0.8 + 0.1 * (1 + cos(pi/2))
            0.8,  # L = max_length: min_value_correct
            0.8,  # L > max_length is clipped; unclipped cos(1.5 pi) = 0 would give 0.9
            -0.5,  # wrong, L = 0: min_value_wrong
            -0.3,  # -0.1 + 0.5 * (-0.4) * (1 + cos(pi/2))
            -0.1,  # L = max_length: max_value_wrong
            -0.1,  # clipped; unclipped cos(2 pi) = 1 would wrap back to -0.5
        ]
    )


def test_cosine_scaled_custom_values_none_and_errors():
    out = cosine_scaled(
        ["<answer>14</answer>", "<answer>1</answer>", "<answer>1</answer>"],
        solution=["14", "14", "hello world"],
        max_length=10,
        min_value_correct=0.0,
        max_value_correct=2.0,
        min_value_wrong=-1.0,
        max_value_wrong=0.0,
        completion_ids=ids(5, 5, 5),
        prompts=["ignored"] * 3,
    )
    assert out == approx([1.0, -0.5, None])
    with pytest.raises(InputError, match="completion_ids"):
        cosine_scaled(["<answer>14</answer>"], solution=["14"], max_length=10)
    with pytest.raises(InputError, match="one entry per completion"):
        cosine_scaled(["<answer>14</answer>"], solution=["14"], max_length=10, completion_ids=ids(1, 2))
    with pytest.raises(InputError, match="max_length"):
        cosine_scaled(["<answer>14</answer>"], solution=["14"], max_length=0, completion_ids=ids(1))


# --------------------------------------------------------------------------------------------
# repetition_penalty
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, kw, expected",
    [
        ("a b c a b c", {}, -0.25),  # 3-grams abc bca cab abc: 3 unique of 4
        ("A b C a B c", {}, -0.25),  # lower-cased
        ("a b c d e", {}, 0.0),
        ("a a a a", {}, -0.5),  # aaa twice: 1 unique of 2
        ("a b c a b c", {"max_penalty": -2.0}, -0.5),
        ("a b a b", {"ngram_size": 2}, -1 / 3),  # ab ba ab
        ("a b", {}, 0.0),  # shorter than ngram_size
        ("", {}, 0.0),
        ("你好你好你好", {}, -0.5),  # characters as words: 你好你 好你好 ×2; whitespace words would see one word
        ("我 爱 北京", {}, 0.0),  # whitespace between CJK characters is not a word
        ("<think>好好好好好</think>", {}, -1 / 3),  # tags are characters too: 20 chars, 18 3-grams, 12 unique
    ],
)
def test_repetition_penalty(text, kw, expected):
    assert both_forms(repetition_penalty, [text], **kw) == approx([expected])


def test_repetition_penalty_rejects_a_positive_penalty():
    with pytest.raises(InputError, match="max_penalty"):
        repetition_penalty(["a b c"], max_penalty=1.0)
    with pytest.raises(InputError, match="ngram_size"):
        repetition_penalty(["a b c"], ngram_size=0)


# --------------------------------------------------------------------------------------------
# language_consistency
# --------------------------------------------------------------------------------------------


def test_language_consistency_english_and_chinese_prompts():
    english, chinese = "What is 2 + 3 * 4?", "2 加 3 乘 4 等于多少？"
    texts = [
        "<think>先算 3 * 4 = 12 then add</think><answer>14</answer>",  # Han 2, Latin 7 (then, add)
        "<think>先算 3 * 4 = 12 then add</think><answer>14</answer>",
        "<think>3 * 4 = 12, 2 + 12 = 14</think><answer>fourteen</answer>",  # no letters in the reasoning
        "Multiply first. 然后 add.",  # no think tag: the whole text; Latin 16, Han 2
    ]
    prompts = [english, chinese, english, chinese]
    assert both_forms(language_consistency, texts, prompts=prompts) == approx([7 / 9, 2 / 9, 0.0, 2 / 18])
    # a Chinese prompt with Latin variable names is still Chinese: Han 6 (设为求的平方) vs Latin 2
    assert language_consistency(["<think>x 等于 9</think>"], prompts=["设 x 为 3，求 x 的平方。"]) == approx([2 / 3])


def test_language_consistency_conversational_prompt_uses_last_user_message():
    prompt = [
        {"role": "system", "content": "You are a helpful assistant. Think step by step in English."},
        {"role": "user", "content": "二加三乘四等于多少？"},
    ]
    out = language_consistency(chat(["<think>先算乘法</think><answer>14</answer>"]), prompts=[prompt])
    assert out == [1.0]
    # a prompt without letters names no language: nothing to judge
    assert language_consistency(["<think>abc</think>"], prompts=["2+3*4=?"]) == [None]
    with pytest.raises(InputError, match="prompts"):
        language_consistency(["x"])
    with pytest.raises(InputError, match="user"):
        language_consistency(["x"], prompts=[[{"role": "system", "content": "s"}]])


# --------------------------------------------------------------------------------------------
# soft_overlong
# --------------------------------------------------------------------------------------------


def test_soft_overlong_at_each_boundary():
    lengths = [0, 79, 80, 81, 90, 99, 100, 101, 500]
    out = both_forms(soft_overlong, ["x"] * len(lengths), max_length=100, cache_length=20, completion_ids=ids(*lengths))
    assert out == approx([0.0, 0.0, 0.0, -0.05, -0.5, -0.95, -1.0, -1.0, -1.0])


@pytest.mark.parametrize("max_length, cache_length", [(100, 100), (100, 150), (100, 0), (0, 0)])
def test_soft_overlong_rejects_bad_lengths(max_length, cache_length):
    with pytest.raises(InputError):
        soft_overlong(["x"], max_length=max_length, cache_length=cache_length, completion_ids=ids(1))


def test_soft_overlong_needs_token_ids():
    with pytest.raises(InputError, match="completion_ids"):
        soft_overlong(["x"], max_length=100, cache_length=20)


# --------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------


def test_registry_names():
    assert set(REWARDS) == {"accuracy", "format", "tag_count", "reasoning_steps", "cosine", "repetition", "language", "overlong"}
    assert REWARDS["format"] is strict_format


def test_make_reward_binds_options_and_names_itself():
    rep = make_reward("repetition", ngram_size=2)
    assert rep.__name__ == "repetition"
    assert rep(["a b a b"], prompts=["p"]) == approx([-1 / 3])
    assert "completions" in inspect.signature(rep).parameters
    fmt = make_reward("format", think_prefilled=True)
    assert fmt.__name__ == "format" and fmt(["r</think><answer>a</answer>"]) == [1.0]
    assert make_reward("accuracy")(["<answer>14</answer>"], solution=["14"]) == [1.0]


def test_make_reward_errors():
    with pytest.raises(UnknownNameError, match="Did you mean: accuracy"):
        make_reward("acuracy")
    with pytest.raises(InputError, match="max_length"):
        make_reward("cosine")  # required option missing
    with pytest.raises(InputError, match="Did you mean: max_length"):
        make_reward("overlong", max_lenght=10, cache_length=2)
    with pytest.raises(InputError, match="column"):
        make_reward("accuracy", solution=["14"])


# --------------------------------------------------------------------------------------------
# score
# --------------------------------------------------------------------------------------------


def test_score_worked_example():
    totals, per_fn = score({"accuracy": accuracy, "format": strict_format}, {"accuracy": 1.0, "format": 0.1}, chat(WORKED), solution=["14"] * 4)
    assert totals == approx([0.1, 1.1, 1.0, 0.1])
    assert per_fn == {"accuracy": [0.0, 1.0, 1.0, 0.0], "format": [1.0, 1.0, 0.0, 1.0]}


def test_score_skips_none_like_nansum():
    fns = {"a": lambda completions, **kw: [None, 0.5, None], "b": lambda completions, **kw: [1.0, 1.0, None]}
    totals, per_fn = score(fns, {"a": 1.0, "b": 2.0}, ["x", "y", "z"])
    assert totals == approx([2.0, 2.5, 0.0])  # every reward None -> 0.0
    assert per_fn["a"] == [None, 0.5, None]
    totals, _ = score(fns, None, ["x", "y", "z"])  # weights None: all 1.0
    assert totals == approx([1.0, 1.5, 0.0])


def test_score_passes_columns_and_accepts_numpy_and_tuples():
    fns = {"cos": make_reward("cosine", max_length=10), "n": lambda completions, **kw: (np.float32(0.5), 1, np.float64(2.0))}
    totals, per_fn = score(fns, None, ["<answer>1</answer>"] * 3, solution=["1", "2", "hello world"], completion_ids=ids(0, 10, 3), prompts=["p"] * 3)
    assert per_fn["cos"] == approx([1.0, -0.1, None])
    assert per_fn["n"] == [0.5, 1.0, 2.0] and all(type(v) is float for v in per_fn["n"])
    assert totals == approx([1.5, 0.9, 2.0])


@pytest.mark.parametrize(
    "returned, match",
    [
        ([1.0], "length 1"),  # wrong length
        ([1.0, 2.0, 3.0], "length 3"),
        ("1.0", "returned str"),
        (np.array([1.0, 1.0]), "returned ndarray"),
        (["1.0", "1.0"], "returned str '1.0' for completion 0"),
        ([1.0, True], "returned bool"),
        ([1.0, float("nan")], "nan for completion 1"),
        ([float("inf"), 1.0], "inf for completion 0"),
    ],
)
def test_score_rejects_bad_reward_output(returned, match):
    with pytest.raises(InputError, match=match) as info:
        score({"good": lambda completions, **kw: [0.0, 0.0], "broken": lambda completions, **kw: returned}, None, ["x", "y"])
    assert "'broken'" in str(info.value)


def test_score_rejects_bad_weights():
    fns = {"accuracy": accuracy, "format": strict_format}
    with pytest.raises(InputError, match="Did you mean: format"):
        score(fns, {"accuracy": 1.0, "formt": 0.1}, ["x"], solution=["1"])
    with pytest.raises(InputError, match="lack"):
        score(fns, {"accuracy": 1.0}, ["x"], solution=["1"])
    with pytest.raises(InputError, match="finite"):
        score(fns, {"accuracy": 1.0, "format": math.nan}, ["x"], solution=["1"])
    with pytest.raises(InputError, match="at least one"):
        score({}, None, ["x"])
