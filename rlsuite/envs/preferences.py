"""Preference datasets for reward models, DPO and KTO: a better and a worse reply to one prompt.

A PreferenceTask is two lists of plain dict rows in one of two shapes:

    paired     {"prompt": [messages ending with the user's], "chosen": str, "rejected": str, ...}
               reward models and DPO learn that `chosen` beats `rejected` for the prompt
    unpaired   {"prompt": [messages ...], "completion": str, "label": bool, ...}
               KTO judges each reply on its own as desirable (True) or not

`chosen`, `rejected` and `completion` are the assistant's reply as plain text, whatever shape the
data came in; other columns (e.g. `solution`, which a verifier scores replies against) are kept.

Names `load_preferences` accepts:

    arithmetic[:LEVEL]   text.arithmetic_split problems (LEVEL from text.LEVELS, default mixed); chosen
                         is the SFT demonstration, rejected a slipped step, a wrong answer or a
                         broken format (named in `rejected_kind`)
    constraints          short instructions with a checkable constraint ("Name a fruit that starts
                         with the letter b."); `satisfies` checks any reply against its row
    any local path       what text.load_rows reads, in one of TRL's preference formats:
                           explicit prompt  prompt (or problem), chosen, rejected: strings or messages
                           implicit prompt  chosen, rejected: whole conversations whose shared
                                            first messages are the prompt
                           unpaired         prompt, completion, label (bool, 0/1 or "true"/"false")

Nothing is ever downloaded: fetch a hub dataset yourself and pass its folder.
"""

from __future__ import annotations

import functools
import json
import numbers
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlsuite.envs import text
from rlsuite.errors import ConfigError, DataError, UnknownNameError, suggest

BUILTIN_PREFERENCES = ("arithmetic", "constraints")
DEFAULT_LEVEL = "mixed"
PAIRED = ("prompt", "chosen", "rejected")
UNPAIRED = ("prompt", "completion", "label")


@dataclass(frozen=True, repr=False)
class PreferenceTask:
    """Train and test rows of a preference set, their shape, and the columns a verifier can use."""

    name: str
    train: list[dict]
    test: list[dict]
    paired: bool  # True: prompt/chosen/rejected rows; False: prompt/completion/label rows (KTO)
    reward_columns: tuple[str, ...] = ()

    def __repr__(self) -> str:  # the rows themselves would flood a REPL
        return (
            f"PreferenceTask(name={self.name!r}, train=<{len(self.train)} rows>, test=<{len(self.test)} rows>, "
            f"paired={self.paired}, reward_columns={self.reward_columns!r})"
        )


# ---------------------------------------------------------------------------------------------
# Rows in, normalized rows out


def _prompt(row: dict, system_prompt: str | None) -> Any:
    value = row.get("prompt")
    value = row.get("problem") if value is None else value
    if not isinstance(value, str):
        return value  # messages already, or missing: validate_preferences says which
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return [*messages, {"role": "user", "content": value}]


def _reply(value: Any) -> Any:
    """The text of a reply given as a string or as messages (the last assistant one); else as given."""
    if isinstance(value, (list, tuple)):
        said = [m for m in value if isinstance(m, dict) and m.get("role") == "assistant"]
        if said:
            return said[-1].get("content")
    return value


def _split_implicit(chosen: list, rejected: list) -> tuple[list, Any, Any]:
    # Each side keeps at least its last message: two identical conversations then come out as an
    # identical pair, which validation names, rather than as a prompt with no replies.
    limit, n = min(len(chosen), len(rejected)) - 1, 0
    while n < limit and chosen[n] == rejected[n]:
        n += 1
    return list(chosen[:n]), _reply(chosen[n:]), _reply(rejected[n:])


def _label(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, numbers.Integral) and value in (0, 1)):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")  # a CSV cell is always a string
    return value  # validate_preferences reports it


