"""Direct Preference Optimization (Rafailov et al. 2023, arXiv:2305.18290): the RLHF objective
max E[r] - beta KL(pi || pi_ref) has the closed-form optimum pi* ~ pi_ref exp(r / beta), so the
reward is implicit in the policy, r(x, y) = beta log(pi(y|x) / pi_ref(y|x)) + const, and the
Bradley-Terry likelihood of the preferences can be maximized over pi directly:

    h = log pi(y_w|x) / pi_ref(y_w|x) - log pi(y_l|x) / pi_ref(y_l|x)
    L = -log sigmoid(beta h)                                                   (eq. 7)

No reward model, no sampling. The loss is a named function in LOSSES; IPO takes the log-probs
averaged over tokens (Azar et al. 2023 define it on the per-token scale), the others sum them.
`reference_free` sets log pi_ref = 0. The reference is frozen, so its log-probs are computed once
per pair (on the pair's first visit) and reused in later epochs.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Literal, NamedTuple

import torch

from rlsuite.core.loop import Figure, Loop
from rlsuite.core.run import Run
from rlsuite.core.spec import ActsOn, AlgorithmSpec
from rlsuite.errors import check
from rlsuite.lm import models, parallel, runtime, sequences
from rlsuite.lm.config import LMConfig
from rlsuite.lm.runtime import PromptOrder
from rlsuite.ops import losses
from rlsuite.ops.lm import masked_mean


class DPOLoss(NamedTuple):
    fn: Callable[..., torch.Tensor]  # (h, beta, label_smoothing) -> per-pair loss
    average_tokens: bool             # log-probs averaged over completion tokens (else summed)


LOSSES = {
    "sigmoid": DPOLoss(losses.dpo_sigmoid, average_tokens=False),  # DPO; with label_smoothing, cDPO
    "ipo": DPOLoss(losses.dpo_ipo, average_tokens=True),           # IPO: squared distance to 1 / (2 beta)
    "hinge": DPOLoss(losses.dpo_hinge, average_tokens=False),      # SLiC: max(0, 1 - beta h)
    "robust": DPOLoss(losses.dpo_robust, average_tokens=False),    # rDPO: unbiased under label noise
}


@dataclasses.dataclass(frozen=True)
class DPOConfig(LMConfig):
    task: str = "arithmetic"
    """A preference set: 'arithmetic[:LEVEL]' or 'constraints' (built-in, rlsuite.envs.preferences)
    or a local file of prompt/chosen/rejected rows (standard, conversational or implicit prompt)."""
    total_steps: int = 600
    learning_rate: float = 1e-4
    batch_size: int = 16
    """Preference pairs per optimizer step."""
    beta: float = 0.1
    """Strength of the KL to the reference: small beta lets the policy move far from it."""
    loss_type: Literal["sigmoid", "ipo", "hinge", "robust"] = "sigmoid"
    label_smoothing: float = 0.0
    """Assumed share of flipped labels (cDPO / rDPO); 0: trust every pair."""
    reference_free: bool = False
    """Take log pi_ref = 0 (no reference model): DPO then just widens the chosen/rejected gap."""
    rpo_alpha: float = 0.0
    """Weight of the chosen completions' token-mean NLL added to the loss (RPO, Pang et al. 2024: DPO
    alone lowers the chosen log-probs too, and on reasoning tasks accuracy with them); 0: pure DPO."""
    log_completions: int = 4
    """Held-out completions written to samples.jsonl at each evaluation (tasks with a verifier)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}.")
        check(self.beta > 0, f"beta must be > 0, got {self.beta}.")
        check(0 <= self.label_smoothing < 0.5, f"label_smoothing must be in [0, 0.5), got {self.label_smoothing}.")
        check(self.loss_type in LOSSES, f"loss_type must be one of {', '.join(LOSSES)}, got {self.loss_type!r}.")
        check(self.rpo_alpha >= 0, f"rpo_alpha must be >= 0, got {self.rpo_alpha}.")


class DPOState(NamedTuple):
    order: PromptOrder


