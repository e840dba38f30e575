"""Seconds per GRPO optimizer step on CPU: rlsuite's `grpo` against TRL's `GRPOTrainer`.

Both libraries train the same saved model directory on the same prompts, with one torch thread
(`torch.set_num_threads(1)`, OMP/MKL threads 1), float32 on the CPU. Two cases:

- tiny: a ~140k-parameter random Qwen2 (hidden 64, 2 layers, 4 heads, 2 KV heads, tied embeddings,
  the built-in byte-level tokenizer's 263-token vocabulary), 2 prompts x 4 generations x 16
  completion tokens per step;
- builtin: rlsuite's shipped built-in SFT model (`rlsuite/lm/builtin_sft`, ~1.1M parameters),
  8 prompts x 8 generations x 64 completion tokens per step.

Prompts are the arithmetic task (level medium, seed 1, 2,000 training rows) as conversations
`[{"role": "user", "content": problem}]`, no system prompt (rlsuite's `system_prompt="auto"` for
the built-in tokenizer), formatted by the model's chat template. Rewards: rlsuite's `accuracy` and
`format` functions (`rlsuite.ops.rewards.make_reward`), weights 1.0 and 0.1, in both libraries.
Settings held equal: G, prompts per step, max completion length, temperature 1.0, top_p 1.0 (no
top-k), EOS `<|im_end|>` and pad `<|endoftext|>`, beta 0 (no reference model), one iteration per
generation batch (mu = 1), one optimizer step per generation batch, no gradient accumulation, the
per-sequence-mean "grpo" loss (TRL's default is "dapo"; set to "grpo"), group-std reward scaling,
epsilon 0.2, AdamW lr 1e-5 with a constant schedule (TRL's default is linear decay), weight decay 0,
gradient clipping at norm 1.0, seed 1; TRL with gradient checkpointing off (TRL's default is on,
which recomputes the forward in the backward; rlsuite does not checkpoint), vLLM off,
`log_completions` off, no evaluation, no saving, no progress printing (its PrinterCallback is
removed), logging every step (`logging_steps=1`, as rlsuite's `log_every=1`).

What each library does per optimizer step:
- both: draw the step's prompts, sample G completions per prompt with the policy itself and a KV
  cache (rlsuite: `rlsuite.ops.lm.sample`, its own decoding loop; TRL: `model.generate` of
  transformers), decode them, score them with the two reward functions, group-relative
  advantages, one forward + backward of the policy over prompt + completion for the per-token
  log-probabilities, gradient-norm clipping, one AdamW step, step metrics. Neither runs a
  separate no-grad "old log-prob" forward (with mu = 1 both use the detached log-probs).
- TRL also: re-tokenizes the conversational prompts with the chat template every step (rlsuite
  tokenizes them once at start-up), computes the per-token entropy in the training forward (for
  its `entropy` metric; not switchable off) and its log-probs through its fused, tiled LM head,
  gathers metrics through Accelerate, and runs the `transformers.Trainer` loop (data loader,
  callbacks, log history). Its optimizer is transformers' default `adamw_torch_fused`; rlsuite's
  is `torch.optim.AdamW` with defaults.
- rlsuite also: writes each step's metrics to its run directory (metrics.csv).

Timing: each library runs in its own subprocess per case (so neither warms caches or allocator
state for the other), the order alternating between cases (tiny: TRL first; builtin: rlsuite
first). In each process a callback after every optimizer step takes a `time.perf_counter()`
stamp (rlsuite: `api.train(callbacks=[...])`; TRL: a `TrainerCallback.on_step_end`); a step's time
is the difference of consecutive stamps, so it includes everything the loop does between two
optimizer steps. The first W (default 3) steps are warm-up and dropped; the figure is the median
of the next N (default 20), with p10 and p90. rlsuite's final evaluation (eval_every=0) and its
end-of-run checkpoint and export come after the last stamp and are not timed. "generation share"
is the time inside the sampling call (rlsuite: `rlsuite.ops.lm.sample`; TRL: the model's
`generate`), summed over the timed steps, over the timed steps' total. "completion tokens" is
the mean completion length (EOS included): both sample with their own RNG, so completions, and
the work they cost, can differ; with a random model most completions run to the length limit.

Target: rlsuite's median seconds per step at most 0.5x TRL's in both cases.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
TARGET_RATIO = 0.5
LIBRARIES = ("trl", "rlsuite")

TASK = dict(level="medium", train_size=2000, test_size=8, seed=1)
LEARNING_RATE = 1e-5
REWARDS = ("accuracy", "format")
REWARD_WEIGHTS = (1.0, 0.1)

TINY_SHAPE = dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=512, rope_theta=10_000.0, tie_word_embeddings=True)
CASES = {
    "tiny": dict(prompts=2, generations=4, completion=16, order=("trl", "rlsuite")),
    "builtin": dict(prompts=8, generations=8, completion=64, order=("rlsuite", "trl")),
}

# Benchmark the working tree, not whatever copy of rlsuite happens to be installed.
if str(REPO) not in sys.path:
    sys.path.insert(1, str(REPO))


# --------------------------------------------------------------------------- the two workers


def train_rows() -> list[dict]:
    from rlsuite.envs import text

    task = text.load_task("arithmetic", system_prompt=None, **TASK)
    return [{"prompt": row["prompt"], "solution": row["solution"]} for row in task.train]


def run_rlsuite(model_dir: str, case: dict, warmup: int, steps: int, work: Path) -> dict:
    import torch

    from rlsuite import api
    from rlsuite.ops import lm

    stamps, generation, lengths, threads = [], [], [], []
    in_generation = [0.0]
    sample = lm.sample  # rlsuite.lm.generation calls it as lm.sample, so the wrapper is seen

    def timed_sample(*args, **kwargs):
        start = time.perf_counter()
        out = sample(*args, **kwargs)
        in_generation[0] += time.perf_counter() - start
        lengths.append(out.mask.sum(1).float().mean().item())
        return out

    def on_step(loop) -> None:
        stamps.append(time.perf_counter())
        generation.append(in_generation[0])
        in_generation[0] = 0.0
        threads.append(torch.get_num_threads())

    lm.sample = timed_sample
    G = case["generations"]
    api.train("grpo", "arithmetic", run_dir=work / "rl", overwrite=True, quiet=True, callbacks=[on_step],
              model=model_dir, level=TASK["level"], train_size=TASK["train_size"], test_size=TASK["test_size"],
              seed=TASK["seed"], batch_size=G * case["prompts"], num_generations=G,
              max_completion_length=case["completion"], total_steps=warmup + steps, eval_every=0, eval_size=8,
              learning_rate=LEARNING_RATE, beta=0.0, temperature=1.0, top_p=1.0, loss_type="grpo",
              scale_rewards="group", num_iterations=1, minibatches=1, max_grad_norm=1.0, rewards=REWARDS,
              reward_weights=REWARD_WEIGHTS, generator="torch", device="cpu", dtype="float32", torch_threads=1,
              checkpoint_minutes=1000, log_completions=0)
    return dict(stamps=stamps, generation=generation, lengths=lengths[:len(stamps)], threads=threads)


def run_trl(model_dir: str, case: dict, warmup: int, steps: int, work: Path) -> dict:
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from rlsuite.ops.rewards import make_reward

    stamps, generation, lengths, threads = [], [], [], []
    in_generation = [0.0]

    class Stamp(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            stamps.append(time.perf_counter())
            generation.append(in_generation[0])
            in_generation[0] = 0.0
            threads.append(torch.get_num_threads())

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    G = case["generations"]
    args = GRPOConfig(
        output_dir=str(work / "trl"), per_device_train_batch_size=G * case["prompts"], num_generations=G,
        steps_per_generation=1, gradient_accumulation_steps=1, num_iterations=1,
        max_completion_length=case["completion"], temperature=1.0, top_p=1.0, top_k=0, beta=0.0,
        loss_type="grpo", scale_rewards="group", epsilon=0.2, reward_weights=list(REWARD_WEIGHTS),
        learning_rate=LEARNING_RATE, lr_scheduler_type="constant", weight_decay=0.0, max_grad_norm=1.0,
        max_steps=warmup + steps, use_cpu=True, bf16=False, fp16=False, activation_checkpointing=False,
        report_to="none", save_strategy="no", eval_strategy="no", logging_steps=1, disable_tqdm=True,
        use_vllm=False, dataloader_num_workers=0, seed=TASK["seed"], log_completions=False,
    )
    trainer = GRPOTrainer(model=model, processing_class=tokenizer,
                          reward_funcs=[make_reward(name) for name in REWARDS], args=args,
                          train_dataset=datasets.Dataset.from_list(train_rows()), callbacks=[Stamp()])
    trainer.remove_callback(PrinterCallback)
    checkpointing = getattr(type(trainer.model), "is_activation_checkpointing", None)  # transformers >= 5.24's name
    checkpointing = trainer.model.is_activation_checkpointing if checkpointing is not None else trainer.model.is_gradient_checkpointing
    assert not checkpointing, "TRL's gradient checkpointing should be off"
    eos = torch.tensor(trainer.eos_token_ids)
    generate = trainer.model.generate  # TRL calls the unwrapped model's generate: the same object on one CPU
    widths: list[int] = []  # tokens per forward call during the first generate (a warm-up step)

    def timed_generate(*a, **kw):
        hook = None
        if not widths:
            hook = trainer.model.get_input_embeddings().register_forward_hook(lambda m, i, o: widths.append(i[0].shape[1]))
        start = time.perf_counter()
        out = generate(*a, **kw)
        in_generation[0] += time.perf_counter() - start
        if hook is not None:
            hook.remove()
            # With a KV cache every forward after the prompt's takes one new token.
            assert len(widths) > 1 and set(widths[1:]) == {1}, f"TRL's generate did not use a KV cache: {widths}"
        completion = out[:, kw["input_ids"].shape[1]:]
        is_eos = torch.isin(completion, eos)
        first = torch.where(is_eos.any(1), is_eos.int().argmax(1) + 1, completion.shape[1])
        lengths.append(first.float().mean().item())
        return out

    trainer.model.generate = timed_generate
    trainer.train()
    return dict(stamps=stamps, generation=generation, lengths=lengths[:len(stamps)], threads=threads,
                eos_token_ids=list(trainer.eos_token_ids))


def worker(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(1)
    case = CASES[args.case]
    with tempfile.TemporaryDirectory(prefix=f"grpo-{args.worker}-") as tmp:
        run = run_rlsuite if args.worker == "rlsuite" else run_trl
        record = run(args.model_dir, case, args.warmup, args.steps, Path(tmp))
    Path(args.result).write_text(json.dumps(record))


# --------------------------------------------------------------------------- the parent


def make_tiny_model(directory: Path) -> int:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from rlsuite.lm import models

    tokenizer = models.build_tokenizer()
    config = Qwen2Config(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id, bos_token_id=None, **TINY_SHAPE)
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return models.count_parameters(model)


def count_parameters(directory: Path) -> int:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32, local_files_only=True)
    return sum(p.numel() for p in model.parameters())


def run_worker(library: str, case: str, model_dir: Path, args: argparse.Namespace, tmp: Path) -> dict:
    result = tmp / f"{case}-{library}.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", library, "--case", case,
               "--model-dir", str(model_dir), "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--result", str(result)]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-5000:] + done.stderr[-10000:])
        raise SystemExit(f"the {library} worker for case {case} failed (exit {done.returncode}); its output is above.")
    record = json.loads(result.read_text())
    record.update(summarize(record, args.warmup, args.steps), wall=time.perf_counter() - start)
    print(f"  {case:>7} {library:>7}: median {record['median']:.3f} s/step over {len(record['steps'])} steps "
          f"({record['wall']:.0f} s in all)", flush=True)
    return record


def summarize(record: dict, warmup: int, steps: int) -> dict:
    stamps = record["stamps"]
    if len(stamps) != warmup + steps:
        raise SystemExit(f"expected {warmup + steps} step stamps, got {len(stamps)}")
    # stamps[k] is taken after step k + 1; step j's time is stamps[j - 1] - stamps[j - 2].
    times = [b - a for a, b in zip(stamps[warmup - 1:-1], stamps[warmup:])]
    generation = record["generation"][warmup:]
    lengths = record["lengths"][warmup:]
    q = statistics.quantiles(times, n=10, method="inclusive") if len(times) > 1 else [times[0]] * 9
    return dict(steps=times, median=statistics.median(times), p10=q[0], p90=q[-1],
                generation_share=sum(generation) / sum(times) if sum(generation) > 0 else None,
                completion_tokens=statistics.fmean(lengths) if lengths else None,
                threads=sorted(set(record["threads"])))


def versions() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout.strip()
        commit += " (uncommitted changes)" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "no commit yet"
    v = importlib.metadata.version
    return (f"rlsuite {commit}; TRL {v('trl')}; transformers {v('transformers')}; torch {v('torch')}; "
            f"1 torch thread, CPU, float32")


def case_table(name: str, case: dict, parameters: int, records: dict[str, dict], warmup: int, steps: int) -> list[str]:
    per_step = case["prompts"] * case["generations"]
    lines = [f"### {name}: {parameters:,} parameters, {case['prompts']} prompts x {case['generations']} generations "
             f"= {per_step} completions of at most {case['completion']} tokens per step; median of {steps} steps after {warmup} warm-up",
             "",
             "| library | s/step median | p10 | p90 | generation share | completion tokens (mean) |",
             "|---|---|---|---|---|---|"]
    for library in LIBRARIES:
        r = records[library]
        share = "n/a" if r["generation_share"] is None else f"{100 * r['generation_share']:.0f}%"
        tokens = "n/a" if r["completion_tokens"] is None else f"{r['completion_tokens']:.1f}"
        lines.append(f"| {library} | {r['median']:.3f} | {r['p10']:.3f} | {r['p90']:.3f} | {share} | {tokens} |")
    ratio = records["rlsuite"]["median"] / records["trl"]["median"]
    lines.append(f"| **rlsuite/TRL** | {ratio:.2f}x | | | | |")
    for library in LIBRARIES:
        if records[library]["threads"] != [1]:
            lines.append(f"\nwarning: {library} ran with torch threads {records[library]['threads']}, not 1")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20, help="timed optimizer steps per library and case (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed warm-up steps before them (default 3, at least 1)")
    parser.add_argument("--cases", nargs="+", choices=tuple(CASES), default=list(CASES))
    parser.add_argument("--no-write", action="store_true", help="print only; do not append to bench/RESULTS.md")
    parser.add_argument("--worker", choices=LIBRARIES, help=argparse.SUPPRESS)
    parser.add_argument("--case", choices=tuple(CASES), help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.warmup < 1 or args.steps < 1:
        parser.error("--warmup and --steps must be >= 1 (a step's time is measured from the previous step's end)")
    if args.worker:
        worker(args)
        return

    from rlsuite.lm import models

    print(versions())
    sections = []
    verdicts = []
    with tempfile.TemporaryDirectory(prefix="grpo-vs-trl-") as tmp_name:
        tmp = Path(tmp_name)
        for name in args.cases:
            case = CASES[name]
            if name == "tiny":
                model_dir = tmp / "tiny-model"
                parameters = make_tiny_model(model_dir)
            else:
                model_dir = models.BUILTIN_SFT_DIR
                parameters = count_parameters(model_dir)
            print(f"{name}: {parameters:,} parameters ({model_dir})", flush=True)
            records = {library: run_worker(library, name, model_dir, args, tmp) for library in case["order"]}
            sections.append("\n".join(case_table(name, case, parameters, records, args.warmup, args.steps)))
            ratio = records["rlsuite"]["median"] / records["trl"]["median"]
            verdicts.append(f"- {name}: rlsuite s/step <= {TARGET_RATIO}x TRL's: **{'MET' if ratio <= TARGET_RATIO else 'MISSED'}** "
                            f"({ratio:.2f}x: {records['rlsuite']['median']:.3f} s vs {records['trl']['median']:.3f} s)")
    order = "; ".join(f"{name}: {' then '.join(CASES[name]['order'])}" for name in args.cases)
    text = "\n\n".join([
        versions(),
        *sections,
        "\n".join(verdicts),
        f"Each library in its own subprocess per case ({order}). Not matched: the sampling RNG streams (completions "
        "and their lengths differ; see the completion tokens column), the prompt order (each library shuffles the same "
        "2,000 rows itself), TRL's per-token entropy and chat-template tokenization every step, and the AdamW "
        "implementation (TRL: adamw_torch_fused; rlsuite: torch.optim.AdamW).",
    ])
    print()
    print(text)
    if not args.no_write:
        from results import append_section

        standard = (args.steps, args.warmup, sorted(args.cases)) == (20, 3, sorted(CASES))
        flag = "" if standard else " (reduced run: not the standard 20 steps after 3 warm-up, both cases)"
        append_section(f"`bench/grpo_vs_trl.py`, GRPO seconds per optimizer step vs TRL{flag}", text)


if __name__ == "__main__":
    main()