def _normalize(rows: Sequence, paired: bool, system_prompt: str | None) -> list:
    needs = PAIRED if paired else UNPAIRED
    out = []
    for row in rows:
        if not isinstance(row, dict):
            out.append(row)  # validation names it
            continue
        rest = {k: v for k, v in row.items() if k not in needs}
        if not paired:
            columns = (_prompt(row, system_prompt), _reply(row.get("completion")), _label(row.get("label")))
        elif row.get("prompt") is None and row.get("problem") is None and all(
            isinstance(row.get(c), (list, tuple)) for c in ("chosen", "rejected")
        ):
            columns = _split_implicit(row["chosen"], row["rejected"])
        else:
            columns = (_prompt(row, system_prompt), _reply(row.get("chosen")), _reply(row.get("rejected")))
        out.append({**dict(zip(needs, columns)), **rest})
    return out


def _is_paired(rows: Sequence, source: str) -> bool:
    dict_rows = [row for row in rows if isinstance(row, dict)]
    columns = {key for row in dict_rows for key in row}
    if {"chosen", "rejected"} & columns:
        if all(r.get("prompt") is None and r.get("problem") is None for r in dict_rows) and any(
            isinstance(r.get("chosen"), str) for r in dict_rows
        ):
            raise DataError(
                f"{source} has string `chosen`/`rejected` columns and no `prompt` column (TRL's standard "
                "implicit-prompt format): where the prompt ends and the reply starts cannot be told reliably. "
                "Add a `prompt` column and keep only the replies in chosen/rejected, or store chosen/rejected "
                "as conversations (lists of messages) whose shared first messages are the prompt."
            )
        return True
    return not {"completion", "label"} & columns  # neither shape: validated as pairs, naming what is missing


def unpair(rows: list[dict]) -> list[dict]:
    """Each pair as two KTO rows: chosen with label True, then rejected with label False.

    As TRL's unpair_preference_dataset, except that a pair's two rows stay next to each other.
    Other columns are copied to both rows.
    """
    validate_preferences(rows, paired=True, source="the rows given to unpair")
    out = []
    for row in rows:
        rest = {k: v for k, v in row.items() if k not in ("chosen", "rejected")}
        out.append({**rest, "completion": row["chosen"], "label": True})
        out.append({**rest, "completion": row["rejected"], "label": False})
    return out


# ---------------------------------------------------------------------------------------------
# Validation

_WANTED = {
    "prompt": f"a `prompt` column: a string or {text._MESSAGES} ending with the user's (a `problem` column "
    "works too), or, with no prompt, chosen and rejected as whole conversations that start with it",
    "chosen": "a `chosen` column with the preferred reply: a string, or the assistant's messages",
    "rejected": "a `rejected` column with the worse reply: a string, or the assistant's messages",
    "completion": "a `completion` column with the reply: a string, or the assistant's messages",
    "label": "a `label` column saying whether the reply is desirable: true/false (1/0 is read as such)",
}
_SYNONYMS = {  # as some hub sets name them (response_j/k: StackExchange pairs)
    "prompt": ("question", "instruction"),
    "chosen": ("response_j", "preferred", "better"),
    "rejected": ("response_k", "dispreferred", "worse"),
}


def _value_problem(column: str, value: Any) -> str | None:
    if column == "label":
        return None if isinstance(value, bool) else f"is {text._show(value)}, not true or false"
    last_role = "user" if column == "prompt" else "assistant"
    if isinstance(value, (list, tuple)):
        problem = text._check_messages(value, last_role)
        if problem is None and not value[-1]["content"].strip():
            problem = f"ends with an empty {last_role} message"
        return problem
    if not isinstance(value, str):
        return f"is a {type(value).__name__} ({text._show(value)}), not a string or a list of messages"
    return "is empty or only whitespace; fill it in or drop the row" if not value.strip() else None


def _same_replies(row: dict, good: list[str]) -> str | None:
    if {"chosen", "rejected"} <= set(good) and _reply(row["chosen"]).strip() == _reply(row["rejected"]).strip():
        return "chosen and rejected are the same text; a pair must differ, or it teaches nothing"
    return None


