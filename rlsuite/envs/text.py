"""Prompt tasks with verifiers for language-model RL (GRPO as in DeepSeek-R1-Zero) and SFT.

A task is two lists of plain dict rows. Every row has a conversational `prompt` (a list of
{"role", "content"} messages ending with the user's) and a `solution` that reward functions check.

Names `load_task` accepts:

    arithmetic[:LEVEL]   generated problems such as "What is 2 + 3 * 4?" (LEVEL from LEVELS,
                         default medium; the `level` keyword is an alternative to the suffix)
    numina-sample        the 13 hand-written NuminaMath-TIR-shaped rows in SAMPLE_NUMINA
    any local path       a .jsonl, .json, .parquet or .csv file, a `save_to_disk` folder, or a
                         folder of data files such as a downloaded Hugging Face dataset repo

Nothing is ever downloaded: fetch a hub dataset yourself (e.g. `huggingface-cli download
AI-MO/NuminaMath-TIR --repo-type dataset --local-dir NuminaMath-TIR`) and pass the folder.
`datasets` and `pyarrow` (the llm extra) are imported only for the formats that need them.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import itertools
import json
import re
import tempfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlsuite.errors import ConfigError, DataError, InputError, UnknownNameError, require_extra, suggest

SYSTEM_PROMPT = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The assistant first thinks about the reasoning process in the mind and then provides the user with the "
    "answer. The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags, "
    "respectively, i.e., <think> reasoning process here </think><answer> answer here </answer>"
)
"""The DeepSeek-R1-Zero system prompt."""

SAMPLE_NUMINA = Path(__file__).with_name("data") / "numina_sample.jsonl"
"""13 NuminaMath-TIR-shaped rows (problem, solution ending in \\boxed{...}, messages), 2 in Chinese."""

BUILTIN_TASKS = ("arithmetic", "numina-sample")
NEEDS = ("prompt", "solution")
"""Columns every row of a TextTask has once `load_task` has run `make_conversation`."""
DEFAULT_TRAIN_SIZE = 2000
DEFAULT_TEST_SIZE = 200
HOLDOUT_FRACTION = 0.1
SPLITS = ("train", "test")


# ---------------------------------------------------------------------------------------------
# Conversations


def make_conversation(row: dict, system_prompt: str | None = SYSTEM_PROMPT) -> dict:
    """The row plus a conversational `prompt` built from its `problem` (system message first)."""
    if isinstance(row.get("prompt"), list) or row.get("problem") is None:
        # Already conversational, or nothing to build from: validate_rows says what is missing.
        return dict(row)
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages.append({"role": "user", "content": row["problem"]})
    return {**row, "prompt": messages}


# ---------------------------------------------------------------------------------------------
# Arithmetic


@dataclass(frozen=True)
class ArithmeticLevel:
    """How one level's expressions are drawn."""

    operands: tuple[int, int]  # (min, max) count of numbers in an expression
    max_number: int  # numbers are drawn uniformly from 0..max_number
    parentheses: float  # probability of one parenthesised sub-expression (needs >= 3 operands)
    operators: str = "+-*"

    def __post_init__(self) -> None:
        object.__setattr__(self, "operands", tuple(self.operands))  # hashable, for the pool cache
        lo, hi = self.operands if len(self.operands) == 2 else (0, -1)
        if not 2 <= lo <= hi:
            raise ConfigError(f"operands must be (min, max) with 2 <= min <= max; got {self.operands}.")
        if self.max_number < 0:
            raise ConfigError(f"max_number must be >= 0; got {self.max_number}.")
        if not 0.0 <= self.parentheses <= 1.0:
            raise ConfigError(f"parentheses is a probability in [0, 1]; got {self.parentheses}.")
        # No division: answers stay integers, which is what the exact-match reward compares.
        if not self.operators or set(self.operators) - set("+-*") or len(set(self.operators)) != len(self.operators):
            raise ConfigError(f"operators must be distinct characters from '+-*'; got {self.operators!r}.")


