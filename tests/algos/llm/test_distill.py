"""Distillation: the forward KL against a hand computation, the sequence NLL against SFT's loss,
the logits' alignment with token_logprobs, one step that lowers the KL, a built-in run, and the
tokenizer check that forward KL needs and SFT does not."""

import copy
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from rlsuite import api  # noqa: E402
from rlsuite.algos.llm import distill, sft  # noqa: E402
from rlsuite.errors import ConfigError, InputError  # noqa: E402
from rlsuite.lm import models, runtime, sequences  # noqa: E402
from rlsuite.ops.lm import token_logprobs  # noqa: E402


def tiny_model(seed, vocab_size=23, max_positions=64, pad=0, eos=1):
    config = transformers.Qwen2Config(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=max_positions,
                                      pad_token_id=pad, eos_token_id=eos)
    torch.manual_seed(seed)
    return transformers.Qwen2ForCausalLM(config)


# Left-padded prompts of different lengths, right-padded completions of different lengths (ids < 23; pad 0, EOS 1).
PROMPTS = [[5, 6, 7], [10, 11], [13, 14, 15, 16]]
COMPLETIONS = [[8, 9, 1], [12, 1], [17, 18, 19, 20]]


def batch_of(prompts=PROMPTS, completions=COMPLETIONS):
    return sequences.collate(prompts, completions, 0, "cpu")


# --- forward_kl ----------------------------------------------------------------------------------------------------

def hand_forward_kl(teacher, student, mask, tau):
    """tau^2 * mean over the real tokens of sum_v p_T(v) (log p_T(v) - log p_S(v)), in float64, a loop per token."""
    total, count = 0.0, 0
    for b in range(teacher.shape[0]):
        for t in range(teacher.shape[1]):
            if not mask[b][t]:
                continue
            p = np.exp(teacher[b, t] / tau - np.logaddexp.reduce(teacher[b, t] / tau))
            log_p = np.log(p)
            log_q = student[b, t] / tau - np.logaddexp.reduce(student[b, t] / tau)
            total += float(np.sum(p * (log_p - log_q)))
            count += 1
    return tau ** 2 * total / count


@pytest.mark.parametrize("tau", [1.0, 2.0])
def test_forward_kl_against_a_hand_computation(tau):
    g = torch.Generator().manual_seed(0)
    teacher = 2 * torch.randn(2, 3, 5, generator=g)
    student = 2 * torch.randn(2, 3, 5, generator=g)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    got = distill.forward_kl(teacher, student, mask, tau).item()
    expected = hand_forward_kl(teacher.double().numpy(), student.double().numpy(), mask.tolist(), tau)
    assert got == pytest.approx(expected, rel=1e-5)
    # the direction matters: KL(student || teacher) differs on these logits
    assert abs(hand_forward_kl(student.double().numpy(), teacher.double().numpy(), mask.tolist(), tau) - expected) > 1e-3
    # the padding token's logits are ignored, whatever they hold
    teacher[1, 2], student[1, 2] = 50.0 * torch.arange(5.0), -50.0 * torch.arange(5.0)
    assert distill.forward_kl(teacher, student, mask, tau).item() == pytest.approx(got, rel=1e-6)


def test_forward_kl_scales_by_tau_squared_and_is_zero_for_equal_models():
    g = torch.Generator().manual_seed(1)
    teacher, student = torch.randn(1, 4, 6, generator=g), torch.randn(1, 4, 6, generator=g)
    mask = torch.ones(1, 4)
    # softening by tau = 2 is the same as halving the logits; the loss carries the extra tau^2 = 4
    softened = distill.forward_kl(teacher / 2, student / 2, mask, 1.0).item()
    assert distill.forward_kl(teacher, student, mask, 2.0).item() == pytest.approx(4 * softened, rel=1e-5)
    for tau in (0.5, 1.0, 2.0):
        assert distill.forward_kl(teacher, teacher.clone(), mask, tau).item() == pytest.approx(0.0, abs=1e-6)
    assert distill.forward_kl(teacher, student, mask, 1.0).item() > 0


# --- sequence_nll and completion_logits ------------------------------------------------------------------------------

def test_sequence_nll_is_the_sft_loss_on_the_same_examples():
    model = tiny_model(0).eval()
    batch = batch_of()
    examples = [sft.Example(p + c, [0] * len(p) + [1] * len(c)) for p, c in zip(PROMPTS, COMPLETIONS)]
    with torch.no_grad():
        nll = distill.sequence_nll(distill.completion_logits(model, batch), batch).item()
        expected = sft.sft_loss(model, sft.collate(examples, 0, "cpu")).item()
    assert nll == pytest.approx(expected, rel=1e-5)