def validate_preferences(rows: Sequence, *, paired: bool = True, source: str = "the dataset") -> None:
    """Raise one DataError listing every bad row: paired rows need prompt, chosen and rejected
    (two different replies); unpaired rows need prompt, completion and a bool label."""
    needs = PAIRED if paired else UNPAIRED
    if not rows:
        raise DataError(f"{source} has no rows; it needs at least one row with columns {', '.join(needs)}.")
    issues, columns, lacking = text.row_issues(rows, needs, _value_problem, _same_replies if paired else None)
    if not issues:
        return
    lines = text.issue_report(source, needs, issues, columns)
    for column in needs:
        if column in lacking:
            hint = f"For `{column}` it needs {_WANTED[column]}."
            synonym = next((s for s in _SYNONYMS.get(column, ()) if s in columns), None)
            if synonym:
                hint += f' It has `{synonym}`: rename it, e.g. [{{**r, "{column}": r["{synonym}"]}} for r in rows].'
            lines.append(hint)
    if paired and {"completion", "label"} & set(columns):
        lines.append("It has completion/label columns: that is unpaired (KTO) data; load it with unpaired=True.")
    if not paired and {"chosen", "rejected"} <= set(columns):
        lines.append("It has chosen/rejected columns: turn the pairs into labelled rows with unpair(rows).")
    raise DataError("\n".join(lines))


# ---------------------------------------------------------------------------------------------
# Arithmetic pairs

_KINDS = ("wrong_step", "wrong_answer", "malformed")
_KIND_P = (0.5, 0.25, 0.25)
_CONFUSED = {"*": "+", "+": "-", "-": "+"}  # the slips a learner makes: a sum for a product, a sign flipped
_OFFSETS = (-2, -1, 1, 2)
_MALFORMED = (  # the right number in a format strict_format fails
    "{solution}",
    "<think>{think}</think><answer>{solution}",
    "<think>{think}</think> The answer is {solution}.",
    "<answer>{solution}</answer>",
    "<think>{think}<answer>{solution}</answer>",
)


def _demo(think: str, answer: int | str) -> str:
    return f"<think>{think}</think><answer>{answer}</answer>"  # the SFT demonstration's format


def _replay(expression: str, slip_at: int, slip: Callable[[int, str, int], int]) -> tuple[int, list[str]]:
    """text.evaluate, except that step `slip_at` (from 0) is slip(a, op, b) and later steps build on it."""
    steps: list[str] = []

    def flat(tokens: list) -> int:
        values, ops = tokens[::2], tokens[1::2]
        for level_ops in ("*", "+-"):  # the order text.evaluate teaches
            i = 0
            while i < len(ops):
                if ops[i] not in level_ops:
                    i += 1
                    continue
                a, op, b = values[i], ops[i], values[i + 1]
                c = slip(a, op, b) if len(steps) == slip_at else text._apply(a, op, b)
                steps.append(f"{a} {op} {b} = {c}")
                values[i : i + 2] = [c]
                del ops[i]
        return values[0]

    tokens: list = text._tokenize(expression)
    while "(" in tokens:  # innermost, leftmost group first
        close = tokens.index(")")
        start = max(i for i in range(close) if tokens[i] == "(")
        tokens[start : close + 1] = [flat(tokens[start + 1 : close])]
    return flat(tokens), steps


def _rejected(row: dict, rng: np.random.Generator) -> tuple[str, str]:
    kind = _KINDS[int(rng.choice(len(_KINDS), p=_KIND_P))]
    if kind == "malformed":
        return kind, _MALFORMED[int(rng.integers(len(_MALFORMED)))].format(**row)
    solution, offset = int(row["solution"]), int(rng.choice(_OFFSETS))
    if kind == "wrong_answer":
        return kind, _demo(row["think"], solution + offset)
    confuse = bool(rng.random() < 0.5)

    def slip(a: int, op: str, b: int) -> int:
        right, other = text._apply(a, op, b), text._apply(a, _CONFUSED[op], b)
        return other if confuse and other != right else right + offset

    n_steps = row["think"].count("=")
    answer, steps = _replay(row["expression"], int(rng.integers(n_steps)), slip)
    if answer == solution:  # the slip cancelled out (times 0, say); one on the last step cannot
        answer, steps = _replay(row["expression"], n_steps - 1, slip)
    return kind, _demo(", ".join(steps), answer)


