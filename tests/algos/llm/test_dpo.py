"""DPO: one update against the loss and gradient derived by hand from unpadded forward passes, for
every loss; the implicit rewards and their metrics; the cached reference; resume; bad input."""

import copy
import dataclasses
import json
import typing

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import torch.nn.functional as F  # noqa: E402

from rlsuite.algos.llm import dpo  # noqa: E402
from rlsuite.errors import ConfigError, DataError  # noqa: E402
from rlsuite.lm import sequences  # noqa: E402


PAD, EOS = 0, 1
PAIRS = [([3, 4, 5], [6, 7, EOS], [8, EOS]), ([9, 10], [11, 12, 13, 14, EOS], [15, 16, EOS])]


def tiny_model(seed):
    config = transformers.Qwen2Config(vocab_size=23, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                      num_key_value_heads=2, max_position_embeddings=64, pad_token_id=PAD, eos_token_id=EOS)
    torch.manual_seed(seed)
    return transformers.Qwen2ForCausalLM(config).double()


def direct_logprob(model, prompt, completion, average=False):
    """log pi(completion | prompt) from one unpadded forward pass (its per-token mean with average)."""
    logp = model(input_ids=torch.tensor([prompt + completion])).logits[0, len(prompt) - 1:-1].log_softmax(-1)
    total = logp.gather(-1, torch.tensor(completion)[:, None]).sum()
    return total / len(completion) if average else total


def loss_by_hand(loss_type, h, beta, eps):
    """TRL's DPOTrainer.dpo_loss, written out."""
    if loss_type == "sigmoid":
        return -(1 - eps) * F.logsigmoid(beta * h) - eps * F.logsigmoid(-beta * h)
    if loss_type == "ipo":
        return (h - 1 / (2 * beta)) ** 2
    if loss_type == "hinge":
        return torch.relu(1 - beta * h)
    if loss_type == "robust":
        return ((1 - eps) * -F.logsigmoid(beta * h) + eps * F.logsigmoid(-beta * h)) / (1 - 2 * eps)
    raise AssertionError(loss_type)


def test_every_loss_has_its_token_scale():
    """IPO is defined on per-token-averaged log-probs; DPO, SLiC's hinge and rDPO on their sums."""
    assert {name: loss.average_tokens for name, loss in dpo.LOSSES.items()} == {
        "sigmoid": False, "ipo": True, "hinge": False, "robust": False}
    assert set(typing.get_args(typing.get_type_hints(dpo.DPOConfig)["loss_type"])) == set(dpo.LOSSES)  # the CLI offers each


@pytest.mark.parametrize("loss_type, eps", [("sigmoid", 0.0), ("sigmoid", 0.1), ("ipo", 0.0), ("hinge", 0.0), ("robust", 0.1)])
def test_one_step_follows_the_hand_derived_loss_and_gradient(loss_type, eps):
    beta, lr = 0.5, 0.1
    config = dpo.DPOConfig(beta=beta, loss_type=loss_type, label_smoothing=eps, max_grad_norm=0)
    average = loss_type == "ipo"
    model, reference = tiny_model(0), tiny_model(1).eval()
    twin = copy.deepcopy(model)

    # by hand: each completion alone, no padding
    with torch.no_grad():
        ref_c = torch.stack([direct_logprob(reference, p, c, average) for p, c, _ in PAIRS])
        ref_r = torch.stack([direct_logprob(reference, p, r, average) for p, _, r in PAIRS])
    logp_c = torch.stack([direct_logprob(twin, p, c, average) for p, c, _ in PAIRS])
    logp_r = torch.stack([direct_logprob(twin, p, r, average) for p, _, r in PAIRS])
    h = (logp_c - ref_c) - (logp_r - ref_r)
    loss = loss_by_hand(loss_type, h, beta, eps).mean()
    loss.backward()
    expected = {name: p.detach() - lr * p.grad for name, p in twin.named_parameters()}

    # the reference's log-probs as training computes them: on the padded pair batch, cached
    ref_logp = dpo.ReferenceLogprobs(config, reference, PAIRS, PAD, "cpu")([0, 1])
    torch.testing.assert_close(ref_logp.double(), torch.cat([ref_c, ref_r]), rtol=1e-5, atol=1e-5)
    batch = sequences.collate_pairs(PAIRS, PAD, "cpu")
    metrics = dpo.dpo_step(config, model, torch.optim.SGD(model.parameters(), lr=lr), batch, ref_logp)

    assert metrics["loss"] == pytest.approx(loss.item(), rel=1e-5, abs=1e-6)
    chosen, rejected = beta * (logp_c - ref_c).detach(), beta * (logp_r - ref_r).detach()
    assert metrics["rewards/chosen"] == pytest.approx(chosen.mean().item(), rel=1e-4, abs=1e-6)
    assert metrics["rewards/rejected"] == pytest.approx(rejected.mean().item(), rel=1e-4, abs=1e-6)
    assert metrics["rewards/margin"] == pytest.approx((chosen - rejected).mean().item(), rel=1e-4, abs=1e-6)
    assert metrics["rewards/accuracy"] == (chosen > rejected).double().mean().item()
    assert metrics["logps/chosen"] == pytest.approx(logp_c.mean().item(), rel=1e-5)
    assert metrics["logps/rejected"] == pytest.approx(logp_r.mean().item(), rel=1e-5)
    assert metrics["grad_norm"] > 0
    for name, param in model.named_parameters():
        torch.testing.assert_close(param.detach(), expected[name], rtol=1e-4, atol=1e-7, msg=name)