LEVELS: dict[str, ArithmeticLevel] = {
    "easy": ArithmeticLevel(operands=(2, 2), max_number=9, parentheses=0.0),  # a op b: one step
    "medium": ArithmeticLevel(operands=(2, 3), max_number=9, parentheses=0.0),  # * before +/-
    "hard": ArithmeticLevel(operands=(3, 3), max_number=9, parentheses=0.5),  # precedence and parentheses
    "mixed": ArithmeticLevel(operands=(2, 3), max_number=9, parentheses=0.3),  # easy to hard in one set
    "large": ArithmeticLevel(operands=(2, 4), max_number=99, parentheses=0.3),  # two digits, up to 3 steps
}
DEFAULT_LEVEL = "medium"

TEST_PERCENT = 20
"""Share of all expressions (by a hash of the expression string) that belong to the test split."""
_ENUMERATE_LIMIT = 300_000  # levels with more expressions than this never run out of test problems


def _level(level: str | ArithmeticLevel) -> tuple[str, ArithmeticLevel]:
    if isinstance(level, ArithmeticLevel):
        return next((name for name, spec in LEVELS.items() if spec == level), "custom"), level
    if level not in LEVELS:
        raise UnknownNameError(
            f"unknown arithmetic level {level!r}; levels are {', '.join(LEVELS)}.{suggest(str(level), LEVELS)}"
        )
    return level, LEVELS[level]


_TOKEN = re.compile(r"\s*(?:(\d+)|([-+*()]))\s*")


def _tokenize(expression: str) -> list[int | str]:
    tokens: list[int | str] = []
    pos = 0
    while pos < len(expression):
        match = _TOKEN.match(expression, pos)
        if match is None:
            raise InputError(f"not an arithmetic expression: {expression!r} (unexpected {expression[pos]!r} at {pos}).")
        tokens.append(int(match[1]) if match[1] else match[2])
        pos = match.end()
    return tokens


def _apply(a: int, op: str, b: int) -> int:
    return a * b if op == "*" else a + b if op == "+" else a - b


def _flat(tokens: list[int | str], steps: list[str], expression: str) -> int:
    values, ops = tokens[::2], tokens[1::2]
    if (
        len(tokens) % 2 == 0
        or not all(isinstance(v, int) for v in values)
        or not all(isinstance(op, str) and op in "+-*" for op in ops)
    ):
        raise InputError(
            f"not an arithmetic expression: {expression!r} (numbers and + - * must alternate; no unary minus)."
        )
    for level_ops in ("*", "+-"):  # the order taught: all products left to right, then sums
        i = 0
        while i < len(ops):
            if ops[i] in level_ops:
                c = _apply(values[i], ops[i], values[i + 1])
                steps.append(f"{values[i]} {ops[i]} {values[i + 1]} = {c}")
                values[i : i + 2] = [c]
                del ops[i]
            else:
                i += 1
    return values[0]


def evaluate(expression: str) -> tuple[int, list[str]]:
    """Value of an expression of non-negative integers, + - * and parentheses, and its steps "a op b = c"."""
    tokens = _tokenize(expression)
    steps: list[str] = []
    while "(" in tokens:  # innermost, leftmost group first
        close = tokens.index(")") if ")" in tokens else -1
        opens = [i for i in range(close) if tokens[i] == "("]
        if not opens:
            raise InputError(f"not an arithmetic expression: {expression!r} (unbalanced parentheses).")
        tokens[opens[-1] : close + 1] = [_flat(tokens[opens[-1] + 1 : close], steps, expression)]
    if ")" in tokens:
        raise InputError(f"not an arithmetic expression: {expression!r} (unbalanced parentheses).")
    return _flat(tokens, steps, expression), steps


