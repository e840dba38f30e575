"""Data-parallel language-model training under `accelerate launch`: what every trainer shares.

A run started without a launcher (or with one process) gets `SINGLE`, whose every method is the
identity, so it stays bit for bit what it was. Under `accelerate launch` with N > 1 processes
(docs/accelerate.md), each process is one `DataParallel`:

- the config's batch size is the global batch: each process takes its contiguous 1/N share
  (`shard`), after every process drew the same global batch from the shared prompt order;
- the trained models and their optimizer go through `accelerator.prepare` (DDP here; DeepSpeed or
  FSDP when the accelerate config says so). `prepare` returns a `Prepared` view for the losses,
  which calls the wrapper (DDP arms its gradient hooks in forward) and reads attributes from the
  model; sampling, evaluation, checkpoints and exports keep using the model itself;
- backward goes through `accelerator.backward` (runtime.optimizer_step), which averages the
  gradients over processes. A loss that is a mean over tokens, whose count differs between
  processes, is rescaled by `global_mean` so that this average is the gradient of the mean over
  the whole global batch; means over equal shares of rows need nothing;
- statistics of the whole batch (GRPO's batch std, PPO's whitening) come from `over_all_rows`;
- metrics are averaged over processes before the Loop sees them (`mean_metrics`), so every
  process records the same values and a NaN stops all of them at the same step;
- sampling is seeded per process and per step (`reseed`), so processes draw different samples
  and a resumed run draws what an uninterrupted one would;
- Ctrl-C and SIGTERM are agreed on once per iteration (`attach`), so all processes stop at the
  same step; only the main process writes the run directory (the Loop's is_main_process).

When the accelerate config shards the parameters themselves (FSDP2, DeepSpeed ZeRO-3: `sharding`),
every forward pass is a collective that all processes must enter together, and no process holds
the whole weights. Then also:
- decoding keeps stepping until every process's completions have ended (`all_done`, which
  TorchGenerator hands to ops.lm.sample for a model that `shards`), and held-out evaluation gives every
  process as many prompts (`evaluate`'s filler, decoded and dropped);
- the model and optimizer checkpoint parts are gathered whole from every process (`parts`:
  WholeModel, WholeOptimizer) and the export writes the gathered weights (`export`); the Loop
  saves on every process at the same step, its time-based checkpoints agreed (`loop_options`).

Every collective here is called by all processes in the same order: the trainers call them at
the same points of their loops, whose step counts agree because every process sees the same
global batch, the same metrics and the same stop decisions.
"""

from __future__ import annotations

import atexit
import os
import signal
import threading
import warnings
from typing import Any, Callable

import numpy as np
import torch

from rlsuite.core.seeding import derive_seed
from rlsuite.errors import ConfigError


