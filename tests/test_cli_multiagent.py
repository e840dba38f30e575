"""The `rlsuite` command on multi-agent runs, as a user types it (a subprocess in tmp_path): a
clear one-line refusal for an algorithm and env that do not fit, and train -> eval (team and
per-agent returns, the video) on rlsuite/grid_goals_v0 and mpe2's simple_spread. The printed
numbers are checked against the same episodes run here through the Python API."""

import subprocess
import sys

import numpy as np
import pytest

EVAL_SEED = 12345  # rlsuite eval's default --seed


def rlsuite(cwd, *args):
    return subprocess.run([sys.executable, "-m", "rlsuite.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("algo, env, message", [
    ("mappo", "CartPole-v1", "error: mappo trains teams of agents on multi-agent PettingZoo envs, but CartPole-v1 is a single-agent env."),
    ("ppo", "mpe2/simple_spread_v3", "error: mpe2/simple_spread_v3 is a multi-agent env (3 agents); ppo trains one agent. "
                                     "Use a multi-agent algorithm: mappo, ippo, or iql"),
    ("iql", "mpe2/simple_spread_v3", "error: iql keeps a Q-table per agent indexed by its observation, so it needs Discrete observations"),
])
def test_algorithm_and_env_that_do_not_fit(tmp_path, algo, env, message):
    if env.startswith("mpe2"):
        pytest.importorskip("mpe2")
    result = rlsuite(tmp_path, "train", algo, "--env", env, "--run-dir", "r")
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.count("error:") == 1
    assert "Traceback" not in result.stderr + result.stdout and result.stdout == ""
    assert not (tmp_path / "r").exists()


def expected_eval(run_dir, episodes):
    """What `rlsuite eval` must print, computed here with the Python API on the same seed."""
    from rlsuite import api
    from rlsuite.envs.evaluation import run_team_episodes
    from rlsuite.envs.multiagent import MultiAgentVectorEnv

    policy = api.load(run_dir)
    envs = MultiAgentVectorEnv(policy.config.env, episodes)
    try:
        team, agents, lengths = run_team_episodes(lambda obs: policy.act(obs, deterministic=True), envs, EVAL_SEED)
    finally:
        envs.close()
    headline = (f"{policy.algo} on {policy.config.env}: team return {team.mean():.2f} ± {team.std():.2f} "
                f"(min {team.min():.1f}, max {team.max():.1f}) over {episodes} episodes, mean length {lengths.mean():.1f}")
    per_agent = "  " + ", ".join(f"{name} {agents[:, i].mean():.2f}" for i, name in enumerate(envs.agents))
    # the video plays copy 0's episode (seeded alike), to its end
    video = f"(team return {team[0]:.1f}, {lengths[0]} steps)"
    return headline, per_agent, video, agents


def check_run_and_eval(tmp_path, capsys, env, agent_names, train_args, episodes):
    from rlsuite.cli import main

    # training in this process (cmd_train, as the command runs it) saves a second interpreter start
    assert main(["train", "mappo", "--env", env, *train_args, "--run-dir", "r", "--quiet"]) == 0
    assert f"mappo on {env} finished after" in capsys.readouterr().out
    run = tmp_path / "r"
    for name in ("curve.png", "agents.png", "eval.csv", "model/rlsuite.yaml"):
        assert (run / name).is_file() and (run / name).stat().st_size > 0, name
    header = (run / "eval.csv").read_text().splitlines()[0].split(",")
    assert "mean_return" in header and all(f"return_{name}" in header for name in agent_names)

    result = rlsuite(tmp_path, "eval", "r", "--episodes", str(episodes), "--video", "v.gif")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    headline, per_agent, video, agents = expected_eval(run, episodes)
    lines = result.stdout.splitlines()
    assert lines[0] == headline and lines[1] == per_agent
    assert lines[2] == f"Wrote v.gif {video}"
    assert np.allclose(agents.sum(1).mean(), float(headline.split("team return ")[1].split(" ")[0]), atol=0.006)
    assert all(name in lines[1] for name in agent_names)
    gif = (tmp_path / "v.gif").read_bytes()
    assert gif[:6] in (b"GIF87a", b"GIF89a") and len(gif) > 1000
    return result


def test_train_and_eval_grid_goals(tmp_path, capsys):
    check_run_and_eval(tmp_path, capsys, "rlsuite/grid_goals_v0", ("agent_0", "agent_1"),
                       ["--total-steps", "640", "--num-envs", "2", "--num-steps", "40", "--eval-every", "320", "--eval-episodes", "2"],
                       episodes=3)


def test_train_and_eval_simple_spread(tmp_path, capsys):
    pytest.importorskip("mpe2")
    check_run_and_eval(tmp_path, capsys, "mpe2/simple_spread_v3", ("agent_0", "agent_1", "agent_2"),
                       ["--total-steps", "100", "--num-envs", "2", "--num-steps", "25", "--eval-every", "100", "--eval-episodes", "2",
                        "--update-epochs", "1"],
                       episodes=2)