def _spans(k: int) -> list[tuple[int, int]]:
    # Parentheses around the whole expression would teach nothing, so that span is left out.
    return [(i, j) for i in range(k) for j in range(i + 1, k) if (i, j) != (0, k - 1)]


def _format(numbers: Sequence[int], ops: Sequence[str], span: tuple[int, int] | None) -> str:
    parts = []
    for i, n in enumerate(numbers):
        text = str(n)
        if span and i == span[0]:
            text = "(" + text
        if span and i == span[1]:
            text += ")"
        parts.append(text)
        if i < len(ops):
            parts.append(ops[i])
    return " ".join(parts)


def _draw_expression(rng: np.random.Generator, spec: ArithmeticLevel) -> str:
    lo, hi = spec.operands
    k = int(rng.integers(lo, hi + 1))
    numbers = [int(n) for n in rng.integers(0, spec.max_number + 1, size=k)]
    ops = [spec.operators[i] for i in rng.integers(0, len(spec.operators), size=k - 1)]
    spans = _spans(k)
    span = None
    if spans and spec.parentheses > 0 and rng.random() < spec.parentheses:
        span = spans[int(rng.integers(len(spans)))]
    return _format(numbers, ops, span)


def _row(expression: str, level_name: str) -> dict:
    value, steps = evaluate(expression)
    return {
        "problem": f"What is {expression}?",
        "solution": str(value),
        "expression": expression,
        "think": ", ".join(steps),
        "level": level_name,
    }


def arithmetic_problem(rng: np.random.Generator, level: str | ArithmeticLevel = DEFAULT_LEVEL) -> dict:
    """One problem row: problem, solution, expression, think (the steps) and level."""
    name, spec = _level(level)
    return _row(_draw_expression(rng, spec), name)


def split_of(expression: str) -> str:
    """'train' or 'test': fixed by the expression alone, so no seed or size moves a problem across."""
    return "test" if zlib.crc32(expression.encode()) % 100 < TEST_PERCENT else "train"


def _space_size(spec: ArithmeticLevel) -> int:
    lo, hi = spec.operands
    total = 0
    for k in range(lo, hi + 1):
        spans = len(_spans(k))
        shapes = (spec.parentheses < 1 or not spans) + (spans if spec.parentheses > 0 else 0)
        total += (spec.max_number + 1) ** k * len(spec.operators) ** (k - 1) * shapes
    return total


def _expressions(spec: ArithmeticLevel) -> Iterator[str]:
    lo, hi = spec.operands
    for k in range(lo, hi + 1):
        spans = _spans(k)
        shapes: list[tuple[int, int] | None] = [None] if spec.parentheses < 1 or not spans else []
        shapes += spans if spec.parentheses > 0 else []
        for numbers in itertools.product(range(spec.max_number + 1), repeat=k):
            for ops in itertools.product(spec.operators, repeat=k - 1):
                for span in shapes:
                    yield _format(numbers, ops, span)


@functools.lru_cache(maxsize=None)
def count_test_problems(level: str | ArithmeticLevel) -> int | None:
    """How many distinct test problems a level has; None when too many to run out of."""
    spec = _level(level)[1]
    if _space_size(spec) > _ENUMERATE_LIMIT:
        return None
    return sum(split_of(e) == "test" for e in _expressions(spec))


