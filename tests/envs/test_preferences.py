import collections
import csv
import json
import re

import pytest

from rlsuite.envs import preferences, text
from rlsuite.envs.preferences import (
    BUILTIN_PREFERENCES,
    PreferenceTask,
    arithmetic_preferences,
    constraint_preferences,
    load_preferences,
    satisfies,
    unpair,
    validate_preferences,
)
from rlsuite.errors import ConfigError, DataError, UnknownNameError
from rlsuite.ops import rewards

STEP = re.compile(r"^(-?\d+) ([-+*]) (-?\d+) = (-?\d+)$")


def user(content):
    return {"role": "user", "content": content}


def assistant(content):
    return {"role": "assistant", "content": content}


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def pairs(n=10):
    return [{"prompt": f"Say {i}.", "chosen": f"{i}", "rejected": f"{i + 1}", "source": "hand"} for i in range(n)]


def error_of(rows, **kw):
    with pytest.raises(DataError) as info:
        validate_preferences(rows, **kw)
    return str(info.value)


# ----------------------------------------------------------------------------- input formats


def test_standard_explicit_prompt(tmp_path):
    task = load_preferences(write_jsonl(tmp_path / "p.jsonl", pairs()))
    assert isinstance(task, PreferenceTask) and task.paired and task.reward_columns == ()
    assert (len(task.train), len(task.test)) == (9, 1)  # the last 10% held out
    assert task.train[0] == {"prompt": [user("Say 0.")], "chosen": "0", "rejected": "1", "source": "hand"}
    assert task.test[0]["prompt"] == [user("Say 9.")]
    assert "train=<9 rows>" in repr(task)

    task = load_preferences(tmp_path / "p.jsonl", system_prompt="Be brief.", train_size=3, test_size=1)
    assert task.train[0]["prompt"] == [{"role": "system", "content": "Be brief."}, user("Say 0.")]
    assert len(task.train) == 3
    with pytest.raises(DataError, match="train_size=50"):
        load_preferences(tmp_path / "p.jsonl", train_size=50)


def test_conversational_explicit_prompt_and_problem_column(tmp_path):
    rows = [
        {"prompt": [user(f"Q{i}")], "chosen": [assistant(f"good {i}")], "rejected": [assistant(f"bad {i}")]}
        for i in range(5)
    ]
    rows.append({"problem": "What is 1 + 1?", "chosen": "2", "rejected": "3"})
    task = load_preferences(write_jsonl(tmp_path / "c.jsonl", rows), system_prompt="sys")
    # A conversational prompt is kept as it is: the system prompt only heads prompts built from strings.
    assert task.train[0] == {"prompt": [user("Q0")], "chosen": "good 0", "rejected": "bad 0"}
    assert task.test[0]["prompt"] == [{"role": "system", "content": "sys"}, user("What is 1 + 1?")]
    assert task.test[0]["problem"] == "What is 1 + 1?"


def test_implicit_prompt_is_the_shared_prefix(tmp_path):
    system = {"role": "system", "content": "You are terse."}
    one = {"chosen": [system, user("Sky?"), assistant("Blue.")], "rejected": [system, user("Sky?"), assistant("No.")]}
    turns = [user("Hi"), assistant("Hello."), user("Sky?")]
    multi = {"chosen": [*turns, assistant("Blue.")], "rejected": [*turns, assistant("Red.")], "id": 7}
    task = load_preferences(write_jsonl(tmp_path / "i.jsonl", [one, multi]))
    assert task.train == [{"prompt": [system, user("Sky?")], "chosen": "Blue.", "rejected": "No."}]
    assert task.test == [{"prompt": turns, "chosen": "Blue.", "rejected": "Red.", "id": 7}]
    # Two identical conversations keep their last message each, so the pair is reported, not emptied.
    with pytest.raises(DataError, match="row 1: chosen and rejected are the same text"):
        same = {"chosen": one["chosen"], "rejected": list(one["chosen"])}
        load_preferences(write_jsonl(tmp_path / "same.jsonl", [same, same]))


