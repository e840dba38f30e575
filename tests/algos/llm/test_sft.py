"""SFT: the loss covers completion tokens only, packing changes nothing, demonstrations from every shape."""

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from rlsuite.algos.llm import sft  # noqa: E402
from rlsuite.errors import DataError  # noqa: E402


@pytest.fixture(scope="module")
def model():
    config = transformers.Qwen2Config(vocab_size=23, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                      num_key_value_heads=2, max_position_embeddings=64, pad_token_id=0, eos_token_id=1)
    torch.manual_seed(0)
    return transformers.Qwen2ForCausalLM(config).eval()


EXAMPLES = [sft.Example([5, 6, 7, 8, 9, 1], [0, 0, 0, 1, 1, 1]), sft.Example([10, 11, 12, 1], [0, 0, 1, 1]),
            sft.Example([13, 14, 15, 16, 17, 18, 19, 1], [0, 0, 0, 0, 1, 1, 1, 1])]


def completion_nll_by_hand(model, examples):
    """Mean over every completion token of -log p(token | everything before it), one example at a time."""
    total, count = 0.0, 0
    for e in examples:
        ids = torch.tensor([e.ids])
        logp = model(input_ids=ids).logits[0, :-1].log_softmax(-1)
        for t in range(1, len(e.ids)):
            if e.labels_mask[t]:
                total -= logp[t - 1, e.ids[t]].item()
                count += 1
    return total / count


def test_sft_loss_is_the_mean_nll_of_completion_tokens(model):
    with torch.no_grad():
        loss = sft.sft_loss(model, sft.collate(EXAMPLES, 0, "cpu"))
    assert loss.item() == pytest.approx(completion_nll_by_hand(model, EXAMPLES), rel=1e-5)


def test_prompt_tokens_do_not_enter_the_loss_as_targets(model):
    """Changing which prompt token comes last changes the context, but a prompt token is never a target:
    masking everything but one completion token gives that token's NLL alone."""
    one = [sft.Example([5, 6, 7, 1], [0, 0, 0, 1])]
    with torch.no_grad():
        loss = sft.sft_loss(model, sft.collate(one, 0, "cpu")).item()
        logp = model(input_ids=torch.tensor([[5, 6, 7, 1]])).logits[0, 2].log_softmax(-1)[1].item()
    assert loss == pytest.approx(-logp, rel=1e-5)


def test_packing_gives_the_same_loss_as_padding(model):
    with torch.no_grad():
        padded = sft.sft_loss(model, sft.collate(EXAMPLES, 0, "cpu"))
        packed_batch = sft.pack(EXAMPLES, 12, 0, "cpu")
        packed = sft.sft_loss(model, packed_batch)
    assert packed_batch["input_ids"].shape[0] == 2  # 6 + 4 tokens share a row; 8 need their own
    assert packed.item() == pytest.approx(padded.item(), rel=1e-5)


def test_demonstrations_from_each_dataset_shape():
    assert sft.completion_of({"think": "3 * 4 = 12, 2 + 12 = 14", "solution": "14"}, 0) == "<think>3 * 4 = 12, 2 + 12 = 14</think><answer>14</answer>"
    assert sft.completion_of({"completion": "<answer>3</answer>"}, 0) == "<answer>3</answer>"
    assert sft.completion_of({"completion": [{"role": "assistant", "content": "hi"}]}, 0) == "hi"
    row = sft.as_demonstration({"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}],
                                "prompt": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]})
    assert row["prompt"] == [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]
    assert row["completion"] == "A"
    with pytest.raises(DataError, match="row 3 has no demonstration.*completion"):
        sft.completion_of({"problem": "x", "solution": "1"}, 3)


def test_warmup_then_cosine_to_a_tenth():
    config = sft.SFTConfig(total_steps=110, warmup_steps=10)
    assert sft.learning_rate_factor(config, 0) == pytest.approx(0.1)
    assert sft.learning_rate_factor(config, 9) == pytest.approx(1.0)
    assert sft.learning_rate_factor(config, 60) == pytest.approx(0.55)
    assert sft.learning_rate_factor(config, 110) == pytest.approx(0.1)


def test_sft_on_a_conversational_file_and_packing_end_to_end(tmp_path):
    from rlsuite import api

    run = api.train("sft", "numina-sample", run_dir=tmp_path / "run", model="builtin", system_prompt="none", max_prompt_length=400,
                    max_completion_length=100, total_steps=2, batch_size=4, eval_size=1, test_size=1, packing=True, quiet=True)
    assert run.status == "finished" and (run.dir / "model" / "config.json").is_file()
    assert {"accuracy", "test_loss"} <= set(run.evaluations)  # the sample has solutions, so it is scored too
    assert run.metrics["tokens"][0] > 0


@pytest.mark.slow
def test_sft_learns_the_format_quickly():
    """Seconds of SFT from random weights already put most completions in the R1 format."""
    from rlsuite import api

    run = api.train("sft", "arithmetic", model="builtin", level="medium", total_steps=60, eval_every=0, eval_size=32, test_size=32,
                    quiet=True)
    assert run.evaluations["format"][-1] >= 0.5 > run.evaluations["format"][0]
    assert run.evaluations["test_loss"][-1] < 0.5 * run.evaluations["test_loss"][0]