def arithmetic_split(
    level: str | ArithmeticLevel = DEFAULT_LEVEL, split: str = "train", n: int = DEFAULT_TRAIN_SIZE, seed: int = 0
) -> list[dict]:
    """n problem rows of one split, drawn with default_rng(seed); test rows are distinct problems."""
    if split not in SPLITS:
        raise UnknownNameError(f"unknown split {split!r}; arithmetic has {', '.join(SPLITS)}.{suggest(split, SPLITS)}")
    if n < 0:
        raise ConfigError(f"n (number of rows) must be >= 0; got {n}.")
    name, spec = _level(level)
    distinct = split == "test"  # repeated test problems would only add noise to the score
    available = count_test_problems(spec) if distinct else None
    if available is not None and n > available:
        raise DataError(
            f"arithmetic level {name!r} has only {available} distinct test problems ({_space_size(spec)} in all); "
            f"ask for at most {available} test rows, or pick a level with more problems ({', '.join(LEVELS)})."
        )
    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    seen: set[str] = set()
    max_draws = 10_000 + 200 * n
    for _ in range(max_draws):
        if len(rows) == n:
            return rows
        expression = _draw_expression(rng, spec)
        if split_of(expression) != split or (distinct and expression in seen):
            continue
        seen.add(expression)
        rows.append(_row(expression, name))
    if len(rows) == n:
        return rows
    raise DataError(
        f"drew {max_draws} arithmetic problems of level {name!r} and found only {len(rows)} distinct {split} "
        f"problems of the {n} asked for: the rarest problems almost never come up. Ask for fewer rows."
    )


# ---------------------------------------------------------------------------------------------
# Loading local files

DATA_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")
_METADATA_FILES = {"dataset_info.json", "dataset_infos.json", "dataset_dict.json", "state.json"}
# Split keywords in file and folder names, as the Hugging Face hub recognises them.
_SPLIT_WORDS = {
    "train": "train", "training": "train",
    "test": "test", "testing": "test", "eval": "test", "evaluation": "test",
    "validation": "validation", "valid": "validation", "val": "validation", "dev": "validation",
}  # fmt: skip
_FORMATS = "a .jsonl, .json, .parquet or .csv file, a folder written by save_to_disk, or a folder of such data files"

Loader = Callable[[], list[dict]]


def load_rows(path: str | Path, split: str | None = None) -> list[dict]:
    """Rows of one split of a local file or folder (split None: 'train', or the only split)."""
    path = Path(path).expanduser()
    sources = _sources(path)
    return sources[_pick_split(path, sources, split)]()


def _pick_split(path: Path, sources: dict[str, Loader], split: str | None) -> str:
    names = ", ".join(sources)
    if split is None:
        if "train" in sources:
            return "train"
        if len(sources) == 1:
            return next(iter(sources))
        raise DataError(f"{path} holds the splits {names}; pass split= to choose one.")
    if split not in sources:
        one_file = " (a single data file is one split, named train)" if path.is_file() and len(sources) == 1 else ""
        raise DataError(f"{path} has no {split!r} split; it holds: {names}{one_file}.")
    return split


def _sources(path: Path) -> dict[str, Loader]:
    if not path.exists():
        raise DataError(
            f"{path} does not exist. rlsuite reads local files only and downloads nothing: give the path of "
            f"{_FORMATS} (e.g. a Hugging Face dataset repo fetched with huggingface-cli download)."
        )
    if path.is_dir():
        if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
            return _saved_dataset(path)
        return _data_folder(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return {name: (lambda rows=rows: rows) for name, rows in _read_json(path).items()}
    readers = {".jsonl": _read_jsonl, ".parquet": _read_parquet, ".csv": _read_csv}
    if suffix not in readers:
        raise DataError(f"{path}: cannot read {suffix or 'extensionless'} files; give {_FORMATS}.")
    return {"train": lambda: readers[suffix](path)}


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")  # -sig: files saved by Excel start with a BOM
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); re-save it as UTF-8.") from None


def _json_lines(path: Path, text: str) -> list[dict]:
    rows = []
    # Not splitlines(): U+2028 and friends may stand unescaped inside JSON strings.
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}, line {lineno}: not valid JSON ({exc.msg}, column {exc.colno}). Each line must be one "
                "JSON object such as {\"problem\": \"...\", \"solution\": \"...\"}; fix or delete that line."
            ) from None
        if not isinstance(row, dict):
            raise DataError(
                f"{path}, line {lineno}: a JSON {type(row).__name__} where an object of columns was expected, "
                "such as {\"problem\": \"...\", \"solution\": \"...\"}."
            )
        rows.append(row)
    return rows


