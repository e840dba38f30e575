import csv
import json
import re
import subprocess
import sys

import numpy as np
import pytest

from rlsuite.envs import text
from rlsuite.envs.text import (
    LEVELS,
    SAMPLE_NUMINA,
    SYSTEM_PROMPT,
    ArithmeticLevel,
    TextTask,
    arithmetic_problem,
    arithmetic_split,
    evaluate,
    load_rows,
    load_task,
    make_conversation,
    validate_rows,
)
from rlsuite.errors import ConfigError, DataError, InputError, UnknownNameError

STEP = re.compile(r"^(-?\d+) ([-+*]) (-?\d+) = (-?\d+)$")


def sample_rows():
    return [json.loads(line) for line in SAMPLE_NUMINA.read_text(encoding="utf-8").splitlines() if line.strip()]


# ----------------------------------------------------------------------------- arithmetic


@pytest.mark.parametrize("level", list(LEVELS))
def test_evaluator_matches_python_eval(level):
    rng = np.random.default_rng(123)
    for _ in range(2000):
        row = arithmetic_problem(rng, level)
        assert row["problem"] == f"What is {row['expression']}?"
        assert row["solution"] == str(eval(row["expression"])), row  # noqa: S307 (our own digits and + - * ( ))
        assert row["level"] == level


@pytest.mark.parametrize("level", list(LEVELS))
def test_think_steps_replay_to_the_solution(level):
    rng = np.random.default_rng(7)
    for _ in range(500):
        row = arithmetic_problem(rng, level)
        steps = row["think"].split(", ")
        assert len(steps) == len(re.findall(r"[-+*]", row["expression"]))
        # Replaying the steps on the expression's tokens must consume it down to the answer.
        tokens = row["expression"].replace("(", "( ").replace(")", " )").split()
        for step in steps:
            a, op, b, c = STEP.match(step).groups()
            assert str(eval(f"{a} {op} ({b})")) == c  # noqa: S307
            for i in range(len(tokens) - 2):
                if tokens[i : i + 3] == [a, op, b]:
                    tokens[i : i + 3] = [c]
                    break
            else:
                raise AssertionError(f"step {step!r} does not apply to {' '.join(tokens)!r} ({row})")
            tokens = " ".join(tokens).replace(f"( {c} )", c).split()  # a finished group drops its parentheses
        assert tokens == [row["solution"]]


def test_steps_follow_precedence_order():
    assert evaluate("2 + 3 * 4") == (14, ["3 * 4 = 12", "2 + 12 = 14"])
    assert evaluate("(2 + 3) * 4") == (20, ["2 + 3 = 5", "5 * 4 = 20"])
    assert evaluate("9 - 2 - 3 * 2 + 1") == (2, ["3 * 2 = 6", "9 - 2 = 7", "7 - 6 = 1", "1 + 1 = 2"])
    assert evaluate("4 - (2 - 5)") == (7, ["2 - 5 = -3", "4 - -3 = 7"])
    assert evaluate("2 * (1 + (3 - 1)) * 5") == (30, ["3 - 1 = 2", "1 + 2 = 3", "2 * 3 = 6", "6 * 5 = 30"])
    for bad in ["", "2 +", "-3 + 4", "2 / 3", "(2 + 3", "2 + 3)", ") 2 (", "2 3"]:
        with pytest.raises(InputError):
            evaluate(bad)


@pytest.mark.parametrize("level", list(LEVELS))
def test_every_level_keeps_its_constraints(level):
    spec = LEVELS[level]
    rng = np.random.default_rng(1)
    counts, with_parens, three_plus, maxima = set(), 0, 0, 0
    for _ in range(2000):
        expression = arithmetic_problem(rng, level)["expression"]
        numbers = [int(n) for n in re.findall(r"\d+", expression)]
        assert set(re.findall(r"[-+*]", expression)) <= set(spec.operators)
        assert all(0 <= n <= spec.max_number for n in numbers)
        maxima = max(maxima, *numbers)
        counts.add(len(numbers))
        three_plus += len(numbers) >= 3
        if "(" in expression:
            with_parens += 1
            assert expression.count("(") == expression.count(")") == 1
            assert not (expression.startswith("(") and expression.endswith(")")), expression  # never the whole
    assert counts == set(range(spec.operands[0], spec.operands[1] + 1))
    assert maxima == spec.max_number
    if spec.parentheses == 0:
        assert with_parens == 0
    else:  # parentheses only fit around part of 3 or more operands
        assert with_parens / three_plus == pytest.approx(spec.parentheses, abs=0.05)