def arithmetic_preferences(split: str, size: int, seed: int = 0, level: str = DEFAULT_LEVEL) -> list[dict]:
    """`size` rows of text.arithmetic_split plus chosen, rejected and rejected_kind; no prompt yet
    (load_preferences builds it from `problem`). The rejected reply depends on seed and expression only."""
    rows = []
    for row in text.arithmetic_split(level, split, size, seed):
        rng = np.random.default_rng((zlib.crc32(row["expression"].encode()), seed))
        kind, rejected = _rejected(row, rng)
        chosen = _demo(row["think"], row["solution"])
        rows.append({**row, "chosen": chosen, "rejected": rejected, "rejected_kind": kind})
    return rows


# ---------------------------------------------------------------------------------------------
# Constraint pairs

_CATEGORIES = {  # category: (with its article, words); countries are names, so capitalised when shown
    "fruit": ("a fruit", "apple apricot banana cherry coconut date fig grape guava kiwi lemon lime lychee mango "
              "melon nectarine olive orange papaya peach pear plum quince raspberry tangerine"),
    "animal": ("an animal", "ant bear camel cat deer dog duck eagle fox frog goat hippo horse iguana jaguar koala "
               "lion llama monkey mouse newt otter owl panda parrot rabbit seal shark snake tiger turtle whale "
               "wolf yak zebra"),
    "color": ("a color", "amber beige black blue brown coral cyan gold gray green indigo ivory lilac magenta maroon "
              "navy orange pink purple red silver tan teal violet white yellow"),
    "vegetable": ("a vegetable", "bean beet broccoli cabbage carrot celery corn cucumber garlic kale leek lettuce "
                  "okra onion pea pepper potato pumpkin radish spinach squash tomato turnip yam zucchini"),
    "country": ("a country", "brazil canada chile china cuba egypt france germany ghana greece india iran italy "
                "japan kenya laos mexico nepal norway oman peru poland spain sweden togo uganda vietnam yemen zambia"),
}  # fmt: skip
_TOPICS = {  # topic: short words about it (<= 6 letters, so five of them stay under 40 characters)
    "the sea": "blue waves salt deep tides calm", "rain": "wet grey drops cold soft puddle",
    "winter": "cold snow ice frost dark quiet", "summer": "hot sun long days beach warm",
    "the forest": "trees green moss quiet deep shade", "cats": "soft purr paws lazy naps claws",
    "dogs": "loyal bark happy tails walks fetch", "music": "songs beat rhythm loud notes drums",
    "the city": "busy loud lights cars towers crowds", "the night": "dark stars quiet moon cool still",
    "the sun": "bright warm light hot gold rays", "snow": "white cold soft flakes quiet deep",
    "coffee": "hot dark bitter strong mugs beans", "a garden": "roses green bees soil seeds bloom",
    "the moon": "pale round glow night silver tides", "mountains": "tall peaks rocky snow steep high",
    "bread": "warm crust fresh baked soft yeast", "a river": "flows water fish banks cool fast",
    "trains": "fast tracks steam long rails loud", "books": "pages words tales old quiet ink",
    "birds": "wings song nests fly sky small", "autumn": "leaves red gold cool crisp fall",
    "the wind": "cold gusts howls strong fast air", "fire": "hot flames smoke warm bright ash",
    "the desert": "dry sand hot dunes vast empty",
}  # fmt: skip
_REPEAT = "yes no hello blue cat dog sun tree rain apple moon star fish bird book milk home red go up sky sea hat pen"
_TEMPLATES = {
    "starts_with": ("Name {noun} that starts with the letter {letter}.", "Give {noun} whose name begins with {letter}.",
                    "Write {noun} starting with the letter {letter}.", "One word: {noun} beginning with {letter}."),
    "avoid_letter": ("Name {noun} whose name has no letter {letter}.", "Give {noun} without the letter {letter} in it.",
                     "Write {noun} that does not contain the letter {letter}."),
    "case": ("Answer in {case} letters only: name {noun}.", "Name {noun}, using only {case} letters.",
             "Write {noun} in {case} letters."),
    "word_count": ("Write exactly {n} words about {topic}.", "Describe {topic} in exactly {n} words.",
                   "Use exactly {n} words to talk about {topic}."),
    "number_range": ("Give a whole number between {lo} and {hi}.", "Pick an integer from {lo} to {hi}."),
    "repeat": ("Repeat the word '{word}' {n} times.", "Say '{word}' exactly {n} times."),
}  # fmt: skip
_NAME = re.compile(r"[a-z][a-z' -]*")


