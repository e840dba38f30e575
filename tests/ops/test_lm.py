"""ops/lm: per-token log-probs against a direct forward pass, padding independence, sampling."""

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from rlsuite.ops import lm  # noqa: E402

EOS, PAD = 1, 0


@pytest.fixture(scope="module")
def model():
    config = transformers.Qwen2Config(vocab_size=17, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                      num_key_value_heads=2, max_position_embeddings=64, pad_token_id=PAD, eos_token_id=EOS)
    torch.manual_seed(0)
    return transformers.Qwen2ForCausalLM(config).eval()


def direct_logprobs(model, tokens):
    """log p(token_t | tokens_<t) of one unpadded sequence, t >= 1: the reference."""
    ids = torch.tensor([tokens])
    logits = model(input_ids=ids).logits[0, :-1]
    return logits.log_softmax(-1).gather(-1, ids[0, 1:, None]).squeeze(-1)


def test_token_logprobs_of_left_padded_batch_equal_a_direct_forward_pass(model):
    prompts = [[3, 4, 5], [6, 7]]
    completions = [[8, 9, EOS], [10, EOS, PAD]]
    completion_mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    ids = torch.tensor([prompts[0] + completions[0], [PAD] + prompts[1] + completions[1]])
    mask = torch.tensor([[1] * 6, [0, 1, 1, 1, 1, 0]])
    with torch.no_grad():
        got = lm.token_logprobs(model, ids, mask, completion_start=3)
        for row in range(2):
            n = int(completion_mask[row].sum())
            reference = direct_logprobs(model, prompts[row] + completions[row][:n])[-n:]
            torch.testing.assert_close(got[row, :n], reference, rtol=1e-5, atol=1e-5)


def test_left_and_right_padding_give_the_same_logprobs(model):
    sequences = [[3, 4, 5, 6, 7], [8, 9, 10]]
    width = 5
    left = torch.tensor([[PAD] * (width - len(s)) + s for s in sequences])
    left_mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in sequences])
    right = torch.tensor([s + [PAD] * (width - len(s)) for s in sequences])
    right_mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in sequences])
    with torch.no_grad():
        from_left = lm.token_logprobs(model, left, left_mask, completion_start=1)
        from_right = lm.token_logprobs(model, right, right_mask, completion_start=1)
    for row, s in enumerate(sequences):
        n = len(s) - 1
        torch.testing.assert_close(from_left[row, -n:], from_right[row, :n], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(from_right[row, :n], direct_logprobs(model, s), rtol=1e-5, atol=1e-5)


def test_temperature_divides_the_logits(model):
    ids, mask = torch.tensor([[3, 4, 5, 6]]), torch.ones(1, 4, dtype=torch.long)
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, 1:-1] / 0.7
        expected = logits.log_softmax(-1).gather(-1, ids[0, 2:, None]).squeeze(-1)
        torch.testing.assert_close(lm.token_logprobs(model, ids, mask, 2, temperature=0.7)[0], expected, rtol=1e-5, atol=1e-5)


def test_greedy_sampling_with_a_kv_cache_matches_transformers_generate(model):
    prompt_ids = torch.tensor([[PAD, PAD, 3, 4], [5, 6, 7, 8]])
    prompt_mask = (prompt_ids != PAD).long()
    out = lm.sample(model, prompt_ids, prompt_mask, max_new_tokens=6, eos_token_ids=(EOS,), pad_token_id=PAD, temperature=0)
    reference = model.generate(input_ids=prompt_ids, attention_mask=prompt_mask, max_new_tokens=6, do_sample=False,
                               eos_token_id=EOS, pad_token_id=PAD)[:, 4:]
    width = out.ids.shape[1]
    assert torch.equal(out.ids, reference[:, :width])


def test_sampling_with_a_fixed_seed_is_reproducible_and_seeds_differ(model):
    prompt_ids = torch.tensor([[3, 4], [5, 6]]).repeat(4, 1)
    mask = torch.ones_like(prompt_ids)
    draw = lambda seed: lm.sample(model, prompt_ids, mask, max_new_tokens=8, eos_token_ids=(EOS,), pad_token_id=PAD,  # noqa: E731
                                  generator=torch.Generator().manual_seed(seed)).ids
    assert torch.equal(draw(3), draw(3))
    assert not torch.equal(draw(3), draw(4))