def test_level_table_and_errors():
    assert LEVELS["easy"] == ArithmeticLevel((2, 2), 9, 0.0)
    assert LEVELS["hard"].operands == (3, 3) and LEVELS["hard"].parentheses == 0.5
    assert LEVELS["large"].max_number == 99 and LEVELS["large"].operands == (2, 4)
    with pytest.raises(UnknownNameError, match="Did you mean: hard"):
        arithmetic_problem(np.random.default_rng(0), "hrad")
    with pytest.raises(ConfigError, match="operators"):
        ArithmeticLevel((2, 2), 9, 0.0, operators="+/")
    with pytest.raises(ConfigError, match="operands"):
        ArithmeticLevel((1, 2), 9, 0.0)
    custom = ArithmeticLevel((2, 2), 3, 0.0, operators="+")
    row = arithmetic_problem(np.random.default_rng(0), custom)
    assert row["level"] == "custom" and "+" in row["expression"]


def test_splits_are_disjoint_distinct_and_seeded():
    train = arithmetic_split("easy", "train", 3000, seed=0)
    pool = text.count_test_problems("easy")
    assert 20 < pool < 120  # about TEST_PERCENT of the 300 easy expressions
    for seed in (0, 1, 2):
        test = [r["expression"] for r in arithmetic_split("easy", "test", pool, seed=seed)]
        assert len(set(test)) == pool  # distinct, and every test problem of the level
        assert not set(test) & {r["expression"] for r in train}
    assert len({r["expression"] for r in train}) == 300 - pool  # 3000 draws cover the train side
    with pytest.raises(DataError, match=f"only {pool} distinct test problems"):
        arithmetic_split("easy", "test", pool + 1, seed=0)
    # Larger levels: a split is fixed by the expression, whatever the seed and n.
    train = {r["expression"] for r in arithmetic_split("mixed", "train", 4000, seed=5)}
    test = {r["expression"] for r in arithmetic_split("mixed", "test", 1000, seed=6)}
    assert not train & test
    assert arithmetic_split("hard", "train", 50, seed=3) == arithmetic_split("hard", "train", 50, seed=3)
    assert arithmetic_split("hard", "train", 50, seed=3) != arithmetic_split("hard", "train", 50, seed=4)
    assert arithmetic_split("hard", "test", 30, seed=3)[:10] == arithmetic_split("hard", "test", 10, seed=3)
    assert arithmetic_split("medium", "train", 0) == []


def test_split_hash_is_pinned():
    # Runs on other machines and in later versions must split the same way: crc32, not hash().
    assert [text.split_of(e) for e in ["2 + 3", "2 * 3", "4 * 7", "1 - 8", "(5 - 2) * 7"]] == [
        "train", "test", "test", "test", "train"
    ]  # fmt: skip
    assert text.count_test_problems("easy") == 62
    assert [r["expression"] for r in arithmetic_split("easy", "test", 5, seed=0)] == [
        "5 + 9", "8 + 1", "3 * 4", "5 * 3", "8 * 4"
    ]  # fmt: skip


# ----------------------------------------------------------------------------- conversations


def test_make_conversation_with_and_without_system_prompt():
    row = {"problem": "What is 1 + 1?", "solution": "2"}
    out = make_conversation(row)
    assert out["prompt"] == [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "What is 1 + 1?"},
    ]
    assert out["solution"] == "2" and "prompt" not in row  # the input row is left alone
    for none in (None, ""):
        assert make_conversation(row, system_prompt=none)["prompt"] == [{"role": "user", "content": "What is 1 + 1?"}]
    assert make_conversation(row, "Be brief.")["prompt"][0] == {"role": "system", "content": "Be brief."}
    conversational = {"prompt": [{"role": "user", "content": "hi"}], "problem": "ignored", "solution": "x"}
    assert make_conversation(conversational) == conversational
    assert SYSTEM_PROMPT.startswith("A conversation between User and Assistant.")
    assert SYSTEM_PROMPT.endswith("<think> reasoning process here </think><answer> answer here </answer>")


