"""Language-model trainers under `accelerate launch` with two CPU processes (gloo): the same result
as one process with the same global batch, one run directory written by the main process only,
and the helpers of rlsuite.lm.parallel (shares of a batch, collectives, the rescaled token mean).

Each launch starts two fresh Python processes (about 10 s before training begins on two cores).
`--main_process_port 0` lets accelerate pick a free port, so tests running in parallel (xdist)
never collide on its default 29500.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")
pytest.importorskip("transformers")

from rlsuite import api  # noqa: E402
from rlsuite.errors import ConfigError  # noqa: E402
from rlsuite.lm import parallel, scalar  # noqa: E402

DOCS = Path(__file__).resolve().parents[2] / "docs"
TIMEOUT = 240  # seconds per launch: minutes past anything a healthy run takes, so a deadlock fails rather than hangs


def launch(cwd: Path, *args: str, timeout: int = TIMEOUT, background: bool = False, config: str | None = None,
           float32: bool = True):
    """`accelerate launch` two processes on CPU running `args` (a script, or -m rlsuite.cli ...).
    `config`: one of the shipped docs/accelerate/ files (its FSDP or DeepSpeed plugin applied on
    CPU by RLSUITE_SHARDING_ON_CPU; accelerate alone would fall back to DDP); `float32=False`
    keeps the file's own mixed precision (bf16)."""
    setup = ["--config_file", str(DOCS / "accelerate" / f"{config}.yaml")] if config else ["--multi_gpu", "--num_machines", "1"]
    precision = ["--mixed_precision", "no"] if float32 else []
    command = [sys.executable, "-m", "accelerate.commands.launch", *setup, "--num_processes", "2",
               *precision, "--dynamo_backend", "no", "--main_process_port", "0", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", **({"RLSUITE_SHARDING_ON_CPU": "1"} if config else {})}
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    if background:
        return process
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        kill_tree(process)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def kill_tree(process: subprocess.Popen) -> None:
    """The launcher and its workers, if still running (a deadlock): torchrun starts each worker
    in a session of its own, so killing the launcher's group would leave them running."""
    if process.poll() is not None:
        return
    import psutil

    for child in psutil.Process(process.pid).children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def flags(settings: dict) -> list[str]:
    return [f"--{key.replace('_', '-')}={value}" for key, value in settings.items()]


def table(path: Path) -> dict[str, np.ndarray]:
    rows = list(csv.DictReader(path.open()))
    return {key: np.array([float(row[key]) if row[key] != "" else np.nan for row in rows]) for key in rows[0]}  # "": not logged


def run_dirs(root: Path) -> list[str]:
    return sorted(str(p.parent.relative_to(root)) for p in root.rglob("run.yaml"))


def status(run_dir: Path) -> str:
    import yaml

    return yaml.safe_load((run_dir / "run.yaml").read_text())["status"]


def assert_same_run(one: Path, two: Path, columns: tuple[str, ...], rtol: float = 1e-5, atol: float = 1e-5,
                    weights_atol: float | None = None) -> None:
    """Metrics and exported weights of the one- and two-process runs agree within the tolerance
    (float sums taken in another order: observed differences are about 1e-7)."""
    from safetensors.torch import load_file

    for name, keys in (("metrics.csv", columns), ("eval.csv", ())):
        a, b = table(one / name), table(two / name)
        assert a.keys() == b.keys()
        for key in keys or [k for k in a if k != "step"]:
            np.testing.assert_allclose(b[key], a[key], rtol=rtol, atol=atol, err_msg=f"{name}: {key}")
    a, b = load_file(one / "model" / "model.safetensors"), load_file(two / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=rtol, atol=weights_atol or atol, msg=key)


# --- the helpers, in one process -------------------------------------------------------------------------------

class FakeAccelerator:
    def __init__(self, rank: int, world: int):
        from accelerate.utils import DistributedType

        self.process_index, self.num_processes, self.device = rank, world, torch.device("cpu")
        self.distributed_type = DistributedType.MULTI_CPU


def test_shares_partition_a_batch_in_order():
    for n in (0, 1, 5, 8):
        parts = [parallel.DataParallel(FakeAccelerator(r, 3)).shard(list(range(n))) for r in range(3)]
        assert [x for part in parts for x in part] == list(range(n))  # contiguous, in rank order
        assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_a_global_batch_that_does_not_split_evenly_is_one_config_error():
    dp = parallel.DataParallel(FakeAccelerator(0, 2))
    assert dp.per_process("batch-size", 8, "examples") == 4
    with pytest.raises(ConfigError, match=r"--batch-size \(7\) must be a multiple of 2 with 2 processes.*--batch-size 8"):
        dp.per_process("batch-size", 7, "examples")
    # GRPO: each process's share is whole groups of 4, split into 3 minibatches
    with pytest.raises(ConfigError, match=r"must be a multiple of 24 .*--batch-size 24"):
        dp.per_process("batch-size", 12, "completions", int(np.lcm(4, 3)))


def test_a_single_process_is_left_exactly_as_it_was():
    dp = parallel.SINGLE
    loss, model, optimizer, items = torch.tensor(1.2345), torch.nn.Linear(2, 2), object(), [3, 1, 2]
    assert dp.world == 1 and dp.is_main_process and dp.accelerator is None
    assert dp.shard(items) is items and dp.global_mean(loss, 17) is loss and dp.sum(2.5) == 2.5
    assert dp.prepare(model, optimizer=optimizer) == (model, optimizer)
    metrics = {"loss": 1.0}
    assert dp.mean_metrics(metrics) is metrics and dp.all_gather(items) == [items]
    assert dp.over_all_rows(lambda x: x * 2, loss) == loss * 2
    assert dp.loop_options({"quiet": True}) == {"is_main_process": True, "quiet": True}
    assert parallel.start(type("C", (), {"device": "auto", "max_grad_norm": 1.0})()) is parallel.SINGLE  # no launcher here


def test_an_optimizer_that_skipped_prepare_is_refused_under_data_parallelism(monkeypatch):
    """Its gradients would not be averaged: each process would silently train on its share alone."""
    from rlsuite.lm import runtime

    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    monkeypatch.setattr(parallel, "_current", parallel.DataParallel(FakeAccelerator(0, 2)))
    with pytest.raises(RuntimeError, match="must go through DataParallel.prepare"):
        runtime.optimizer_step(optimizer, model(torch.ones(1, 2)).sum(), 1.0)


def test_prepared_view_calls_the_wrapper_and_reads_the_model():
    model = torch.nn.Linear(2, 1)
    model.config = "the model's config"
    calls = []
    view = parallel.Prepared(lambda *a, **k: calls.append((a, k)) or "wrapped", model)
    assert view(1, x=2) == "wrapped" and calls == [((1,), {"x": 2})]
    assert view.config == "the model's config" and view.get_base_model() is model and parallel.unwrap(view) is model


def test_token_scores_module_is_token_scores(tmp_path):
    from rlsuite.lm import models

    tokenizer = models.build_tokenizer()
    model, _ = scalar.from_causal_lm("builtin")
    torch.nn.init.normal_(model.score.weight)
    ids = torch.tensor([[0, 40, 41, 42], [43, 44, 45, 46]])
    mask = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]])
    assert tokenizer.pad_token_id == 0
    with torch.no_grad():
        assert torch.equal(scalar.token_scores(scalar.TokenScores(model), ids, mask), scalar.token_scores(model, ids, mask))



