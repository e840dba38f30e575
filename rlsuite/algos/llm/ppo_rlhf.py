"""PPO for RLHF (Ziegler et al. 2019; Stiennon et al. 2020; Ouyang et al. 2022): the third stage
of InstructGPT, with its four models: the policy, a frozen reference (the starting policy), a
value model (a scalar head per token) and a reward model (or rule-based reward functions).

Each generated token is an action; the episode is one completion. The reward of token t is

    r_t = -kl_coef * KL_t + [t is the last generated token] * score(x, y)

with KL_t = log pi(y_t) - log pi_ref(y_t) (k1, or the k3 estimator) and the score of the whole
completion placed on its last token: the EOS when it ended, else the last token sampled before
the length limit (then `missing_eos_penalty` is subtracted from the score, if set). GAE over
tokens (ops.returns.token_gae: the completion is the episode), advantages whitened over real
tokens, and the classic PPO losses on the masked tokens (ops.losses.ppo_clip and value_loss with
value clipping), several epochs per rollout, one optimizer over policy and value model.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, NamedTuple

import torch

from rlsuite.core.loop import Figure, Loop
from rlsuite.core.run import Run
from rlsuite.core.spec import ActsOn, AlgorithmSpec
from rlsuite.errors import check
from rlsuite.lm import models, parallel, runtime, scalar, sequences
from rlsuite.lm.config import LMConfig
from rlsuite.lm.generation import make_generator, stop_token_ids
from rlsuite.lm.runtime import LMRun, PromptOrder
from rlsuite.ops import losses, rewards
from rlsuite.ops.lm import ends_with_stop, masked_mean, token_logprobs
from rlsuite.ops.returns import masked_whiten, rlhf_token_rewards, token_gae


@dataclasses.dataclass(frozen=True)
class PPORLHFConfig(LMConfig):
    learning_rate: float = 3e-5
    reward_model: str = ""
    """A reward_model run (or saved *ForSequenceClassification) with the policy's tokenizer; empty: use `rewards`."""
    rewards: tuple[str, ...] = ("accuracy", "format")
    """Reward functions (rlsuite.ops.rewards.REWARDS) scoring completions when no reward_model is given."""
    reward_weights: tuple[float, ...] = (1.0, 0.1)
    value_model: str = ""
    """A causal LM the value model starts from; empty: the reward model (InstructGPT's choice), else the policy's model."""
    batch_size: int = 64
    """Prompts per rollout, one completion each."""
    minibatches: int = 4
    ppo_epochs: int = 4
    """Passes over each rollout; every minibatch is one optimizer step (the budget counts them)."""
    kl_coef: float = 0.05
    kl_estimator: Literal["k1", "k3"] = "k1"
    gamma: float = 1.0
    lam: float = 0.95
    cliprange: float = 0.2
    cliprange_value: float = 0.2
    vf_coef: float = 0.1
    whiten_rewards: bool = False
    temperature: float = 1.0
    missing_eos_penalty: float = 0.0
    """Subtracted from the score of a completion cut at max_completion_length (0: none)."""
    generator: Literal["auto", "torch", "vllm"] = "auto"
    log_completions: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.batch_size % self.minibatches == 0 and self.minibatches >= 1,
              f"minibatches ({self.minibatches}) must be >= 1 and divide batch_size ({self.batch_size}).")
        check(self.ppo_epochs >= 1, f"ppo_epochs must be >= 1, got {self.ppo_epochs}.")
        check(self.kl_coef >= 0, f"kl_coef must be >= 0, got {self.kl_coef}.")
        check(0 <= self.gamma <= 1 and 0 <= self.lam <= 1, "gamma and lam must be in [0, 1].")
        check(self.temperature > 0, f"temperature must be > 0, got {self.temperature}.")
        check(bool(self.reward_model) or len(self.rewards) >= 1, "give --reward-model RUN or at least one reward function.")
        check(len(self.reward_weights) == len(self.rewards), "give one reward weight per reward function.")
        unknown = [r for r in self.rewards if not rewards.is_known(r)]
        check(not unknown, f"unknown reward function(s) {', '.join(unknown)}; choose from {', '.join(rewards.REWARDS)} or model:PATH.")


class PPORLHFState(NamedTuple):
    order: PromptOrder
    rollouts: int = 0


