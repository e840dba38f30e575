"""Seconds per DPO optimizer step on CPU: rlsuite's `dpo` against TRL's `DPOTrainer`, one torch thread.

Cases (same saved model directory and pairs in both, float32, 8 pairs per step): tiny, the ~140k-parameter
random Qwen2 of grpo_vs_trl.py; builtin, the shipped SFT model (~1.1M). Data: the built-in arithmetic
preference set (mixed, seed 1), kept to pairs neither library truncates: prompt <= 38 tokens and
completion + EOS <= 26 (rlsuite's max_prompt_length + max_completion_length = 64), prompt + completion +
EOS + 1 <= 64 (TRL's max_length; its chat template adds a newline after EOS). rlsuite reads them as a
local preference file, TRL as a conversational `datasets.Dataset` (chosen/rejected as assistant messages).
Held equal: sigmoid loss, beta 0.1, AdamW lr 1e-5 constant, weight decay 0, clipping at 1.0, no gradient
accumulation, no evaluation, saving or metric logging during the run (TRL logging_steps, rlsuite
log_every 10^6); TRL with activation checkpointing and bf16 off (its defaults: on), report_to none, no
PrinterCallback; left at its defaults padding-free off and `precompute_ref_log_probs=False`, i.e. a frozen
reference model's forward every step (`--trl-precompute` for the other). rlsuite caches a pair's
reference log-probs from its first visit: first-epoch steps run the reference forward, later ones do not.
The training set is warm-up + half the timed steps, so the timed steps split into first-epoch and
later-epoch ones, reported apart. TRL also computes per-token entropy, mean logits and top-1 for its
metrics (fused LM head) and uses `adamw_torch_fused`.
Timing as grpo_vs_trl.py: a subprocess per library and case (tiny: TRL first; builtin: rlsuite first),
a `time.perf_counter()` stamp after each optimizer step (rlsuite: `api.train` callbacks; TRL:
`on_step_end`), a step's time the gap between stamps, warm-up dropped. Target: rlsuite <= 0.5x TRL's.
"""

from __future__ import annotations

import argparse
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
sys.path.insert(0, str(BENCH_DIR))  # grpo_vs_trl's helpers; importing it puts the working tree's rlsuite first

from grpo_vs_trl import TARGET_RATIO, count_parameters, make_tiny_model, versions  # noqa: E402

LIBRARIES = ("trl", "rlsuite")
PAIRS, MAX_LENGTH, MAX_PROMPT, MAX_COMPLETION = 8, 64, 38, 26
LEARNING_RATE, BETA, SEED, POOL = 1e-5, 0.1, 1, 2000
CASES = {"tiny": ("trl", "rlsuite"), "builtin": ("rlsuite", "trl")}


def run_rlsuite(model_dir: str, data: Path, args: argparse.Namespace, work: Path) -> dict:
    import torch

    from rlsuite import api
    from rlsuite.algos.llm import dpo

    stamps, fresh, widths, threads, longest, pending, seen = [], [], [], [], [0], [0], set()
    call, step = dpo.ReferenceLogprobs.__call__, dpo.dpo_step

    def counting_call(self, indices):  # how many pairs' reference log-probs each step computes
        before = len(self.cache)
        out = call(self, indices)
        pending[0] += len(self.cache) - before
        if id(self.pairs) not in seen:  # once per pair set (train, test), so not timed after the first step
            seen.add(id(self.pairs))
            longest[0] = max(longest[0], *(len(p) + max(len(c), len(r)) for p, c, r in self.pairs))
        return out

    def width_step(config, model, optimizer, batch, ref_logp):
        widths.append(batch.input_ids.shape[1])
        return step(config, model, optimizer, batch, ref_logp)

    def on_step(loop) -> None:
        stamps.append(time.perf_counter())
        fresh.append(pending[0])
        threads.append(torch.get_num_threads())
        pending[0] = 0

    dpo.ReferenceLogprobs.__call__, dpo.dpo_step = counting_call, width_step
    api.train("dpo", str(data), run_dir=work / "rl", overwrite=True, quiet=True, callbacks=[on_step], model=model_dir,
              train_size=PAIRS * args.epoch_steps, test_size=8, eval_size=8, eval_every=0, seed=SEED,
              batch_size=PAIRS, learning_rate=LEARNING_RATE, beta=BETA, loss_type="sigmoid", max_grad_norm=1.0,
              max_prompt_length=MAX_PROMPT, max_completion_length=MAX_COMPLETION, total_steps=args.warmup + args.steps,
              device="cpu", dtype="float32", torch_threads=1, checkpoint_minutes=1000, log_every=10**6, log_completions=0)
    return dict(stamps=stamps, fresh=fresh, widths=widths, threads=threads, longest=longest[0],
                reference="cached per pair after its first visit")