@pytest.mark.parametrize("name", ["ddp", "deepspeed_zero2", "deepspeed_zero3", "fsdp"])
def test_the_shipped_configs_are_accelerate_configs(name):
    """Loaded by accelerate's own reader (unknown top-level keys are an error there), and every
    DeepSpeed or FSDP key is an option of `accelerate launch` (which is how it applies them)."""
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import launch_command_parser

    config = load_config_from_file(str(DOCS / "accelerate" / f"{name}.yaml"))
    options = {action.dest for action in launch_command_parser()._actions}
    assert not [key for key in {**config.deepspeed_config, **config.fsdp_config} if key not in options]
    assert config.distributed_type.value == {"ddp": "MULTI_GPU", "fsdp": "FSDP"}.get(name, "DEEPSPEED")
    assert config.main_process_port == 0 and config.num_processes == 2
    assert f"accelerate/{name}.yaml" in (DOCS / "accelerate.md").read_text()


# --- collectives and single updates across two processes ----------------------------------------------------------

PROBE = '''
"""One GRPO update (DAPO's token mean, the batch std) and one PPO-RLHF update (whitened advantages,
token means, policy and value model) on two processes, each holding half of a batch, against the
same update on the whole batch in one process; and the collectives. Writes rank<r>.json."""
import copy, json
import numpy as np, torch, transformers
from rlsuite.algos.llm import grpo, ppo_rlhf
from rlsuite.lm import models, parallel, scalar, sequences
from rlsuite.lm.runtime import LMRun
from rlsuite.ops.lm import token_logprobs
from rlsuite.ops.returns import masked_whiten

torch.set_num_threads(1)
tokenizer = models.build_tokenizer()
eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
shape = dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=64, pad_token_id=pad, eos_token_id=eos)
torch.manual_seed(0)
policy = transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**shape))
value_model = transformers.Qwen2ForSequenceClassification(transformers.Qwen2Config(**shape, num_labels=1))
config = grpo.GRPOConfig(num_generations=2, batch_size=8, max_completion_length=6, max_grad_norm=0.05, loss_type="dapo",
                         scale_rewards="batch", rewards=("accuracy",), reward_weights=(1.0,))
ppo_config = ppo_rlhf.PPORLHFConfig(batch_size=4, minibatches=1, max_grad_norm=0.05, rewards=("accuracy",), reward_weights=(1.0,))
cpu = torch.device("cpu")


def parameters(*modules):
    return [p.detach().clone() for m in modules for p in m.parameters()]


def relative_error(got, expected):
    return max(float((g - e).abs().max()) for g, e in zip(got, expected)) / max(float(e.abs().max()) for e in expected)


# GRPO: 4 prompts, G = 2, completion lengths differ between the two halves (so do token counts)
prompts = [[40, 41, 42], [43, 44], [45, 46, 47, 48], [49]]
groups = []
for p, lengths, totals in zip(prompts, [[2, 5], [3, 1], [6, 6], [4, 2]], [[1.0, 0.0], [0.2, 0.9], [1.0, 1.0], [0.0, 0.4]]):
    ids, mask = torch.full((2, 6), pad), torch.zeros((2, 6), dtype=torch.long)
    for i, n in enumerate(lengths):
        ids[i, :n] = torch.arange(60, 60 + n)
        ids[i, n - 1], mask[i, :n] = eos, 1
    totals = np.array(totals)
    groups.append(grpo.Group(p, ids, mask, totals, bool(totals.std() == 0), {"accuracy": list(totals)}, [""] * 2))

# PPO-RLHF: 4 rows, one completion each, token counts differ between the halves
batch = sequences.collate(prompts, [[50, 51, eos], [52, 53, 54, 55, 56], [57, eos], [58]], pad, "cpu")
mask = batch.completion_mask
g = torch.Generator().manual_seed(0)
with torch.no_grad():
    logp = token_logprobs(policy, batch.input_ids, batch.attention_mask, batch.completion_start)
    values = ppo_rlhf.completion_values(value_model, batch)
old_logp = logp + 0.3 * (torch.rand(mask.shape, generator=g) - 0.5)
raw = torch.randn(mask.shape, generator=g)
returns = values + torch.randn(mask.shape, generator=g)
advantages = masked_whiten(raw, mask) * mask

# the whole batch in one process, before any process group exists
whole_model = copy.deepcopy(policy)
whole, _ = grpo.build_batch(config, LMRun(config, cpu, whole_model, tokenizer, None, [], [], False), groups, whole_model, None)
grpo_whole = grpo.grpo_step(config, whole_model, torch.optim.SGD(whole_model.parameters(), lr=1.0), whole, slice(0, 8))
grpo_expected = parameters(whole_model)
whole_policy, whole_value = copy.deepcopy(policy), copy.deepcopy(value_model)
optimizer = torch.optim.SGD(list(whole_policy.parameters()) + list(whole_value.parameters()), lr=1.0)
ppo_whole = ppo_rlhf.ppo_step(ppo_config, whole_policy, whole_value, optimizer, ppo_rlhf.Rollout(batch, old_logp, values, advantages, returns),
                              torch.arange(4))
ppo_expected = parameters(whole_policy, whole_value)

dp = parallel.start(config)
r = dp.rank
out = {"rank": r, "world": dp.world, "main": dp.is_main_process}
out["all_gather"] = dp.all_gather(r)
out["sum"] = dp.sum(r + 1)
out["any"] = [dp.any(r == 1), dp.any(False)]
out["mean"] = float(dp.mean(torch.arange(3.0) if r == 0 else torch.arange(3.0, 8.0)))
out["mean_metrics"] = dp.mean_metrics({"a": float(r), **({"b": 5.0} if r == 0 else {})})
out["shard"] = dp.shard(list(range(5)))

model = copy.deepcopy(policy)
mine, _ = grpo.build_batch(config, LMRun(config, cpu, model, tokenizer, None, [], [], False, dp=dp), dp.shard(groups), model, None)
out["grpo_advantages"] = float((mine.advantages - whole.advantages[dp.share(8)]).abs().max())
trained, optimizer = dp.prepare(model, optimizer=torch.optim.SGD(model.parameters(), lr=1.0))
info = grpo.grpo_step(config, trained, optimizer, mine, slice(0, 4), dp)
out["grpo_update"] = relative_error(parameters(model), grpo_expected)
out["grpo_loss"] = [dp.mean_metrics({"loss": info["loss"]})["loss"], grpo_whole["loss"]]
out["grpo_grad_norm"] = [info["grad_norm"], grpo_whole["grad_norm"]]

rows = dp.share(4)
width = int(mask[rows].sum(1).max())  # 5 on rank 0, 2 on rank 1: over_all_rows pads
mine_advantages = dp.over_all_rows(lambda a, m: masked_whiten(a, m) * m, raw[rows][:, :width], mask[rows][:, :width])
out["whitening"] = float((mine_advantages - advantages[rows][:, :width]).abs().max()) if mine_advantages.shape[1] == width else 1.0
local_policy, local_value = copy.deepcopy(policy), copy.deepcopy(value_model)
local = sequences.SequenceBatch(batch.input_ids[rows], batch.attention_mask[rows], batch.completion_start, mask[rows])
rollout = ppo_rlhf.Rollout(local, old_logp[rows], values[rows], advantages[rows], returns[rows])
optimizer = torch.optim.SGD(list(local_policy.parameters()) + list(local_value.parameters()), lr=1.0)
trained, value_scores, optimizer = dp.prepare(local_policy, scalar.TokenScores(local_value), optimizer=optimizer)
info = ppo_rlhf.ppo_step(ppo_config, trained, value_scores, optimizer, rollout, torch.arange(2), dp)
out["ppo_update"] = relative_error(parameters(local_policy, local_value), ppo_expected)
out["ppo_grad_norm"] = [info["grad_norm"], ppo_whole["grad_norm"]]
json.dump(out, open(f"rank{r}.json", "w"))
'''


