"""Every CLI command once, and every bad input the issue lists: one message, non-zero exit."""

import os
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml

from rlsuite.algos.deep import ppo
import shutil

from rlsuite.core import checkpoint
from rlsuite.core.run import RunDir
from rlsuite.cli import main

TINY = ["--total-steps", "512", "--num-envs", "2", "--num-steps", "64", "--minibatch-size", "64",
        "--update-epochs", "1", "--eval-every", "256", "--eval-episodes", "2", "--quiet"]


def train(*extra):
    return main(["train", "ppo", "--env", "CartPole-v1", *TINY, *extra])


def test_train_eval_resume_plot_list(tmp_path, capsys):
    assert train("--run-dir", "run", "--seed", "3") == 0
    out = capsys.readouterr().out
    assert "evaluation mean return" in out and "run" in out
    run = tmp_path / "run"
    for name in ("run.yaml", "config.yaml", "metrics.csv", "eval.csv", "episodes.csv", "model/policy.pt", "model/rlsuite.yaml", "curve.png"):
        assert (run / name).is_file(), name
    assert RunDir(run).latest_checkpoint() is not None
    assert any((run / "tb").iterdir())
    assert yaml.safe_load((run / "config.yaml").read_text())["seed"] == 3

    assert main(["eval", "run", "--episodes", "3", "--video", "episode.gif"]) == 0
    out = capsys.readouterr().out
    assert "over 3 episodes" in out and (tmp_path / "episode.gif").stat().st_size > 1000

    assert main(["resume", "run", "--total-steps", "1024", "--quiet"]) == 0
    assert "finished after 1,024 env steps" in capsys.readouterr().out
    steps = [float(line.split(",")[0]) for line in (run / "eval.csv").read_text().splitlines()[1:]]
    assert steps == sorted(steps) and steps[-1] == 1024

    assert main(["plot", "run", "--out", "curves.png"]) == 0
    assert (tmp_path / "curves.png").stat().st_size > 1000

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "ppo" in out and "CartPole-v1" in out and "presets: ppo" in out


