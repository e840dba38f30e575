"""Rejection sampling: which completions `select` keeps, the dataset a run writes (correct answers
only, loadable as an SFT task and trainable), resume, and that a run has no policy to load."""

import json
from collections import defaultdict

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from rlsuite import api  # noqa: E402
from rlsuite.algos.llm import rejection_sampling  # noqa: E402
from rlsuite.algos.llm.rejection_sampling import select  # noqa: E402
from rlsuite.envs import text  # noqa: E402
from rlsuite.errors import ConfigError, RLSuiteError  # noqa: E402
from rlsuite.ops import rewards  # noqa: E402


# --- select --------------------------------------------------------------------------------------------------------

def test_select_keeps_those_at_or_above_the_threshold_best_first():
    scores = np.array([0.5, 1.0, 1.2, 0.99])
    assert select(["a", "b", "c", "d"], scores, 1.0, 4) == [2, 1]  # 1.0 itself passes, 0.99 does not
    assert select(["a", "b", "c", "d"], scores, 1.0, 1) == [2]
    assert select(["a", "b", "c", "d"], scores, 2.0, 4) == []


def test_select_keeps_distinct_texts_only():
    # "a" twice: its best copy (index 1) is kept, the other skipped, and keep=2 reaches down to "b"
    assert select(["a", "a", "b", "c"], np.array([1.0, 1.5, 1.2, 1.1]), 1.0, 2) == [1, 2]
    assert select(["a", "a", "a"], np.array([1.0, 1.0, 1.0]), 1.0, 3) == [0]


def test_select_ties_keep_the_first_sampled():
    assert select(["x", "y", "z"], np.array([1.0, 1.0, 1.0]), 1.0, 2) == [0, 1]
    assert select(["x", "y", "z"], np.array([1.0, 2.0, 2.0]), 1.0, 1) == [1]


def test_select_skips_empty_completions():
    assert select(["", "   ", "a"], np.array([2.0, 2.0, 1.0]), 1.0, 2) == [2]
    assert select(["", "\n"], np.array([5.0, 5.0]), 0.0, 1) == []


@pytest.mark.parametrize("overrides, message", [
    (dict(num_samples=0), "num_samples, batch_size and keep_per_prompt must be >= 1"),
    (dict(rewards=("accuracy", "fromat")), "unknown reward function\\(s\\) fromat"),
    (dict(rewards=("accuracy",), reward_weights=(1.0, 0.1)), "one reward weight per reward function"),
    (dict(temperature=0.0), "temperature"),
])
def test_bad_configs_say_what_is_wrong(overrides, message):
    with pytest.raises(ConfigError, match=message):
        rejection_sampling.RejectionSamplingConfig(**overrides)


# --- runs ----------------------------------------------------------------------------------------------------------

SMALL = dict(model="builtin-sft", level="easy", train_size=16, test_size=4, eval_size=4, batch_size=4, num_samples=4,
             max_completion_length=24, total_steps=8, torch_threads=1)


def read_rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_dataset_holds_correct_answers_and_trains_sft(tmp_path):
    run = api.train("rejection_sampling", "arithmetic", run_dir=tmp_path / "rs", keep_per_prompt=2, quiet=True, **SMALL)
    assert run.status == "finished" and run.step == 8  # the budget counts prompts
    path = run.dir / "model" / rejection_sampling.DATASET
    rows = read_rows(path)
    assert 0 < len(rows) <= 8 * 2
    for row in rows:
        assert {"prompt", "completion", "solution", "score"} <= set(row)
        assert isinstance(row["prompt"], list) and row["prompt"][-1]["role"] == "user"
        assert row["score"] >= 1.0
    conversations = [[{"role": "assistant", "content": row["completion"]}] for row in rows]
    assert rewards.accuracy(conversations, solution=[row["solution"] for row in rows]) == [1.0] * len(rows)
    formats = rewards.strict_format(conversations)
    assert [row["score"] for row in rows] == pytest.approx([1.0 + 0.1 * f for f in formats])
    by_prompt = defaultdict(list)
    for row in rows:
        by_prompt[row["problem"]].append(row["completion"])
    assert all(len(c) <= 2 and len(set(c)) == len(c) for c in by_prompt.values())  # at most keep_per_prompt, distinct
    assert run.metrics["accepted_rows"][-1] == len(rows)

    task = text.load_task(path, needs=("prompt",))
    assert len(task.train) + len(task.test) == len(rows)
    sft = api.train("sft", task=str(path), run_dir=tmp_path / "sft", model="builtin", total_steps=2, batch_size=4, eval_size=1,
                    test_size=1, torch_threads=1, quiet=True)
    assert sft.status == "finished" and sft.step == 2
    assert np.isfinite(sft.metrics["loss"]).all()


def test_resume_continues_the_dataset(tmp_path):
    straight = api.train("rejection_sampling", "arithmetic", run_dir=tmp_path / "straight", quiet=True, **SMALL)

    def stop_at_four(loop):
        if loop.step == 4:
            loop.request_stop()

    cut = api.train("rejection_sampling", "arithmetic", run_dir=tmp_path / "cut", quiet=True, callbacks=[stop_at_four], **SMALL)
    assert cut.interrupted and cut.step == 4
    resumed = api.resume(tmp_path / "cut", quiet=True)
    assert resumed.step == 8
    full = (straight.dir / "model" / rejection_sampling.DATASET).read_text(encoding="utf-8")
    assert (resumed.dir / "model" / rejection_sampling.DATASET).read_text(encoding="utf-8") == full
    assert len(read_rows(straight.dir / "model" / rejection_sampling.DATASET)) > 0
    assert np.array_equal(straight.metrics["mean_score"], resumed.metrics["mean_score"])


def test_a_run_has_no_policy_to_load(tmp_path):
    run = api.train("rejection_sampling", "arithmetic", run_dir=tmp_path / "rs", quiet=True, **{**SMALL, "total_steps": 2,
                                                                                              "num_samples": 2})
    with pytest.raises(RLSuiteError, match="has no policy.*dataset.jsonl"):
        api.load(run.dir)