def test_collectives_and_one_update_of_grpo_and_ppo_on_two_processes_equal_the_whole_batch(tmp_path):
    (tmp_path / "probe.py").write_text(textwrap.dedent(PROBE))
    result = launch(tmp_path, "probe.py")
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    for r, out in enumerate(ranks):
        assert out["rank"] == r and out["world"] == 2 and out["main"] == (r == 0)
        assert out["all_gather"] == [0, 1] and out["sum"] == 3 and out["any"] == [True, False]
        assert out["mean"] == pytest.approx(np.mean(range(8)))
        assert out["mean_metrics"] == {"a": 0.5, "b": 5.0}  # b: reported by rank 0 only
        assert out["shard"] == [[0, 1, 2], [3, 4]][r]
        assert out["grpo_advantages"] < 1e-6  # this process's rows of the whole batch's (batch-std) advantages
        assert out["whitening"] < 1e-6
        # the clipped step of each process equals the whole batch's, and the global norm is the one clipped
        assert out["grpo_update"] < 1e-4 and out["ppo_update"] < 1e-4, out
        assert out["grpo_loss"][0] == pytest.approx(out["grpo_loss"][1], rel=1e-5)
        assert out["grpo_grad_norm"][0] == pytest.approx(out["grpo_grad_norm"][1], rel=1e-5)
        assert out["ppo_grad_norm"][0] == pytest.approx(out["ppo_grad_norm"][1], rel=1e-5)
    assert ranks[0]["grpo_grad_norm"] == ranks[1]["grpo_grad_norm"]