def _read_jsonl(path: Path) -> list[dict]:
    return _json_lines(path, _read_text(path))


def _read_json(path: Path) -> dict[str, list[dict]]:
    text = _read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data" and text.lstrip().startswith("{"):
            return {"train": _json_lines(path, text)}  # JSON Lines saved with a .json name
        raise DataError(
            f"{path}, line {exc.lineno}: not valid JSON ({exc.msg}, column {exc.colno}); fix the file."
        ) from None
    shape = 'a list of row objects, or {"train": [...], "test": [...]}'
    if isinstance(data, list):
        data = {"train": data}
    elif not (isinstance(data, dict) and data and all(isinstance(v, list) for v in data.values())):
        got = "an object whose values are not all lists" if isinstance(data, dict) else f"a JSON {type(data).__name__}"
        raise DataError(f"{path}: expected {shape}; got {got}.")
    for split, rows in data.items():
        for i, row in enumerate(rows, 1):
            if not isinstance(row, dict):
                raise DataError(f"{path}: {split} item {i} is a JSON {type(row).__name__}; expected {shape}.")
    return data


def _read_csv(path: Path) -> list[dict]:
    text = _read_text(path)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames:
        raise DataError(f"{path} is empty; a .csv file needs a header line naming the columns (problem,solution).")
    rows = []
    for row in reader:
        # Every cell stays a string: a CSV cannot hold conversations, so prompts come from `problem`.
        if None in row or None in row.values():
            raise DataError(
                f"{path}, line {reader.line_num}: {'more' if None in row else 'fewer'} cells than the header's "
                f"{len(reader.fieldnames)} ({', '.join(reader.fieldnames)}); quote cells that contain commas."
            )
        rows.append(row)
    return rows


def _read_parquet(path: Path) -> list[dict]:
    require_extra("pyarrow", "llm")
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path} is not a readable parquet file ({exc}).") from None


def _saved_dataset(path: Path) -> dict[str, Loader]:
    require_extra("datasets", "llm")
    import datasets

    try:
        saved = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise DataError(f"{path} looks like a save_to_disk folder but cannot be loaded ({exc}).") from None
    if isinstance(saved, datasets.DatasetDict):
        return {name: part.to_list for name, part in saved.items()}
    return {"train": saved.to_list}


def _split_from_name(relative: Path) -> str | None:
    words = re.split(r"[-._ /0-9]+", relative.with_suffix("").as_posix().lower())
    found = [_SPLIT_WORDS[w] for w in words if w in _SPLIT_WORDS]
    return found[-1] if found else None  # the word nearest the file name wins


def _data_folder(path: Path) -> dict[str, Loader]:
    files = sorted(
        f
        for f in path.rglob("*")
        if f.suffix.lower() in DATA_SUFFIXES
        and f.name not in _METADATA_FILES
        # huggingface-cli download --local-dir keeps its bookkeeping under .cache/
        and not any(part.startswith(".") for part in f.relative_to(path).parts)
        and f.is_file()
    )
    if not files:
        raise DataError(f"{path} holds no {', '.join(DATA_SUFFIXES)} files (subfolders included); give {_FORMATS}.")
    by_split: dict[str, list[Path]] = {}
    for f in files:
        split = _split_from_name(f.relative_to(path))
        if split:
            by_split.setdefault(split, []).append(f)
    # As on the hub: files named after no split are the train split when no file names one.
    by_split = by_split or {"train": files}
    return {split: functools.partial(_read_files, path, split, fs) for split, fs in by_split.items()}


def _read_files(folder: Path, split: str, files: list[Path]) -> list[dict]:
    kinds = sorted({f.suffix.lower() for f in files})
    if len(kinds) > 1:
        raise DataError(
            f"the {split} split of {folder} mixes {', '.join(kinds)} files ({', '.join(f.name for f in files)}); "
            "keep one format per split."
        )
    if kinds[0] == ".csv":
        # csv stays with the stdlib reader: through datasets, "14" would come back as the integer 14.
        return [row for f in files for row in _read_csv(f)]
    return _load_dataset("parquet" if kinds[0] == ".parquet" else "json", files)


