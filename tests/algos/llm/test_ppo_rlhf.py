"""PPO-RLHF: values read before each token, the rollout's rewards, KL, GAE and whitening by hand,
one update against autograd on an independent re-implementation, the reward-model path, bad
input, and a bit-exact resume."""

import copy
import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from rlsuite import api  # noqa: E402
from rlsuite.algos.llm import ppo_rlhf  # noqa: E402
from rlsuite.envs.text import TextTask  # noqa: E402
from rlsuite.errors import ConfigError, InputError  # noqa: E402
from rlsuite.lm import models, runtime, scalar, sequences  # noqa: E402
from rlsuite.lm.runtime import LMRun, PromptOrder  # noqa: E402
from rlsuite.ops.lm import Completions, token_logprobs  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer():
    return models.build_tokenizer()


def tiny_config(tokenizer, **extra):
    return transformers.Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                    pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, **extra)


def tiny_policy(tokenizer, seed=0):
    torch.manual_seed(seed)
    return transformers.Qwen2ForCausalLM(tiny_config(tokenizer))


def tiny_value_model(tokenizer, seed=1):
    """A scalar model with a head large enough that values differ visibly from token to token."""
    torch.manual_seed(seed)
    model = transformers.Qwen2ForSequenceClassification(tiny_config(tokenizer, num_labels=1))
    with torch.no_grad():
        model.score.weight.mul_(50.0)
    return model


def perturbed(model, scale=0.05, seed=7):
    other = copy.deepcopy(model)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return other


# --- reading the models by hand, one unpadded sequence at a time ------------------------------------------------------

def hand_logp(model, prompt, completion, temperature=1.0):
    ids = torch.tensor([prompt + completion])
    logits = model(input_ids=ids).logits[0, len(prompt) - 1:len(prompt) + len(completion) - 1] / temperature
    return logits.log_softmax(-1).gather(-1, torch.tensor(completion)[:, None]).squeeze(-1)


def hand_values(value_model, prompt, completion):
    """V(s_t): the head at the token before completion token t (the last prompt token for t = 0)."""
    ids = torch.tensor([prompt + completion])
    hidden = value_model.model(input_ids=ids).last_hidden_state
    return value_model.score(hidden)[0, len(prompt) - 1:len(prompt) + len(completion) - 1, 0]


def hand_gae(rewards, values, gamma, lam):
    """delta_t = r_t + gamma V_{t+1} - V_t (V after the last token: 0), A_t = delta_t + gamma lam A_{t+1}."""
    n = len(rewards)
    advantages = [0.0] * n
    running = 0.0
    for t in reversed(range(n)):
        next_value = values[t + 1] if t + 1 < n else 0.0
        running = rewards[t] + gamma * next_value - values[t] + gamma * lam * running
        advantages[t] = running
    return advantages


# --- completion_values ---------------------------------------------------------------------------------------------

PROMPTS = [[40, 41, 42], [43, 44], [45, 46, 47, 48]]


def test_completion_values_read_the_head_at_the_token_before_each_completion_token(tokenizer):
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    completions = [[50, 51, eos], [52, 53, 54, 55], [56, eos]]
    value_model = tiny_value_model(tokenizer).eval()
    batch = sequences.collate(PROMPTS, completions, pad, "cpu")
    P = batch.completion_start
    assert P == 4  # the longest prompt; the others are left-padded
    with torch.no_grad():
        values = ppo_rlhf.completion_values(value_model, batch)
        every = scalar.token_scores(value_model, batch.input_ids, batch.attention_mask)
        assert values.shape == batch.completion_mask.shape
        for b, completion in enumerate(completions):
            for j in range(len(completion)):
                assert values[b, j].item() == every[b, P + j - 1].item()  # column P + j - 1 holds the token before token j
            torch.testing.assert_close(values[b, :len(completion)], hand_values(value_model, PROMPTS[b], completion),
                                       rtol=1e-4, atol=1e-5)


# --- make_rollout --------------------------------------------------------------------------------------------------