# --- whole runs through the command line ------------------------------------------------------------------------

SFT = dict(model="builtin", level="easy", train_size=32, test_size=4, eval_size=4, batch_size=8, total_steps=4, eval_every=2,
           warmup_steps=1, max_completion_length=24, torch_threads=1)  # demonstrations of 15 or 17 tokens: token counts differ between processes


def test_sft_on_two_processes_equals_one_process_and_writes_one_run_directory(tmp_path):
    result = launch(tmp_path, "-m", "rlsuite.cli", "train", "sft", *flags(SFT), "--run-dir=two")
    assert result.returncode == 0, result.stderr[-3000:]
    assert run_dirs(tmp_path) == ["two"] and status(tmp_path / "two") == "finished"
    assert result.stdout.count("finished after 4 optimizer steps") == 2  # each process reports the run
    api.train("sft", run_dir=tmp_path / "one", quiet=True, **SFT)
    assert table(tmp_path / "two" / "metrics.csv")["step"].tolist() == [1, 2, 3, 4]
    assert table(tmp_path / "two" / "eval.csv")["step"].tolist() == [0, 2, 4]
    assert_same_run(tmp_path / "one", tmp_path / "two", ("loss", "grad_norm", "tokens", "learning_rate"))


GRPO = dict(model="builtin-sft", level="easy", train_size=16, test_size=4, eval_size=4, batch_size=8, num_generations=4, total_steps=2,
            eval_every=0, max_completion_length=12, torch_threads=1)