def run_trl(model_dir: str, data: Path, args: argparse.Namespace, work: Path) -> dict:
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    stamps, widths, threads = [], [], []

    class Stamp(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            stamps.append(time.perf_counter())
            threads.append(torch.get_num_threads())

    rows = [json.loads(line) for line in (data / "train.jsonl").read_text().splitlines()]
    dataset = datasets.Dataset.from_list([{"prompt": r["prompt"], **{k: [{"role": "assistant", "content": r[k]}]
                                           for k in ("chosen", "rejected")}} for r in rows])
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    config = DPOConfig(
        output_dir=str(work / "trl"), per_device_train_batch_size=PAIRS, gradient_accumulation_steps=1,
        max_length=MAX_LENGTH, loss_type=["sigmoid"], beta=BETA, learning_rate=LEARNING_RATE,
        lr_scheduler_type="constant", weight_decay=0.0, max_grad_norm=1.0, max_steps=args.warmup + args.steps,
        use_cpu=True, bf16=False, fp16=False, activation_checkpointing=False, report_to="none", save_strategy="no",
        eval_strategy="no", logging_steps=10**6, disable_tqdm=True, dataloader_num_workers=0, seed=SEED,
        precompute_ref_log_probs=args.trl_precompute)
    trainer = DPOTrainer(model=model, args=config, processing_class=tokenizer, train_dataset=dataset, callbacks=[Stamp()])
    trainer.remove_callback(PrinterCallback)
    checkpointing = getattr(type(trainer.model), "is_activation_checkpointing", None)  # transformers >= 5.24's name
    checkpointing = trainer.model.is_activation_checkpointing if checkpointing is not None else trainer.model.is_gradient_checkpointing
    assert not checkpointing, "TRL's activation checkpointing should be off"
    ds = trainer.train_dataset
    assert len(ds) == len(rows), f"TRL dropped {len(rows) - len(ds)} rows"
    compute_loss = trainer.compute_loss

    def width_loss(model, inputs, *a, **kw):
        widths.append(inputs["input_ids"].shape[1])
        return compute_loss(model, inputs, *a, **kw)

    trainer.compute_loss = width_loss
    trainer.train()
    assert not trainer.padding_free
    return dict(stamps=stamps, widths=widths, threads=threads,
                longest=max(len(p) + max(len(c), len(r)) for p, c, r in zip(ds["prompt_ids"], ds["chosen_ids"], ds["rejected_ids"])),
                reference="precomputed before training" if trainer.precompute_ref_logps else "reference-model forward every step")


def make_data(directory: Path, train_pairs: int, tokenizer) -> dict:
    """The arithmetic pairs that fit both libraries untruncated, as train.jsonl / test.jsonl."""
    from rlsuite.envs.preferences import load_preferences
    from rlsuite.lm import runtime

    task = load_preferences("arithmetic", level="mixed", train_size=POOL, test_size=64, seed=SEED)
    size = lambda s: len(tokenizer(s, add_special_tokens=False)["input_ids"])  # noqa: E731
    lengths = lambda r: (size(runtime.prompt_text(tokenizer, r)), 1 + max(size(r["chosen"]), size(r["rejected"])))  # noqa: E731
    fits = lambda p, c: p <= MAX_PROMPT and c <= MAX_COMPLETION and p + c + 1 <= MAX_LENGTH  # noqa: E731
    kept = {split: [r for r in rows if fits(*lengths(r))] for split, rows in (("train", task.train), ("test", task.test))}
    if len(kept["train"]) < train_pairs:
        raise SystemExit(f"only {len(kept['train'])} of {POOL} pairs fit {MAX_LENGTH} tokens; {train_pairs} needed: fewer --steps")
    directory.mkdir(parents=True)
    for split, n in (("train", train_pairs), ("test", 8)):
        (directory / f"{split}.jsonl").write_text("".join(json.dumps({k: r[k] for k in ("prompt", "chosen", "rejected")}) + "\n"
                                                          for r in kept[split][:n]))
    return dict(kept=len(kept["train"]), longest=max(sum(lengths(r)) for r in kept["train"][:train_pairs]))


def run_worker(library: str, case: str, model_dir: Path, data: Path, args: argparse.Namespace, tmp: Path) -> dict:
    result = tmp / f"{case}-{library}.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", library, "--model-dir", str(model_dir),
               "--data", str(data), "--steps", str(args.steps), "--warmup", str(args.warmup), "--result", str(result)]
    done = subprocess.run(command + ["--trl-precompute"] * args.trl_precompute, cwd=tmp, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-5000:] + done.stderr[-10000:])
        raise SystemExit(f"the {library} worker for case {case} failed (exit {done.returncode}); its output is above.")
    record = json.loads(result.read_text())
    if len(record["stamps"]) != args.warmup + args.steps:
        raise SystemExit(f"{library}: expected {args.warmup + args.steps} step stamps, got {len(record['stamps'])}")
    s, w = record["stamps"], args.warmup  # s[k] is taken after step k + 1
    record["times"] = [b - a for a, b in zip(s[w - 1:-1], s[w:])]  # steps w + 1 .. w + steps
    record["first"] = [t for j, t in enumerate(record["times"], w + 1) if j <= args.epoch_steps]
    record["later"] = [t for j, t in enumerate(record["times"], w + 1) if j > args.epoch_steps]
    if "fresh" in record:  # rlsuite: exactly the first epoch's steps computed reference log-probs
        computed = [n > 0 for n in record["fresh"][w:]]
        assert computed == [j <= args.epoch_steps for j in range(w + 1, w + args.steps + 1)], record["fresh"]
    record.update(first_median=statistics.median(record["first"]), later_median=statistics.median(record["later"]))
    print(f"  {case:>7} {library:>7}: first epoch {record['first_median']:.4f} s/step ({len(record['first'])} steps), "
          f"later {record['later_median']:.4f} ({len(record['later'])}); {record['reference']}", flush=True)
    return record


