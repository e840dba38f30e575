"""The DeepSeek-R1 post-training pipeline (arXiv:2501.12948) end to end on the built-in arithmetic
task and the built-in 1.1M-parameter model, on a laptop CPU:

    python examples/r1_pipeline.py                  # the full pipeline, into runs/r1-pipeline (under 30 minutes on 2 cores)
    python examples/r1_pipeline.py --quick          # a few steps per stage: a smoke test (about a minute)
    python examples/r1_pipeline.py --out /tmp/r1    # elsewhere

Stages, each an ordinary rlsuite run whose model the next stage starts from:

    1 sft            cold start: supervised fine-tuning from random weights on worked solutions
    2 grpo           reasoning RL with verifiable rewards (accuracy + format), no reward model
    3 rejection      best-of-n samples of the RL model, only the correct ones kept (a new SFT set)
    4 sft            fine-tuning the RL model on its own accepted samples
    5 reward_model   a Bradley-Terry reward model on the arithmetic preference set
    6 dpo            preference alignment of stage 4's model (the R1 report's last RL stage is
                     "RL for all scenarios"; DPO stands in for it, PPO-RLHF with stage 5's reward
                     model is the alternative: `rlsuite train ppo_rlhf --reward-model RUN`)
    7 distill        the aligned model taught to a 7x smaller student (forward KL on its logits)

Every stage's model is then scored the same way: greedy accuracy on the same 500 held-out
problems of the arithmetic task's test split (the reward model: held-out pairwise accuracy).
The same sequence on the command line is in the README (Language models).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import rlsuite

FULL = {  # about 25 minutes on 2 cores (bench/RESULTS.md has a run's stage times)
    "sft": dict(model="builtin", total_steps=400),
    "grpo": dict(total_steps=900),
    "rejection": dict(total_steps=2000, num_samples=4, batch_size=50),
    "sft_accepted": dict(total_steps=200, learning_rate=1e-4, warmup_steps=0, lr_schedule="constant", batch_size=16),
    "reward_model": dict(total_steps=400),
    "dpo": dict(total_steps=300),
    "distill": dict(model="builtin-small", total_steps=1000),
}
QUICK = {
    "sft": dict(model="builtin", total_steps=4, batch_size=8),
    "grpo": dict(total_steps=2, batch_size=16, num_generations=4),
    "rejection": dict(total_steps=16, num_samples=4, batch_size=8, min_score=0.0),
    "sft_accepted": dict(total_steps=2, batch_size=4, warmup_steps=0),
    "reward_model": dict(total_steps=2, batch_size=4),
    "dpo": dict(total_steps=2, batch_size=4),
    "distill": dict(model="builtin-small", total_steps=2, batch_size=4),
}
COMMON = dict(task="arithmetic", level="mixed")
EVAL_PROBLEMS = {"full": 500, "quick": 16}


def accuracy(model_dir: Path, problems: int) -> float:
    """Greedy accuracy of a saved model on the first `problems` of the arithmetic test split."""
    from rlsuite.core.seeding import setup_torch
    from rlsuite.lm import models, runtime
    from rlsuite.lm.config import LMConfig

    model, tokenizer = models.load_pretrained(model_dir)
    config = dataclasses.replace(LMConfig(**COMMON), test_size=problems, eval_size=problems, device="cpu")
    run = runtime.prepare(config, model, tokenizer, setup_torch(config))
    metrics, _ = runtime.evaluate(run, model, run.task.test, run.test_prompts)
    return metrics["accuracy"]


def main(argv: list[str] | None = None) -> list[tuple[str, str, float]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/r1-pipeline", help="folder for the stages' run directories")
    parser.add_argument("--quick", action="store_true", help="a few steps per stage (a smoke test)")
    ns = parser.parse_args(argv)
    budgets, problems = (QUICK, EVAL_PROBLEMS["quick"]) if ns.quick else (FULL, EVAL_PROBLEMS["full"])
    small = dict(train_size=64, test_size=16, eval_size=16, eval_every=0) if ns.quick else dict(eval_every=0)
    out = Path(ns.out)
    started = time.perf_counter()
    results: list[tuple[str, str, float]] = []

    def stage(name: str, algo: str, **settings) -> Path:
        begun = time.perf_counter()
        run = rlsuite.train(algo, run_dir=out / name, overwrite=True, quiet=True, **{**COMMON, **small, **settings, **budgets[name]})
        print(f"[{time.perf_counter() - started:6.0f} s] {name:<13} {algo:<18} {run.step:>5} {run.unit:<16} "
              f"({time.perf_counter() - begun:.0f} s)  -> {run.dir}", flush=True)
        return run.dir

    def score(name: str, run_dir: Path) -> None:
        value = accuracy(run_dir / "model", problems)
        results.append((name, "accuracy", value))
        print(f"         {name}: held-out accuracy {value:.3f}", flush=True)

    sft = stage("sft", "sft")
    score("sft", sft)
    grpo = stage("grpo", "grpo", model=str(sft / "model"))
    score("grpo", grpo)
    rejection = stage("rejection", "rejection_sampling", model=str(grpo / "model"))
    dataset = rejection / "model" / "dataset.jsonl"
    print(f"         rejection: {sum(1 for _ in dataset.open())} accepted completions in {dataset}", flush=True)
    refined = stage("sft_accepted", "sft", model=str(grpo / "model"), task=str(dataset), eval_size=1, test_size=1)
    score("sft_accepted", refined)
    reward_model = stage("reward_model", "reward_model", model=str(sft / "model"))
    pairwise = rlsuite.open_run(reward_model).evaluations["accuracy"][-1]
    results.append(("reward_model", "pairwise accuracy", float(pairwise)))
    print(f"         reward_model: held-out pairwise accuracy {pairwise:.3f}", flush=True)
    dpo = stage("dpo", "dpo", model=str(refined / "model"))
    score("dpo", dpo)
    distill = stage("distill", "distill", teacher=str(dpo / "model"))
    score("distill", distill)

    print(f"\nR1 pipeline on arithmetic:mixed ({problems} held-out problems), {time.perf_counter() - started:.0f} s in all")
    for name, metric, value in results:
        print(f"  {name:<13} {metric:<18} {value:.3f}")
    return results


if __name__ == "__main__":
    main()