def implicit_rewards(config: DPOConfig, logp: torch.Tensor, ref_logp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """beta log pi / pi_ref of the chosen and the rejected completions; logp is [2B], chosen first."""
    ratios = logp - ref_logp
    half = ratios.shape[0] // 2
    return config.beta * ratios[:half], config.beta * ratios[half:]


def dpo_loss(config: DPOConfig, logp: torch.Tensor, ref_logp: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    chosen, rejected = implicit_rewards(config, logp, ref_logp)
    h = (chosen - rejected) / config.beta
    loss = LOSSES[config.loss_type].fn(h, config.beta, config.label_smoothing).mean()
    with torch.no_grad():
        metrics = {"rewards/chosen": chosen.mean().item(), "rewards/rejected": rejected.mean().item(),
                   "rewards/accuracy": (chosen > rejected).float().mean().item(),
                   "rewards/margin": (chosen - rejected).mean().item()}
    return loss, metrics


def pair_sequence_logprobs(config: DPOConfig, model, batch: sequences.SequenceBatch) -> torch.Tensor:
    """log pi of each completion of a pairs batch, summed over tokens (IPO: averaged), [2B]."""
    return sequences.reduce_logprobs(sequences.pair_logprobs(model, batch), batch.completion_mask,
                                     average=LOSSES[config.loss_type].average_tokens)


class ReferenceLogprobs:
    """log pi_ref of each pair's two completions, computed on first use and kept: the reference is frozen."""

    def __init__(self, config: DPOConfig, reference, pairs, pad: int, device):
        self.config, self.reference, self.pairs, self.pad, self.device = config, reference, pairs, pad, device
        self.cache: dict[int, tuple[float, float]] = {}

    @torch.no_grad()
    def __call__(self, indices: list[int]) -> torch.Tensor:
        if self.config.reference_free:
            return torch.zeros(2 * len(indices), device=self.device)
        missing = [i for i in dict.fromkeys(indices) if i not in self.cache]
        if missing:
            batch = sequences.collate_pairs([self.pairs[i] for i in missing], self.pad, self.device)
            logp = pair_sequence_logprobs(self.config, self.reference, batch).tolist()
            self.cache.update((i, (logp[k], logp[k + len(missing)])) for k, i in enumerate(missing))
        chosen, rejected = zip(*(self.cache[i] for i in indices))
        return torch.tensor(chosen + rejected, device=self.device)


def dpo_step(config: DPOConfig, model, optimizer, batch: sequences.SequenceBatch, ref_logp: torch.Tensor,
             dp=parallel.SINGLE) -> dict[str, float]:
    token_logp = sequences.pair_logprobs(model, batch)
    logp = sequences.reduce_logprobs(token_logp, batch.completion_mask, average=LOSSES[config.loss_type].average_tokens)
    loss, metrics = dpo_loss(config, logp, ref_logp)
    half = logp.shape[0] // 2
    if config.rpo_alpha > 0:
        # a mean over tokens, whose count differs between processes (the DPO loss: over equal shares of pairs)
        nll = dp.global_mean(-masked_mean(token_logp[:half], batch.completion_mask[:half]), batch.completion_mask[:half].sum())
        loss = loss + config.rpo_alpha * nll
        metrics["nll"] = nll.item()
    grad_norm = runtime.optimizer_step(optimizer, loss, config.max_grad_norm)
    return {"loss": loss.item(), "grad_norm": grad_norm, **metrics,
            "logps/chosen": logp[:half].mean().item(), "logps/rejected": logp[half:].mean().item()}


@torch.no_grad()
def preference_accuracy(config: DPOConfig, model, reference: ReferenceLogprobs, batch_size: int = 64) -> dict[str, float]:
    """Held-out implicit-reward accuracy: the share of test pairs whose chosen completion gets the
    larger beta log pi / pi_ref, and the mean margin."""
    correct, margins = [], []
    with models.eval_mode(model):
        for start in range(0, len(reference.pairs), batch_size):
            indices = list(range(start, min(start + batch_size, len(reference.pairs))))
            batch = sequences.collate_pairs([reference.pairs[i] for i in indices], reference.pad, reference.device)
            chosen, rejected = implicit_rewards(config, pair_sequence_logprobs(config, model, batch), reference(indices))
            correct.append(chosen > rejected)
            margins.append(chosen - rejected)
    return {"preference_accuracy": torch.cat(correct).float().mean().item(), "preference_margin": torch.cat(margins).mean().item()}


def train(config: DPOConfig, run_dir=None, **options) -> Run:
    run = runtime.setup(config, preferences="paired")
    model, tokenizer, dp = run.model, run.tokenizer, run.dp
    pad = tokenizer.pad_token_id
    dp.per_process("batch-size", config.batch_size, "pairs")
    # Built before the Loop restores a checkpoint, so it holds the starting weights.
    reference = None if config.reference_free else models.frozen_reference(model)
    train_ref = ReferenceLogprobs(config, reference, sequences.encode_pairs(tokenizer, run.task.train, config), pad, run.device)
    test_ref = ReferenceLogprobs(config, reference, sequences.encode_pairs(tokenizer, run.task.test, config), pad, run.device)
    held_out = runtime.HeldOutEvaluation(run, model)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate, weight_decay=0.0)

    def evaluate(step: int) -> dict[str, float]:
        scores = preference_accuracy(config, model, test_ref)
        return {**held_out(step), **scores} if "solution" in run.task.reward_columns else scores

    with Loop("dpo", config, run_dir, budget=config.budget, schedule=config.schedule,
              parts=dp.parts(model=model, optimizer=optimizer), evaluate=evaluate,
              export=dp.export(model, tokenizer),
              figures={"curve.png": Figure(), "rewards.png": Figure(("rewards/margin",))}, **dp.loop_options(options)) as loop:
        held_out.attach(loop)
        dp.attach(loop)
        state = loop.start(lambda: DPOState(PromptOrder()))
        trained, step_optimizer = dp.prepare(model, optimizer=optimizer)
        model.train()
        while loop.running():
            indices, order = state.order.take(config.batch_size, len(train_ref.pairs), config.seed)
            indices = dp.shard(indices)
            batch = sequences.collate_pairs([train_ref.pairs[i] for i in indices], pad, run.device)
            metrics = dpo_step(config, trained, step_optimizer, batch, train_ref(indices), dp)
            state = DPOState(order)
            loop.record(1, dp.mean_metrics(metrics), state=state)
        return dp.finish(loop)


SPEC = AlgorithmSpec(
    name="dpo",
    family="llm",
    summary="Direct Preference Optimization on chosen/rejected pairs: sigmoid (cDPO), IPO, hinge and robust losses; reference-free and RPO options",
    config=DPOConfig,
    train=train,
    acts_on=ActsOn("text"),
    # On the built-in arithmetic preferences pure DPO reaches the preference target but lowers
    # accuracy (the chosen answers' log-probs fall too); RPO's NLL term keeps and raises it (bench/RESULTS.md).
    presets={"arithmetic": {"rpo_alpha": 1.0}},
    load=runtime.load_policy,
)
preset = SPEC.preset