def test_grpo_on_two_processes_finishes_and_writes_one_run_directory(tmp_path):
    result = launch(tmp_path, "-m", "rlsuite.cli", "train", "grpo", *flags(GRPO), "--run-dir=run")
    assert result.returncode == 0, result.stderr[-3000:]
    assert run_dirs(tmp_path) == ["run"] and status(tmp_path / "run") == "finished"
    metrics = table(tmp_path / "run" / "metrics.csv")
    assert metrics["step"].tolist() == [1, 2] and np.isfinite(metrics["loss"]).all() and "reward" in metrics
    assert table(tmp_path / "run" / "eval.csv")["step"].tolist() == [0, 2]
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # the other process wrote nothing anywhere


@pytest.mark.slow
def test_a_batch_that_does_not_split_is_refused_before_any_run_directory(tmp_path):
    result = launch(tmp_path, "-m", "rlsuite.cli", "train", "sft", *flags({**SFT, "batch_size": 7}), "--run-dir=run")
    assert result.returncode != 0
    assert "error: --batch-size (7) must be a multiple of 2 with 2 processes" in result.stderr
    assert "Traceback" not in result.stderr.split("error: --batch-size")[0]  # rlsuite's message comes first, without one
    assert not (tmp_path / "run").exists()


# --- every other trainer ----------------------------------------------------------------------------------------