def _name(reply: str) -> str | None:
    word = reply.strip().rstrip(".!").strip().lower()
    return word if _NAME.fullmatch(word) else None


def _is_case(reply: str, case: str) -> bool:
    reply = reply.strip()
    return any(c.isalpha() for c in reply) and reply == (reply.upper() if case == "uppercase" else reply.lower())


def _in_range(reply: str, lo: int, hi: int) -> bool:
    match = re.fullmatch(r"\s*(-?\d+)\.?\s*", reply)
    return bool(match) and lo <= int(match[1]) <= hi  # inclusive: "between" is read either way


_CHECKS: dict[str, Callable[..., bool]] = {  # kind: check(reply, **constraint_args); categories are not checked
    "starts_with": lambda reply, letter, **_: (word := _name(reply)) is not None and word.startswith(letter),
    "avoid_letter": lambda reply, letter, **_: (word := _name(reply)) is not None and letter not in word,
    "case": lambda reply, case, **_: _is_case(reply, case),
    "word_count": lambda reply, n, **_: len(reply.split()) == n,
    "number_range": lambda reply, lo, hi, **_: _in_range(reply, lo, hi),
    "repeat": lambda reply, word, n, **_: re.findall(r"[a-z']+", reply.lower()) == [word] * n,
}


def satisfies(row: dict, completion: str) -> bool:
    """Whether a reply (a string, or the assistant's messages) follows a constraint row's constraint."""
    kind, args = row.get("constraint"), row.get("constraint_args")
    if kind not in _CHECKS:
        raise UnknownNameError(
            f"the row's constraint is {kind!r}; satisfies knows {', '.join(_CHECKS)} (rows of "
            f"constraint_preferences or load_preferences('constraints')).{suggest(str(kind), _CHECKS)}"
        )
    args = json.loads(args) if isinstance(args, str) else args
    reply = _reply(completion)
    return isinstance(reply, str) and bool(_CHECKS[kind](reply, **args))


@functools.lru_cache(maxsize=None)
def _constraint_pool() -> dict[str, dict[str, list[tuple[str, str, dict]]]]:
    """split -> kind -> every (kind, prompt, args) of that split, in a fixed order."""
    specs: list[tuple[str, dict]] = []  # (kind, template fields)
    for category, (noun, words) in _CATEGORIES.items():
        names = words.split()
        specs += [("starts_with", {"category": category, "letter": ch}) for ch in sorted({w[0] for w in names})]
        # Only letters that some names have and others lack: both replies of the pair must exist.
        specs += [("avoid_letter", {"category": category, "letter": ch}) for ch in sorted(set("".join(names)))
                  if any(ch in w for w in names) and any(ch not in w for w in names)]  # fmt: skip
        specs += [("case", {"category": category, "case": case}) for case in ("uppercase", "lowercase")]
    specs += [("word_count", {"topic": topic, "n": n}) for topic in _TOPICS for n in (2, 3, 4)]
    specs += [("number_range", {"lo": lo, "hi": lo + width}) for lo in range(90) for width in (5, 10)]
    specs += [("repeat", {"word": word, "n": n}) for word in _REPEAT.split() for n in (2, 3, 4)]
    pool: dict[str, dict[str, dict[str, tuple[str, str, dict]]]] = {split: {} for split in text.SPLITS}
    for kind, fields in specs:
        noun = _CATEGORIES[fields["category"]][0] if "category" in fields else ""
        for template in _TEMPLATES[kind]:
            prompt = template.format(noun=noun, **fields)
            # By the prompt's hash alone, as text.split_of: no seed or size moves a prompt across.
            split = "test" if zlib.crc32(prompt.encode()) % 100 < text.TEST_PERCENT else "train"
            pool[split].setdefault(kind, {})[prompt] = (kind, prompt, fields)
    return {split: {kind: list(rows.values()) for kind, rows in kinds.items()} for split, kinds in pool.items()}