@contextlib.contextmanager
def _quiet_progress(datasets: Any) -> Iterator[None]:
    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


def _load_dataset(builder: str, files: list[Path]) -> list[dict]:
    require_extra("datasets", "llm")
    import datasets
    from datasets.exceptions import DatasetGenerationError
    from pyarrow import ArrowInvalid

    # A throwaway cache: these are local files, and the Arrow copy is not needed after to_list().
    cache_dir = tempfile.TemporaryDirectory(prefix="rlsuite-data-", ignore_cleanup_errors=True)
    with cache_dir as cache, _quiet_progress(datasets):
        try:
            loaded = datasets.load_dataset(builder, data_files=[str(f) for f in files], split="train", cache_dir=cache)
        except (DatasetGenerationError, ArrowInvalid, ValueError, OSError) as exc:
            if builder == "json":  # our own reader names the bad line; datasets does not
                for f in files:
                    _read_json(f) if f.suffix.lower() == ".json" else _read_jsonl(f)
            cause = exc.__cause__ or exc
            raise DataError(f"cannot read {', '.join(str(f) for f in files)} ({cause}).") from None
        return loaded.to_list()


# ---------------------------------------------------------------------------------------------
# Validation

_ROLES = ("system", "user", "assistant")
_MESSAGES = 'a list of {"role": "system"/"user"/"assistant", "content": "..."} messages'
_WANTED = {
    "problem": f"a `problem` column (NuminaMath shape) or a conversational `prompt` column ({_MESSAGES})",
    "prompt": f"a conversational `prompt` column ({_MESSAGES}, the last from the user), or a `problem` column "
    "that make_conversation turns into one",
    "solution": "a `solution` column with the reference answer the reward checks "
    "(NuminaMath ends it with \\boxed{...})",
    "completion": f"a `completion` column with the SFT target: a string, or {_MESSAGES} from the assistant",
}
_SYNONYMS = {
    "problem": ("question", "query", "input", "instruction"),
    "solution": ("answer", "target", "label", "output"),
    "completion": ("response", "output", "answer", "target"),
}
MAX_LISTED = 10


def _check_messages(value: Any, last_role: str | None) -> str | None:
    if isinstance(value, str):
        return (
            f"is a string, not {_MESSAGES}; put plain text in a `problem` column instead "
            "(a CSV cannot hold conversations: use .jsonl or .parquet)"
        )
    if not isinstance(value, (list, tuple)) or not value:
        return f"must be a non-empty list of messages ({_MESSAGES}); got {_show(value)}"
    for j, message in enumerate(value, 1):
        if not isinstance(message, dict) or not {"role", "content"} <= set(message):
            return f"message {j} is not a {{\"role\": ..., \"content\": ...}} dict: {_show(message)}"
        if message["role"] not in _ROLES:
            return f"message {j} has role {_show(message['role'])}; roles are {', '.join(_ROLES)}"
        if not isinstance(message["content"], str):
            return f"message {j} has a {type(message['content']).__name__} content; it must be a string"
    if last_role and value[-1]["role"] != last_role:
        return f"ends with a message from {value[-1]['role']!r}; the last message must be the {last_role}'s"
    return None


def _check_value(column: str, value: Any) -> str | None:
    if column == "prompt":
        return _check_messages(value, last_role="user")
    if column == "completion" and isinstance(value, (list, tuple)):
        return _check_messages(value, last_role="assistant")
    if not isinstance(value, str):
        return f"is a {type(value).__name__} ({_show(value)}), not a string; store the column as text"
    if not value.strip():
        return "is an empty string; fill it in or drop the row"
    return None


