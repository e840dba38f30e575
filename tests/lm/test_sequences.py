"""Fixed completions as token batches: the layout collate builds, EOS handling, pair order, and
sequence log-probs equal to unpadded forward passes one row at a time."""

from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from rlsuite.errors import DataError  # noqa: E402
from rlsuite.lm import models, runtime, sequences  # noqa: E402


PAD, EOS = 0, 1


@pytest.fixture(scope="module")
def tokenizer():
    return models.build_tokenizer()


@pytest.fixture(scope="module")
def model():
    config = transformers.Qwen2Config(vocab_size=23, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                      num_key_value_heads=2, max_position_embeddings=64, pad_token_id=PAD, eos_token_id=EOS)
    torch.manual_seed(0)
    return transformers.Qwen2ForCausalLM(config).double().eval()


def direct_logprob(model, prompt, completion):
    """log pi(completion | prompt) from one unpadded forward pass of prompt + completion."""
    ids = torch.tensor([prompt + completion])
    logp = model(input_ids=ids).logits[0, len(prompt) - 1:-1].double().log_softmax(-1)
    return logp.gather(-1, torch.tensor(completion)[:, None]).sum()


def test_collate_left_pads_prompts_and_right_pads_completions():
    batch = sequences.collate([[3, 4, 5], [6]], [[7, 8, EOS], [9, 10, 11, 12, EOS]], PAD, "cpu")
    assert batch.completion_start == 3
    assert batch.input_ids.tolist() == [[3, 4, 5, 7, 8, EOS, PAD, PAD], [PAD, PAD, 6, 9, 10, 11, 12, EOS]]
    assert batch.attention_mask.tolist() == [[1, 1, 1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1, 1, 1]]
    assert batch.completion_mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert batch.completion_ids.tolist() == [[7, 8, EOS, PAD, PAD], [9, 10, 11, 12, EOS]]
    # the completion mask is the attention mask's completion part, and counts each completion's tokens
    assert torch.equal(batch.attention_mask[:, batch.completion_start:], batch.completion_mask)
    assert batch.completion_mask.sum(1).tolist() == [3, 5]
    assert batch.input_ids.dtype == torch.long and batch.completion_mask.dtype == torch.long