def _constraint_pair(kind: str, args: dict, rng: np.random.Generator) -> tuple[str, str]:
    def pick(items: Sequence) -> Any:
        return items[int(rng.integers(len(items)))]

    if kind in ("starts_with", "avoid_letter", "case"):
        names = _CATEGORIES[args["category"]][1].split()
        show = str.capitalize if args["category"] == "country" else str
        if kind == "case":
            name, upper = pick(names), args["case"] == "uppercase"
            return (name.upper() if upper else name), pick([name.capitalize(), name if upper else name.upper()])
        follows = (lambda w: w[0] == args["letter"]) if kind == "starts_with" else (lambda w: args["letter"] not in w)
        return show(pick([w for w in names if follows(w)])), show(pick([w for w in names if not follows(w)]))
    if kind == "number_range":
        lo, hi = args["lo"], args["hi"]
        below = lo > 0 and rng.random() < 0.5
        wrong = lo - int(rng.integers(1, min(lo, 10) + 1)) if below else hi + int(rng.integers(1, 11))
        return str(int(rng.integers(lo + 1, hi))), str(wrong)  # strictly inside: right however "between" is read
    n, wrong_n = args["n"], pick([args["n"] - 1, args["n"] + 1])
    if kind == "repeat":
        return " ".join([args["word"]] * n), " ".join([args["word"]] * wrong_n)
    words = _TOPICS[args["topic"]].split()

    def phrase(k: int) -> str:
        return " ".join(words[i] for i in rng.permutation(len(words))[:k]).capitalize() + "."

    return phrase(n), phrase(wrong_n)


def constraint_preferences(split: str, size: int, seed: int = 0) -> list[dict]:
    """`size` rows of prompt (a string), chosen (follows the constraint), rejected (does not),
    constraint (the kind) and constraint_args (JSON). Test prompts are distinct, spread over the kinds."""
    if split not in text.SPLITS:
        raise UnknownNameError(
            f"unknown split {split!r}; constraints has {', '.join(text.SPLITS)}.{suggest(split, text.SPLITS)}"
        )
    if size < 0:
        raise ConfigError(f"size (number of rows) must be >= 0; got {size}.")
    pool = _constraint_pool()[split]
    kinds = [pool[kind] for kind in _TEMPLATES if kind in pool]
    rng = np.random.default_rng((seed, text.SPLITS.index(split)))  # one seed, different rows per split
    if split == "test":
        available = sum(len(items) for items in kinds)
        if size > available:
            raise DataError(
                f"constraints has only {available} distinct test prompts; ask for at most {available} test rows."
            )
        # Round robin over each kind's shuffled prompts: distinct, and every kind in even a small test set.
        queues = [[items[i] for i in rng.permutation(len(items))] for items in kinds]
        picks = [q[i] for i in range(max(map(len, queues))) for q in queues if i < len(q)][:size]
    else:
        picks = []
        for _ in range(size):
            items = kinds[int(rng.integers(len(kinds)))]
            picks.append(items[int(rng.integers(len(items)))])
    rows = []
    for kind, prompt, args in picks:
        chosen, rejected = _constraint_pair(kind, args, rng)
        rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected, "constraint": kind,
                     "constraint_args": json.dumps(args, sort_keys=True)})  # fmt: skip
    return rows