COMMON = dict(level="easy", train_size=16, test_size=4, eval_size=4, eval_every=2, max_completion_length=12, total_steps=3, torch_threads=1)
OTHERS = {  # deterministic ones (no sampling) must match one process; the sampling ones draw other samples per process
    "sft_packing": ("sft", dict(model="builtin", batch_size=4, packing=True), ("loss", "grad_norm", "tokens")),
    "reward_model": ("reward_model", dict(model="builtin", batch_size=4, center_coefficient=0.01), ("loss", "train_accuracy")),
    "dpo": ("dpo", dict(model="builtin", batch_size=4, rpo_alpha=1.0), ("loss", "nll", "rewards/margin")),
    "kto": ("kto", dict(model="builtin", batch_size=4), ("loss", "kl")),
    "distill": ("distill", dict(model="builtin-small", teacher="builtin-sft", batch_size=4), None),
    "ppo_rlhf": ("ppo_rlhf", dict(model="builtin-sft", batch_size=4, minibatches=2, ppo_epochs=1, whiten_rewards=True), None),
    "rejection_sampling": ("rejection_sampling", dict(model="builtin-sft", batch_size=3, num_samples=4, total_steps=7), None),
    "grpo_resample": ("grpo", dict(model="builtin-sft", batch_size=8, num_generations=4, dynamic_sampling="resample",
                                   scale_rewards="batch", loss_type="dapo"), None),
    "grpo_drop": ("grpo", dict(model="builtin-sft", batch_size=8, num_generations=4, dynamic_sampling="drop", minibatches=2), None),
}

DRIVER = '''
import json, sys
from rlsuite import api
jobs = json.loads(open("jobs.json").read())
for name, (algo, settings) in jobs.items():
    run = api.train(algo, "arithmetic", run_dir=f"two/{name}", quiet=True, **settings)
    print(name, run.status, run.step, flush=True)
'''