def test_implicit_rewards_split_chosen_from_rejected():
    config = dpo.DPOConfig(beta=0.2)
    logp = torch.tensor([-1.0, -2.0, -5.0, -1.5])     # chosen 0, chosen 1, rejected 0, rejected 1
    ref_logp = torch.tensor([-2.0, -2.0, -4.0, -1.0])
    chosen, rejected = dpo.implicit_rewards(config, logp, ref_logp)
    torch.testing.assert_close(chosen, torch.tensor([0.2, 0.0]))
    torch.testing.assert_close(rejected, torch.tensor([-0.2, -0.1]))
    loss, metrics = dpo.dpo_loss(config, logp, ref_logp)
    h = torch.tensor([2.0, 0.5])  # (0.2 + 0.2) / 0.2, (0 + 0.1) / 0.2
    assert loss.item() == pytest.approx(-F.logsigmoid(0.2 * h).mean().item(), rel=1e-6)
    assert metrics == pytest.approx({"rewards/chosen": 0.1, "rewards/rejected": -0.15, "rewards/accuracy": 1.0, "rewards/margin": 0.25})


def test_reference_logprobs_are_computed_once_and_zero_when_reference_free():
    reference = tiny_model(1).eval()
    rows_seen = []
    reference.register_forward_hook(lambda module, args, kwargs, out: rows_seen.append(kwargs["input_ids"].shape[0]), with_kwargs=True)
    pairs = PAIRS + [([17, 18], [19, EOS], [20, 21, EOS])]
    config = dpo.DPOConfig(beta=0.1)
    cache = dpo.ReferenceLogprobs(config, reference, pairs, PAD, "cpu")
    first = cache([1, 0])
    assert rows_seen == [2, 4]  # two pairs: their two prompts once, then their four completions
    again = cache([0, 1])
    assert rows_seen == [2, 4]  # cached: no reference call
    torch.testing.assert_close(again, first[[1, 0, 3, 2]])  # chosen of 0, 1, then rejected of 0, 1
    mixed = cache([2, 0, 2])
    assert rows_seen == [2, 4, 1, 2]  # only the new pair, once although asked twice
    with torch.no_grad():
        expected = torch.stack([direct_logprob(reference, pairs[i][0], pairs[i][k]) for k in (1, 2) for i in (2, 0, 2)])
    torch.testing.assert_close(mixed.double(), expected, rtol=1e-5, atol=1e-5)

    free = dpo.ReferenceLogprobs(dataclasses.replace(config, reference_free=True), None, pairs, PAD, "cpu")
    assert free([0, 2, 1]).tolist() == [0.0] * 6