# ----------------------------------------------------------------------------- validation


def test_validator_names_rows_and_columns():
    rows = [
        {"problem": "a", "solution": "1"},
        {"problem": "b"},
        {"problem": "", "solution": "3"},
        {"problem": "d", "solution": 4},
    ]
    with pytest.raises(DataError) as info:
        validate_rows(rows, ("problem", "solution"))
    message = str(info.value)
    assert "row 2: no `solution`" in message
    assert "row 3: `problem` is an empty string" in message
    assert "row 4: `solution` is a int (4), not a string" in message
    assert "row 1" not in message
    assert "Its columns are: problem, solution." in message


def test_validator_reports_missing_columns_with_alternatives():
    rows = [{"question": "What is 1 + 1?", "answer": "2"}] * 3
    with pytest.raises(DataError) as info:
        validate_rows(rows, ("problem", "solution"))
    message = str(info.value)
    assert "no row has a `problem` column" in message and "no row has a `solution` column" in message
    assert "Its columns are: question, answer." in message
    assert "(NuminaMath shape) or a conversational `prompt` column" in message
    assert "rename it" in message and '"problem": r["question"]' in message
    with pytest.raises(DataError, match="pass the rows through make_conversation"):
        validate_rows([{"problem": "p", "solution": "s"}], ("prompt", "solution"))