class Rollout(NamedTuple):
    batch: sequences.SequenceBatch  # prompts and sampled completions
    logp: torch.Tensor              # [B, C] log pi_old
    values: torch.Tensor            # [B, C] V_old of the state before each token
    advantages: torch.Tensor        # [B, C] whitened, 0 on padding
    returns: torch.Tensor           # [B, C]


def completion_values(value_model, batch: sequences.SequenceBatch) -> torch.Tensor:
    """V(s_t) for each completion token t: the head at the token before it (the state it was chosen in)."""
    P = batch.completion_start
    return scalar.token_scores(value_model, batch.input_ids, batch.attention_mask)[:, P - 1:-1]


def scores_of(config: PPORLHFConfig, run: LMRun, reward_model, reward_fns, batch, rows) -> torch.Tensor:
    if reward_model is not None:
        with torch.no_grad():
            return scalar.sequence_scores(reward_model, batch.input_ids, batch.attention_mask)
    texts = runtime.completions_text(run.tokenizer, batch.completion_ids, batch.completion_mask)
    cols = runtime.columns(rows, run.task.reward_columns)
    cols["prompts"] = [row["prompt"] for row in rows]
    totals, _ = rewards.score(reward_fns, dict(zip(config.rewards, config.reward_weights)), runtime.as_conversation(texts), **cols)
    return torch.tensor(totals, dtype=torch.float32, device=batch.input_ids.device)


def make_rollout(config, run, policy, reference, value_model, reward_model, reward_fns, generator, order):
    indices, order = order.take(config.batch_size, len(run.train_prompts), config.seed)
    indices = run.dp.shard(indices)
    rows, prompts = [run.task.train[i] for i in indices], [run.train_prompts[i] for i in indices]
    out = generator.generate(prompts, num_generations=1, max_new_tokens=config.max_completion_length, temperature=config.temperature)
    pad = run.tokenizer.pad_token_id
    completions = [ids[m.bool()].tolist() or [pad] for ids, m in zip(out.ids.cpu(), out.mask.cpu())]
    batch = sequences.collate(prompts, completions, pad, run.device)
    mask = batch.completion_mask
    with torch.no_grad():
        logp = token_logprobs(policy, batch.input_ids, batch.attention_mask, batch.completion_start, config.temperature)
        ref_logp = token_logprobs(reference, batch.input_ids, batch.attention_mask, batch.completion_start, config.temperature)
        values = completion_values(value_model, batch)
    scores = scores_of(config, run, reward_model, reward_fns, batch, rows)
    ended = ends_with_stop(batch.completion_ids, mask, stop_token_ids(policy, run.tokenizer))
    scores = scores - config.missing_eos_penalty * (~ended).float()
    token_rewards, kl = rlhf_token_rewards(scores, logp, ref_logp, mask, config.kl_coef, config.kl_estimator)
    # Whitening statistics span the whole rollout, every process's rows.
    if config.whiten_rewards:
        token_rewards = run.dp.over_all_rows(lambda r, m: masked_whiten(r, m, shift_mean=False) * m, token_rewards, mask)
    advantages, returns = token_gae(token_rewards, values, mask, config.gamma, config.lam)
    advantages = run.dp.over_all_rows(lambda a, m: masked_whiten(a, m) * m, advantages, mask)
    kl_sum = (kl * mask).sum(1)
    metrics = {"score": scores.mean().item(), "kl": kl_sum.mean().item(), "non_score_reward": (-config.kl_coef * kl_sum).mean().item(),
               "rlhf_reward": (scores - config.kl_coef * kl_sum).mean().item(), "completions/mean_length": mask.sum(1).float().mean().item(),
               "completions/ended": ended.float().mean().item()}
    return Rollout(batch, logp, values, advantages, returns), order, metrics


def ppo_step(config, policy, value_model, optimizer, rollout: Rollout, rows: torch.Tensor, dp=parallel.SINGLE) -> dict[str, float]:
    """One optimizer step of the clipped policy loss and the clipped value loss on rollout rows `rows`
    (both means over real tokens, whose count differs between processes: dp.global_mean)."""
    b = rollout.batch
    mini = sequences.SequenceBatch(b.input_ids[rows], b.attention_mask[rows], b.completion_start, b.completion_mask[rows])
    real = mini.completion_mask.bool()
    logp = token_logprobs(policy, mini.input_ids, mini.attention_mask, mini.completion_start, config.temperature)
    values = completion_values(value_model, mini)
    policy_loss, info = losses.ppo_clip(logp[real], rollout.logp[rows][real], rollout.advantages[rows][real], config.cliprange)
    value_loss = losses.value_loss(values[real], rollout.returns[rows][real], rollout.values[rows][real], config.cliprange_value)
    loss = dp.global_mean(policy_loss + config.vf_coef * value_loss, real.sum())
    grad_norm = runtime.optimizer_step(optimizer, loss, config.max_grad_norm)
    with torch.no_grad():
        value_error = masked_mean((values - rollout.returns[rows]) ** 2, mini.completion_mask)
    return {"policy_loss": policy_loss.item(), "value_loss": value_loss.item(), "value_error": value_error.item(),
            "grad_norm": grad_norm, **{k: float(v) for k, v in info.items()}}