def test_encode_completion_appends_eos_and_a_cut_completion_loses_it(tokenizer):
    ids = tokenizer("12 + 3", add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    assert sequences.encode_completion(tokenizer, "12 + 3", 48) == ids + [eos]
    assert sequences.encode_completion(tokenizer, "12 + 3", len(ids) + 1) == ids + [eos]  # just fits
    assert sequences.encode_completion(tokenizer, "12 + 3", len(ids)) == ids  # cut: it did not end
    assert sequences.encode_completion(tokenizer, "12 + 3", 2) == ids[:2]
    assert eos not in ids


def test_encode_pairs_formats_prompts_and_refuses_long_ones(tokenizer):
    rows = [{"prompt": [{"role": "user", "content": "2+2?"}], "chosen": "4", "rejected": "5"},
            {"prompt": [{"role": "user", "content": "1+1?"}], "chosen": "2", "rejected": "3 or so"}]
    config = SimpleNamespace(max_prompt_length=64, max_completion_length=3)
    pairs = sequences.encode_pairs(tokenizer, rows, config)
    eos = tokenizer.eos_token_id
    assert [p for p, _, _ in pairs] == runtime.encode_prompts(tokenizer, rows, 64, "x")
    assert pairs[0][1:] == ([tokenizer.convert_tokens_to_ids("4"), eos], [tokenizer.convert_tokens_to_ids("5"), eos])
    assert len(pairs[1][2]) == 3 and eos not in pairs[1][2]  # "3 or so" is cut at 3 tokens
    with pytest.raises(DataError, match="longer than max_prompt_length=4"):
        sequences.encode_pairs(tokenizer, rows, SimpleNamespace(max_prompt_length=4, max_completion_length=3))


def test_collate_pairs_puts_every_chosen_row_before_every_rejected_row():
    pairs = [([3, 4], [5, EOS], [6, 7, EOS]), ([8], [9, 10, 11, EOS], [12, EOS]), ([13, 14, 15], [16, EOS], [17, EOS])]
    batch = sequences.collate_pairs(pairs, PAD, "cpu")
    assert batch.input_ids.shape[0] == 6 and batch.completion_start == 3
    rows = [[t for t, m in zip(ids, mask) if m] for ids, mask in zip(batch.input_ids.tolist(), batch.attention_mask.tolist())]
    assert rows == [[3, 4, 5, EOS], [8, 9, 10, 11, EOS], [13, 14, 15, 16, EOS],
                    [3, 4, 6, 7, EOS], [8, 12, EOS], [13, 14, 15, 17, EOS]]
    assert batch.completion_mask.sum(1).tolist() == [2, 4, 2, 3, 2, 2]


PAIRS = [([3, 4, 5], [6, 7, EOS], [8, EOS]), ([9], [10, 11, 12, 13, EOS], [14, 15, EOS]), ([16, 17], [18, EOS], [19, 20, 21, 22, EOS])]


@pytest.mark.parametrize("average", [False, True])
def test_sequence_logprobs_equal_unpadded_forward_passes(model, average):
    batch = sequences.collate_pairs(PAIRS, PAD, "cpu")
    with torch.no_grad():
        got = sequences.sequence_logprobs(model, batch, average=average)
        rows = [(p, c) for p, c, _ in PAIRS] + [(p, r) for p, _, r in PAIRS]
        expected = torch.stack([direct_logprob(model, p, c) / (len(c) if average else 1) for p, c in rows])
    assert got.shape == (6,)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-5)


def test_padding_does_not_change_a_rows_logprob(model):
    """Each row alone (no padding at all) gives the value it gets inside the padded batch."""
    prompts = [p for p, _, _ in PAIRS]
    completions = [c for _, c, _ in PAIRS]
    with torch.no_grad():
        together = sequences.sequence_logprobs(model, sequences.collate(prompts, completions, PAD, "cpu"))
        alone = torch.cat([sequences.sequence_logprobs(model, sequences.collate([p], [c], PAD, "cpu")) for p, c in zip(prompts, completions)])
        # and padding with a token that is not the pad token changes nothing either: only the masks count
        other_pad = sequences.sequence_logprobs(model, sequences.collate(prompts, completions, 22, "cpu"))
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(together, other_pad, rtol=1e-5, atol=1e-5)


def test_pair_logprobs_run_each_prompt_once_with_the_flat_values_and_gradients(model):
    pairs = [([3, 4, 5], [6, 7, EOS], [8, EOS]), ([9], [11, 12, 13, 14, EOS], [15, 16, EOS]), ([17, 18], [19, EOS], [20, 21, 22, EOS])]
    batch = sequences.collate_pairs(pairs, PAD, "cpu")
    mask = batch.completion_mask.double()
    flat = (sequences.completion_logprobs(model, batch) * mask).sum()
    flat_grads = torch.autograd.grad(flat, list(model.parameters()))
    shared = sequences.pair_logprobs(model, batch)
    torch.testing.assert_close(shared * mask, sequences.completion_logprobs(model, batch).detach() * mask)
    shared_grads = torch.autograd.grad((shared * mask).sum(), list(model.parameters()))
    for a, b in zip(flat_grads, shared_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)  # the float32 parts of attention: see tests/ops/test_lm.py
    expected = [direct_logprob(model, pairs[0][0], pairs[0][k]) for k in (1, 2)]  # pair 0: rows 0 (chosen) and 3 (rejected)
    torch.testing.assert_close(sequences.reduce_logprobs(shared, batch.completion_mask)[[0, 3]].detach().double(), torch.stack(expected).detach(),
                               rtol=1e-5, atol=1e-5)
