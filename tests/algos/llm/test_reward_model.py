"""Reward model: one Bradley-Terry update against the hand-derived gradient, margins, pairwise
accuracy, a short run that loads and scores, and the reward model as a GRPO reward function."""

import copy
import json
import math

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import torch.nn.functional as F  # noqa: E402

import rlsuite  # noqa: E402
from rlsuite import api  # noqa: E402
from rlsuite.algos.llm import grpo, reward_model  # noqa: E402
from rlsuite.errors import ConfigError  # noqa: E402
from rlsuite.lm import scalar, sequences  # noqa: E402
from rlsuite.ops import losses  # noqa: E402


PAD, EOS = 0, 1
PAIRS = [([3, 4, 5], [6, 7, EOS], [8, EOS]), ([9, 10], [11, 12, 13, 14, EOS], [15, 16, EOS]), ([17], [18, EOS], [19, 20, 21, EOS])]


def tiny_scalar_model(seed=0):
    config = transformers.Qwen2Config(vocab_size=23, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                      num_key_value_heads=2, max_position_embeddings=64, pad_token_id=PAD, eos_token_id=EOS, num_labels=1)
    torch.manual_seed(seed)
    return transformers.Qwen2ForSequenceClassification(config).double()


def direct_reward(model, prompt, completion):
    """The head at the last token (the EOS) of one unpadded forward pass."""
    hidden = model.model(input_ids=torch.tensor([prompt + completion])).last_hidden_state[0, -1]
    return model.score(hidden).squeeze(-1)


def test_one_step_follows_the_hand_derived_gradient():
    lr, c = 0.1, 0.01
    margin = torch.tensor([0.5, 0.0, 1.0], dtype=torch.float64)
    model = tiny_scalar_model()
    twin = copy.deepcopy(model)

    chosen_by_hand = torch.stack([direct_reward(twin, p, w) for p, w, _ in PAIRS])
    rejected_by_hand = torch.stack([direct_reward(twin, p, l) for p, _, l in PAIRS])
    loss_by_hand = (-F.logsigmoid(chosen_by_hand - rejected_by_hand - margin).mean()
                    + c * ((chosen_by_hand + rejected_by_hand) ** 2).mean())
    loss_by_hand.backward()
    expected = {name: p.detach() - lr * p.grad for name, p in twin.named_parameters()}

    chosen, rejected = reward_model.pair_rewards(model, sequences.collate_pairs(PAIRS, PAD, "cpu"))
    torch.testing.assert_close(chosen.double(), chosen_by_hand.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(rejected.double(), rejected_by_hand.detach(), rtol=1e-5, atol=1e-6)
    loss, info = losses.bradley_terry(chosen, rejected, margin=margin.to(chosen.dtype), center_coefficient=c)
    assert loss.item() == pytest.approx(loss_by_hand.item(), rel=1e-5)
    diff = (chosen_by_hand - rejected_by_hand).detach()
    assert info["accuracy"].item() == pytest.approx((diff > 0).double().mean().item())
    assert info["margin"].item() == pytest.approx(diff.mean().item(), rel=1e-5, abs=1e-6)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    for name, param in model.named_parameters():
        torch.testing.assert_close(param.detach(), expected[name], rtol=1e-4, atol=1e-7, msg=name)


def test_bradley_terry_by_hand():
    loss, info = losses.bradley_terry(torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0]))
    assert loss.item() == pytest.approx(-(F.logsigmoid(torch.tensor(1.0)) + F.logsigmoid(torch.tensor(-1.0))).item() / 2)
    assert info["accuracy"].item() == 0.5 and info["margin"].item() == 0.0
    # chosen above rejected lowers the loss; a margin asks for more
    better, _ = losses.bradley_terry(torch.tensor([3.0]), torch.tensor([0.0]))
    worse, _ = losses.bradley_terry(torch.tensor([0.0]), torch.tensor([3.0]))
    with_margin, _ = losses.bradley_terry(torch.tensor([3.0]), torch.tensor([0.0]), margin=torch.tensor([3.0]))
    assert better.item() < worse.item() and with_margin.item() == pytest.approx(math.log(2))  # -log sigmoid(3 - 0 - 3)