def test_config_file_and_flags(tmp_path):
    (tmp_path / "c.yaml").write_text("gamma: 0.95\nseed: 4\n")
    assert train("--config", "c.yaml", "--seed", "5", "--run-dir", "r", "--anneal-lr", "false", "--normalize_obs", "yes") == 0
    saved = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert saved["gamma"] == 0.95 and saved["seed"] == 5  # the flag beats the file
    assert saved["anneal_lr"] is False and saved["normalize_obs"] is True  # bools in any common spelling
    assert saved["update_epochs"] == 1 and saved["gae_lambda"] == 0.8  # CartPole preset underneath


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "ppo", "--env", "CartPol-v1"], "unknown environment 'CartPol-v1'. Did you mean: CartPole-v1"),
        (["train", "ppx"], "unknown algorithm 'ppx'. Did you mean: ppo"),
        (["train", "ppo", "--learning-rate", "-1"], "learning_rate must be > 0"),
        (["train", "ppo", "--minibatch-size", "100"], "minibatch_size 100 must divide the batch"),
        (["train", "ppo", "--env", "FrozenLake-v1"], "ppo needs a flat Box observation space"),
        (["train", "ppo", "--config", "missing.yaml"], "config file missing.yaml does not exist"),
        (["eval", "nowhere"], "nowhere is not an rlsuite run directory"),
        (["resume", "nowhere"], "nowhere is not an rlsuite run directory"),
        (["plot", "nowhere"], "no such run directory: nowhere"),
        (["train", "grpo", "--num-generations", "1"], "num_generations must be >= 2"),
        (["train", "grpo", "--batch-size", "20", "--num-generations", "8"], "must be a multiple of num_generations (8)"),
        (["train", "grpo", "--model", "nowhere/Qwen2-0.5B"], "rlsuite never downloads models"),
        (["train", "sft", "--task", "nowhere.jsonl"], "unknown task 'nowhere.jsonl'"),
        (["train", "grpo", "--max-prompt-length", "480", "--max-completion-length", "64"], "exceeds the model's context of 512 tokens"),
    ],
)
def test_bad_input_gives_one_clear_message(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("args", [["--learnign-rate", "0.1"], ["--learning-rate", "abc"]])
def test_unknown_flag_or_wrong_type_exits_2(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "ppo", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr()
    text = err.out + err.err
    assert "--learning-rate" in text  # tyro names the flag (and suggests it for the typo)


class MultiBinaryActionEnv(gym.Env):
    observation_space = gym.spaces.Box(-1, 1, (3,), np.float32)
    action_space = gym.spaces.MultiBinary(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(3, np.float32), {}

    def step(self, action):
        return np.zeros(3, np.float32), 0.0, True, False, {}


def test_action_space_the_algorithm_cannot_handle(capsys):
    gym.register("MultiBinaryTest-v0", entry_point=MultiBinaryActionEnv)
    try:
        assert main(["train", "ppo", "--env", "MultiBinaryTest-v0"]) == 2
    finally:
        gym.registry.pop("MultiBinaryTest-v0")
    assert "ppo handles Discrete or Box action spaces" in capsys.readouterr().err


def test_existing_run_dir_is_refused_and_kept(tmp_path, capsys):
    assert train("--run-dir", "run") == 0
    before = (tmp_path / "run" / "model" / "policy.pt").read_bytes()
    assert train("--run-dir", "run") == 2
    assert "already exists. Use --overwrite" in capsys.readouterr().err
    assert (tmp_path / "run" / "model" / "policy.pt").read_bytes() == before
    assert train("--run-dir", "run", "--overwrite", "--seed", "9") == 0
    assert (tmp_path / "run" / "model" / "policy.pt").read_bytes() != before


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    assert train("--run-dir", "mine", "--overwrite") == 2
    assert "not an rlsuite run directory" in capsys.readouterr().err
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_missing_and_corrupt_checkpoint(tmp_path, capsys):
    assert train("--run-dir", "run") == 0
    state = RunDir(tmp_path / "run").latest_checkpoint() / "state.pt"
    state.write_bytes(b"not a checkpoint")
    assert main(["resume", "run", "--total-steps", "2048"]) == 2
    assert "corrupt" in capsys.readouterr().err
    shutil.rmtree(tmp_path / "run" / "checkpoints")
    assert main(["resume", "run", "--total-steps", "2048"]) == 2
    assert "no checkpoint to resume from" in capsys.readouterr().err
    (tmp_path / "run" / "model" / "policy.pt").write_bytes(b"\x00" * 10)
    assert main(["eval", "run"]) == 2
    assert "corrupt" in capsys.readouterr().err


def test_nan_loss_stops_names_the_quantity_and_keeps_the_last_good_checkpoint(tmp_path, capsys, monkeypatch):
    calls = {"n": 0}
    clip = ppo.OBJECTIVES["clip"]

    def poisoned(logp, old_logp, advantages, coef):
        calls["n"] += 1
        loss, info = clip(logp, old_logp, advantages, coef)
        return (loss * torch.nan if calls["n"] > 4 else loss), info

    monkeypatch.setitem(ppo.OBJECTIVES, "clip", poisoned)
    assert train("--run-dir", "run", "--checkpoint-every", "128", "--total-steps", "2048") == 3
    err = capsys.readouterr().err
    assert "losses/policy_loss became nan at step 256" in err
    assert "last good checkpoint (step 256)" in err
    saved = checkpoint.load_state(RunDir(tmp_path / "run").latest_checkpoint())
    assert saved["step"] == 256
    assert all(torch.isfinite(t).all() for t in saved["parts"]["agent"].values())
    assert yaml.safe_load((tmp_path / "run" / "run.yaml").read_text())["status"] == "failed"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_device_fails_before_creating_the_run_dir(tmp_path, capsys):
    assert train("--device", "cuda", "--run-dir", "run") == 2
    assert "CUDA is not available" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_eval_video_prints_no_display_noise(tmp_path):
    assert train("--run-dir", "run") == 0
    env = {k: v for k, v in os.environ.items() if k not in ("SDL_VIDEODRIVER", "XDG_RUNTIME_DIR", "PYGAME_HIDE_SUPPORT_PROMPT")}
    result = subprocess.run([sys.executable, "-m", "rlsuite.cli", "eval", "run", "--episodes", "2", "--video", "v.gif"],
                            cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and "pygame" not in result.stdout and "XDG_RUNTIME_DIR" not in result.stdout
    assert (tmp_path / "v.gif").stat().st_size > 1000


def test_progress_in_a_log_keeps_the_counter_whole(tmp_path):
    result = subprocess.run([sys.executable, "-m", "rlsuite.cli", "train", "q_learning", "--total-steps", "20000", "--run-dir", "r"],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "env steps" in line and "/" in line]
    assert len(lines) == 10 and "20,000/20,000 env steps" in lines[-1] and "…" not in result.stdout


def test_progress_on_a_narrow_terminal_cuts_decorations_not_numbers():
    import io
    from types import SimpleNamespace

    from rich.console import Console

    from rlsuite.core.config import Budget
    from rlsuite.core.progress import RichProgress

    loop = SimpleNamespace(algo="ppo", config=SimpleNamespace(env="CartPole-v1"), step=0, budget=Budget(100_000, "env steps"), evaluations=[])
    out = io.StringIO()
    progress = RichProgress(loop, Console(file=out, width=40, force_terminal=True))
    loop.step, loop.evaluations = 100_000, [(100_000, {"mean_return": 500.0})]
    progress.update(loop)
    progress.close()
    assert "100,000/100,000 env steps" in out.getvalue()


LM_TINY = ["--model", "builtin", "--level", "easy", "--batch-size", "8", "--num-generations", "4", "--max-completion-length", "8",
           "--eval-size", "8", "--test-size", "8", "--train-size", "32", "--total-steps", "1", "--quiet"]


def test_language_model_train_eval_and_prompt(tmp_path, capsys):
    assert main(["train", "grpo", "--task", "arithmetic", "--run-dir", "lm", *LM_TINY]) == 0
    capsys.readouterr()
    assert main(["eval", "lm", "--samples", "8", "--k", "2"]) == 0
    out = capsys.readouterr().out
    assert "accuracy@1 (greedy)" in out and "pass@2" in out and "8 prompts" in out
    assert main(["eval", "lm", "--prompt", "What is 7 * 8 - 5?"]) == 0
    assert "What is 7 * 8 - 5?" in capsys.readouterr().out


PREFERENCE_TINY = ["--level", "easy", "--total-steps", "2", "--batch-size", "4", "--train-size", "16", "--test-size", "8",
                   "--eval-size", "8", "--max-completion-length", "12", "--quiet"]


def test_eval_of_a_reward_model_and_of_a_task_without_verifier(tmp_path, capsys):
    assert main(["train", "reward_model", "--task", "arithmetic", "--run-dir", "rm", *PREFERENCE_TINY]) == 0
    capsys.readouterr()
    assert main(["eval", "rm"]) == 0
    assert "held-out pairs, 8: pairwise accuracy" in capsys.readouterr().out
    assert main(["eval", "rm", "--prompt", "What is 2 + 2?"]) == 2
    assert ".score(question, answer)" in capsys.readouterr().err
    assert main(["train", "dpo", "--task", "constraints", "--run-dir", "dpo", *PREFERENCE_TINY[2:]]) == 0
    capsys.readouterr()
    assert main(["eval", "dpo"]) == 2
    err = capsys.readouterr().err
    assert "constraints has no verifier" in err and "--prompt" in err and "Traceback" not in err
    assert main(["eval", "dpo", "--prompt", "Name a fruit that starts with the letter b."]) == 0
