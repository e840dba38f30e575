"""KTO: the mismatched pairs of the KL reference point, one update against the loss and gradient
derived by hand, one-sided batches, and which files KTO and DPO take."""

import copy
import json

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from rlsuite import api  # noqa: E402
from rlsuite.algos.llm import kto  # noqa: E402
from rlsuite.errors import ConfigError, DataError  # noqa: E402


PAD, EOS = 0, 1
ROWS = [([3, 4, 5], [6, 7, EOS]), ([9, 10], [11, 12, 13, 14, EOS]), ([17], [8, EOS]), ([18, 19], [20, 21, EOS])]


def tiny_model(seed):
    config = transformers.Qwen2Config(vocab_size=23, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                      num_key_value_heads=2, max_position_embeddings=64, pad_token_id=PAD, eos_token_id=EOS)
    torch.manual_seed(seed)
    return transformers.Qwen2ForCausalLM(config).double()


def direct_logprob(model, prompt, completion):
    logp = model(input_ids=torch.tensor([prompt + completion])).logits[0, len(prompt) - 1:-1].log_softmax(-1)
    return logp.gather(-1, torch.tensor(completion)[:, None]).sum()


def test_mismatched_pairs_each_prompt_with_the_next_rows_completion():
    rows = [([1], [10]), ([2], [20]), ([3], [30])]
    assert kto.mismatched(rows) == [([1], [20]), ([2], [30]), ([3], [10])]
    assert kto.mismatched(rows[:2]) == [([1], [20]), ([2], [10])]


@pytest.mark.parametrize("policy_seed, reference_seed", [(0, 1), (1, 0)])
def test_one_step_follows_the_hand_derived_loss_and_gradient(policy_seed, reference_seed):
    """Swapping policy and reference flips the sign of the raw KL estimate: one of the two cases
    has it clamped to 0."""
    beta, lr, lambda_d, lambda_u = 0.5, 0.1, 1.3, 0.7
    config = kto.KTOConfig(beta=beta, desirable_weight=lambda_d, undesirable_weight=lambda_u, max_grad_norm=0)
    labels = torch.tensor([True, False, True, False])
    model, reference = tiny_model(policy_seed), tiny_model(reference_seed).eval()
    twin = copy.deepcopy(model)

    with torch.no_grad():  # z0: prompt i with completion i+1, mean log-ratio, clamped, no gradient
        shifted = [(ROWS[i][0], ROWS[(i + 1) % 4][1]) for i in range(4)]
        raw_kl = torch.stack([direct_logprob(twin, p, c) - direct_logprob(reference, p, c) for p, c in shifted]).mean()
        kl = raw_kl.clamp(min=0)
        ref = torch.stack([direct_logprob(reference, p, c) for p, c in ROWS])
    r = torch.stack([direct_logprob(twin, p, c) for p, c in ROWS]) - ref
    per_row = torch.where(labels, lambda_d * (1 - torch.sigmoid(beta * (r - kl))), lambda_u * (1 - torch.sigmoid(beta * (kl - r))))
    loss = per_row.mean()
    loss.backward()
    expected = {name: p.detach() - lr * p.grad for name, p in twin.named_parameters()}

    metrics = kto.kto_step(config, model, reference, torch.optim.SGD(model.parameters(), lr=lr), ROWS, labels, PAD, "cpu")
    assert metrics["kl"] == pytest.approx(kl.item(), rel=1e-4, abs=1e-6)
    assert metrics["loss"] == pytest.approx(loss.item(), rel=1e-5, abs=1e-6)
    assert metrics["rewards/chosen"] == pytest.approx(beta * r[labels].mean().item(), rel=1e-4, abs=1e-6)
    assert metrics["rewards/rejected"] == pytest.approx(beta * r[~labels].mean().item(), rel=1e-4, abs=1e-6)
    for name, param in model.named_parameters():
        torch.testing.assert_close(param.detach(), expected[name], rtol=1e-4, atol=1e-7, msg=name)