def test_completion_logits_align_with_token_logprobs():
    model = tiny_model(0).eval()
    batch = batch_of()
    with torch.no_grad():
        logits = distill.completion_logits(model, batch)
        assert logits.shape == (3, 4, 23) and logits.dtype == torch.float32
        gathered = logits.log_softmax(-1).gather(-1, batch.completion_ids.unsqueeze(-1)).squeeze(-1)
        expected = token_logprobs(model, batch.input_ids, batch.attention_mask, batch.completion_start)
        mask = batch.completion_mask.bool()
        torch.testing.assert_close(gathered[mask], expected[mask], rtol=1e-5, atol=1e-5)
        # and with an unpadded forward pass: the logits before each completion token
        for b, (p, c) in enumerate(zip(PROMPTS, COMPLETIONS)):
            direct = model(input_ids=torch.tensor([p + c])).logits[0, len(p) - 1:len(p) + len(c) - 1]
            torch.testing.assert_close(logits[b, :len(c)], direct, rtol=1e-4, atol=1e-5)


def test_one_forward_kl_step_lowers_the_kl_and_leaves_the_teacher_alone():
    teacher, student = tiny_model(0).eval().requires_grad_(False), tiny_model(1)
    teacher_before = copy.deepcopy(teacher.state_dict())
    batch = batch_of()
    config = distill.DistillConfig(loss="forward_kl", kd_temperature=2.0)
    loss = distill.distill_loss(config, student, teacher, batch)
    optimizer = torch.optim.SGD(student.parameters(), lr=0.05)
    runtime.optimizer_step(optimizer, loss, 0.0)
    with torch.no_grad():
        after = distill.distill_loss(config, student, teacher, batch)
    assert after.item() < loss.item()
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key]), key
    with torch.no_grad():  # loss="sft" is the student's NLL of the teacher's tokens
        config_sft = distill.DistillConfig(loss="sft")
        assert distill.distill_loss(config_sft, student, teacher, batch).item() == pytest.approx(
            distill.sequence_nll(distill.completion_logits(student, batch), batch).item(), rel=1e-6)


@pytest.mark.parametrize("overrides, message", [
    (dict(batch_size=0), "batch_size"),
    (dict(kd_temperature=0.0), "kd_temperature"),
    (dict(teacher_temperature=-1.0), "teacher_temperature"),
])
def test_bad_configs_say_what_is_wrong(overrides, message):
    with pytest.raises(ConfigError, match=message):
        distill.DistillConfig(**overrides)


# --- runs ----------------------------------------------------------------------------------------------------------

SMALL = dict(level="easy", train_size=16, test_size=4, eval_size=4, batch_size=4, max_completion_length=24, eval_every=0,
             log_completions=1, torch_threads=1)


def test_builtin_small_student_learns_from_the_builtin_sft_teacher(tmp_path):
    run = api.train("distill", "arithmetic", run_dir=tmp_path / "run", model="builtin-small", teacher="builtin-sft", total_steps=2,
                    quiet=True, **SMALL)
    assert run.status == "finished" and run.step == 2
    losses = run.metrics["loss"]
    assert np.isfinite(losses).all() and (losses > 0).all()
    student = api.load(run.dir).model
    teacher, _ = models.load_model("builtin-sft")
    assert models.count_parameters(student) < models.count_parameters(teacher) / 4
    assert student.config.hidden_size == models.SMALL_SHAPE["hidden_size"]


def save_foreign_teacher(directory):
    """A tiny causal LM whose tokenizer is the built-in one plus one token."""
    tokenizer = models.build_tokenizer()
    tokenizer.add_tokens(["<extra>"])
    model = tiny_model(3, vocab_size=len(tokenizer), max_positions=256, pad=tokenizer.pad_token_id, eos=tokenizer.eos_token_id)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def test_forward_kl_needs_the_teachers_tokenizer_but_sft_does_not(tmp_path):
    teacher = str(save_foreign_teacher(tmp_path / "teacher"))
    with pytest.raises(InputError, match="teacher's tokenizer differs from the policy's"):
        api.train("distill", "arithmetic", run_dir=tmp_path / "kl", model="builtin-small", teacher=teacher, loss="forward_kl",
                  total_steps=2, quiet=True, **SMALL)
    run = api.train("distill", "arithmetic", run_dir=tmp_path / "sft", model="builtin-small", teacher=teacher, loss="sft",
                    total_steps=2, quiet=True, **SMALL)
    assert run.status == "finished" and run.step == 2
    assert all(math.isfinite(x) for x in run.metrics["loss"])