@pytest.mark.slow
def test_every_other_trainer_on_two_processes(tmp_path):
    """One launch runs them all in turn (the same two processes, one Accelerator)."""
    jobs = {name: (algo, {**COMMON, **settings}) for name, (algo, settings, _) in OTHERS.items()}
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    (tmp_path / "driver.py").write_text(DRIVER)
    result = launch(tmp_path, "driver.py", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert run_dirs(tmp_path) == sorted(f"two/{name}" for name in OTHERS)
    for name, (algo, settings, columns) in OTHERS.items():
        two = tmp_path / "two" / name
        assert status(two) == "finished", name
        assert all(np.isfinite(column).any() and not np.isinf(column).any() for column in table(two / "metrics.csv").values()), name
        if columns is not None:
            api.train(algo, "arithmetic", run_dir=tmp_path / "one" / name, quiet=True, **{**COMMON, **settings})
            assert_same_run(tmp_path / "one" / name, two, columns)
    dataset = (tmp_path / "two" / "rejection_sampling" / "model" / "dataset.jsonl").read_text().splitlines()
    assert table(tmp_path / "two" / "rejection_sampling" / "metrics.csv")["accepted_rows"][-1] == len(dataset)


@pytest.mark.slow
def test_a_signal_to_one_process_stops_every_process_at_the_same_step_and_the_run_resumes(tmp_path):
    """Ctrl-C reaches the processes at different moments (here: only the second one). They agree
    to stop after the same iteration with a checkpoint; without that, the first would wait forever
    for the second in the next all-reduce. Then the run resumes on two processes."""
    psutil = pytest.importorskip("psutil")
    long = {**SFT, "total_steps": 100_000, "eval_every": 0, "checkpoint_minutes": 100}
    process = launch(tmp_path, "-m", "rlsuite.cli", "train", "sft", *flags(long), "--run-dir=run", background=True)
    metrics = tmp_path / "run" / "metrics.csv"
    try:
        deadline = time.time() + TIMEOUT
        while (not metrics.exists() or len(metrics.read_text().splitlines()) < 4) and time.time() < deadline:
            time.sleep(0.5)
        second = [p for p in psutil.Process(process.pid).children(recursive=True) if p.environ().get("RANK") == "1"]
        assert len(second) == 1
        second[0].send_signal(signal.SIGINT)
        process.communicate(timeout=120)  # a healthy stop takes seconds; a deadlock, forever
    finally:
        kill_tree(process)
    assert status(tmp_path / "run") == "interrupted"
    step = int(table(metrics)["step"][-1])
    result = launch(tmp_path, "-m", "rlsuite.cli", "resume", "run", f"--budget={step + 2}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert status(tmp_path / "run") == "finished" and table(metrics)["step"].tolist()[-2:] == [step + 1, step + 2]
    assert run_dirs(tmp_path) == ["run"]


# --- sharded parameters: FSDP2 and DeepSpeed ZeRO-3 (and ZeRO-2), through accelerate's own prepare on CPU ----------

def test_deepspeed_runs_are_refused_on_resume_and_sharding_refuses_lora_and_two_models():
    dp = parallel.DataParallel(FakeAccelerator(0, 2))
    assert dp.engine == "ddp" and not dp.sharding and dp.loop_options({"resume": True})["resume"]
    dp.engine = "zero2"
    with pytest.raises(ConfigError, match="a DeepSpeed run cannot be resumed"):
        dp.loop_options({"resume": True})
    dp.engine = "fsdp"
    with pytest.raises(ConfigError, match=r"LoRA \(--lora-r\) under FSDP or DeepSpeed ZeRO-3 is not supported"):
        dp.check_config(type("C", (), {"lora_r": 8})())
    dp.check_config(type("C", (), {"lora_r": 0})())
    with pytest.raises(ConfigError, match="FSDP takes one model per run"):
        dp.check_models(2, "ppo_rlhf trains the policy and the value model with one optimizer")


@pytest.fixture(scope="module")
def one_process_sft(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("one") / "sft"
    api.train("sft", run_dir=path, quiet=True, **SFT)
    return path


def require(config: str) -> None:
    if config.startswith("deepspeed"):
        pytest.importorskip("deepspeed", reason="DeepSpeed is the rlsuite[deepspeed] extra")


@pytest.mark.parametrize("config", ["fsdp", "deepspeed_zero3", "deepspeed_zero2"])
def test_sft_with_sharded_training_state_equals_one_process(tmp_path, config, one_process_sft):
    """The shipped configs, run through accelerate's prepare (FSDP2's fully_shard; DeepSpeed's
    engine on its CPU accelerator): the same losses and exported weights as one process."""
    require(config)
    result = launch(tmp_path, "-m", "rlsuite.cli", "train", "sft", *flags(SFT), "--run-dir=two", config=config)
    assert result.returncode == 0, result.stderr[-3000:]
    assert run_dirs(tmp_path) == ["two"] and status(tmp_path / "two") == "finished"
    engine = {"fsdp": "FSDP2", "deepspeed_zero3": "DeepSpeed ZeRO-3", "deepspeed_zero2": "DeepSpeed ZeRO-2"}[config]
    assert f"data parallel over 2 processes ({engine})" in (tmp_path / "two" / "events.log").read_text()
    # DeepSpeed sums gradients in buckets, in another order; Adam divides a near-zero gradient by its own
    # size, so that float noise moves an element by up to a fraction of the step (seen: one of 16,384 by 2.6e-5).
    assert_same_run(one_process_sft, tmp_path / "two", ("loss", "grad_norm", "tokens", "learning_rate"),
                    weights_atol=1e-4 if config.startswith("deepspeed") else None)


GRPO_SHARDED = {**GRPO, "test_size": 5, "eval_size": 5, "eval_every": 1, "max_completion_length": 40}
# 5 test prompts: shares of 3 and 2 (the second process decodes a filler); completions of 16 and 17 tokens, so the
# processes' decoding ends at different steps, where each forward pass is a collective.


@pytest.mark.parametrize("config", ["fsdp", "deepspeed_zero3"])
def test_grpo_with_sharded_parameters_decodes_in_step_and_exports_a_model_that_loads(tmp_path, config):
    """The shipped file as it is (bf16 mixed precision; the model loaded in float32 as its comment says)."""
    require(config)
    result = launch(tmp_path, "-m", "rlsuite.cli", "train", "grpo", *flags({**GRPO_SHARDED, "dtype": "float32"}), "--run-dir=run",
                    config=config, float32=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert run_dirs(tmp_path) == ["run"] and status(tmp_path / "run") == "finished"
    evaluations = table(tmp_path / "run" / "eval.csv")
    assert evaluations["step"].tolist() == [0, 1, 2]
    assert len(set(json.loads(line)["completion"] for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines())) > 1
    policy = api.load(tmp_path / "run")
    assert isinstance(policy.answer("What is 2 + 3?"), str)


@pytest.mark.slow
def test_an_fsdp_run_cut_and_resumed_equals_one_process_cut_and_resumed(tmp_path):
    """The checkpoint holds the whole weights and Adam's moments gathered from both processes
    (here after an evaluation, which leaves FSDP2's root gathered); the resumed run shards them again
    and ends where one process, cut and resumed at the same step, does (the learning-rate schedule
    follows the budget, so both are cut alike)."""
    cut = {**SFT, "total_steps": 2}
    api.train("sft", run_dir=tmp_path / "one", quiet=True, **cut)
    api.resume(tmp_path / "one", budget=SFT["total_steps"], quiet=True)
    result = launch(tmp_path, "-m", "rlsuite.cli", "train", "sft", *flags(cut), "--run-dir=two", config="fsdp")
    assert result.returncode == 0, result.stderr[-3000:]
    result = launch(tmp_path, "-m", "rlsuite.cli", "resume", "two", f"--budget={SFT['total_steps']}", config="fsdp")
    assert result.returncode == 0, result.stderr[-3000:]
    assert status(tmp_path / "two") == "finished" and run_dirs(tmp_path) == ["one", "two"]
    assert table(tmp_path / "two" / "metrics.csv")["step"].tolist() == [1, 2, 3, 4]
    assert_same_run(tmp_path / "one", tmp_path / "two", ("loss", "grad_norm", "tokens", "learning_rate"))


SHARDED_OTHERS = {name: OTHERS[name] for name in ("reward_model", "dpo", "kto", "distill")}


@pytest.mark.slow
@pytest.mark.parametrize("config", ["fsdp", "deepspeed_zero3"])
def test_the_other_trainers_with_sharded_parameters(tmp_path, config):
    """The reward model (trained and evaluated through its scorer), DPO and KTO (a reference
    copy beside the sharded policy) equal one process; distillation (a whole teacher sampling
    beside the sharded student) finishes."""
    require(config)
    jobs = {name: (algo, {**COMMON, **settings}) for name, (algo, settings, _) in SHARDED_OTHERS.items()}
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    (tmp_path / "driver.py").write_text(DRIVER)
    result = launch(tmp_path, "driver.py", timeout=600, config=config)
    assert result.returncode == 0, result.stderr[-3000:]
    for name, (algo, settings, columns) in SHARDED_OTHERS.items():
        two = tmp_path / "two" / name
        assert status(two) == "finished", name
        if columns is not None:
            api.train(algo, "arithmetic", run_dir=tmp_path / "one" / name, quiet=True, **{**COMMON, **settings})
            assert_same_run(tmp_path / "one" / name, two, columns, weights_atol=1e-4 if config.startswith("deepspeed") else None)
