"""GRPO: one update against a hand-derived gradient, the batch it builds, config checks, resume."""

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from rlsuite import api  # noqa: E402
from rlsuite.algos.llm import grpo  # noqa: E402
from rlsuite.errors import ConfigError  # noqa: E402
from rlsuite.lm import models  # noqa: E402
from rlsuite.lm.runtime import LMRun  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer():
    return models.build_tokenizer()


def tiny_model(tokenizer):
    config = transformers.Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                      pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    return transformers.Qwen2ForCausalLM(config)


def group(prompt, completions, totals, eos):
    """One prompt's G completions as sample_groups returns them (ids right-padded, EOS-terminated)."""
    width = max(len(c) for c in completions)
    ids = torch.zeros(len(completions), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, c in enumerate(completions):
        ids[i, :len(c)] = torch.tensor(c)
        mask[i, :len(c)] = 1
    totals = np.asarray(totals, dtype=np.float64)
    return grpo.Group(prompt, ids, mask, totals, bool(totals.std() == 0), {"accuracy": list(totals)}, [""] * len(completions))


ACCURACY_ONLY = dict(rewards=("accuracy",), reward_weights=(1.0,))


def fake_run(config, tokenizer, model):
    return LMRun(config, torch.device("cpu"), model, tokenizer, task=None, train_prompts=[], test_prompts=[], think_prefilled=False)


def test_one_update_follows_the_hand_derived_gradient(tokenizer):
    """At ratio 1 the GRPO gradient is -sum_i A_i / (N |o_i|) grad sum_t log pi(o_i,t): computed here
    from unpadded forward passes, one completion at a time, and compared with one SGD step."""
    eos = tokenizer.eos_token_id
    prompts = [[40, 41, 42], [43, 44]]
    completions = [[[50, 51, eos], [52, eos]], [[53, 54, 55, eos], [56, eos]]]
    totals = [[1.1, 0.1], [0.0, 1.0]]
    config = grpo.GRPOConfig(num_generations=2, batch_size=4, max_completion_length=4, max_grad_norm=0, scale_rewards="none", **ACCURACY_ONLY)
    model = tiny_model(tokenizer)
    reference = tiny_model(tokenizer)
    reference.load_state_dict(model.state_dict())
    run = fake_run(config, tokenizer, model)
    groups = [group(p, c, t, eos) for p, c, t in zip(prompts, completions, totals)]
    batch, metrics = grpo.build_batch(config, run, groups, model, None)
    assert batch.advantages.tolist() == pytest.approx([0.5, -0.5, -0.5, 0.5])  # r - group mean, unscaled
    assert metrics["reward"] == pytest.approx(0.55)
    assert batch.completion_mask.tolist() == [[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1], [1, 1, 0, 0]]

    advantages = [0.5, -0.5, -0.5, 0.5]
    objective = 0.0
    for i, (p, c) in enumerate((p, c) for p, cs in zip(prompts, completions) for c in cs):
        ids = torch.tensor([p + c])
        logp = reference(input_ids=ids).logits[0, len(p) - 1:-1].log_softmax(-1).gather(-1, torch.tensor(c)[:, None]).sum()
        objective = objective - advantages[i] / (4 * len(c)) * logp
    objective.backward()
    expected = {name: param.detach() - param.grad for name, param in reference.named_parameters()}

    grpo.grpo_step(config, model, torch.optim.SGD(model.parameters(), lr=1.0), batch, slice(0, 4))
    for name, param in model.named_parameters():
        torch.testing.assert_close(param.detach(), expected[name], rtol=1e-4, atol=1e-6, msg=name)


def test_tied_groups_are_dropped_or_kept(tokenizer):
    eos = tokenizer.eos_token_id
    groups = [group([40], [[50, eos], [51, eos]], [1.0, 1.0], eos), group([41], [[52, eos], [53, eos]], [0.0, 1.0], eos)]
    model = tiny_model(tokenizer)
    kept = grpo.GRPOConfig(num_generations=2, batch_size=4, max_completion_length=2, **ACCURACY_ONLY)
    batch, _ = grpo.build_batch(kept, fake_run(kept, tokenizer, model), groups, model, None)
    assert batch.completion_ids.shape[0] == 4 and batch.advantages[:2].abs().max() == 0
    dropped = dataclasses.replace(kept, dynamic_sampling="drop")
    batch, _ = grpo.build_batch(dropped, fake_run(dropped, tokenizer, model), groups, model, None)
    assert batch.completion_ids.shape[0] == 2 and batch.prompt_ids.shape[0] == 1 and batch.advantages.tolist() == pytest.approx([-1 / (2 ** -0.5 + 1e-4) / 2, 1 / (2 ** -0.5 + 1e-4) / 2], rel=1e-4)


def test_stored_old_logprobs_when_a_batch_is_reused(tokenizer):
    eos = tokenizer.eos_token_id
    groups = [group([40, 41], [[50, eos], [51, 52, eos]], [0.0, 1.0], eos)]
    model = tiny_model(tokenizer)
    config = grpo.GRPOConfig(num_generations=2, batch_size=2, max_completion_length=3, num_iterations=2, beta=0.1, **ACCURACY_ONLY)
    batch, _ = grpo.build_batch(config, fake_run(config, tokenizer, model), groups, model, model)
    assert batch.old_logp is not None and batch.ref_logp is not None
    with torch.no_grad():
        direct = model(input_ids=torch.tensor([[40, 41, 51, 52, eos]])).logits[0, 1:-1].log_softmax(-1)
    expected = direct.gather(-1, torch.tensor([[51], [52], [eos]])).squeeze(-1)
    torch.testing.assert_close(batch.old_logp[1], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("overrides, message", [
    (dict(num_generations=1), "num_generations must be >= 2"),
    (dict(num_generations=8, batch_size=20), "batch_size \\(20\\) must be a multiple of num_generations \\(8\\)"),
    (dict(rewards=("accuracy", "fromat")), "unknown reward"),
    (dict(rewards=("accuracy", "format"), reward_weights=(1.0,)), "one weight each"),
    (dict(minibatches=3), "minibatches"),
    (dict(temperature=0.0), "temperature"),
])
def test_bad_configs_say_what_is_wrong(overrides, message):
    with pytest.raises(ConfigError, match=message):
        grpo.GRPOConfig(**overrides)


def test_max_lengths_must_leave_room_in_the_context():
    with pytest.raises(ConfigError, match="exceeds the model's context of 512 tokens"):
        api.train("grpo", "arithmetic", model="builtin", max_prompt_length=500, max_completion_length=48, quiet=True)


def test_a_model_path_that_does_not_exist_is_not_downloaded(tmp_path):
    with pytest.raises(ConfigError, match="never downloads"):
        api.train("grpo", "arithmetic", model=str(tmp_path / "Qwen2-0.5B"), quiet=True)


SMALL = dict(model="builtin", level="easy", batch_size=8, num_generations=4, max_completion_length=8, eval_every=0, eval_size=8,
             test_size=8, train_size=64, log_completions=1)


def test_resume_is_bit_exact_on_cpu(resumed_run_matches):
    resumed_run_matches("grpo", "arithmetic", ("loss",), **SMALL)


def test_several_passes_over_a_batch_stop_at_the_budget(tmp_path):
    """mu = 2 passes of one step each over a generation batch: a budget of 3 optimizer steps ends
    at 3, not 4 (the second pass of the second batch used to run past it)."""
    run = api.train("grpo", "arithmetic", run_dir=tmp_path / "run", total_steps=3, num_iterations=2, quiet=True, **SMALL)
    assert run.step == 3


def test_a_finished_run_loads_and_answers(tmp_path):
    run = api.train("grpo", "arithmetic", run_dir=tmp_path / "run", total_steps=1, quiet=True, **SMALL)
    policy = api.load(run.dir)
    text = policy.answer("What is 2 + 3?", max_new_tokens=5)
    assert isinstance(text, str)
    assert (run.dir / "samples.jsonl").is_file() and (run.dir / "rewards.png").is_file()
    assert list(run.evaluations["accuracy"])  # the held-out evaluation ran


def test_partial_groups_take_the_flat_path_with_the_same_values(tokenizer):
    eos = tokenizer.eos_token_id
    groups = [group([40, 41, 42], [[50, eos], [51, 52, eos]], [0.0, 1.0], eos), group([43], [[53, 54, 55, eos], [56, eos]], [1.0, 0.0], eos)]
    model = tiny_model(tokenizer)
    config = grpo.GRPOConfig(num_generations=2, batch_size=4, max_completion_length=4, **ACCURACY_ONLY)
    batch, _ = grpo.build_batch(config, fake_run(config, tokenizer, model), groups, model, None)
    with torch.no_grad():
        grouped = grpo._logprobs(config, model, batch, slice(0, 4))
        flat = torch.cat([grpo._logprobs(config, model, batch, slice(i, i + 1)) for i in range(4)])
    mask = batch.completion_mask.bool()
    torch.testing.assert_close(grouped[mask], flat[mask], rtol=1e-5, atol=1e-5)


def test_lora_with_a_kl_to_the_adapters_off_model(tmp_path):
    pytest.importorskip("peft")
    run = api.train("grpo", "arithmetic", run_dir=tmp_path / "lora", total_steps=3, quiet=True, lora_r=4, beta=0.1,
                    **{**SMALL, "model": "builtin-sft", "level": "medium", "learning_rate": 1e-2})
    assert run.status == "finished"
    kl = run.metrics["kl"]
    assert kl[0] == pytest.approx(0.0, abs=1e-6)  # LoRA starts as the identity (B = 0): the policy is the reference
    assert kl[-1] > 1e-6  # after the updates the adapters moved it
    merged = transformers.AutoModelForCausalLM.from_pretrained(run.dir / "model", local_files_only=True)
    assert not any("lora" in name for name, _ in merged.named_parameters())


def test_reference_is_the_starting_model_after_resume(tmp_path):
    """The frozen reference is built from config.model before a checkpoint is restored, so a resumed
    run measures its KL against the starting weights, as an uninterrupted one does."""
    kwargs = dict(SMALL, beta=0.5, total_steps=4)
    straight = api.train("grpo", "arithmetic", run_dir=tmp_path / "a", quiet=True, **kwargs)
    cut = api.train("grpo", "arithmetic", run_dir=tmp_path / "b", quiet=True, callbacks=[lambda loop: loop.step == 2 and loop.request_stop()], **kwargs)
    resumed = api.resume(cut.dir, quiet=True)
    assert np.array_equal(straight.metrics["kl"], resumed.metrics["kl"])


def test_a_reused_batch_uses_its_stored_old_logprobs(tokenizer):
    """With old log-probs stored at log pi - log 2 the ratio is 2 on every token: A = +0.5 is clipped to
    1.2 * 0.5 (loss -0.6), A = -0.5 is not (2 * -0.5: loss 1.0); the mean over completions is 0.2."""
    eos = tokenizer.eos_token_id
    groups = [group([40, 41], [[50, eos], [51, 52, eos]], [1.0, 0.0], eos), group([43], [[53, eos], [54, eos]], [0.0, 1.0], eos)]
    model = tiny_model(tokenizer)
    config = grpo.GRPOConfig(num_generations=2, batch_size=4, max_completion_length=3, num_iterations=2, scale_rewards="none", **ACCURACY_ONLY)
    batch, _ = grpo.build_batch(config, fake_run(config, tokenizer, model), groups, model, None)
    batch = batch._replace(old_logp=batch.old_logp - np.log(2.0))
    info = grpo.grpo_step(config, model, torch.optim.SGD(model.parameters(), lr=0.0), batch, slice(0, 4))
    assert info["loss"] == pytest.approx(0.2, abs=1e-5)
    assert info["clip_ratio/high"] == pytest.approx(4 / 9, abs=1e-6)  # the A > 0 completions hold 2 + 2 of the 9 tokens


class ScriptedGenerator:
    """Answers each prompt with the completions a script gives: all right, all wrong, or mixed."""

    def __init__(self, tokenizer, answers):
        self.tokenizer, self.answers, self.calls = tokenizer, answers, 0

    def generate(self, prompts, *, num_generations, max_new_tokens, temperature, top_p):
        from rlsuite.lm.generation import pad_left
        from rlsuite.ops.lm import Completions

        texts = []
        for _ in prompts:
            texts += self.answers[self.calls % len(self.answers)]
            self.calls += 1
        eos = self.tokenizer.eos_token_id
        rows = [self.tokenizer(t, add_special_tokens=False)["input_ids"] + [eos] for t in texts]
        ids, mask = pad_left([list(reversed(r)) for r in rows], self.tokenizer.pad_token_id)
        return Completions(ids.flip(1), mask.flip(1))  # right-padded


def test_resampling_fills_the_batch_with_informative_groups(tokenizer):
    from rlsuite.envs import text
    from rlsuite.lm.runtime import PromptOrder

    task = text.load_task("arithmetic", level="easy", train_size=16, test_size=4, seed=1, system_prompt=None)
    rows = task.train
    config = grpo.GRPOConfig(num_generations=2, batch_size=4, dynamic_sampling="resample", **ACCURACY_ONLY)
    run = LMRun(config, torch.device("cpu"), None, tokenizer, task, [[40]] * len(rows), [], False)
    wrong = "<think>x</think><answer>-1000</answer>"
    right = lambda i: f"<think>x</think><answer>{rows[i]['solution']}</answer>"  # noqa: E731
    order = PromptOrder()
    drawn, _ = order.take(4, len(rows), config.seed)  # the prompts of round 1 (two) and round 2 (two)
    # Round 1: both groups tie (all wrong); round 2: each group has one right answer.
    generator = ScriptedGenerator(tokenizer, [[wrong, wrong], [wrong, wrong], [right(drawn[2]), wrong], [wrong, right(drawn[3])]])
    groups, new_order, info = grpo.sample_groups(config, run, generator, grpo.reward_functions(config, run), order)
    assert info["resample_rounds"] == 1 and info["frac_reward_zero_std"] == pytest.approx(0.5)  # 2 of 2 tied, then 0 of 2
    assert [g.tied for g in groups] == [False, False] and len(groups) == 2
    assert new_order == PromptOrder(0, 4)
