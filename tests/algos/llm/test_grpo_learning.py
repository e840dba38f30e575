"""GRPO learns: about a minute on the easy arithmetic split raises reward and accuracy (slow tier).

Calibrated on this machine (one torch thread, 150 steps of 8 prompts x 8 completions, ~65 s):
greedy accuracy on the split's training problems 0.655 -> 0.819 (seed 1) and 0.630 -> 0.798
(seed 2); mean training reward over the first and last thirds 0.593 -> 0.708 and 0.630 -> 0.714.
The margins asserted are half of that. Held-out accuracy on the easy split's 62 test problems
moves less (0.48 -> 0.53 and 0.50): generalization is bench/grpo_arithmetic.py's question.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from rlsuite import api  # noqa: E402
from rlsuite.lm import models, runtime  # noqa: E402

STEPS = 150


def greedy_accuracy(model_dir, config):
    """Greedy accuracy on every training problem of the split (the distribution GRPO optimizes)."""
    model, tokenizer = models.load_model(str(model_dir))
    run = runtime.prepare(config, model.eval(), tokenizer, torch.device("cpu"))
    metrics, _ = runtime.evaluate(run, model, run.task.train, run.train_prompts)
    return metrics["accuracy"]


@pytest.mark.slow
def test_grpo_raises_reward_and_accuracy_on_the_easy_split(tmp_path):
    settings = dict(model="builtin-sft", level="easy", train_size=238, test_size=62, eval_size=62, eval_every=0,
                    batch_size=64, total_steps=STEPS, learning_rate=5e-5, torch_threads=1)
    run = api.train("grpo", "arithmetic", run_dir=tmp_path / "run", quiet=True, **settings)
    config = run.config
    before = greedy_accuracy(models.BUILTIN_SFT_DIR, config)
    after = greedy_accuracy(run.dir / "model", config)
    reward = run.metrics["reward"]
    first, last = float(np.mean(reward[:STEPS // 3])), float(np.mean(reward[-STEPS // 3:]))
    print(f"greedy accuracy {before:.3f} -> {after:.3f}; reward {first:.3f} -> {last:.3f}")
    assert last >= first + 0.05, (first, last)
    assert after >= before + 0.08, (before, after)