class ScriptedGenerator:
    """Returns the completions it is given, whatever the prompts (right-padded ids and their mask)."""

    def __init__(self, completions, pad, width):
        ids = torch.full((len(completions), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, c in enumerate(completions):
            ids[i, :len(c)] = torch.tensor(c)
            mask[i, :len(c)] = 1
        self.out, self.calls = Completions(ids, mask), []

    def generate(self, prompts, *, num_generations=1, max_new_tokens, temperature=1.0, top_p=1.0):
        self.calls.append((list(prompts), num_generations, max_new_tokens, temperature))
        return self.out

    def sync(self, model):
        pass


ROWS = [{"prompt": [{"role": "user", "content": f"q{i}"}], "solution": str(i + 1)} for i in range(5)]
TRAIN_PROMPTS = [[40, 41, 42], [43, 44], [45, 46, 47, 48], [49], [50, 51]]


def solution_reward(completions, solution, **columns):
    """A reward that depends on the row only: the solution as a number (1 .. 5)."""
    return [float(s) for s in solution]


def rollout_setup(tokenizer, reference, **overrides):
    eos = tokenizer.eos_token_id
    fields = dict(batch_size=3, minibatches=1, max_completion_length=4, rewards=("accuracy",), reward_weights=(1.0,), kl_coef=0.1,
                  missing_eos_penalty=0.5, temperature=0.8, gamma=0.9, lam=0.8)
    config = ppo_rlhf.PPORLHFConfig(**{**fields, **overrides})
    policy = tiny_policy(tokenizer)
    reference = policy if reference == "same" else reference(policy)
    value_model = tiny_value_model(tokenizer)
    task = TextTask("scripted", ROWS, ROWS, ("solution",))
    run = LMRun(config, torch.device("cpu"), policy, tokenizer, task, TRAIN_PROMPTS, [], False)
    # row 0 ends with EOS, row 1 is cut at the limit (4 tokens, no EOS), row 2 ends early
    completions = [[60, 61, eos], [62, 63, 64, 65], [66, eos]]
    generator = ScriptedGenerator(completions, tokenizer.pad_token_id, 4)
    indices, _ = PromptOrder().take(3, len(ROWS), config.seed)
    with torch.no_grad():
        rollout, order, metrics = ppo_rlhf.make_rollout(config, run, policy, reference, value_model, None,
                                                        {"accuracy": solution_reward}, generator, PromptOrder())
    assert order == PromptOrder(0, 3)
    assert generator.calls == [([TRAIN_PROMPTS[i] for i in indices], 1, 4, config.temperature)]
    scores = [float(ROWS[i]["solution"]) - (config.missing_eos_penalty if b == 1 else 0.0) for b, i in enumerate(indices)]
    return config, policy, reference, value_model, rollout, metrics, indices, completions, scores


def test_the_score_lands_on_the_last_token_and_the_penalty_on_the_cut_row_only(tokenizer):
    """With the reference equal to the policy the KL is 0, and with gamma = lam = 1 the return is the
    reward-to-go: r_t = R_t - R_{t+1} recovers each token's reward, which is the score on the EOS
    (the last sampled token for the cut row) and 0 elsewhere."""
    config, _, _, _, rollout, metrics, _, completions, scores = rollout_setup(tokenizer, "same", gamma=1.0, lam=1.0)
    assert rollout.batch.completion_mask.tolist() == [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]]
    returns = torch.cat([rollout.returns, torch.zeros(3, 1)], 1)
    token_rewards = returns[:, :-1] - returns[:, 1:]
    for b, completion in enumerate(completions):
        expected = [0.0] * 4
        expected[len(completion) - 1] = scores[b]
        assert token_rewards[b].tolist() == pytest.approx(expected, abs=1e-5), b
    assert metrics["kl"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["score"] == pytest.approx(np.mean(scores))
    assert metrics["completions/ended"] == pytest.approx(2 / 3)
    assert metrics["completions/mean_length"] == pytest.approx(3.0)


def test_rollout_kl_gae_returns_and_whitening_by_hand(tokenizer):
    config, policy, reference, value_model, rollout, metrics, indices, completions, scores = rollout_setup(tokenizer, perturbed)
    mask = rollout.batch.completion_mask.bool()
    raw_advantages, kl_sums = [], []
    with torch.no_grad():
        for b, (i, completion) in enumerate(zip(indices, completions)):
            n = len(completion)
            logp = hand_logp(policy, TRAIN_PROMPTS[i], completion, config.temperature)
            ref_logp = hand_logp(reference, TRAIN_PROMPTS[i], completion, config.temperature)
            values = hand_values(value_model, TRAIN_PROMPTS[i], completion)
            torch.testing.assert_close(rollout.logp[b, :n], logp, rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(rollout.values[b, :n], values, rtol=1e-4, atol=1e-5)
            kl = logp - ref_logp  # k1 on every generated token
            assert kl.abs().min() > 1e-4  # the perturbed reference differs on each token
            kl_sums.append(kl.sum().item())
            rewards = (-config.kl_coef * kl).tolist()
            rewards[-1] += scores[b]
            advantages = hand_gae(rewards, values.tolist(), config.gamma, config.lam)
            raw_advantages.append(advantages)
            # returns are the advantages before whitening plus the values
            assert rollout.returns[b, :n].tolist() == pytest.approx([a + v for a, v in zip(advantages, values.tolist())], abs=1e-4)
            assert rollout.returns[b, n:].abs().sum() == 0
    assert metrics["kl"] == pytest.approx(np.mean(kl_sums), abs=1e-5)
    assert metrics["rlhf_reward"] == pytest.approx(np.mean(scores) - config.kl_coef * np.mean(kl_sums), abs=1e-5)
    assert metrics["non_score_reward"] == pytest.approx(-config.kl_coef * np.mean(kl_sums), abs=1e-6)
    flat = np.concatenate(raw_advantages)  # the 9 real tokens only
    whitened = (flat - flat.mean()) / np.sqrt(flat.var(ddof=1) + 1e-8)
    assert rollout.advantages[mask].tolist() == pytest.approx(whitened.tolist(), abs=1e-4)
    assert torch.all(rollout.advantages[~mask] == 0)
    assert rollout.advantages[mask].mean().item() == pytest.approx(0.0, abs=1e-5)


def test_whitened_rewards_keep_their_mean(tokenizer):
    """whiten_rewards scales the token rewards over real tokens without shifting them (TRL)."""
    _, _, _, _, plain, _, _, _, _ = rollout_setup(tokenizer, "same", gamma=1.0, lam=1.0)
    _, _, _, _, whitened, _, _, _, _ = rollout_setup(tokenizer, "same", gamma=1.0, lam=1.0, whiten_rewards=True)

    def token_rewards(rollout):
        returns = torch.cat([rollout.returns, torch.zeros(3, 1)], 1)
        return (returns[:, :-1] - returns[:, 1:])[rollout.batch.completion_mask.bool()]

    r = token_rewards(plain).double()
    expected = (r - r.mean()) / torch.sqrt(r.var() + 1e-8) + r.mean()
    torch.testing.assert_close(token_rewards(whitened).double(), expected, rtol=1e-4, atol=1e-4)


# --- ppo_step ------------------------------------------------------------------------------------------------------

def test_one_ppo_step_follows_autograd_on_an_independent_implementation(tokenizer):
    """Clipped policy loss + vf_coef * clipped value loss over the real tokens of the minibatch rows, from
    unpadded forward passes; one SGD step of ppo_step must equal params - lr * grad."""
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    completions = [[50, 51, eos], [52, 53, 54, 55], [56, eos]]
    config = ppo_rlhf.PPORLHFConfig(batch_size=3, minibatches=1, max_grad_norm=0, cliprange=0.2, cliprange_value=0.2, vf_coef=0.1,
                                    temperature=0.8, rewards=("accuracy",), reward_weights=(1.0,))
    policy, value_model = tiny_policy(tokenizer), tiny_value_model(tokenizer)
    batch = sequences.collate(PROMPTS, completions, pad, "cpu")
    mask = batch.completion_mask.bool()
    with torch.no_grad():
        logp_now = token_logprobs(policy, batch.input_ids, batch.attention_mask, batch.completion_start, config.temperature)
        values_now = ppo_rlhf.completion_values(value_model, batch)
    g = torch.Generator().manual_seed(0)
    shape = mask.shape
    garbage = lambda x: torch.where(mask, x, torch.full_like(x, 100.0))  # noqa: E731  padding must never count
    shift = torch.rand(shape, generator=g) - 0.5
    old_logp = garbage(logp_now + shift)  # ratios exp(-shift) in about [0.6, 1.65]
    value_shift = torch.rand(shape, generator=g) - 0.5
    old_values = garbage(values_now + value_shift)
    # A > 0 where the ratio is above 1 and A < 0 where below: the ratios beyond 1 +- 0.2 are clipped
    advantages = garbage(-shift.sign() * (0.5 + torch.rand(shape, generator=g)))
    # returns beyond V on the side away from V_old: the values clipped toward V_old are the worse fit there
    returns = garbage(values_now - value_shift.sign() * (0.1 + torch.rand(shape, generator=g)))
    rollout = ppo_rlhf.Rollout(batch, old_logp, old_values, advantages, returns)
    rows = torch.tensor([2, 0])  # a minibatch, in permuted order

    hand_policy, hand_value = copy.deepcopy(policy), copy.deepcopy(value_model)
    ratios, adv, v, old_v, ret = [], [], [], [], []
    for r in rows.tolist():
        n = len(completions[r])
        ratios.append((hand_logp(hand_policy, PROMPTS[r], completions[r], config.temperature) - old_logp[r, :n]).exp())
        v.append(hand_values(hand_value, PROMPTS[r], completions[r]))
        adv.append(advantages[r, :n]), old_v.append(old_values[r, :n]), ret.append(returns[r, :n])
    ratios, adv, v, old_v, ret = (torch.cat(x) for x in (ratios, adv, v, old_v, ret))
    assert ratios.numel() == 5  # 2 + 3 real tokens
    policy_loss = -torch.min(ratios * adv, ratios.clamp(0.8, 1.2) * adv).mean()
    v_clipped = old_v + (v - old_v).clamp(-0.2, 0.2)
    value_loss = 0.5 * torch.max((v - ret) ** 2, (v_clipped - ret) ** 2).mean()
    # both clips are active somewhere, so the test tells clipped from unclipped losses
    assert ((ratios - 1).abs() > 0.2).any() and ((v - old_v).abs() > 0.2).any()
    assert abs(policy_loss.item() + (ratios * adv).mean().item()) > 1e-4
    assert abs(value_loss.item() - 0.5 * ((v - ret) ** 2).mean().item()) > 1e-4
    (policy_loss + config.vf_coef * value_loss).backward()
    lr = 0.5
    expected = {("policy", k): p.detach() - lr * (p.grad if p.grad is not None else 0) for k, p in hand_policy.named_parameters()}
    expected.update({("value", k): p.detach() - lr * (p.grad if p.grad is not None else 0) for k, p in hand_value.named_parameters()})

    optimizer = torch.optim.SGD(list(policy.parameters()) + list(value_model.parameters()), lr=lr)
    info = ppo_rlhf.ppo_step(config, policy, value_model, optimizer, rollout, rows)
    assert info["policy_loss"] == pytest.approx(policy_loss.item(), rel=1e-4, abs=1e-6)
    assert info["value_loss"] == pytest.approx(value_loss.item(), rel=1e-4, abs=1e-6)
    assert info["clip_fraction"] == pytest.approx(((ratios - 1).abs() > 0.2).float().mean().item())
    for k, p in policy.named_parameters():
        torch.testing.assert_close(p.detach(), expected["policy", k], rtol=1e-4, atol=1e-6, msg=k)
    for k, p in value_model.named_parameters():
        torch.testing.assert_close(p.detach(), expected["value", k], rtol=1e-4, atol=1e-6, msg=k)


# --- whole runs ----------------------------------------------------------------------------------------------------

SMALL = dict(model="builtin-sft", level="easy", train_size=16, test_size=4, eval_size=4, batch_size=4, minibatches=2, ppo_epochs=1,
             max_completion_length=12, eval_every=0, log_completions=1, torch_threads=1)


def test_a_reward_model_scores_the_rollouts_and_starts_the_value_model(tmp_path, monkeypatch):
    rm = api.train("reward_model", "arithmetic", run_dir=tmp_path / "rm", level="easy", train_size=16, test_size=8, eval_size=8,
                   batch_size=4, total_steps=2, max_completion_length=12, torch_threads=1, quiet=True)
    reward, _ = scalar.load(rm.dir)
    assert reward.score.weight.abs().sum() > 0  # trained away from the zero head it started with

    # the reward model scores whole sequences at their EOS, as RewardModelFunction reads the same text
    config = api.make_config("ppo_rlhf", "arithmetic", reward_model=str(rm.dir), **SMALL)
    run = runtime.setup(config, needs=("prompt",))
    loaded = ppo_rlhf.reward_model_for(config, run)
    rows = run.task.train[:2]
    texts = [f"<think>x</think><answer>{row['solution']}</answer>" for row in rows]
    completions = [sequences.encode_completion(run.tokenizer, t, 40) for t in texts]
    batch = sequences.collate(run.train_prompts[:2], completions, run.tokenizer.pad_token_id, "cpu")
    scores = ppo_rlhf.scores_of(config, run, loaded, {}, batch, rows)
    by_text = scalar.RewardModelFunction(rm.dir)(texts, [row["prompt"] for row in rows])
    assert scores.tolist() == pytest.approx(by_text, abs=1e-5)

    started = {}

    def recording(config, run):
        model = value_model_for(config, run)
        started.update({k: v.clone() for k, v in model.state_dict().items()})
        return model

    value_model_for = ppo_rlhf.value_model_for
    monkeypatch.setattr(ppo_rlhf, "value_model_for", recording)
    result = api.train("ppo_rlhf", "arithmetic", run_dir=tmp_path / "ppo", reward_model=str(rm.dir), total_steps=2, quiet=True, **SMALL)
    assert result.status == "finished" and result.step == 2
    assert np.isfinite(result.metrics["score"][0]) and np.isfinite(result.metrics["value_loss"]).all()  # one rollout, two steps
    for key, value in reward.state_dict().items():  # the value model is the reward model at step 0, head included
        assert torch.equal(started[key], value), key
    assert started["score.weight"].abs().sum() > 0

    # without a reward model the value model starts from the policy's model with a zero head
    plain = value_model_for(dataclasses.replace(config, reward_model=""), run)
    assert plain.score.weight.abs().sum() == 0
    for key, value in run.model.model.state_dict().items():
        assert torch.equal(plain.model.state_dict()[key], value), key


def save_foreign_reward_model(tokenizer, directory):
    """A reward model whose tokenizer has one token more than the built-in one."""
    foreign = copy.deepcopy(tokenizer)
    foreign.add_tokens(["<extra>"])
    torch.manual_seed(0)
    model = transformers.Qwen2ForSequenceClassification(tiny_config(foreign, num_labels=1))
    model.save_pretrained(directory)
    foreign.save_pretrained(directory)
    return directory


def test_a_reward_model_with_another_tokenizer_is_refused(tmp_path, tokenizer):
    directory = save_foreign_reward_model(tokenizer, tmp_path / "foreign-rm")
    with pytest.raises(InputError, match="reward model's tokenizer differs from the policy's"):
        api.train("ppo_rlhf", "arithmetic", run_dir=tmp_path / "run", reward_model=str(directory), total_steps=2, quiet=True, **SMALL)


@pytest.mark.parametrize("overrides, message", [
    (dict(batch_size=6, minibatches=4), "minibatches \\(4\\) must be >= 1 and divide batch_size \\(6\\)"),
    (dict(rewards=("accuracy", "fromat")), "unknown reward function\\(s\\) fromat"),
    (dict(rewards=("accuracy",), reward_weights=(1.0, 0.1)), "one reward weight per reward function"),
    (dict(kl_coef=-0.1), "kl_coef"),
])
def test_bad_configs_say_what_is_wrong(overrides, message):
    with pytest.raises(ConfigError, match=message):
        ppo_rlhf.PPORLHFConfig(**overrides)


def test_resume_is_bit_exact_on_cpu(resumed_run_matches):
    straight, _ = resumed_run_matches("ppo_rlhf", "arithmetic", ("score", "kl", "policy_loss", "value_loss", "grad_norm"), **SMALL)
    assert straight.metrics["kl"][-1] != 0  # the policy moved away from the reference