def test_one_of_the_two_cases_above_has_its_kl_clamped():
    """The raw estimates of the two orders are each other's negatives, so one is below 0 and the
    hand-derived step test checked the clamp as well as the unclamped reference point."""
    def raw_kl(policy, reference):
        with torch.no_grad():
            return torch.stack([direct_logprob(policy, ROWS[i][0], ROWS[(i + 1) % 4][1])
                                - direct_logprob(reference, ROWS[i][0], ROWS[(i + 1) % 4][1]) for i in range(4)]).mean().item()

    a, b = tiny_model(0), tiny_model(1)
    forward, backward = raw_kl(a, b), raw_kl(b, a)
    assert forward == pytest.approx(-backward) and min(forward, backward) < 0 < max(forward, backward)


def test_a_batch_of_only_desirable_rows_is_finite():
    config = kto.KTOConfig(beta=0.1, max_grad_norm=0)
    model, reference = tiny_model(0), tiny_model(1).eval()
    metrics = kto.kto_step(config, model, reference, torch.optim.SGD(model.parameters(), lr=0.1), ROWS[:3],
                           torch.tensor([True, True, True]), PAD, "cpu")
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    assert "rewards/chosen" in metrics and "rewards/rejected" not in metrics  # no NaN mean of nothing
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_implicit_reward_gap():
    config = kto.KTOConfig(beta=0.5)
    model, reference = tiny_model(0), tiny_model(1).eval()
    labels = torch.tensor([True, False, True, False])
    gap = kto.implicit_reward_gap(config, model, reference, ROWS, labels, PAD, "cpu", batch_size=3)
    with torch.no_grad():
        r = 0.5 * torch.stack([direct_logprob(model, p, c) - direct_logprob(reference, p, c) for p, c in ROWS])
    assert gap["rewards/desirable"] == pytest.approx(r[labels].mean().item(), rel=1e-4, abs=1e-6)
    assert gap["rewards/undesirable"] == pytest.approx(r[~labels].mean().item(), rel=1e-4, abs=1e-6)
    assert gap["rewards/gap"] == pytest.approx(gap["rewards/desirable"] - gap["rewards/undesirable"])
    only = kto.implicit_reward_gap(config, model, reference, ROWS[:2], torch.tensor([True, True]), PAD, "cpu")
    assert set(only) == {"rewards/desirable"}


def test_bad_configs_say_what_is_wrong():
    with pytest.raises(ConfigError, match="batch_size must be >= 2"):
        kto.KTOConfig(batch_size=1)
    with pytest.raises(ConfigError, match="beta must be > 0"):
        kto.KTOConfig(beta=0)
    with pytest.raises(ConfigError, match="desirable_weight and undesirable_weight must be > 0"):
        kto.KTOConfig(undesirable_weight=0)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


UNPAIRED = [{"prompt": f"Say {i}.", "completion": f"{i + i % 2}", "label": i % 2 == 0} for i in range(10)]
SMALL = dict(model="builtin", batch_size=2, total_steps=2, eval_every=0, eval_size=1, test_size=1, max_completion_length=8,
             max_prompt_length=32)


def test_a_paired_file_trains_as_unpaired(tmp_path):
    pairs = [{"prompt": f"Say {i}.", "chosen": f"{i}", "rejected": f"{i + 1}"} for i in range(20)]  # 18 train, 2 test pairs
    run = api.train("kto", write_jsonl(tmp_path / "pairs.jsonl", pairs), run_dir=tmp_path / "run", quiet=True,
                    **{**SMALL, "eval_size": 2, "test_size": 2})
    assert run.status == "finished" and run.step == 2
    assert run.metrics["kl"][0] == pytest.approx(0.0, abs=1e-6)  # the first step's policy is its reference
    # the first test pair unpaired: its chosen row desirable, its rejected row undesirable
    assert {"rewards/desirable", "rewards/undesirable", "rewards/gap"} <= set(run.evaluations)
    assert (run.dir / "model" / "config.json").is_file()


def test_an_unpaired_file_trains_kto_and_is_refused_by_dpo(tmp_path):
    task = write_jsonl(tmp_path / "unpaired.jsonl", UNPAIRED)
    run = api.train("kto", task, run_dir=tmp_path / "kto", quiet=True, **SMALL)
    assert run.status == "finished"
    with pytest.raises(DataError, match="holds unpaired rows .* KTO takes unpaired rows"):
        api.train("dpo", task, run_dir=tmp_path / "dpo", quiet=True, **SMALL)
    assert not (tmp_path / "dpo").exists()
