"""The built-in tokenizer and model, loading local models (never downloading), the export."""

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from rlsuite.errors import ConfigError, InputError, MissingExtraError, require_extra  # noqa: E402
from rlsuite.lm import models  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer():
    return models.build_tokenizer()


def test_any_text_round_trips_and_the_format_tags_are_single_tokens(tokenizer):
    text = "<think>3 * 4 = 12, 2 + 12 = 14；先算乘法</think><answer>14</answer>"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text
    for tag in models.FORMAT_TAGS:
        assert len(tokenizer(tag, add_special_tokens=False)["input_ids"]) == 1
    assert tokenizer.decode(ids, skip_special_tokens=True) == text  # the tags are not special: rewards read them


def test_chat_template_and_special_tokens(tokenizer):
    text = tokenizer.apply_chat_template([{"role": "user", "content": "What is 2 + 3?"}], tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n"
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>" and tokenizer.padding_side == "left"
    assert models.is_builtin_tokenizer(tokenizer)


def test_builtin_model_shape_and_seeded_init(tokenizer):
    a, b = models.build_model(tokenizer, seed=3), models.build_model(tokenizer, seed=3)
    assert 1_000_000 <= models.count_parameters(a) <= 5_000_000
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(next(a.parameters()), next(models.build_model(tokenizer, seed=4).parameters()))


def test_shipped_sft_model_loads_with_from_pretrained():
    model = transformers.AutoModelForCausalLM.from_pretrained(models.BUILTIN_SFT_DIR, local_files_only=True)
    tokenizer = transformers.AutoTokenizer.from_pretrained(models.BUILTIN_SFT_DIR, local_files_only=True)
    assert models.is_builtin_tokenizer(tokenizer) and model.config.model_type == "qwen2"
    loaded, _ = models.load_model("builtin-sft")
    assert torch.equal(loaded.model.embed_tokens.weight, model.model.embed_tokens.weight)


def test_export_round_trips_through_save_pretrained(tmp_path, tokenizer):
    model = models.build_model(tokenizer, seed=1)
    models.save(model, tokenizer, tmp_path)
    loaded, loaded_tokenizer = models.load_model(str(tmp_path))
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), loaded.parameters()))
    assert loaded_tokenizer.chat_template == tokenizer.chat_template


def test_lora_export_is_merged_and_loads_without_peft(tmp_path, tokenizer):
    peft = pytest.importorskip("peft")
    model = models.build_model(tokenizer, seed=1)
    lora = peft.get_peft_model(model, peft.LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False))
    ids = torch.tensor([[5, 6, 7]])
    with torch.no_grad():
        expected = lora(input_ids=ids).logits
    models.save(lora, tokenizer, tmp_path)
    assert not (tmp_path / "adapter_config.json").exists()
    loaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, local_files_only=True)
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids).logits, expected, rtol=1e-4, atol=1e-5)


def test_a_missing_model_is_never_downloaded(tmp_path):
    with pytest.raises(ConfigError, match="never downloads"):
        models.load_model("Qwen/Qwen2.5-0.5B-Instruct")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no config.json"):
        models.load_model(str(tmp_path / "empty"))


def test_a_tokenizer_without_a_chat_template_is_refused(tokenizer):
    bare = models.build_tokenizer()
    bare.chat_template = None
    with pytest.raises(InputError, match="no chat template"):
        models.check_tokenizer(bare, "my-model")


def test_a_missing_extra_names_the_extra_to_install():
    with pytest.raises(MissingExtraError, match=r"pip install 'rlsuite\[llm\]'"):
        require_extra("a_module_that_is_not_installed", "llm")