def _show(value: Any, width: int = 50) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def row_issues(rows: Sequence, needs: tuple[str, ...], check_value: Callable[[str, Any], str | None],
               check_row: Callable[[dict, list[str]], str | None] | None = None) -> tuple[list[str], list[str], set[str]]:
    """(every problem of the rows, the columns they have, the needed columns some row lacks).
    `check_value(column, value)` names what is wrong with a present value; `check_row(row, good
    columns)` what is wrong across columns (a preference pair whose two replies are the same)."""
    dict_rows = [row for row in rows if isinstance(row, dict)]
    columns = list(dict.fromkeys(key for row in dict_rows for key, value in row.items() if value is not None))
    absent = {c for c in needs if dict_rows and all(row.get(c) is None for row in dict_rows)}
    issues = [f"no row has a `{c}` column" for c in needs if c in absent]
    lacking: set[str] = set(absent)
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            issues.append(f"row {i}: is a {type(row).__name__}, not a dict of columns")
            continue
        good = []
        for column in needs:
            if column in absent:
                continue
            if row.get(column) is None:  # datasets turns a missing key into None
                issues.append(f"row {i}: no `{column}` (missing or null)")
                lacking.add(column)
            elif (problem := check_value(column, row[column])) is not None:
                issues.append(f"row {i}: `{column}` {problem}")
            else:
                good.append(column)
        if check_row is not None and (problem := check_row(row, good)) is not None:
            issues.append(f"row {i}: {problem}")
    return issues, columns, lacking


def issue_report(source: str, needs: tuple[str, ...], issues: list[str], columns: list[str]) -> list[str]:
    """The head of a DataError: what the data needs, the first MAX_LISTED problems, its columns."""
    listed = issues[:MAX_LISTED] + ([f"... and {len(issues) - MAX_LISTED} more"] if len(issues) > MAX_LISTED else [])
    return [f"{source} does not fit (it needs {', '.join(needs)}); rows are counted from 1:", *(f"  {issue}" for issue in listed),
            f"Its columns are: {', '.join(columns) or 'none'}."]


def validate_rows(rows: Sequence[dict], needs: Sequence[str] = NEEDS, *, source: str = "the dataset") -> None:
    """Raise one DataError listing every row that lacks or mangles a column in `needs`."""
    needs = tuple(needs)
    if not rows:
        raise DataError(f"{source} has no rows; it needs at least one row with columns {', '.join(needs)}.")
    issues, columns, lacking = row_issues(rows, needs, _check_value)
    if not issues:
        return
    lines = issue_report(source, needs, issues, columns)
    for column in needs:
        if column not in lacking:
            continue
        hint = f"For `{column}` it needs {_WANTED.get(column, f'a `{column}` column')}."
        if column == "prompt" and "problem" in columns:
            hint += " It has `problem`: pass the rows through make_conversation first (load_task does)."
        synonym = next((s for s in _SYNONYMS.get(column, ()) if s in columns), None)
        if synonym:
            hint += f' It has `{synonym}`: rename it, e.g. rows = [{{**r, "{column}": r["{synonym}"]}} for r in rows].'
        lines.append(hint)
    raise DataError("\n".join(lines))


# ---------------------------------------------------------------------------------------------
# Tasks


@dataclass(frozen=True, repr=False)
class TextTask:
    """Train and test rows of a prompt task, and the row columns reward functions receive."""

    name: str
    train: list[dict]
    test: list[dict]
    reward_columns: tuple[str, ...] = ("solution",)

    def __repr__(self) -> str:  # the rows themselves would flood a REPL
        return (
            f"TextTask(name={self.name!r}, train=<{len(self.train)} rows>, test=<{len(self.test)} rows>, "
            f"reward_columns={self.reward_columns!r})"
        )