def launched_processes() -> int:
    """How many processes the launcher started (torchrun's WORLD_SIZE; 1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


class Prepared:
    """A model prepared by accelerate, as the training losses call it: calls go through the
    wrapper (DDP, DeepSpeed, FSDP), attribute reads (config, generation_config, ...) to the model."""

    def __init__(self, wrapped, model):
        self.wrapped, self.model = wrapped, model

    def __call__(self, *args, **kwargs):
        return self.wrapped(*args, **kwargs)

    def get_base_model(self):
        # ops.lm inspects the base model's forward signature (logits_to_keep, the cache's name)
        return self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model

    def __getattr__(self, name: str):
        if name in ("wrapped", "model"):  # not yet set (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.model, name)


def unwrap(model):
    """The model behind a Prepared view (the model itself otherwise)."""
    return model.model if isinstance(model, Prepared) else model


class DataParallel:
    """This process's place in a data-parallel run: rank of world, and the Accelerator (None in
    a single process, where every method below returns its input unchanged)."""

    def __init__(self, accelerator=None, max_grad_norm: float = 0.0):
        self.accelerator = accelerator
        self.rank = accelerator.process_index if accelerator is not None else 0
        self.world = accelerator.num_processes if accelerator is not None else 1
        self.max_grad_norm = max_grad_norm
        device = accelerator.device if accelerator is not None else None
        self.device = torch.device("cpu") if device is not None and device.type == "cpu" else device
        self.engine = _engine(accelerator) if self.world > 1 else "single"
        self._prepared: list[tuple[Any, Any]] = []  # (model, what accelerate returned for it)
        self._pending_optimizer_state: dict | None = None
        self._gathered: dict[int, dict] = {}  # id(model) -> its weights as the last checkpoint gathered them (main process)

    @property
    def is_main_process(self) -> bool:
        return self.rank == 0

    @property
    def sharding(self) -> bool:
        """True when the parameters themselves are sharded: every forward pass is a collective."""
        return self.engine in ("fsdp", "zero3")

    def loop_options(self, options: dict) -> dict:
        """The Loop's keyword options with the main-process flag (a caller's own flag wins), and
        time-based checkpoints agreed by every process (a sharded checkpoint is a collective)."""
        if options.get("resume") and self.engine in ("zero2", "zero3"):
            raise ConfigError("a DeepSpeed run cannot be resumed: its optimizer state is partitioned over the processes and rlsuite's "
                              "checkpoints hold the model's weights only. Start a new run from the checkpoint's model "
                              "(--model RUN/model), or train with DDP or FSDP, whose runs resume (docs/accelerate.md).")
        agreed = {"agree": self.any} if self.world > 1 else {}
        return {"is_main_process": self.is_main_process, **agreed, **options}

    # --- sharded parameters: checkpoints and exports gathered from every process ---------------
    def parts(self, **parts) -> dict:
        """The Loop's checkpoint parts: unchanged, except under sharded parameters, where the
        trained model ("model") and its optimizer are gathered whole from every process."""
        if not self.sharding:
            return parts
        whole = dict(parts, model=WholeModel(self, parts["model"]))
        if self.engine == "zero3":  # not resumable (loop_options): its partitioned optimizer state is not saved
            whole.pop("optimizer", None)
        elif "optimizer" in parts:
            whole["optimizer"] = WholeOptimizer(self, parts["optimizer"], parts["model"])
        return whole

    def export(self, model, tokenizer) -> Callable:
        """The Loop's export of a trained model: models.save, with the weights the last checkpoint
        gathered when the parameters are sharded (the Loop exports right after a checkpoint)."""
        from rlsuite.lm import models

        if not self.sharding:
            return lambda directory: models.save(model, tokenizer, directory)

        def export(directory) -> None:
            gathered = self._gathered.get(id(model))
            if gathered is None:
                raise RuntimeError("under sharded parameters the export needs the weights a checkpoint gathered (parts())")
            models.save(model, tokenizer, directory, state_dict=gathered)

        return export

    def shards(self, model) -> bool:
        """True when `model` (or the model it is part of) went through prepare with its parameters
        sharded: each of its forward passes is then a collective of every process."""
        return self.sharding and self._prepared_root(model) is not None

    def _prepared_root(self, module) -> tuple[Any, str] | None:
        """(what prepare returned for the model holding `module`, module's name in it)."""
        for model, wrapped in self._prepared:
            for prefix, inner in unwrap(model).named_modules():
                if inner is module:
                    return wrapped, prefix
        return None

    def full_state_dict(self, module) -> dict:
        """module's whole state dict, gathered by accelerate from every process (call it on all of
        them). A module inside a prepared one (a reward model inside its scorer) gets its part."""
        wrapped, prefix = self._prepared_root(module)
        state = self.accelerator.get_state_dict(wrapped) or {}  # ZeRO-3: None but on the main process
        cut = len(prefix) + 1 if prefix else 0
        # On CPU, "offloaded to the CPU" can be the gathered buffer itself, freed at the next reshard: copy it.
        copy = self.device is not None and self.device.type == "cpu"
        return {key[cut:]: value.detach().clone() if copy else value
                for key, value in state.items() if not prefix or key.startswith(prefix + ".")}

    def all_done(self, done: bool) -> bool:
        """Whether every process has finished decoding, given whether this one has."""
        return not self.any(not done)

    # --- shares of a global batch ------------------------------------------------------------
    def per_process(self, flag: str, value: int, unit: str, granule: int = 1, why: str = "") -> int:
        """This process's share of a global batch of `value` (given with --flag): a whole number
        of `granule`s, the same on every process; a ConfigError names a value that would do."""
        if self.world == 1:
            return value
        if value % (self.world * granule):
            fits = -(-value // (self.world * granule)) * self.world * granule
            raise ConfigError(f"--{flag} ({value}) must be a multiple of {self.world * granule} with {self.world} processes: each "
                              f"process takes an equal share of every global batch of {value} {unit}{why}. Use e.g. --{flag} {fits}.")
        return value // self.world

    def share(self, n: int) -> slice:
        """This process's contiguous part of n items (the first n % world processes get one more)."""
        base, extra = divmod(n, self.world)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (self.rank < extra))

    def shard(self, items):
        """This process's contiguous part of a list or tensor (all of it in a single process)."""
        return items if self.world == 1 else items[self.share(len(items))]

    # --- collectives ---------------------------------------------------------------------------
    def all_gather(self, value: Any) -> list:
        """Every process's value (any picklable object), in rank order."""
        if self.world == 1:
            return [value]
        gathered: list = [None] * self.world
        torch.distributed.all_gather_object(gathered, value)
        return gathered

    def sum(self, value: float) -> float:
        if self.world == 1:
            return value
        total = torch.tensor(float(value), dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(total)
        return float(total)

    def any(self, flag: bool) -> bool:
        return bool(flag) if self.world == 1 else self.sum(float(bool(flag))) > 0

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """values.mean() over every process's values (a plain mean in a single process); no gradient."""
        if self.world == 1:
            return values.mean()
        return torch.tensor(self.sum(values.sum()) / self.sum(values.numel()), dtype=values.dtype, device=values.device)

    def mean_metrics(self, metrics: dict[str, float]) -> dict[str, float]:
        """Each metric averaged over the processes that report it (a metric may be absent on some)."""
        if self.world == 1:
            return metrics
        gathered = self.all_gather({key: float(value) for key, value in metrics.items()})
        keys = dict.fromkeys(key for row in gathered for key in row)
        return {key: float(np.mean([row[key] for row in gathered if key in row])) for key in keys}

    def global_mean(self, loss: torch.Tensor, count) -> torch.Tensor:
        """A mean over this process's `count` items (tokens, completions) rescaled to its share of
        the mean over every process's items: DDP averages gradients over processes, and
        world * count / total_count turns that average into the gradient of the global mean."""
        if self.world == 1:
            return loss
        count = float(count)
        return loss * (self.world * count / max(self.sum(count), 1.0))

    def over_all_rows(self, fn: Callable, *tensors: torch.Tensor):
        """fn of every process's rows as one batch (2-D tensors right-padded with zeros to the
        widest), and this process's rows of each result: statistics of the whole global batch
        (a batch std, whitening). An output with k rows per input row keeps its k-fold share."""
        if self.world == 1:
            return fn(*tensors)
        parts = self.all_gather([t.detach().cpu() for t in tensors])
        rows = [p[0].shape[0] for p in parts]
        start, total = sum(rows[:self.rank]), sum(rows)
        joined = [_cat_padded([p[i] for p in parts]).to(tensors[i].device) for i in range(len(tensors))]
        out = fn(*joined)

        def mine(t: torch.Tensor) -> torch.Tensor:
            piece = t[t.shape[0] * start // total:t.shape[0] * (start + rows[self.rank]) // total]
            return piece[:, :tensors[0].shape[1]] if piece.ndim == 2 and tensors[0].ndim == 2 else piece

        return tuple(mine(t) for t in out) if isinstance(out, tuple) else mine(out)

    def barrier(self) -> None:
        if self.world > 1:
            self.accelerator.wait_for_everyone()

    # --- models, sampling, the loop ------------------------------------------------------------
    def check_config(self, config) -> None:
        """Before a run opens: what sharded parameters cannot do."""
        if self.sharding and getattr(config, "lora_r", 0) > 0:
            raise ConfigError("LoRA (--lora-r) under FSDP or DeepSpeed ZeRO-3 is not supported: the export merges the adapters "
                              "into a copy of the whole model. A LoRA run's optimizer state is small; train it with DDP "
                              "(docs/accelerate/ddp.yaml) or ZeRO-2 (docs/accelerate/deepspeed_zero2.yaml).")

    def check_models(self, count: int, why: str) -> None:
        """Before a run opens: DeepSpeed and accelerate's FSDP take one trained model per Accelerator."""
        if count > 1 and self.engine in ("zero2", "zero3", "fsdp"):
            raise ConfigError(f"{why}, and {'FSDP' if self.engine == 'fsdp' else 'DeepSpeed'} takes one model per run: "
                              "train it with DDP (docs/accelerate/ddp.yaml).")

    def prepare(self, *models, optimizer):
        """(Prepared views of the models..., the prepared optimizer), or everything unchanged in a
        single process. Call it after loop.start(), so DeepSpeed copies restored weights."""
        if self.world == 1:
            return (*models, optimizer)
        plugin = getattr(self.accelerator.state, "deepspeed_plugin", None)
        if plugin is not None:  # DeepSpeed sizes batches from a dataloader (rlsuite feeds its own) and clips by its config
            for key, value in (("train_micro_batch_size_per_gpu", 1), ("gradient_clipping", self.max_grad_norm)):
                if plugin.get_value(key) in (None, "auto"):
                    plugin.deepspeed_config[key] = value  # the dict DeepSpeed's engine is built from
        with warnings.catch_warnings():  # torch 2.13 renames broadcast_buffers; accelerate 1.15 passes only the old name
            warnings.filterwarnings("ignore", message="`broadcast_buffers` is deprecated", category=FutureWarning)
            *wrapped, prepared = self.accelerator.prepare(*models, optimizer)
        prepared.rlsuite_accelerator = self.accelerator  # runtime.optimizer_step steps through it
        self._prepared.extend(zip(models, wrapped))
        if self._pending_optimizer_state is not None:  # a resumed FSDP run: the moments go to the sharded parameters
            from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

            set_optimizer_state_dict(wrapped[0], optimizer, self._pending_optimizer_state, options=StateDictOptions(full_state_dict=True))
            self._pending_optimizer_state = None
        return (*(Prepared(w, m) for w, m in zip(wrapped, models)), prepared)

    def reseed(self, seed: int, step: int) -> None:
        """Seed the sampling RNG for this process and step: processes draw different samples, and
        a resumed run (which restored the main process's RNG everywhere) draws what it would have."""
        if self.world > 1:
            torch.manual_seed(derive_seed(seed, "sampling", self.rank, step))

    def attach(self, loop) -> None:
        """Ctrl-C and SIGTERM agreed on by every process: a signal only marks a request, and the
        processes stop together after the iteration in which any of them saw one (the Loop's own
        handlers would stop each process at whichever iteration the signal reached it)."""
        if self.world == 1:
            return
        engine = {"ddp": "DDP", "fsdp": "FSDP2"}.get(self.engine) or f"DeepSpeed ZeRO-{self.accelerator.state.deepspeed_plugin.zero_stage}"
        loop.note(f"data parallel over {self.world} processes ({engine})")
        requested: list[str] = []

        def handler(signum, frame):
            if requested and signum == signal.SIGINT:  # second Ctrl-C: abort at once, as the Loop does
                raise KeyboardInterrupt
            requested.append(signal.Signals(signum).name)
            if self.is_main_process and not loop.quiet:
                print(f"\n{requested[-1]}: every process saves and stops after this iteration (Ctrl-C again to abort).", flush=True)

        def agree(loop) -> None:
            if self.any(bool(requested)):
                loop.request_stop(requested[0] if requested else "peer")

        if threading.current_thread() is threading.main_thread():  # where the Loop installed its own; it restores their predecessors
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, handler)
        loop.callbacks.append(agree)

    def finish(self, loop):
        """loop.finish(), then wait for the main process to have written everything, so that no
        process reads the run directory before it is complete."""
        run = loop.finish()
        self.barrier()
        if self.world > 1:  # a process may train again (rlsuite.train in a script): accelerate forgets this run's objects
            self.accelerator.free_memory()
            self._prepared.clear()
            self._gathered.clear()
        return run


class WholeModel:
    """The trained model as a checkpoint part when its parameters are sharded: its state dict
    gathered whole from every process (the Loop saves on all of them at the same step), and kept
    for the export that follows (main process). Restored into the model before it is sharded."""

    def __init__(self, dp: DataParallel, model):
        self.dp, self.model = dp, model

    def state_dict(self) -> dict:
        state = self.dp.full_state_dict(self.model) if self.dp.shards(self.model) else self.model.state_dict()
        if self.dp.is_main_process:
            self.dp._gathered[id(self.model)] = state
        return state

    def load_state_dict(self, state: dict):
        return self.model.load_state_dict(state)


class WholeOptimizer:
    """The optimizer as a checkpoint part under FSDP: its state gathered whole, keyed by parameter
    name (torch.distributed.checkpoint's full optimizer state dict). A restored state waits for
    DataParallel.prepare, since accelerate gives the optimizer the sharded parameters there."""

    def __init__(self, dp: DataParallel, optimizer, model):
        self.dp, self.optimizer, self.model = dp, optimizer, model

    def state_dict(self) -> dict:
        if not self.dp.shards(self.model):
            return self.optimizer.state_dict()
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        prepared, _ = self.dp._prepared_root(self.model)
        return get_optimizer_state_dict(prepared, self.optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))

    def load_state_dict(self, state: dict) -> None:
        self.dp._pending_optimizer_state = state


SINGLE = DataParallel()
_current: DataParallel = SINGLE


def start(config) -> DataParallel:
    """This process's DataParallel: SINGLE without a multi-process launcher; under one, the
    Accelerator (made once per process; on CPU, or with --device cpu, the gloo backend)."""
    global _current
    if launched_processes() <= 1:
        return SINGLE
    if _current is SINGLE:
        if config.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"under accelerate launch each process gets its own device from the launcher; use --device auto, cpu "
                              f"or cuda, not {config.device!r} (choose GPUs with CUDA_VISIBLE_DEVICES or accelerate's --gpu_ids).")
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs

        # Buffers (rotary frequencies) are constants: broadcasting them would add a collective to every forward pass.
        accelerator = Accelerator(cpu=config.device == "cpu" or not torch.cuda.is_available(),
                                  kwargs_handlers=[DistributedDataParallelKwargs(broadcast_buffers=False)])
        if os.environ.get("RLSUITE_SHARDING_ON_CPU") == "1":
            _sharding_on_cpu(accelerator)
        _load_models_whole(accelerator)
        # The process group is torn down before the interpreter's own teardown: left to that, gloo's
        # threads can be destroyed while joinable, and a process that finished its work aborts.
        atexit.register(accelerator.end_training)
        _current = DataParallel(accelerator, config.max_grad_norm)
    _current.check_config(config)
    return _current


