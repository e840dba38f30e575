"""Scalar-headed models (reward and value models): the zero head, the score read at the last real
token, save/load, the tokenizer check, and a saved reward model as a reward function."""

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from rlsuite.errors import ConfigError, InputError  # noqa: E402
from rlsuite.lm import models, runtime, scalar, sequences  # noqa: E402
from rlsuite.ops import rewards  # noqa: E402


@pytest.fixture(scope="module")
def built():
    return scalar.from_causal_lm("builtin")


@pytest.fixture(scope="module")
def scored(built):
    """The built-in scalar model with a random head, so scores differ from row to row."""
    model, tokenizer = built
    import copy

    model = copy.deepcopy(model).eval()
    torch.manual_seed(1)
    torch.nn.init.normal_(model.score.weight, std=1.0)
    return model, tokenizer


def direct_score(model, ids):
    """The head at the last token of one unpadded forward pass."""
    hidden = model.model(input_ids=torch.tensor([ids])).last_hidden_state[0, -1]
    return model.score(hidden).squeeze(-1)


ROWS = [[40, 41, 42, 43, 2], [44, 45, 2], [46, 47, 48, 49, 50, 51, 52, 2], [53]]


def padded(rows, pad, side):
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, r in enumerate(rows):
        span = slice(width - len(r), width) if side == "left" else slice(0, len(r))
        ids[i, span], mask[i, span] = torch.tensor(r), 1
    return ids, mask


def test_from_causal_lm_has_a_zero_head_and_the_causal_transformer(built):
    model, tokenizer = built
    causal, _ = models.load_model("builtin")
    assert isinstance(model, transformers.Qwen2ForSequenceClassification)
    assert model.config.num_labels == 1 and model.score.weight.shape == (1, causal.config.hidden_size)
    assert model.score.weight.abs().max() == 0
    assert model.config.pad_token_id == tokenizer.pad_token_id
    mine, theirs = model.model.state_dict(), causal.model.state_dict()
    assert mine.keys() == theirs.keys()
    for key in theirs:
        assert torch.equal(mine[key], theirs[key]), key
    ids, mask = padded(ROWS, tokenizer.pad_token_id, "left")
    with torch.no_grad():
        assert scalar.sequence_scores(model, ids, mask).tolist() == [0.0] * len(ROWS)
    other, _ = scalar.from_causal_lm("builtin", seed=1)
    assert not torch.equal(other.model.embed_tokens.weight, model.model.embed_tokens.weight)  # the seed is the causal model's


def test_sequence_scores_read_the_last_real_token(scored):
    model, tokenizer = scored
    pad = tokenizer.pad_token_id
    with torch.no_grad():
        expected = torch.stack([direct_score(model, r) for r in ROWS])
        left = scalar.sequence_scores(model, *padded(ROWS, pad, "left"))
        right = scalar.sequence_scores(model, *padded(ROWS, pad, "right"))
    assert expected.abs().min() > 1e-3  # a real test: the scores are not all zero
    torch.testing.assert_close(left, expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(right, expected, rtol=1e-4, atol=1e-5)


def test_token_scores_are_the_head_at_every_position(scored):
    model, tokenizer = scored
    ids, mask = padded(ROWS[:2], tokenizer.pad_token_id, "left")
    with torch.no_grad():
        every = scalar.token_scores(model, ids, mask)
        row = ROWS[0]
        direct = model.score(model.model(input_ids=torch.tensor([row])).last_hidden_state[0]).squeeze(-1)
    torch.testing.assert_close(every[0], direct, rtol=1e-4, atol=1e-5)  # row 0 is the widest: no padding


def test_last_index():
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 0, 0], [0, 0, 0, 0, 0], [1, 0, 0, 0, 0], [0, 1, 1, 1, 0]])
    assert scalar.last_index(mask).tolist() == [4, 2, 0, 0, 3]
    assert scalar.last_index(mask.bool()).tolist() == [4, 2, 0, 0, 3]