def case_table(name: str, parameters: int, records: dict, args: argparse.Namespace, data: dict) -> tuple[str, list[str]]:
    lines = [f"### {name}: {parameters:,} parameters, {PAIRS} pairs per step, {data['train_pairs']} training pairs "
             f"({args.epoch_steps} steps per epoch), {args.steps} timed steps after {args.warmup} warm-up; longest pair "
             f"{data['longest']} tokens (rlsuite {records['rlsuite']['longest']}, TRL {records['trl']['longest']} with its "
             f"template newline; limit {MAX_LENGTH})", "",
             "| library | reference log-probs | s/step first epoch (median) | s/step later epochs (median) | p10 / p90 all | padded tokens per row |",
             "|---|---|---|---|---|---|"]
    for library in LIBRARIES:
        r = records[library]
        q = statistics.quantiles(r["times"], n=10, method="inclusive")
        lines.append(f"| {library} | {r['reference']} | {r['first_median']:.4f} ({len(r['first'])}) | "
                     f"{r['later_median']:.4f} ({len(r['later'])}) | {q[0]:.4f} / {q[-1]:.4f} | {statistics.fmean(r['widths']):.1f} |")
    ratios = [records["rlsuite"][k] / records["trl"][k] for k in ("first_median", "later_median")]
    lines.append(f"| **rlsuite/TRL** | | {ratios[0]:.2f}x | {ratios[1]:.2f}x | | |")
    lines += [f"\nwarning: {lib} ran with torch threads {sorted(set(records[lib]['threads']))}, not 1"
              for lib in LIBRARIES if set(records[lib]["threads"]) != {1}]
    verdicts = [f"- {name}, {phase}: rlsuite s/step <= {TARGET_RATIO}x TRL's: **{'MET' if ratio <= TARGET_RATIO else 'MISSED'}** ({ratio:.2f}x)"
                for phase, ratio in zip(("first epoch (both run the reference forward)", "later epochs (rlsuite's reference cached)"), ratios)]
    return "\n".join(lines), verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20, help="timed optimizer steps per library and case (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed warm-up steps before them (default 3, at least 1)")
    parser.add_argument("--quick", action="store_true", help="a check of the harness: 6 timed steps after 2 warm-up")
    parser.add_argument("--cases", nargs="+", choices=tuple(CASES), default=list(CASES))
    parser.add_argument("--trl-precompute", action="store_true", help="TRL with precompute_ref_log_probs=True (not its default)")
    parser.add_argument("--no-write", action="store_true", help="print only; do not append to bench/RESULTS.md")
    parser.add_argument("--worker", choices=LIBRARIES, help=argparse.SUPPRESS)
    for hidden in ("--model-dir", "--data", "--result"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.steps, args.warmup = 6, 2
    if args.warmup < 1 or args.steps < 2:
        parser.error("--warmup must be >= 1 and --steps >= 2 (a step's time is measured from the previous step's end)")
    args.epoch_steps = args.warmup + args.steps // 2  # first epoch: warm-up + half the timed steps
    if args.worker:
        import torch

        torch.set_num_threads(1)
        with tempfile.TemporaryDirectory(prefix=f"dpo-{args.worker}-") as tmp:
            run = run_rlsuite if args.worker == "rlsuite" else run_trl
            record = run(args.model_dir, Path(args.data), args, Path(tmp))
        Path(args.result).write_text(json.dumps(record))
        return

    from rlsuite.lm import models

    print(versions())
    sections = []
    with tempfile.TemporaryDirectory(prefix="dpo-vs-trl-") as tmp_name:
        tmp = Path(tmp_name)
        data = dict(train_pairs=PAIRS * args.epoch_steps)
        data.update(make_data(tmp / "data", data["train_pairs"], models.build_tokenizer()))
        print(f"data: {data['train_pairs']} training pairs of the {data['kept']} of {POOL} that fit; "
              f"longest pair {data['longest']} tokens (prompt + completion + EOS)", flush=True)
        for name in args.cases:
            model_dir = tmp / "tiny-model" if name == "tiny" else models.BUILTIN_SFT_DIR
            parameters = make_tiny_model(model_dir) if name == "tiny" else count_parameters(model_dir)
            print(f"{name}: {parameters:,} parameters ({model_dir})", flush=True)
            records = {lib: run_worker(lib, name, model_dir, tmp / "data", args, tmp) for lib in CASES[name]}
            sections.append(case_table(name, parameters, records, args, data))
    order = "; ".join(f"{name}: {' then '.join(CASES[name])}" for name in args.cases)
    text = "\n\n".join([
        versions(), *(table for table, _ in sections), "\n".join(v for _, verdicts in sections for v in verdicts),
        f"Each library in its own subprocess per case ({order}). Not matched: the pair order (each library shuffles "
        "the same rows itself), TRL's newline after EOS in each completion (one token), its per-token metrics from the "
        "fused LM head, the padding (rlsuite: prompts left-padded and completions right-padded, TRL: whole rows "
        "right-padded; see padded tokens per row) and the AdamW implementation (TRL: adamw_torch_fused).",
    ])
    print()
    print(text)
    if not args.no_write:
        from results import append_section

        standard = (args.steps, args.warmup, sorted(args.cases), args.trl_precompute) == (20, 3, sorted(CASES), False)
        flag = "" if standard else " (reduced or non-default run: not the standard 20 steps after 3 warm-up, both cases)"
        append_section(f"`bench/dpo_vs_trl.py`, DPO seconds per optimizer step vs TRL{flag}", text)


if __name__ == "__main__":
    main()