def _engine(accelerator) -> str:
    """What accelerate does with the parameters: "ddp", "fsdp", "zero2" (or 1), "zero3"."""
    from accelerate.utils import DistributedType

    kind = accelerator.distributed_type
    if kind == DistributedType.FSDP:
        if accelerator.state.fsdp_plugin.fsdp_version != 2:
            raise ConfigError("rlsuite supports FSDP2 (fsdp_version: 2 in the accelerate config, as docs/accelerate/fsdp.yaml); "
                              "FSDP1 flattens the parameters outside its wrapper's forward, where rlsuite samples from the model.")
        return "fsdp"
    if kind == DistributedType.DEEPSPEED:
        return "zero3" if accelerator.state.deepspeed_plugin.zero_stage == 3 else "zero2"
    return "ddp"


def _load_models_whole(accelerator) -> None:
    """Under DeepSpeed, accelerate registers its config with transformers, which then partitions
    every model from_pretrained builds (ZeRO-3's zero.Init) whatever zero3_init_flag says. rlsuite
    loads models whole on each process (it evaluates, copies a reference and adds LoRA before
    training starts) and lets prepare partition the trained one."""
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    if plugin is None:
        return
    if plugin.zero3_init_flag:
        raise ConfigError("zero3_init_flag: true (deepspeed.zero.Init: models partitioned as they load) is not supported: rlsuite "
                          "loads the model whole on each process, then partitions it in accelerator.prepare. Set "
                          "zero3_init_flag: false in the accelerate config (as docs/accelerate/deepspeed_zero3.yaml).")
    from transformers.integrations import unset_hf_deepspeed_config

    unset_hf_deepspeed_config()