def test_margins_of_reads_a_margin_column():
    rows = [{"margin": 1}, {"margin": "2.5"}, {"prompt": "no margin"}]
    assert reward_model.margins_of(rows, [1, 0], "cpu").tolist() == [2.5, 1.0]
    assert reward_model.margins_of(rows, [0, 2], "cpu") is None  # every row of the batch needs one
    assert reward_model.margins_of(rows[:2], [0, 1, 0], "cpu").tolist() == [1.0, 2.5, 1.0]


def test_pairwise_accuracy_by_hand():
    model = tiny_scalar_model().float()
    model.train()
    scores = reward_model.pairwise_accuracy(model, PAIRS, PAD, "cpu", batch_size=2)  # two batches
    assert model.training
    with torch.no_grad():
        chosen = torch.stack([direct_reward(model, p, w) for p, w, _ in PAIRS])
        rejected = torch.stack([direct_reward(model, p, l) for p, _, l in PAIRS])
    assert scores["accuracy"] == pytest.approx((chosen > rejected).float().mean().item())
    assert scores["margin"] == pytest.approx((chosen - rejected).mean().item(), rel=1e-4, abs=1e-6)
    assert scores["reward_mean"] == pytest.approx(torch.cat([chosen, rejected]).mean().item(), rel=1e-4, abs=1e-6)
    # a zero head scores every completion 0: no pair is ranked right (a tie is not a win)
    torch.nn.init.zeros_(model.score.weight)
    tied = reward_model.pairwise_accuracy(model, PAIRS, PAD, "cpu")
    assert tied == {"accuracy": 0.0, "margin": 0.0, "reward_mean": 0.0}


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_train_then_load_and_score(tmp_path):
    rows = [{"prompt": f"Say {i}.", "chosen": f"{i}", "rejected": f"{i + 1}", "margin": 0.5} for i in range(10)]
    run = api.train("reward_model", write_jsonl(tmp_path / "pairs.jsonl", rows), run_dir=tmp_path / "run", model="builtin",
                    total_steps=3, batch_size=2, eval_every=0, eval_size=1, test_size=1, max_completion_length=8,
                    max_prompt_length=32, learning_rate=1e-3, quiet=True)
    assert run.status == "finished" and len(run.metrics["loss"]) == 3
    assert run.metrics["loss"][0] == pytest.approx(-float(F.logsigmoid(torch.tensor(-0.5))), rel=1e-5)  # zero head, margin 0.5
    assert {"accuracy", "margin", "reward_mean"} <= set(run.evaluations)
    loaded = rlsuite.load(run.dir)
    assert isinstance(loaded, scalar.RewardModelFunction)
    score = loaded.score("Say 3.", "3")
    assert isinstance(score, float) and score != 0.0  # the head moved off zero
    as_reward = scalar.reward_function("model:" + str(run.dir))
    assert as_reward(["3"], [[{"role": "user", "content": "Say 3."}]]) == pytest.approx([score], rel=1e-5)
    # ... and GRPO trains with it as its only reward (the model's scores are its rewards).
    grpo_run = api.train("grpo", "arithmetic", run_dir=tmp_path / "grpo", model="builtin", level="easy", rewards=("model:" + str(run.dir),),
                         reward_weights=(1.0,), total_steps=1, batch_size=4, num_generations=2, max_completion_length=6,
                         train_size=8, test_size=2, eval_size=2, eval_every=0, quiet=True)
    assert grpo_run.status == "finished" and "rewards/model:" + str(run.dir) + "/mean" in grpo_run.metrics


def test_grpo_takes_a_reward_model_by_path():
    config = grpo.GRPOConfig(rewards=("accuracy", "model:/x"), reward_weights=(1.0, 1.0))
    assert config.rewards == ("accuracy", "model:/x")
    for bad in ("modle:/x", "model:"):
        with pytest.raises(ConfigError, match="unknown reward"):
            grpo.GRPOConfig(rewards=("accuracy", bad), reward_weights=(1.0, 1.0))


def test_lora_is_refused():
    with pytest.raises(ConfigError, match="lora_r is not supported for reward models"):
        reward_model.RewardModelConfig(lora_r=4)
    with pytest.raises(ConfigError, match="center_coefficient must be >= 0"):
        reward_model.RewardModelConfig(center_coefficient=-0.1)


def test_cli_lora_exits_2(capsys):
    from rlsuite.cli import main

    assert main(["train", "reward_model", "--lora-r", "4"]) == 2
    err = capsys.readouterr().err
    assert "lora_r is not supported for reward models" in err and "Traceback" not in err