def test_save_pretrained_then_load_round_trip(scored, tmp_path):
    model, tokenizer = scored
    model.save_pretrained(tmp_path / "run" / "model")
    tokenizer.save_pretrained(tmp_path / "run" / "model")
    ids, mask = padded(ROWS, tokenizer.pad_token_id, "left")
    with torch.no_grad():
        before = scalar.sequence_scores(model, ids, mask)
        for where in (tmp_path / "run" / "model", tmp_path / "run"):  # the model folder or the run folder above it
            loaded, loaded_tokenizer = scalar.load(where)
            assert loaded_tokenizer.get_vocab() == tokenizer.get_vocab()
            torch.testing.assert_close(scalar.sequence_scores(loaded.eval(), ids, mask), before)


def test_load_refuses_a_causal_lm_and_an_empty_folder(tmp_path):
    causal, tokenizer = models.load_model("builtin")
    models.save(causal, tokenizer, tmp_path / "lm")
    with pytest.raises(InputError, match="Qwen2ForCausalLM, not a reward model"):
        scalar.load(tmp_path / "lm")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no saved model"):
        scalar.load(tmp_path / "empty")


def test_check_same_tokenizer(built):
    _, tokenizer = built
    same = models.build_tokenizer()
    scalar.check_same_tokenizer(tokenizer, same, "reward model")  # passes
    bigger = models.build_tokenizer()
    bigger.add_tokens(["<extra>"])
    with pytest.raises(InputError, match="the reward model's tokenizer differs from the policy's \\(264 vs 263 tokens"):
        scalar.check_same_tokenizer(tokenizer, bigger, "reward model")


@pytest.fixture(scope="module")
def saved(scored, tmp_path_factory):
    model, tokenizer = scored
    path = tmp_path_factory.mktemp("rm") / "model"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_reward_model_function_scores_like_sequence_scores(scored, saved):
    model, tokenizer = scored
    fn = scalar.RewardModelFunction(saved, batch_size=2)  # three completions: two batches
    prompts = [[{"role": "user", "content": "What is 2 + 3?"}], "What is 7 * 8?", [{"role": "user", "content": "Hi"}]]
    completions = ["<answer>5</answer>", [{"role": "assistant", "content": "<answer>56</answer>"}], "Hello there"]
    got = fn(completions, prompts)
    expected = []
    with torch.no_grad():
        for prompt, text in zip(prompts, ["<answer>5</answer>", "<answer>56</answer>", "Hello there"]):
            messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
            prompt_ids = tokenizer(runtime.prompt_text(tokenizer, {"prompt": messages}), add_special_tokens=False)["input_ids"]
            completion = tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
            expected.append(direct_score(model, prompt_ids + completion).item())
        batch = sequences.collate([tokenizer(runtime.prompt_text(tokenizer, {"prompt": prompts[0]}), add_special_tokens=False)["input_ids"]],
                                  [sequences.encode_completion(tokenizer, "<answer>5</answer>", 48)], tokenizer.pad_token_id, "cpu")
        batched = scalar.sequence_scores(model, batch.input_ids, batch.attention_mask).item()
    assert len(got) == 3 and all(isinstance(x, float) for x in got)
    assert got == pytest.approx(expected, rel=1e-4, abs=1e-5)
    assert got[0] == pytest.approx(batched, rel=1e-5, abs=1e-6)
    assert fn.score("What is 2 + 3?", "<answer>5</answer>") == pytest.approx(got[0], rel=1e-5, abs=1e-6)
    assert fn.__name__ == "reward_model"
    with pytest.raises(InputError, match="pass prompts="):
        fn(["x"])


def test_make_reward_model_prefix_returns_the_reward_model(saved):
    fn = scalar.reward_function("model:" + str(saved))
    assert isinstance(fn, scalar.RewardModelFunction) and fn.__name__ == "reward_model"
    assert rewards.is_known("model:" + str(saved)) and not rewards.is_known("model:")
    assert isinstance(fn.score("q", "a"), float)