def test_preference_accuracy_by_hand():
    config = dpo.DPOConfig(beta=0.5)
    model, reference = tiny_model(0).eval(), tiny_model(1).eval()
    pairs = PAIRS + [([17, 18], [19, EOS], [20, 21, EOS])]
    # the policy is the reference: every implicit reward is 0, no pair is ranked right
    same = dpo.preference_accuracy(config, reference, dpo.ReferenceLogprobs(config, reference, pairs, PAD, "cpu"), batch_size=2)
    assert same["preference_accuracy"] == 0.0 and same["preference_margin"] == pytest.approx(0.0, abs=1e-6)
    model.train()
    scores = dpo.preference_accuracy(config, model, dpo.ReferenceLogprobs(config, reference, pairs, PAD, "cpu"), batch_size=2)
    assert model.training  # the training mode is restored
    with torch.no_grad():
        margins = torch.stack([config.beta * ((direct_logprob(model, p, c) - direct_logprob(reference, p, c))
                                              - (direct_logprob(model, p, r) - direct_logprob(reference, p, r))) for p, c, r in pairs])
    assert scores["preference_accuracy"] == pytest.approx((margins > 0).double().mean().item())
    assert scores["preference_margin"] == pytest.approx(margins.mean().item(), rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("overrides, message", [
    (dict(label_smoothing=0.5), "label_smoothing must be in \\[0, 0.5\\)"),
    (dict(label_smoothing=-0.1), "label_smoothing must be in"),
    (dict(beta=0.0), "beta must be > 0"),
    (dict(batch_size=0), "batch_size must be >= 1"),
    (dict(loss_type="exo"), "loss_type must be one of sigmoid, ipo, hinge, robust"),
])
def test_bad_configs_say_what_is_wrong(overrides, message):
    with pytest.raises(ConfigError, match=message):
        dpo.DPOConfig(**overrides)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


GOOD = [{"prompt": f"Say {i}.", "chosen": f"{i}", "rejected": f"{i + 1}"} for i in range(10)]
SMALL = dict(model="builtin", batch_size=2, eval_every=0, eval_size=1, test_size=1, max_completion_length=8, max_prompt_length=32)


def test_resume_is_bit_exact_on_cpu(tmp_path, resumed_run_matches):
    task = write_jsonl(tmp_path / "pairs.jsonl", GOOD)
    straight, _ = resumed_run_matches("dpo", task, ("loss", "rewards/margin"), **SMALL)
    assert len(straight.metrics["loss"]) == 4
    assert straight.metrics["rewards/margin"][0] == 0.0  # the first step's policy is its reference
    assert "preference_accuracy" in straight.evaluations


BAD_FILES = [
    ([*GOOD[:3], {"prompt": "p", "chosen": "same", "rejected": " same "}, *GOOD[3:]], "row 4: chosen and rejected are the same text"),
    ([*GOOD[:3], {"prompt": "p", "chosen": "", "rejected": "x"}, *GOOD[3:]], "row 4: `chosen` is empty or only whitespace"),
    ([{"prompt": r["prompt"], "chosen": r["chosen"]} for r in GOOD], "no row has a `rejected` column"),
]


@pytest.mark.parametrize("rows, message", BAD_FILES)
def test_bad_files_raise_a_data_error_naming_the_row(tmp_path, rows, message):
    config = dpo.DPOConfig(task=write_jsonl(tmp_path / "bad.jsonl", rows), **SMALL)
    with pytest.raises(DataError, match=message):
        dpo.train(config, tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()


def test_cli_bad_file_exits_2_with_one_message(tmp_path, capsys):
    from rlsuite.cli import main

    write_jsonl(tmp_path / "bad.jsonl", BAD_FILES[0][0])
    assert main(["train", "dpo", "--task", "bad.jsonl"]) == 2
    err = capsys.readouterr().err
    assert "row 4: chosen and rejected are the same text" in err
    assert "Traceback" not in err and err.count("error:") == 1
    assert main(["train", "dpo", "--label-smoothing", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "label_smoothing must be in [0, 0.5)" in err and "Traceback" not in err