def _take(rows: list[dict], size: int | None, what: str, source: str) -> list[dict]:
    if size is None:
        return rows
    if not 0 < size <= len(rows):
        raise DataError(f"{what}={size} but {source} has {len(rows)} such rows; pass 1..{len(rows)}, or None for all.")
    return rows[:size]


def _file_splits(path: Path) -> tuple[list[dict], list[dict]]:
    sources = _sources(path)
    if "train" in sources and ({"test", "validation"} & set(sources)):
        return sources["train"](), sources["test" if "test" in sources else "validation"]()
    rows = sources[_pick_split(path, sources, None)]()
    if len(rows) < 2:
        raise DataError(f"{path} has {len(rows)} row(s); holding out a test split needs at least 2.")
    n_test = max(1, int(len(rows) * HOLDOUT_FRACTION))
    return rows[:-n_test], rows[-n_test:]  # the last rows, so the hold-out never depends on a seed


def load_task(
    name_or_path: str | Path,
    *,
    level: str | None = None,
    train_size: int | None = None,
    test_size: int | None = None,
    seed: int = 0,
    system_prompt: str | None = SYSTEM_PROMPT,
    needs: Sequence[str] = NEEDS,
) -> TextTask:
    """A built-in task ("arithmetic", "arithmetic:hard", "numina-sample") or local data as a TextTask.

    Arithmetic: train_size defaults to 2000 rows and test_size to 200 distinct problems (fewer when
    the level has fewer); `seed` draws them. Files: the "test" (else "validation") split when there
    is one, else the last 10% of the rows; sizes take the first rows (None: all); `seed` is unused.
    `needs` are the columns every row must have (SFT data: ("prompt",) plus a demonstration).
    """
    name = str(name_or_path)
    base, colon, suffix_level = name.partition(":")
    if base == "arithmetic":
        if colon and level is not None and level != suffix_level:
            raise ConfigError(f"two levels given: {name!r} and level={level!r}; give one.")
        level_name, spec = _level(suffix_level or level or DEFAULT_LEVEL)
        if test_size is None:
            test_size = min(DEFAULT_TEST_SIZE, count_test_problems(spec) or DEFAULT_TEST_SIZE)
        train_n = DEFAULT_TRAIN_SIZE if train_size is None else train_size
        train = arithmetic_split(level_name, "train", train_n, seed)
        test = arithmetic_split(level_name, "test", test_size, seed)
        task_name, source = f"arithmetic:{level_name}", f"arithmetic:{level_name}"
    else:
        if level is not None:
            raise ConfigError(f"level= applies to the arithmetic task only, not to {name!r}.")
        path = SAMPLE_NUMINA if name == "numina-sample" else Path(name).expanduser()
        if not path.exists():
            builtins = [*BUILTIN_TASKS, *(f"arithmetic:{lv}" for lv in LEVELS)]
            raise UnknownNameError(
                f"unknown task {name!r}: not a built-in task ({', '.join(builtins)}) and no file or folder of that "
                f"name exists (relative to {Path.cwd()}).{suggest(name, builtins)} Give a built-in name or a local "
                f"path: {_FORMATS}. Nothing is downloaded: fetch a hub dataset first, e.g. huggingface-cli "
                "download AI-MO/NuminaMath-TIR --repo-type dataset --local-dir NuminaMath-TIR."
            )
        train, test = _file_splits(path)
        train = _take(train, train_size, "train_size", f"{path} (train)")
        test = _take(test, test_size, "test_size", f"{path} (test)")
        task_name, source = name, str(path)
    train = [make_conversation(row, system_prompt) for row in train]
    test = [make_conversation(row, system_prompt) for row in test]
    validate_rows(train, needs, source=f"{source} (train split)")
    validate_rows(test, needs, source=f"{source} (test split)")
    # The verifier needs a gold answer; SFT data of prompt/completion pairs may have none.
    scored = all("solution" in row for row in (*train, *test))
    return TextTask(name=task_name, train=train, test=test, reward_columns=("solution",) if scored else ())
