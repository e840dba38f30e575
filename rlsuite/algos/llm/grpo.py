"""Group Relative Policy Optimization (Shao et al. 2024, DeepSeekMath, arXiv:2402.03300), as
DeepSeek-R1-Zero uses it (arXiv:2501.12948): for each prompt, sample G completions from the old
policy, score them with rule-based verifiers, and raise the probability of the better ones:

    A_i = (r_i - mean(r_1..r_G)) / (std(r_1..r_G) + eps)          no value model, no reward model
    L = -agg_t[ min(rho_t A_i, clip(rho_t, 1 - eps, 1 + eps_high) A_i) - beta KL_k3(pi || pi_ref) ]

with rho_t = pi(o_t | q, o_<t) / pi_old(o_t | q, o_<t). The variants of the literature are
options: `scale_rewards` (group / batch / none: Dr. GRPO drops the std), `epsilon_high` (DAPO's
clip-higher), `loss_type` (LOSS_AGGREGATIONS: how token terms are averaged), `dynamic_sampling`
(DAPO: groups whose rewards all tie carry no signal; drop them, or sample more prompts), and
`num_iterations` (mu: reuse a generation batch, with the old log-probs stored). beta > 0 adds the
KL to a frozen copy of the starting model (with LoRA: the same model with the adapters off).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Literal, NamedTuple

import numpy as np
import torch

from rlsuite.core.loop import Figure, Loop
from rlsuite.core.run import Run
from rlsuite.core.spec import ActsOn, AlgorithmSpec
from rlsuite.errors import check
from rlsuite.lm import models, parallel, runtime, scalar
from rlsuite.lm.config import LMConfig
from rlsuite.lm.generation import make_generator, pad_left, stop_token_ids
from rlsuite.lm.runtime import LMRun, PromptOrder
from rlsuite.ops import lm, losses, rewards
from rlsuite.ops.returns import group_advantages

LOSS_AGGREGATIONS = {
    "grpo": losses.sequence_mean,      # each completion's token mean, then the mean over completions
    "dapo": losses.token_mean,         # one mean over every token of the batch
    "dr_grpo": losses.constant_length, # the token sum over completions x max_completion_length
}


@dataclasses.dataclass(frozen=True)
class GRPOConfig(LMConfig):
    learning_rate: float = 5e-5
    """Adam step size. Tuned briefly on the built-in model: 3e-5 and 5e-5 rise slowly, 1e-4 drifts down,
    2e-4 collapses it within 25 steps. Billion-parameter models want ~1e-6."""
    num_generations: int = 8
    """G: completions sampled per prompt (a group); advantages compare completions within a group."""
    batch_size: int = 128
    """Completions per generation batch: batch_size / num_generations prompts (16 by default: on the
    built-in task about a third of the groups tie, and fewer informative groups make noisy steps)."""
    minibatches: int = 1
    """Optimizer steps per pass over a generation batch (each on batch_size / minibatches completions)."""
    num_iterations: int = 1
    """mu: passes over each generation batch (> 1 reuses samples, with the old log-probs stored)."""
    temperature: float = 1.0
    """Sampling temperature (the log-probs are computed at the same temperature)."""
    top_p: float = 1.0
    epsilon: float = 0.2
    """Lower clip range of the ratio: 1 - epsilon."""
    epsilon_high: float | None = None
    """Upper clip range: 1 + epsilon_high (None: epsilon; DAPO's clip-higher uses 0.28)."""
    beta: float = 0.0
    """Weight of the k3 KL to the frozen starting model (0: no reference model, as DAPO and Dr. GRPO)."""
    scale_rewards: Literal["group", "batch", "none"] = "group"
    """Divide advantages by the group's reward std, the batch's, or nothing (Dr. GRPO)."""
    loss_type: Literal["grpo", "dapo", "dr_grpo"] = "grpo"
    """Token aggregation (LOSS_AGGREGATIONS): per-sequence mean, token mean, or constant normalizer."""
    dynamic_sampling: Literal["off", "drop", "resample"] = "off"
    """Groups whose rewards all tie: keep them, drop them from the loss, or sample more prompts (DAPO)."""
    max_resample_rounds: int = 4
    """With dynamic_sampling=resample: extra generation rounds at most per batch."""
    rewards: tuple[str, ...] = ("accuracy", "format")
    """Reward functions (rlsuite.ops.rewards.REWARDS), summed with reward_weights."""
    reward_weights: tuple[float, ...] = (1.0, 0.1)
    generator: Literal["auto", "torch", "vllm"] = "auto"
    """Sampling engine: vLLM when installed with a CUDA GPU ('auto'), else the model itself."""
    log_completions: int = 4
    """Held-out completions written to samples.jsonl at each evaluation."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.num_generations >= 2, f"num_generations must be >= 2, got {self.num_generations}: GRPO's baseline is the mean "
              "reward of a prompt's other completions, so a single completion has nothing to be compared with.")
        check(self.batch_size % self.num_generations == 0,
              f"batch_size ({self.batch_size}) must be a multiple of num_generations ({self.num_generations}): a generation batch is "
              f"whole groups of G completions of one prompt (e.g. --batch-size {max(1, self.batch_size // self.num_generations) * self.num_generations} "
              f"trains on {max(1, self.batch_size // self.num_generations)} prompts).")
        check(self.minibatches >= 1 and self.batch_size % self.minibatches == 0,
              f"minibatches ({self.minibatches}) must be >= 1 and divide batch_size ({self.batch_size}).")
        check(self.num_iterations >= 1, f"num_iterations must be >= 1, got {self.num_iterations}.")
        check(self.temperature > 0, f"temperature must be > 0 for GRPO's sampling, got {self.temperature}.")
        check(0 < self.top_p <= 1, f"top_p must be in (0, 1], got {self.top_p}.")
        check(0 < self.epsilon < 1, f"epsilon must be in (0, 1), got {self.epsilon}.")
        check(self.epsilon_high is None or self.epsilon_high > 0, f"epsilon_high must be > 0, got {self.epsilon_high}.")
        check(self.beta >= 0, f"beta must be >= 0, got {self.beta}.")
        check(len(self.rewards) >= 1, "give at least one reward function (--rewards accuracy format).")
        unknown = [r for r in self.rewards if not rewards.is_known(r)]
        check(not unknown, f"unknown reward function(s) {', '.join(unknown)}; choose from {', '.join(rewards.REWARDS)} or model:PATH.")
        check(len(self.reward_weights) == len(self.rewards),
              f"reward_weights has {len(self.reward_weights)} values for {len(self.rewards)} rewards ({', '.join(self.rewards)}); give one weight each.")
        check(self.max_resample_rounds >= 0, f"max_resample_rounds must be >= 0, got {self.max_resample_rounds}.")


class GRPOState(NamedTuple):
    order: PromptOrder
    generation_batches: int = 0


class Group(NamedTuple):
    """One prompt's G completions and their scores, as sampled."""

    prompt: list[int]
    ids: torch.Tensor                            # [G, C] right-padded completions
    mask: torch.Tensor                           # [G, C]
    totals: np.ndarray                           # [G] weighted reward sums
    tied: bool                                   # every completion got the same total
    per_function: dict[str, list[float | None]]  # each reward function's values
    text: list[str]


class GenerationBatch(NamedTuple):
    prompt_ids: torch.Tensor      # [B / G, P]: each group's prompt once, left-padded
    prompt_mask: torch.Tensor     # [B / G, P]
    completion_ids: torch.Tensor  # [B, C]: prompt i's completions are rows i*G .. i*G+G-1
    completion_mask: torch.Tensor # [B, C]
    group_size: int               # G
    advantages: torch.Tensor      # [B]
    old_logp: torch.Tensor | None # [B, C] when samples are reused (mu > 1 or minibatches > 1)
    ref_logp: torch.Tensor | None # [B, C] when beta > 0


def reward_functions(config: GRPOConfig, run: LMRun) -> dict[str, Any]:
    """The configured reward functions, with options the run knows (lengths, a pre-filled <think>)."""
    options = {
        "format": dict(think_prefilled=run.think_prefilled),
        "tag_count": dict(think_prefilled=run.think_prefilled),
        "cosine": dict(max_length=config.max_completion_length),
        "overlong": dict(max_length=config.max_completion_length, cache_length=max(1, config.max_completion_length // 4)),
    }
    return {name: scalar.reward_function(name, device=run.device, **options.get(name, {})) for name in config.rewards}


def sample_groups(config: GRPOConfig, run: LMRun, generator, reward_fns, order: PromptOrder):
    """Draw prompts, sample G completions each and score them; with dynamic_sampling=resample,
    draw more prompts until the batch holds batch_size / G groups whose rewards do not all tie."""
    G, wanted = config.num_generations, config.batch_size // config.num_generations
    local = len(run.dp.shard(range(wanted)))  # this process's groups: whole groups, so their advantages stay local
    weights = dict(zip(config.rewards, config.reward_weights))
    kept: list[Group] = []
    tied_share = []
    rounds = 0
    while True:
        indices, order = order.take(wanted, len(run.train_prompts), config.seed)
        indices = run.dp.shard(indices)
        rows = [run.task.train[i] for i in indices]
        prompts = [run.train_prompts[i] for i in indices]
        out = generator.generate(prompts, num_generations=G, max_new_tokens=config.max_completion_length,
                                 temperature=config.temperature, top_p=config.top_p)
        texts = runtime.completions_text(run.tokenizer, out.ids, out.mask)
        cols = runtime.columns(rows, run.task.reward_columns, G)
        cols["prompts"] = [row["prompt"] for row in rows for _ in range(G)]
        cols["completion_ids"] = [row[m.bool()].tolist() for row, m in zip(out.ids.cpu(), out.mask.cpu())]
        totals, per_function = rewards.score(reward_fns, weights, runtime.as_conversation(texts), **cols)
        totals = np.asarray(totals, dtype=np.float64).reshape(-1, G)
        tied = totals.std(axis=1) == 0
        tied_share.append(float(tied.mean()))
        for g in range(len(rows)):
            group = slice(g * G, (g + 1) * G)
            kept.append(Group(prompts[g], out.ids[group], out.mask[group], totals[g], bool(tied[g]),
                              {k: v[group] for k, v in per_function.items()}, texts[group]))
        informative = sum(not k.tied for k in kept)
        if config.dynamic_sampling != "resample" or run.dp.sum(informative) >= wanted or rounds >= config.max_resample_rounds:
            break
        rounds += 1
    if config.dynamic_sampling == "resample":
        # The informative groups first; tied ones only fill a batch the rounds could not.
        kept = sorted(kept, key=lambda k: k.tied)[:local]
    return kept, order, {"frac_reward_zero_std": float(np.mean(tied_share)), "resample_rounds": float(rounds)}


def build_batch(config: GRPOConfig, run: LMRun, groups: list[Group], policy, reference) -> tuple[GenerationBatch, dict[str, float]]:
    """Advantages from the groups' rewards, the padded token tensors, and the stored log-probs."""
    if config.dynamic_sampling == "drop":
        informative = [g for g in groups if not g.tied]
        groups = informative or groups[:1]  # all tied: one group, whose zero advantages make a no-op step
    G, pad = config.num_generations, run.tokenizer.pad_token_id
    totals = torch.tensor(np.concatenate([g.totals for g in groups]), dtype=torch.float32)
    # The batch std spans every process's completions (each group's mean and std are its own process's).
    advantages, group_std = run.dp.over_all_rows(lambda r: group_advantages(r, G, config.scale_rewards), totals)
    prompt_ids, prompt_mask = pad_left([g.prompt for g in groups], pad)
    width = max(g.ids.shape[1] for g in groups)
    completion = torch.full((len(totals), width), pad, dtype=torch.long)
    completion_mask = torch.zeros((len(totals), width), dtype=torch.long)
    for i, g in enumerate(groups):
        completion[i * G:(i + 1) * G, :g.ids.shape[1]] = g.ids.cpu()
        completion_mask[i * G:(i + 1) * G, :g.ids.shape[1]] = g.mask.cpu()
    device = run.device
    batch = GenerationBatch(prompt_ids.to(device), prompt_mask.to(device), completion.to(device), completion_mask.to(device),
                            G, advantages.to(device), None, None)
    everything = slice(0, len(totals))
    with torch.no_grad():
        old = _logprobs(config, policy, batch, everything) if config.num_iterations > 1 or config.minibatches > 1 else None
        ref = _logprobs(config, reference, batch, everything) if config.beta != 0 else None
    lengths = completion_mask.sum(1).float()
    ended = lm.ends_with_stop(completion, completion_mask, stop_token_ids(policy, run.tokenizer))
    metrics = {
        "reward": float(totals.mean()),
        "reward_std": float(group_std.mean()),
        "completions/mean_length": float(lengths.mean()),
        "completions/max_length": float(lengths.max()),
        "completions/clipped_ratio": float(1.0 - ended.float().mean()),
    }
    for name in config.rewards:
        values = np.array([np.nan if v is None else v for g in groups for v in g.per_function[name]], dtype=np.float64)
        if not np.isnan(values).all():
            metrics[f"rewards/{name}/mean"] = float(np.nanmean(values))
            metrics[f"rewards/{name}/std"] = float(np.nanstd(values))
    return batch._replace(old_logp=old, ref_logp=ref), metrics


def _logprobs(config: GRPOConfig, model, batch: GenerationBatch, rows: slice) -> torch.Tensor:
    """log pi of the completions `rows`; whole groups run each prompt once (ops.lm.group_token_logprobs)."""
    G = batch.group_size
    if rows.start % G == 0 and rows.stop % G == 0:
        prompts = slice(rows.start // G, rows.stop // G)
        return lm.group_token_logprobs(model, batch.prompt_ids[prompts], batch.prompt_mask[prompts], batch.completion_ids[rows], G,
                                       temperature=config.temperature)
    prompt_ids, prompt_mask = (t.repeat_interleave(G, 0)[rows] for t in (batch.prompt_ids, batch.prompt_mask))
    input_ids = torch.cat([prompt_ids, batch.completion_ids[rows]], 1)
    attention_mask = torch.cat([prompt_mask, batch.completion_mask[rows]], 1)
    return lm.token_logprobs(model, input_ids, attention_mask, prompt_ids.shape[1], temperature=config.temperature)


def grpo_step(config: GRPOConfig, model, optimizer, batch: GenerationBatch, rows: slice, dp=parallel.SINGLE) -> dict[str, float]:
    """One optimizer step on the completions `rows` of a generation batch."""
    mask = batch.completion_mask[rows]
    logp = _logprobs(config, model, batch, rows)
    old = batch.old_logp[rows] if batch.old_logp is not None else logp.detach()
    ref = batch.ref_logp[rows] if batch.ref_logp is not None else None
    epsilon_high = config.epsilon if config.epsilon_high is None else config.epsilon_high
    loss, info = losses.grpo(logp, old, batch.advantages[rows], mask, epsilon=config.epsilon, epsilon_high=epsilon_high,
                             aggregate=LOSS_AGGREGATIONS[config.loss_type], max_length=config.max_completion_length,
                             ref_logp=ref, beta=config.beta)
    loss = dp.global_mean(loss, mask.sum() if config.loss_type == "dapo" else mask.shape[0])  # a mean over tokens or completions
    grad_norm = runtime.optimizer_step(optimizer, loss, config.max_grad_norm)
    return {"loss": loss.item(), "grad_norm": grad_norm, **{k: float(v) for k, v in info.items()}}


def train(config: GRPOConfig, run_dir=None, **options) -> Run:
    run = runtime.setup(config)
    model, tokenizer, dp = run.model, run.tokenizer, run.dp
    dp.per_process("batch-size", config.batch_size, "completions", np.lcm(config.num_generations, config.minibatches), " in whole groups")
    reference = models.frozen_reference(model) if config.beta != 0 else None  # built before a restore: the starting weights
    reward_fns = reward_functions(config, run)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate, weight_decay=0.0)
    generator = make_generator(config.generator, model, tokenizer, run.device, seed=config.seed)
    evaluate = runtime.HeldOutEvaluation(run, model)
    with Loop("grpo", config, run_dir, budget=config.budget, schedule=config.schedule,
              parts=dp.parts(model=model, optimizer=optimizer), evaluate=evaluate,
              export=dp.export(model, tokenizer),
              figures={"curve.png": Figure(), "rewards.png": Figure(("reward",))}, **dp.loop_options(options)) as loop:
        evaluate.attach(loop)
        dp.attach(loop)
        state = loop.start(lambda: GRPOState(PromptOrder()))
        trained, step_optimizer = dp.prepare(model, optimizer=optimizer)
        generator.sync(model)  # a restored checkpoint changed the weights
        model.train()
        while loop.running():
            started = time.perf_counter()
            dp.reseed(config.seed, loop.step)
            groups, order, sampling = sample_groups(config, run, generator, reward_fns, state.order)
            generated = time.perf_counter()
            batch, metrics = build_batch(config, run, groups, model, reference)
            metrics.update(sampling, **{"timing/generation_seconds": generated - started})
            state = GRPOState(order, state.generation_batches + 1)
            size = batch.completion_ids.shape[0]  # per process; the same on all unless dynamic_sampling drops groups
            step_rows = size // config.minibatches if not dp.any(size % config.minibatches) else size
            for _ in range(config.num_iterations):
                for start in range(0, size, step_rows):
                    if loop.step >= loop.budget.total:  # checked here, so the mu passes left stop too
                        break
                    metrics.update(grpo_step(config, trained, step_optimizer, batch, slice(start, start + step_rows), dp))
                    loop.record(1, dp.mean_metrics(metrics), state=state)
                    metrics = {}
            generator.sync(model)
        return dp.finish(loop)


SPEC = AlgorithmSpec(
    name="grpo",
    family="llm",
    summary="GRPO with verifiable rewards (DeepSeek-R1-Zero): group-relative advantages, clipped ratio, k3 KL; DAPO and Dr. GRPO variants",
    config=GRPOConfig,
    train=train,
    acts_on=ActsOn("text"),
    load=runtime.load_policy,
)
preset = SPEC.preset
