"""The LM run set-up: prompt tokens and their limits, the resumable prompt order, evaluation."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from rlsuite import api  # noqa: E402
from rlsuite.errors import ConfigError, DataError  # noqa: E402
from rlsuite.lm import models, runtime  # noqa: E402
from rlsuite.lm.generation import make_generator  # noqa: E402
from rlsuite.lm.runtime import PromptOrder  # noqa: E402


def test_prompt_order_visits_every_prompt_once_per_epoch_and_resumes():
    order = PromptOrder()
    taken = []
    for _ in range(5):
        chunk, order = order.take(4, 10, seed=7)
        taken += chunk
    assert sorted(taken[:10]) == list(range(10)) and sorted(taken[10:20]) == list(range(10))
    assert order == PromptOrder(epoch=2, position=0)
    first, middle = PromptOrder().take(6, 10, seed=7)
    rest, _ = middle.take(4, 10, seed=7)
    assert first + rest == taken[:10]  # a resumed order continues the same permutation
    assert PromptOrder().take(10, 10, seed=8)[0] != taken[:10]


def test_too_long_prompts_are_named_not_cut():
    tokenizer = models.build_tokenizer()
    rows = [{"prompt": [{"role": "user", "content": "x" * n}]} for n in (5, 200, 10)]
    with pytest.raises(DataError, match=r"1 train prompts are longer than max_prompt_length=64 tokens \(rows 1; the longest has 2\d\d\)"):
        runtime.encode_prompts(tokenizer, rows, 64, "train")


def test_eval_size_beyond_a_files_test_split_is_refused_and_arithmetic_sizes_hold():
    model, tokenizer = models.load_model("builtin")
    config = api.make_config("sft", "numina-sample", model="builtin", max_prompt_length=400, max_completion_length=100)
    with pytest.raises(ConfigError, match=r"eval_size \(500\) exceeds the 1 test prompts of numina-sample; lower --eval-size to 1"):
        runtime.prepare(config, model, tokenizer, torch.device("cpu"), needs=("prompt",))
    config = api.make_config("grpo", "arithmetic", model="builtin", test_size=300, eval_size=300, train_size=8)
    run = runtime.prepare(config, model, tokenizer, torch.device("cpu"))
    assert len(run.test_prompts) == 300 and len(run.train_prompts) == 8 and run.task.reward_columns == ("solution",)


def test_greedy_evaluation_scores_the_shipped_model_and_pass_at_k_is_at_least_accuracy():
    config = api.make_config("grpo", "arithmetic", test_size=64, eval_size=64, train_size=8)
    model, tokenizer = models.load_model("builtin-sft")
    run = runtime.prepare(config, model.eval(), tokenizer, torch.device("cpu"))
    greedy, shown = runtime.evaluate(run, model, run.task.test, run.test_prompts, samples=2)
    assert 0.05 <= greedy["accuracy"] <= 0.8 and greedy["format"] >= 0.9  # SFT taught the format
    assert len(shown) == 2 and shown[0]["completion"].startswith("<think>")
    torch.manual_seed(0)
    sampled, _ = runtime.evaluate(run, model, run.task.test, run.test_prompts, k=4, temperature=1.0)
    assert sampled["pass@4"] >= sampled["accuracy"]


def test_vllm_generator_needs_vllm_and_a_gpu():
    model, tokenizer = models.load_model("builtin")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ConfigError, match="needs vLLM installed"):
        make_generator("vllm", model, tokenizer, torch.device("cpu"))
    assert type(make_generator("auto", model, tokenizer, torch.device("cpu"))).__name__ == "TorchGenerator"


@pytest.mark.parametrize("sharding", [False, True])
def test_held_out_evaluation_gives_every_process_as_many_prompts_when_parameters_are_sharded(monkeypatch, sharding):
    """Seven prompts on two processes are shares of 4 and 3. With sharded parameters every forward
    pass is a collective, so the second process also decodes a filler (its first prompt again, as
    many batches as the first process), whose results are dropped before they are gathered."""
    from rlsuite.lm import parallel

    decoded, gathered = [], []

    def decode(run, model, rows, prompts, k, temperature, batch_size, samples):
        decoded.append(list(prompts))
        n = len(prompts) * k
        return [float(p[0] % 2) for p in prompts for _ in range(k)], [True] * n, [len(p) for p in prompts for _ in range(k)], []

    class SecondProcess(parallel.DataParallel):
        def all_gather(self, value):
            gathered.append(value)
            return [value, value]  # the first process's part does not matter here

    dp = SecondProcess()
    dp.rank, dp.world, dp.engine = 1, 2, "fsdp" if sharding else "ddp"
    monkeypatch.setattr(runtime, "_decode", decode)
    run = type("Run", (), {"dp": dp})()
    prompts = [[i + 1] * (i + 1) for i in range(7)]
    runtime.evaluate(run, None, [{} for _ in prompts], prompts, k=2)
    assert decoded == [prompts[4:] + ([prompts[0]] if sharding else [])]  # 4 prompts each when sharded
    correct, formatted, lengths, shown = gathered[0]
    assert correct == [1.0, 1.0, 0.0, 0.0, 1.0, 1.0] and lengths == [5, 5, 6, 6, 7, 7]  # this process's own 3 prompts x k