# ---------------------------------------------------------------------------------------------
# Tasks


def load_preferences(
    name_or_path: str | Path,
    *,
    level: str | None = None,
    train_size: int | None = None,
    test_size: int | None = None,
    seed: int = 0,
    system_prompt: str | None = None,
    unpaired: bool = False,
) -> PreferenceTask:
    """A built-in set ("arithmetic", "arithmetic:hard", "constraints") or local data as a PreferenceTask.

    Built-ins: train_size defaults to 2000 rows and test_size to 200 distinct prompts (fewer when an
    arithmetic level has fewer); `seed` draws them. Files: the "test" (else "validation") split when
    there is one, else the last 10% of the rows; sizes take the first rows (None: all). Sizes count
    pairs: with unpaired=True each pair becomes two rows. A string prompt becomes a user message,
    after a system message when `system_prompt` is given.
    """
    name = str(name_or_path)
    base, colon, suffix_level = name.partition(":")
    if base == "arithmetic":
        if colon and level is not None and level != suffix_level:
            raise ConfigError(f"two levels given: {name!r} and level={level!r}; give one.")
        level_name, spec = text._level(suffix_level or level or DEFAULT_LEVEL)
        if test_size is None:
            test_size = min(text.DEFAULT_TEST_SIZE, text.count_test_problems(spec) or text.DEFAULT_TEST_SIZE)
        train_n = text.DEFAULT_TRAIN_SIZE if train_size is None else train_size
        train = arithmetic_preferences("train", train_n, seed, level_name)
        test = arithmetic_preferences("test", test_size, seed, level_name)
        task_name = source = f"arithmetic:{level_name}"
    elif level is not None:
        raise ConfigError(f"level= applies to the arithmetic set only, not to {name!r}.")
    elif name == "constraints":
        train = constraint_preferences("train", text.DEFAULT_TRAIN_SIZE if train_size is None else train_size, seed)
        test = constraint_preferences("test", text.DEFAULT_TEST_SIZE if test_size is None else test_size, seed)
        task_name = source = name
    else:
        path = Path(name).expanduser()
        if not path.exists():
            builtins = [*BUILTIN_PREFERENCES, *(f"arithmetic:{lv}" for lv in text.LEVELS)]
            raise UnknownNameError(
                f"unknown preference set {name!r}: not a built-in set ({', '.join(builtins)}) and no file or folder "
                f"of that name exists (relative to {Path.cwd()}).{suggest(name, builtins)} Give a built-in name or "
                f"a local path: {text._FORMATS}, with prompt/chosen/rejected columns (or prompt/completion/label "
                "for KTO). Nothing is downloaded: fetch a hub dataset first with huggingface-cli download."
            )
        train, test = text._file_splits(path)
        train = text._take(train, train_size, "train_size", f"{path} (train)")
        test = text._take(test, test_size, "test_size", f"{path} (test)")
        task_name, source = name, str(path)
    paired = _is_paired([*train, *test], source)
    if not paired and not unpaired:
        raise DataError(
            f"{source} holds unpaired rows (prompt, completion, label), not chosen/rejected pairs: reward models "
            "and DPO learn from pairs, so give them a file with prompt, chosen and rejected columns. KTO takes "
            "unpaired rows: load this file with unpaired=True."
        )
    train, test = _normalize(train, paired, system_prompt), _normalize(test, paired, system_prompt)
    validate_preferences(train, paired=paired, source=f"{source} (train split)")
    validate_preferences(test, paired=paired, source=f"{source} (test split)")
    if paired and unpaired:
        train, test = unpair(train), unpair(test)
    # A verifier needs a gold answer; preference data of free-form replies usually has none.
    scored = all("solution" in row for row in (*train, *test))
    return PreferenceTask(task_name, train, test, paired=not unpaired, reward_columns=("solution",) if scored else ())