def test_eos_ends_a_row_and_is_kept_in_the_mask():
    tokens = torch.tensor([[5, EOS, PAD, PAD], [5, 6, 7, 8], [EOS, PAD, PAD, PAD]])
    assert lm.completion_mask(tokens, (EOS,)).tolist() == [[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]


def test_top_p_keeps_the_smallest_set_reaching_p():
    logits = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log()
    kept = torch.isfinite(lm.filter_top_p(logits, 0.8))
    assert kept.tolist() == [[True, True, False, False]]
    assert torch.isfinite(lm.filter_top_p(logits, 0.81)).tolist() == [[True, True, True, False]]
    assert torch.isfinite(lm.filter_top_p(logits, 0.01)).tolist() == [[True, False, False, False]]  # the top token always stays


def test_masked_mean():
    values = torch.tensor([[1.0, 2.0, 100.0], [3.0, 100.0, 100.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert lm.masked_mean(values, mask).item() == pytest.approx(2.0)
    assert lm.masked_mean(values, mask, dim=1).tolist() == pytest.approx([1.5, 3.0])
    assert lm.masked_mean(values, torch.zeros_like(mask)).item() == 0.0


def test_positions_skip_left_padding():
    assert lm.positions(torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]]


def test_group_logprobs_share_each_prompt_and_equal_the_flat_values_and_gradients(model):
    prompts = [[3, 4, 5], [6, 7]]
    completions = [[8, 9, EOS], [10, EOS, PAD], [11, 12, 13], [14, EOS, PAD]]  # G = 2 per prompt
    prompt_ids = torch.tensor([[3, 4, 5], [PAD, 6, 7]])
    prompt_mask = torch.tensor([[1, 1, 1], [0, 1, 1]])
    completion_ids = torch.tensor(completions)
    flat_ids = torch.cat([prompt_ids.repeat_interleave(2, 0), completion_ids], 1)
    flat_mask = torch.cat([prompt_mask.repeat_interleave(2, 0), torch.ones_like(completion_ids)], 1)
    weights = torch.tensor([[1.0, 2.0, 3.0], [1.0, -1.0, 0.0], [0.5, 0.5, 0.5], [2.0, 1.0, 0.0]])

    model.zero_grad()
    flat = lm.token_logprobs(model, flat_ids, flat_mask, 3)
    (flat * weights).sum().backward()
    flat_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    grouped = lm.group_token_logprobs(model, prompt_ids, prompt_mask, completion_ids, 2)
    (grouped * weights).sum().backward()
    torch.testing.assert_close(grouped, flat, rtol=1e-5, atol=1e-5)
    for a, p in zip(flat_grads, model.parameters()):
        torch.testing.assert_close(p.grad, a, rtol=1e-4, atol=1e-6)
    model.zero_grad()
    for row, (p, c) in enumerate(zip([prompts[0], prompts[0], prompts[1], prompts[1]], completions)):  # and a direct pass
        n = len([t for t in c if t != PAD])
        torch.testing.assert_close(grouped[row, :n].detach(), direct_logprobs(model, p + c[:n])[-n:], rtol=1e-5, atol=1e-5)


def test_sampling_groups_shares_the_prefill_and_matches_repeated_prompts(model):
    prompt_ids = torch.tensor([[PAD, 3, 4], [5, 6, 7]])
    mask = (prompt_ids != PAD).long()
    kwargs = dict(max_new_tokens=5, eos_token_ids=(EOS,), pad_token_id=PAD)
    grouped = lm.sample(model, prompt_ids, mask, num_generations=3, generator=torch.Generator().manual_seed(1), **kwargs)
    repeated = lm.sample(model, prompt_ids.repeat_interleave(3, 0), mask.repeat_interleave(3, 0), generator=torch.Generator().manual_seed(1), **kwargs)
    assert torch.equal(grouped.ids, repeated.ids) and torch.equal(grouped.mask, repeated.mask)


def test_ends_with_stop_tells_ended_from_cut_completions():
    PAD_, EOS_, STOP = 0, 1, 2  # EOS and a second stop token from a generation config
    tokens = torch.tensor([[5, 6, EOS_, PAD_], [5, 6, 7, 8], [5, STOP, PAD_, PAD_], [PAD_] * 4, [5, EOS_, 9, 9]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]])
    # ended, cut at the limit, ended on the other stop token, empty, and a real last token that is no stop
    assert lm.ends_with_stop(tokens, mask, (EOS_, STOP)).tolist() == [True, False, True, False, False]
    assert lm.ends_with_stop(tokens, mask, (EOS_,)).tolist() == [True, False, False, False, False]


class CountingModel(torch.nn.Module):
    """A model that counts its forward passes (one per decoding step after the prompt's)."""

    def __init__(self, model):
        super().__init__()
        self.inner, self.calls = model, 0

    def forward(self, cache=None, logits_to_keep=0, **kwargs):  # the names ops.lm looks for in a forward's signature
        self.calls += 1
        return self.inner(cache=cache, logits_to_keep=logits_to_keep, **kwargs)


def test_decoding_in_step_with_other_processes_runs_on_padding_and_gives_the_same_completions(model):
    """With parameters sharded over processes every forward pass is a collective: a process whose
    rows have all ended keeps calling the model until all_done says every process has. Its
    completions, and the sampling RNG they drew from, are those of decoding alone."""
    prompt_ids, mask = torch.tensor([[3, 4], [5, 6]]), torch.ones(2, 2, dtype=torch.long)
    alone, stepped = CountingModel(model), CountingModel(model)
    kwargs = dict(max_new_tokens=30, eos_token_ids=(EOS,), pad_token_id=PAD)
    alone_rng, stepped_rng = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    reference = lm.sample(alone, prompt_ids, mask, generator=alone_rng, **kwargs)
    assert reference.mask.sum(1).tolist() == [5, 15]  # rows that end at different steps, well before the limit (seed 3)
    asked = []

    def others_finish_five_steps_later(done: bool) -> bool:
        asked.append(done)
        return done and asked.count(True) > 5

    synced = lm.sample(stepped, prompt_ids, mask, generator=stepped_rng, all_done=others_finish_five_steps_later, **kwargs)
    assert torch.equal(synced.ids, reference.ids) and torch.equal(synced.mask, reference.mask)
    assert stepped.calls == alone.calls + 5  # five forward passes on padding, no more
    assert asked == [False] * (len(asked) - 6) + [True] * 6  # asked once per step; done from the last real token on
    assert torch.equal(stepped_rng.get_state(), alone_rng.get_state())  # nothing sampled on padding