def reward_model_for(config: PPORLHFConfig, run: LMRun):
    if not config.reward_model:
        return None
    model, tokenizer = scalar.load(config.reward_model)
    scalar.check_same_tokenizer(run.tokenizer, tokenizer, "reward model")
    return model.to(run.device).eval().requires_grad_(False)


def value_model_for(config: PPORLHFConfig, run: LMRun):
    start = config.value_model or config.reward_model
    model, tokenizer = scalar.load(start) if start and not config.value_model else scalar.from_causal_lm(start or config.model, seed=config.seed)
    scalar.check_same_tokenizer(run.tokenizer, tokenizer, "value model")
    return model.to(device=run.device, dtype=runtime.resolve_dtype(config, run.device))


def train(config: PPORLHFConfig, run_dir=None, **options) -> Run:
    run = runtime.setup(config, needs=("prompt",))
    policy, tokenizer, dp = run.model, run.tokenizer, run.dp
    local = dp.per_process("batch-size", config.batch_size, "prompts", config.minibatches, " split into --minibatches")
    dp.check_models(2, "ppo_rlhf trains the policy and the value model with one optimizer")
    reference = models.frozen_reference(policy)  # built before the Loop restores a checkpoint: the starting weights
    reward_model = reward_model_for(config, run)
    value_model = value_model_for(config, run)
    reward_fns = {} if reward_model is not None else {n: scalar.reward_function(n, device=run.device)
                                                      for n in config.rewards}
    parameters = [p for p in policy.parameters() if p.requires_grad] + list(value_model.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=0.0, eps=1e-5)
    generator = make_generator(config.generator, policy, tokenizer, run.device, seed=config.seed)
    held_out = runtime.HeldOutEvaluation(run, policy)
    with Loop("ppo_rlhf", config, run_dir, budget=config.budget, schedule=config.schedule,
              parts={"model": policy, "value_model": value_model, "optimizer": optimizer},
              evaluate=held_out if "solution" in run.task.reward_columns else None,
              export=lambda directory: models.save(policy, tokenizer, directory),
              figures={"curve.png": Figure(("score",)), "kl.png": Figure(("kl",))}, **dp.loop_options(options)) as loop:
        held_out.attach(loop)
        dp.attach(loop)
        state = loop.start(lambda: PPORLHFState(PromptOrder()))
        trained, value_scores, step_optimizer = dp.prepare(policy, scalar.TokenScores(value_model), optimizer=optimizer)
        generator.sync(policy)
        policy.train(), value_model.train()
        while loop.running():
            dp.reseed(config.seed, loop.step)
            rollout, order, metrics = make_rollout(config, run, policy, reference, value_model, reward_model, reward_fns, generator, state.order)
            state = PPORLHFState(order, state.rollouts + 1)
            size = local // config.minibatches  # minibatches of this process's rollout rows
            generator_rng = torch.Generator().manual_seed(config.seed + state.rollouts)
            for _ in range(config.ppo_epochs):
                permutation = torch.randperm(local, generator=generator_rng).to(run.device)
                for start in range(0, local, size):
                    metrics.update(ppo_step(config, trained, value_scores, step_optimizer, rollout, permutation[start:start + size], dp))
                    loop.record(1, dp.mean_metrics(metrics), state=state)
                    metrics = {}
                    if loop.step >= loop.budget.total:
                        break
                if loop.step >= loop.budget.total:
                    break
            generator.sync(policy)
        return dp.finish(loop)


SPEC = AlgorithmSpec(
    name="ppo_rlhf",
    family="llm",
    summary="PPO for RLHF: policy, frozen reference, value model and reward model; per-token KL penalty, token GAE, clipped losses",
    config=PPORLHFConfig,
    train=train,
    acts_on=ActsOn("text"),
    load=runtime.load_policy,
)
preset = SPEC.preset
