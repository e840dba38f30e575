"""Preference learning on the built-in arithmetic task: reward model, DPO and PPO-RLHF targets.

Part `rm`. A Bradley-Terry reward model from the shipped SFT model on the built-in arithmetic
preference set (`arithmetic:mixed`: chosen = the worked solution; rejected = a wrong step, a wrong
final answer or a malformed answer). Held-out pairwise accuracy on 500 test pairs (problems
disjoint from training), overall and per kind of rejected answer. Target: >= 95%.

Part `dpo`. DPO from the SFT model on the same set, twice: pure DPO (sigmoid loss) and DPO with
RPO's NLL term on the chosen answers (`--rpo-alpha 1`). Held-out implicit-reward preference
accuracy (share of test pairs with beta log pi/pi_ref larger for the chosen) and greedy accuracy on
500 held-out problems, against the SFT start. Target: preference accuracy >= 90% and accuracy
above the start.

Part `ppo`. PPO-RLHF from the SFT model with part `rm`'s reward model as the only reward (its
value model starts from the reward model). Target: the mean reward-model score rises while the
per-completion KL to the reference stays under KL_BOUND nats. Curve: bench/figures/ppo_rlhf.png.

    python bench/llm_alignment.py                 # all parts, one after another, alone on the machine
    python bench/llm_alignment.py --part dpo      # one part
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(1, str(BENCH.parent))

from results import append_section  # noqa: E402

TEST = dict(task="arithmetic", level="mixed", test_size=500, eval_size=500)
RM = dict(total_steps=3000, learning_rate=1e-4, batch_size=32, eval_every=500)
DPO = dict(total_steps=600, eval_every=200)
PPO = dict(total_steps=120, batch_size=64, minibatches=2, ppo_epochs=1, kl_coef=0.05, eval_every=0)
KL_BOUND = 5.0
"""Nats per completion: the mean over a rollout of sum_t log pi/pi_ref must stay below this."""


def per_kind_accuracy(run_dir: Path) -> dict[str, float]:
    """Held-out pairwise accuracy of a reward model by the kind of rejected answer."""
    import torch

    from rlsuite.envs import preferences
    from rlsuite.lm import scalar, sequences

    model, tokenizer = scalar.load(run_dir)
    task = preferences.load_preferences("arithmetic", level="mixed", train_size=1, test_size=TEST["test_size"])
    config = argparse.Namespace(max_prompt_length=128, max_completion_length=48)
    pairs = sequences.encode_pairs(tokenizer, task.test, config)
    hits = defaultdict(list)
    with torch.no_grad():
        for start in range(0, len(pairs), 100):
            batch = sequences.collate_pairs(pairs[start:start + 100], tokenizer.pad_token_id, "cpu")
            scores = scalar.sequence_scores(model, batch.input_ids, batch.attention_mask)
            half = len(scores) // 2
            for row, chosen, rejected in zip(task.test[start:start + 100], scores[:half], scores[half:]):
                hits[row["rejected_kind"]].append(float(chosen > rejected))
    return {kind: sum(v) / len(v) for kind, v in sorted(hits.items())}


def likelihood_ranking() -> dict[str, float]:
    """What the starting model knows: the share of test pairs whose chosen answer the SFT model
    itself finds likelier (sum of token log-probs), by kind. The reward model starts from it."""
    import torch

    from rlsuite.envs import preferences
    from rlsuite.lm import models, sequences

    model, tokenizer = models.load_model("builtin-sft")
    task = preferences.load_preferences("arithmetic", level="mixed", train_size=1, test_size=TEST["test_size"])
    pairs = sequences.encode_pairs(tokenizer, task.test, argparse.Namespace(max_prompt_length=128, max_completion_length=48))
    hits = defaultdict(list)
    with torch.no_grad():
        for start in range(0, len(pairs), 100):
            logp = sequences.sequence_logprobs(model, sequences.collate_pairs(pairs[start:start + 100], tokenizer.pad_token_id, "cpu"))
            half = len(logp) // 2
            for row, chosen, rejected in zip(task.test[start:start + 100], logp[:half], logp[half:]):
                hits[row["rejected_kind"]].append(float(chosen > rejected))
                hits["all"].append(float(chosen > rejected))
    return {kind: sum(v) / len(v) for kind, v in sorted(hits.items())}


def part_rm(root: Path, reuse: bool) -> list[str]:
    import rlsuite

    started = time.perf_counter()
    previous = root / "rm"
    if reuse and previous.is_dir() and rlsuite.open_run(previous).status == "finished":
        run, how = rlsuite.open_run(previous), "trained by an earlier invocation with these settings"
    else:
        run = rlsuite.train("reward_model", run_dir=previous, overwrite=True, quiet=True, **TEST, **RM)
        how = f"{time.perf_counter() - started:.0f} s"
    accuracy = float(run.evaluations["accuracy"][-1])
    kinds = per_kind_accuracy(run.dir)
    reference = likelihood_ranking()
    return [
        f"- Reward model, {run.step} steps x {RM['batch_size']} pairs, lr {RM['learning_rate']:g}, {how}: "
        f"held-out pairwise accuracy **{accuracy:.3f}** (target 0.95: **{'MET' if accuracy >= 0.95 else 'MISSED'}**); by kind: "
        + ", ".join(f"{k} {v:.3f}" for k, v in kinds.items())
        + f". For reference, the SFT model it starts from ranks {reference['all']:.3f} of the pairs right by its own likelihood ("
        + ", ".join(f"{k} {v:.3f}" for k, v in reference.items() if k != "all") + ").",
    ]


def part_dpo(root: Path, reuse: bool) -> list[str]:
    import rlsuite

    lines = []
    for name, extra in (("dpo", {"rpo_alpha": 0.0}), ("dpo_rpo", {"rpo_alpha": 1.0})):
        started = time.perf_counter()
        run = rlsuite.train("dpo", run_dir=root / name, overwrite=True, quiet=True, **TEST, **DPO, **extra)
        evals = run.evaluations
        start, end, preference = float(evals["accuracy"][0]), float(evals["accuracy"][-1]), float(evals["preference_accuracy"][-1])
        met = preference >= 0.90 and end > start
        lines.append(f"- DPO{' + RPO NLL (alpha 1)' if extra['rpo_alpha'] else ' (sigmoid, pure)'}, {run.step} steps x 16 pairs, {time.perf_counter() - started:.0f} s: "
                     f"held-out preference accuracy **{preference:.3f}**, greedy accuracy {start:.3f} -> **{end:.3f}** "
                     f"({(end - start) * 100:+.1f} points); target (>= 0.90 and above the start): **{'MET' if met else 'MISSED'}**")
    return lines


def part_ppo(root: Path, reuse: bool) -> list[str]:
    import numpy as np

    import rlsuite

    if not (root / "rm" / "model").is_dir():
        return ["- PPO-RLHF not run: it needs part rm's reward model (run --part rm first)."]
    started = time.perf_counter()
    run = rlsuite.train("ppo_rlhf", run_dir=root / "ppo", overwrite=True, quiet=True, reward_model=str(root / "rm"), **TEST, **PPO)
    metrics = run.metrics
    keep = ~np.isnan(metrics["score"])
    steps, score, kl = metrics["step"][keep], metrics["score"][keep], metrics["kl"][keep]
    window = max(1, len(score) // 5)
    first, last = float(np.mean(score[:window])), float(np.mean(score[-window:]))
    met = last > first and float(np.max(kl)) < KL_BOUND
    draw(steps, score, kl)
    return [f"- PPO-RLHF with the reward model, {run.step} optimizer steps ({len(score)} rollouts of {PPO['batch_size']}), "
            f"kl_coef {PPO['kl_coef']}, {time.perf_counter() - started:.0f} s: mean score (first fifth of rollouts -> last fifth) "
            f"{first:.3f} -> **{last:.3f}**, KL per completion max **{float(np.max(kl)):.3f}** nats, last {float(kl[-1]):.3f} "
            f"(bound {KL_BOUND:g}); target: **{'MET' if met else 'MISSED'}**. Curve: bench/figures/ppo_rlhf.png"]


def draw(steps, score, kl) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, left = plt.subplots(figsize=(7, 4))
    left.plot(steps, score, color="tab:blue")
    left.set_xlabel("optimizer step")
    left.set_ylabel("reward-model score (rollout mean)", color="tab:blue")
    right = left.twinx()
    right.plot(steps, kl, color="tab:red")
    right.axhline(KL_BOUND, color="tab:red", linestyle=":")
    right.set_ylabel("KL to reference per completion (nats)", color="tab:red")
    left.set_title("PPO-RLHF on arithmetic with a Bradley-Terry reward model")
    fig.tight_layout()
    (BENCH / "figures").mkdir(exist_ok=True)
    fig.savefig(BENCH / "figures" / "ppo_rlhf.png", dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", default="all", help="rm, dpo, ppo, a comma-separated list of them, or all")
    parser.add_argument("--reuse-rm", action="store_true", help="report part rm from its finished run in --root instead of training it again")
    parser.add_argument("--root", default="/tmp/rlsuite-bench-alignment", help="where the runs go")
    parser.add_argument("--no-write", action="store_true", help="print, but do not append to bench/RESULTS.md")
    args = parser.parse_args()
    root = Path(args.root)
    parts = {"rm": part_rm, "dpo": part_dpo, "ppo": part_ppo}
    lines = []
    chosen = list(parts) if args.part == "all" else args.part.split(",")
    unknown = [name for name in chosen if name not in parts]
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(parts)} or all")
    for name in chosen:
        lines += parts[name](root, args.reuse_rm)
        print(lines[-1], flush=True)
    from rlsuite.lm.models import count_parameters, load_model

    body = "\n".join([f"Built-in model ({count_parameters(load_model('builtin-sft')[0]):,} parameters) from its shipped SFT weights, "
                      f"`arithmetic:mixed`, 500 held-out pairs / problems; one run at a time, torch's default threads.", "", *lines])
    print(body)
    if not args.no_write:
        append_section("`bench/llm_alignment.py`, reward model, DPO and PPO-RLHF on built-in arithmetic", body)


if __name__ == "__main__":
    main()