def _sharding_on_cpu(accelerator) -> None:
    """A testing aid (RLSUITE_SHARDING_ON_CPU=1): on CPU, accelerate ignores an FSDP or DeepSpeed
    config and joins the processes with DDP; this applies the config's plugin to the gloo
    processes as accelerate does on GPUs, so that FSDP2 and ZeRO run here, through accelerate's
    own prepare, without GPUs (tests/scale/test_accelerate.py; DeepSpeed uses its CPU accelerator)."""
    from accelerate.state import PartialState
    from accelerate.utils import DeepSpeedPlugin, DistributedType, FullyShardedDataParallelPlugin

    if accelerator.distributed_type != DistributedType.MULTI_CPU:
        return
    if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true":
        plugin = FullyShardedDataParallelPlugin()  # from the FSDP_* variables the launcher set from the config
        if accelerator.mixed_precision != "no":
            plugin.set_mixed_precision(accelerator.mixed_precision)
        accelerator.state.fsdp_plugin, kind = plugin, DistributedType.FSDP
    elif os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true":
        plugin = DeepSpeedPlugin()  # from the ACCELERATE_DEEPSPEED_* variables
        plugin.set_mixed_precision(accelerator.mixed_precision)
        if plugin.zero_stage == 3:  # small test models: ZeRO-3 would keep every parameter under 1e5 elements whole
            plugin.deepspeed_config["zero_optimization"]["stage3_param_persistence_threshold"] = 0
        plugin.select(_from_accelerator_state=True)
        accelerator.state.deepspeed_plugins, kind = plugin, DistributedType.DEEPSPEED
    else:
        return
    accelerator.state.distributed_type = kind
    PartialState._shared_state["distributed_type"] = kind  # what AcceleratorState does on a GPU


def current() -> DataParallel:
    return _current


def _cat_padded(tensors: list[torch.Tensor]) -> torch.Tensor:
    if tensors[0].ndim == 1:
        return torch.cat(tensors)
    width = max(t.shape[1] for t in tensors)
    return torch.cat([torch.nn.functional.pad(t, (0, width - t.shape[1])) for t in tensors])