@pytest.mark.parametrize(
    "prompt, expected",
    [
        ("What is 1 + 1?", "is a string, not a list"),
        ([], "must be a non-empty list"),
        ([{"role": "user"}], "message 1 is not a"),
        ([{"role": "system", "content": "s"}, {"role": "bot", "content": "x"}], "message 2 has role 'bot'"),
        ([{"role": "user", "content": 3}], "message 1 has a int content"),
        (
            [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
            "ends with a message from 'assistant'; the last message must be the user's",
        ),
    ],
)
def test_validator_rejects_malformed_prompts(prompt, expected):
    rows = [{"prompt": [{"role": "user", "content": "fine"}], "solution": "1"}, {"prompt": prompt, "solution": "2"}]
    with pytest.raises(DataError, match=re.escape(f"row 2: `prompt` {expected}")):
        validate_rows(rows, ("prompt", "solution"))


def test_validator_completion_lists_empty_data_and_truncation():
    validate_rows([{"prompt": [{"role": "user", "content": "q"}], "completion": "a"}], ("prompt", "completion"))
    validate_rows(
        [{"prompt": [{"role": "user", "content": "q"}], "completion": [{"role": "assistant", "content": "a"}]}],
        ("prompt", "completion"),
    )
    with pytest.raises(DataError, match="has no rows"):
        validate_rows([], ("problem", "solution"))
    rows = [{"problem": "", "solution": "1"} for _ in range(25)]
    with pytest.raises(DataError) as info:
        validate_rows(rows, ("problem", "solution"))
    message = str(info.value)
    assert "row 10:" in message and "row 11:" not in message and "... and 15 more" in message


# ----------------------------------------------------------------------------- loaders


def test_sample_file_has_the_numina_shape():
    rows = sample_rows()
    assert 10 <= len(rows) <= 16
    for row in rows:
        assert set(row) == {"problem", "solution", "messages"}
        assert row["messages"] == [
            {"role": "user", "content": row["problem"]},
            {"role": "assistant", "content": row["solution"]},
        ]
        assert "\\boxed{" in row["solution"].split("\n")[-1]
    answers = [re.search(r"\\boxed\{(.*)\}", row["solution"]).group(1) for row in rows]
    assert any(re.fullmatch(r"-?\d+", a) for a in answers)
    assert any(a.startswith("\\frac") for a in answers)
    assert any("x" in a or "sqrt" in a for a in answers)
    assert sum(bool(re.search(r"[\u4e00-\u9fff]", row["problem"])) for row in rows) >= 2
    validate_rows(rows, ("problem", "solution"))
    assert text.SAMPLE_NUMINA.parent.name == "data" and load_rows(SAMPLE_NUMINA) == rows


def test_load_jsonl_json_and_csv(tmp_path):
    rows = sample_rows()
    (tmp_path / "list.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    assert load_rows(tmp_path / "list.json") == rows
    (tmp_path / "splits.json").write_text(json.dumps({"train": rows[:10], "test": rows[10:]}), encoding="utf-8")
    assert load_rows(tmp_path / "splits.json", split="test") == rows[10:]
    assert load_rows(tmp_path / "splits.json") == rows[:10]
    with pytest.raises(DataError, match="no 'validation' split; it holds: train, test"):
        load_rows(tmp_path / "splits.json", split="validation")
    with open(tmp_path / "sample.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, ["problem", "solution"])
        writer.writeheader()
        writer.writerows({"problem": r["problem"], "solution": r["solution"]} for r in rows)
    assert load_rows(tmp_path / "sample.csv") == [{"problem": r["problem"], "solution": r["solution"]} for r in rows]


def test_load_parquet_save_to_disk_and_hub_folders(tmp_path):
    pytest.importorskip("datasets")
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = sample_rows()
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "sample.parquet")
    assert load_rows(tmp_path / "sample.parquet") == rows

    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "saved"))
    assert load_rows(tmp_path / "saved") == rows
    parts = datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(rows[:9]), "test": datasets.Dataset.from_list(rows[9:])}
    )
    parts.save_to_disk(str(tmp_path / "saved_dict"))
    assert load_rows(tmp_path / "saved_dict", split="test") == rows[9:]
    assert load_rows(tmp_path / "saved_dict") == rows[:9]

    hub = tmp_path / "hub"
    (hub / "data").mkdir(parents=True)
    (hub / ".cache" / "huggingface").mkdir(parents=True)
    (hub / ".cache" / "huggingface" / "train-notes.json").write_text("not json")  # huggingface-cli bookkeeping
    (hub / "README.md").write_text("# a dataset card")
    pq.write_table(pa.Table.from_pylist(rows[:6]), hub / "data" / "train-00000-of-00002.parquet")
    pq.write_table(pa.Table.from_pylist(rows[6:10]), hub / "data" / "train-00001-of-00002.parquet")
    pq.write_table(pa.Table.from_pylist(rows[10:]), hub / "data" / "test-00000-of-00001.parquet")
    assert load_rows(hub) == rows[:10]
    assert load_rows(hub, split="test") == rows[10:]

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:10]), encoding="utf-8")
    pq.write_table(pa.Table.from_pylist(rows[10:]), mixed / "test.parquet")
    assert load_rows(mixed) == rows[:10] and load_rows(mixed, split="test") == rows[10:]
    task = load_task(mixed, system_prompt=None)
    assert (len(task.train), len(task.test)) == (10, 3)
    assert task.test[0]["prompt"] == [{"role": "user", "content": rows[10]["problem"]}]