def test_standard_implicit_prompt_is_refused(tmp_path):
    rows = [{"chosen": "The sky is blue.", "rejected": "The sky is green."}] * 3
    with pytest.raises(DataError, match="no `prompt` column.*Add a `prompt` column"):
        load_preferences(write_jsonl(tmp_path / "s.jsonl", rows))


def test_unpaired_rows(tmp_path):
    rows = [
        {"prompt": "Sky?", "completion": "Blue.", "label": True},
        {"prompt": [user("Sky?")], "completion": [assistant("Green.")], "label": False},
        {"prompt": "Grass?", "completion": "Green.", "label": 1},
        {"prompt": "Grass?", "completion": "Blue.", "label": 0},
    ]
    task = load_preferences(write_jsonl(tmp_path / "u.jsonl", rows), unpaired=True)
    assert not task.paired
    assert task.train[1] == {"prompt": [user("Sky?")], "completion": "Green.", "label": False}
    assert [row["label"] for row in (*task.train, *task.test)] == [True, False, True, False]
    with pytest.raises(DataError, match="reward models and DPO learn from pairs.*unpaired=True"):
        load_preferences(tmp_path / "u.jsonl")


def test_csv_labels(tmp_path):
    path = tmp_path / "u.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["prompt", "completion", "label"])
        for i, label in enumerate(["true", "False", "1", "0", " TRUE ", "false", "true", "0", "1", "false"]):
            writer.writerow([f"Q{i}", f"A{i}", label])
    task = load_preferences(path, unpaired=True)
    labels = [row["label"] for row in (*task.train, *task.test)]
    assert labels == [True, False, True, False, True, False, True, False, True, False]
    path.write_text("prompt,completion,label\nQ,A,maybe\nQ,B,true\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"row 1: `label` is 'maybe', not true or false"):
        load_preferences(path, unpaired=True)


def test_unpair(tmp_path):
    rows = [{"prompt": [user("Q")], "chosen": "good", "rejected": "bad", "id": 1}]
    assert unpair(rows) == [
        {"prompt": [user("Q")], "id": 1, "completion": "good", "label": True},
        {"prompt": [user("Q")], "id": 1, "completion": "bad", "label": False},
    ]
    task = load_preferences(write_jsonl(tmp_path / "p.jsonl", pairs()), unpaired=True)
    assert not task.paired and (len(task.train), len(task.test)) == (18, 2)
    validate_preferences(task.train, paired=False)
    with pytest.raises(DataError, match="unpair"):
        unpair([{"prompt": "Q", "chosen": "same", "rejected": "same"}])


# ----------------------------------------------------------------------------- bad input


def test_identical_pair_and_empty_replies_are_listed_by_row():
    rows = [
        {"prompt": "Q", "chosen": "a", "rejected": "b"},
        {"prompt": "Q", "chosen": "same", "rejected": " same"},
        {"prompt": "Q", "chosen": "   ", "rejected": "b"},
        {"prompt": [user("Q")], "chosen": [assistant("")], "rejected": "b"},
        {"prompt": [user("Q"), assistant("A")], "chosen": "a", "rejected": "b"},
    ]
    message = error_of(rows, source="pairs.jsonl")
    assert message.startswith("pairs.jsonl does not fit")
    assert "row 2: chosen and rejected are the same text; a pair must differ, or it teaches nothing" in message
    assert "row 3: `chosen` is empty or only whitespace" in message
    assert "row 4: `chosen` ends with an empty assistant message" in message
    assert "row 5: `prompt` ends with a message from 'assistant'" in message
    assert "row 1" not in message


def test_missing_columns_name_what_is_there():
    message = error_of([{"prompt": "Q", "response_j": "a", "response_k": "b"}])
    assert "no row has a `chosen` column" in message and "no row has a `rejected` column" in message
    assert "Its columns are: prompt, response_j, response_k." in message
    assert 'It has `response_j`: rename it, e.g. [{**r, "chosen": r["response_j"]} for r in rows].' in message
    message = error_of([{"prompt": "Q", "chosen": "a", "rejected": "b"}, {"prompt": "Q", "chosen": "a"}])
    assert "row 2: no `rejected` (missing or null)" in message
    message = error_of([{"prompt": "Q", "completion": "a"}], paired=False)
    assert "no row has a `label` column" in message
    assert "unpaired=True" in error_of([{"prompt": "Q", "completion": "a", "label": True}])
    with pytest.raises(DataError, match="has no rows"):
        validate_preferences([])


def test_many_bad_rows_are_capped():
    message = error_of([{"prompt": "Q", "chosen": "x", "rejected": "x"}] * 25)
    assert "row 10:" in message and "row 11:" not in message and "... and 15 more" in message


def test_unknown_names_and_levels(tmp_path):
    with pytest.raises(UnknownNameError, match="arithmetic, constraints.*Did you mean: constraints"):
        load_preferences("constraint")
    with pytest.raises(ConfigError, match="level= applies to the arithmetic set only"):
        load_preferences("constraints", level="easy")
    with pytest.raises(ConfigError, match="two levels"):
        load_preferences("arithmetic:easy", level="hard")
    with pytest.raises(UnknownNameError, match="levels are"):
        load_preferences("arithmetic:impossible")
    assert BUILTIN_PREFERENCES == ("arithmetic", "constraints")


# ----------------------------------------------------------------------------- arithmetic


def test_replay_without_a_slip_is_evaluate():
    for row in text.arithmetic_split("large", "train", 300, seed=3):
        assert preferences._replay(row["expression"], -1, lambda a, op, b: 0) == text.evaluate(row["expression"])


def test_arithmetic_task_shape_sizes_and_determinism():
    task = load_preferences("arithmetic")
    assert task.name == "arithmetic:mixed" and task.paired and task.reward_columns == ("solution",)
    assert (len(task.train), len(task.test)) == (2000, 200)
    row = task.train[0]
    assert row["prompt"] == [user(row["problem"])]
    assert row["chosen"] == f"<think>{row['think']}</think><answer>{row['solution']}</answer>"
    assert {"solution", "expression", "rejected_kind"} <= set(row)
    test_prompts = {r["problem"] for r in task.test}
    assert len(test_prompts) == 200 and not test_prompts & {r["problem"] for r in task.train}
    assert load_preferences("arithmetic").train == task.train
    assert arithmetic_preferences("train", 50, seed=1) != arithmetic_preferences("train", 50, seed=2)
    # A small level caps the default test size at what it has.
    easy = load_preferences("arithmetic", level="easy", train_size=10)
    assert len(easy.test) == text.count_test_problems("easy") < 200
    kinds = collections.Counter(r["rejected_kind"] for r in task.train)
    assert 0.4 < kinds["wrong_step"] / 2000 < 0.6 and min(kinds.values()) > 400


@pytest.mark.parametrize("level", ["mixed", "large"])
def test_arithmetic_rejected_replies_are_wrong(level):
    rows = arithmetic_preferences("train", 1500, seed=4, level=level)
    for row in rows:
        assert row["rejected"] != row["chosen"]
        if row["rejected_kind"] == "wrong_step":
            think = re.fullmatch(r"<think>(.*)</think><answer>(-?\d+)</answer>", row["rejected"])
            steps = [STEP.match(s).groups() for s in think[1].split(", ")]
            assert len(steps) == row["think"].count("=")
            # One slipped step; the steps after it compute correctly from its wrong result.
            assert sum(str(eval(f"{a} {op} ({b})")) != c for a, op, b, c in steps) == 1  # noqa: S307
            assert steps[-1][3] == think[2] != row["solution"]
    sample = rows[:240]
    for kind in ("wrong_step", "wrong_answer", "malformed"):
        assert any(r["rejected_kind"] == kind for r in sample)

    def completions(key):
        return [[assistant(r[key])] for r in sample]

    solutions = [r["solution"] for r in sample]
    assert rewards.accuracy(completions("chosen"), solution=solutions) == [1.0] * len(sample)
    assert rewards.strict_format(completions("chosen")) == [1.0] * len(sample)
    accuracy = rewards.accuracy(completions("rejected"), solution=solutions)
    form = rewards.strict_format(completions("rejected"))
    for row, acc, fmt in zip(sample, accuracy, form):
        if row["rejected_kind"] == "malformed":
            assert fmt == 0.0 and row["solution"] in row["rejected"]
        else:
            assert acc == 0.0 and fmt == 1.0, row


# ----------------------------------------------------------------------------- constraints


def test_constraint_task_shape_sizes_and_determinism():
    task = load_preferences("constraints")
    assert task.name == "constraints" and task.paired and task.reward_columns == ()
    assert (len(task.train), len(task.test)) == (2000, 200)
    assert task.train[0]["prompt"] == [user(task.train[0]["prompt"][0]["content"])]
    train_prompts = {r["prompt"][0]["content"] for r in task.train}
    test_prompts = [r["prompt"][0]["content"] for r in task.test]
    assert len(set(test_prompts)) == 200 and not train_prompts & set(test_prompts)
    assert len({r["constraint"] for r in task.test}) == 6
    assert constraint_preferences("test", 200, seed=0) == constraint_preferences("test", 200, seed=0)
    assert constraint_preferences("train", 100, seed=0) != constraint_preferences("train", 100, seed=1)
    with pytest.raises(DataError, match="distinct test prompts"):
        constraint_preferences("test", 10_000)
    kto = load_preferences("constraints", train_size=5, test_size=5, unpaired=True)
    assert len(kto.train) == 10 and {r["label"] for r in kto.train} == {True, False}


def test_every_chosen_satisfies_and_every_rejected_does_not():
    rows = constraint_preferences("train", 2000, seed=5) + constraint_preferences("test", 250, seed=5)
    for row in rows:
        assert satisfies(row, row["chosen"]) and not satisfies(row, row["rejected"]), row
        assert satisfies(row, [assistant(row["chosen"])])
        assert len(row["prompt"]) < 100 and len(row["chosen"]) < 40 and len(row["rejected"]) < 40
        assert isinstance(json.loads(row["constraint_args"]), dict)


@pytest.mark.parametrize(
    "constraint, args, reply, ok",
    [
        ("starts_with", {"letter": "b"}, "banana", True),
        ("starts_with", {"letter": "b"}, "Banana.", True),
        ("starts_with", {"letter": "b"}, "apple", False),
        ("starts_with", {"letter": "b"}, "42", False),
        ("avoid_letter", {"letter": "e"}, "cat", True),
        ("avoid_letter", {"letter": "e"}, "Zebra", False),
        ("case", {"case": "uppercase"}, "BLUE", True),
        ("case", {"case": "uppercase"}, "Blue", False),
        ("case", {"case": "lowercase"}, "blue", True),
        ("case", {"case": "lowercase"}, "123", False),
        ("word_count", {"n": 3}, "Calm blue sea.", True),
        ("word_count", {"n": 3}, "Blue sea.", False),
        ("number_range", {"lo": 12, "hi": 20}, "15", True),
        ("number_range", {"lo": 12, "hi": 20}, "20", True),
        ("number_range", {"lo": 12, "hi": 20}, "21", False),
        ("number_range", {"lo": 12, "hi": 20}, "fifteen", False),
        ("repeat", {"word": "cat", "n": 2}, "cat cat", True),
        ("repeat", {"word": "cat", "n": 2}, "Cat, cat.", True),
        ("repeat", {"word": "cat", "n": 2}, "cat cat cat", False),
    ],
)
def test_satisfies_by_hand(constraint, args, reply, ok):
    assert satisfies({"constraint": constraint, "constraint_args": json.dumps(args)}, reply) is ok
    assert satisfies({"constraint": constraint, "constraint_args": args}, reply) is ok


def test_satisfies_unknown_constraint():
    with pytest.raises(UnknownNameError, match="Did you mean: starts_with"):
        satisfies({"constraint": "start_with", "constraint_args": "{}"}, "x")