def test_csv_folder_keeps_every_cell_a_string(tmp_path):
    rows = [{k: r[k] for k in ("problem", "solution")} for r in arithmetic_split("medium", "train", 20, seed=0)]
    for split, part in (("train", rows[:15]), ("test", rows[15:])):
        with open(tmp_path / f"{split}.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, ["problem", "solution"])
            writer.writeheader()
            writer.writerows(part)
    assert load_rows(tmp_path) == rows[:15] and load_rows(tmp_path, split="test") == rows[15:]
    task = load_task(tmp_path)
    assert (len(task.train), len(task.test)) == (15, 5)


def test_loader_errors_name_the_file_and_line(tmp_path):
    with pytest.raises(DataError, match="downloads nothing"):
        load_rows(tmp_path / "missing.jsonl")
    lines = [json.dumps({"problem": "p", "solution": "s"})] * 2 + ['{"problem": "p", "solution": ']
    (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"bad\.jsonl, line 3: not valid JSON"):
        load_rows(tmp_path / "bad.jsonl")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "train.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="line 3"):  # the same message through the datasets path
        load_rows(tmp_path / "folder")
    (tmp_path / "array.jsonl").write_text('{"problem": "p"}\n[1, 2]\n')
    with pytest.raises(DataError, match="line 2: a JSON list where an object"):
        load_rows(tmp_path / "array.jsonl")
    (tmp_path / "ragged.csv").write_text("problem,solution\nWhat is 1 + 1?,2,extra\n")
    with pytest.raises(DataError, match="line 2: more cells than the header"):
        load_rows(tmp_path / "ragged.csv")
    (tmp_path / "rows.txt").write_text("x")
    with pytest.raises(DataError, match="cannot read .txt files"):
        load_rows(tmp_path / "rows.txt")
    # U+2028 and U+0085 may stand raw in JSON strings and CSV cells; they do not end a row.
    odd = [
        {"problem": "a\u2028b\x85c, \"quoted\"\nnext line", "solution": "1"},
        {"problem": "x\u2028y", "solution": "2"},
    ]
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\r\n" for r in odd)
    (tmp_path / "odd.jsonl").write_text(lines, encoding="utf-8")
    with open(tmp_path / "odd.csv", "w", newline="", encoding="utf-8") as f:
        csv.DictWriter(f, ["problem", "solution"]).writeheader()
        csv.DictWriter(f, ["problem", "solution"]).writerows(odd)
    assert load_rows(tmp_path / "odd.jsonl") == odd == load_rows(tmp_path / "odd.csv")
    with pytest.raises(DataError, match="a single data file is one split"):
        load_rows(SAMPLE_NUMINA, split="test")


# ----------------------------------------------------------------------------- tasks


def test_load_task_arithmetic():
    task = load_task("arithmetic", train_size=300, test_size=40, seed=2)
    assert isinstance(task, TextTask) and task.name == "arithmetic:medium"
    assert (len(task.train), len(task.test)) == (300, 40) and task.reward_columns == ("solution",)
    assert task.train[0]["prompt"][0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert task.train[0]["prompt"][1]["content"] == task.train[0]["problem"]
    assert not {r["expression"] for r in task.train} & {r["expression"] for r in task.test}
    assert load_task("arithmetic:hard", train_size=5, test_size=5).train == load_task(
        "arithmetic", level="hard", train_size=5, test_size=5
    ).train
    easy = load_task("arithmetic:easy", train_size=10)
    assert len(easy.test) == text.count_test_problems("easy") and {r["level"] for r in easy.train} == {"easy"}
    assert "rows>" in repr(easy) and "What is" not in repr(easy)
    with pytest.raises(ConfigError, match="two levels"):
        load_task("arithmetic:hard", level="easy")
    with pytest.raises(UnknownNameError, match="levels are easy, medium"):
        load_task("arithmetic:extreme")


def test_load_task_on_the_sample_path():
    for name in (str(SAMPLE_NUMINA), "numina-sample"):
        task = load_task(name)
        assert (len(task.train), len(task.test)) == (12, 1)  # the last 10% held out
        assert task.test[0]["problem"] == sample_rows()[-1]["problem"]
        assert task.train[0]["prompt"][-1] == {"role": "user", "content": task.train[0]["problem"]}
        assert task.train[0]["messages"][0]["role"] == "user"  # other columns ride along
    assert len(load_task("numina-sample", train_size=4).train) == 4
    with pytest.raises(DataError, match="train_size=50 but"):
        load_task("numina-sample", train_size=50)


def test_load_task_rejects_unfit_files(tmp_path):
    rows = [{"question": f"q{i}", "answer": "1"} for i in range(5)]
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError) as info:
        load_task(tmp_path / "qa.jsonl")
    message = str(info.value)
    assert "(train split)" in message and "no row has a `prompt` column" in message and "`answer`" in message


def test_unknown_task_name():
    with pytest.raises(UnknownNameError) as info:
        load_task("arithmatic")
    message = str(info.value)
    assert "Did you mean: arithmetic" in message and "numina-sample" in message
    assert "local path" in message and "Nothing is downloaded" in message
    with pytest.raises(UnknownNameError, match="AI-MO/NuminaMath-TIR"):
        load_task("AI-MO/NuminaMath-TIR")


def test_module_stays_light():
    heavy = "{'torch', 'transformers', 'datasets', 'pyarrow'}"
    code = f"import sys, rlsuite.envs.text; print(sorted({heavy} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
