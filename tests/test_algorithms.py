"""Every registered algorithm, through its declared spec only: train for a moment, save, load,
act, interrupt and resume (or refuse to resume, saying why)."""

import numpy as np
import pytest

import rlsuite
from rlsuite.core import registry
from rlsuite.envs.resolver import resolve
from rlsuite.errors import RLSuiteError, RunDirError

SMOKE = {
    "epsilon_greedy": dict(env="bandit-10", runs=50, steps=40),
    "ucb": dict(env="bandit-10", runs=50, steps=40),
    "gradient_bandit": dict(env="bandit-10", runs=50, steps=40),
    "thompson": dict(env="bandit-10-bernoulli", runs=50, steps=40),
    "policy_evaluation": dict(env="GridWorld4x4-v0"),
    "policy_iteration": dict(env="FrozenLake-v1"),
    "value_iteration": dict(env="FrozenLake-v1"),
    "mc_control": dict(env="FrozenLake-v1", total_steps=3000, eval_every=1000, eval_episodes=5),
    "sarsa": dict(env="CliffWalking-v1", total_steps=3000, n=2),
    "expected_sarsa": dict(env="CliffWalking-v1", total_steps=3000),
    "q_learning": dict(env="CliffWalking-v1", total_steps=3000),
    "double_q_learning": dict(env="CliffWalking-v1", total_steps=3000),
    "dyna_q": dict(env="DynaMaze-v0", total_steps=3000, planning_steps=5),
    "ppo": dict(env="CartPole-v1", total_steps=1024, num_envs=2, num_steps=64, minibatch_size=64, update_epochs=1, eval_every=512, eval_episodes=2),
    "dqn": dict(env="CartPole-v1", total_steps=1024, learning_starts=256, train_freq=64, gradient_steps=8, batch_size=32, buffer_size=2048, eval_every=512, eval_episodes=2),
    "c51": dict(env="CartPole-v1", total_steps=1024, learning_starts=256, train_freq=64, gradient_steps=8, batch_size=32, buffer_size=2048, eval_every=512, eval_episodes=2),
    "vpg": dict(env="CartPole-v1", total_steps=600, num_envs=2, eval_every=300, eval_episodes=2),
    "reinforce": dict(env="CartPole-v1", total_steps=600, num_envs=2, eval_every=300, eval_episodes=2),
    "reinforce_baseline": dict(env="Pendulum-v1", total_steps=1600, num_envs=2, eval_every=800, eval_episodes=2),
    "actor_critic": dict(env="CartPole-v1", total_steps=600, num_envs=2, num_steps=5, eval_every=300, eval_episodes=2),
    "q_actor_critic": dict(env="CartPole-v1", total_steps=600, num_envs=2, num_steps=5, eval_every=300, eval_episodes=2),
    "a2c": dict(env="Pendulum-v1", total_steps=640, num_envs=2, num_steps=8, eval_every=320, eval_episodes=2),
    "trpo": dict(env="CartPole-v1", total_steps=512, num_envs=2, num_steps=64, value_minibatch_size=64, value_epochs=2, eval_every=256, eval_episodes=2),
    "ddpg": dict(env="Pendulum-v1", total_steps=400, learning_starts=100, batch_size=32, buffer_size=1000, hidden_sizes=(32, 32), eval_every=200, eval_episodes=2),
    "td3": dict(env="Pendulum-v1", total_steps=400, learning_starts=100, batch_size=32, buffer_size=1000, hidden_sizes=(32, 32), eval_every=200, eval_episodes=2),
    "sac": dict(env="Pendulum-v1", total_steps=400, learning_starts=100, batch_size=32, buffer_size=1000, hidden_sizes=(32, 32), eval_every=200, eval_episodes=2),
    "mappo": dict(env="rlsuite/grid_goals_v0", total_steps=640, num_envs=2, num_steps=40, update_epochs=2, eval_every=320, eval_episodes=2),
    "ippo": dict(env="rlsuite/grid_goals_v0", total_steps=640, num_envs=2, num_steps=40, update_epochs=2, eval_every=320, eval_episodes=2),
    "iql": dict(env="rlsuite/grid_goals_v0", total_steps=1600, num_envs=2, eval_every=800, eval_episodes=2),
    "sft": dict(task="arithmetic", model="builtin", level="easy", total_steps=4, batch_size=8, train_size=32, test_size=8, eval_size=8, eval_every=2,
                max_completion_length=12),
    "grpo": dict(task="arithmetic", model="builtin-sft", level="easy", total_steps=4, batch_size=8, num_generations=4, train_size=32,
                 test_size=8, eval_size=8, eval_every=2, max_completion_length=12),
    "reward_model": dict(task="arithmetic", level="easy", train_size=32, test_size=8, eval_size=8, eval_every=2, max_completion_length=12, total_steps=4, batch_size=4),
    "dpo": dict(task="arithmetic", level="easy", train_size=32, test_size=8, eval_size=8, eval_every=2, max_completion_length=12, total_steps=4, batch_size=4),
    "kto": dict(task="arithmetic", level="easy", train_size=32, test_size=8, eval_size=8, eval_every=2, max_completion_length=12, total_steps=4, batch_size=4),
    "ppo_rlhf": dict(task="arithmetic", level="easy", train_size=32, test_size=8, eval_size=8, eval_every=2, max_completion_length=12, total_steps=4, batch_size=4, minibatches=2, ppo_epochs=1),
    "rejection_sampling": dict(task="arithmetic", level="easy", train_size=32, test_size=8, eval_size=8, eval_every=2, max_completion_length=12, total_steps=8, batch_size=4, num_samples=2),
    "distill": dict(task="arithmetic", level="easy", train_size=32, test_size=8, eval_size=8, eval_every=2, max_completion_length=12, total_steps=4, batch_size=4),
}


def test_every_registered_algorithm_has_a_smoke_configuration():
    assert set(registry.ALGORITHMS) <= set(SMOKE), "add a tiny configuration for the new algorithm to SMOKE"


@pytest.mark.parametrize("name", sorted(registry.ALGORITHMS))
def test_train_load_act_and_resume(name, tmp_path):
    spec = registry.spec(name)
    config = spec.preset(**SMOKE[name])
    budget = getattr(config, spec.budget_field)
    run = spec.train(config, tmp_path / "run", quiet=True)
    assert run.status in ("finished", "not_converged") and run.dir == tmp_path / "run"
    assert (run.dir / "curve.png").is_file() and (run.dir / "model").is_dir()
    assert any(f.name.startswith("events.out.tfevents") for f in (run.dir / "tb").iterdir())  # every family logs to TensorBoard
    assert len(run.metrics) > 0 and rlsuite.open_run(run.dir).status == run.status

    if spec.load is None:
        with pytest.raises(RLSuiteError, match="no policy"):
            rlsuite.load(run.dir)
    elif spec.name == "reward_model":
        scorer = rlsuite.load(run.dir)
        assert isinstance(scorer.score("What is 2 + 3?", "<think>2 + 3 = 5</think><answer>5</answer>"), float)
    elif spec.family == "llm":
        policy = rlsuite.load(run.dir)
        assert isinstance(policy.answer("What is 2 + 3?", max_new_tokens=4), str)
    elif spec.family == "marl":  # a team policy: observations [A, ...] -> one action per agent
        policy = rlsuite.load(run.dir)
        info = resolve(config.env)
        policy.observation_space.seed(0)
        batch = np.stack([policy.observation_space.sample() for _ in range(3)])
        assert policy.act(batch).shape == (3, len(info.agents)) and policy.act(batch[0]).shape == (len(info.agents),)
        assert all(info.action_space.contains(int(a)) for a in policy.act(batch).reshape(-1))
    else:
        policy = rlsuite.load(run.dir)
        space = resolve(config.env).observation_space
        space.seed(0)
        batch = np.stack([space.sample() for _ in range(3)])
        actions = policy.act(batch)
        assert len(actions) == 3 and all(resolve(config.env).action_space.contains(a) for a in actions)
        assert resolve(config.env).action_space.contains(policy.act(batch[0]))

    if not spec.resumable:
        with pytest.raises(RunDirError, match="not resumable") as info:
            rlsuite.resume(run.dir)
        assert "rlsuite resume" not in str(info.value) and "--overwrite" in str(info.value)
        return
    half = max(1, budget // 2)
    cut = spec.train(config, tmp_path / "cut", quiet=True, callbacks=[lambda loop: loop.step >= half and loop.request_stop()])
    assert cut.interrupted and cut.step < budget
    resumed = rlsuite.resume(cut.dir, quiet=True)
    assert resumed.status == "finished" and resumed.step >= budget
    extended = rlsuite.resume(cut.dir, quiet=True, budget=resumed.step + half)
    assert extended.step >= resumed.step + half


@pytest.mark.parametrize("name", sorted(n for n, entry in registry.ALGORITHMS.items() if entry.family == "deep" or n in ("mappo", "ippo")))
def test_deep_resume_is_bit_exact_on_cpu(name, tmp_path):
    """Cut at half the budget and resumed, a deep RL run (multi-agent ones included) ends with
    the same weights, bit for bit, and the same evaluations as the run that went straight through."""
    import torch

    spec = registry.spec(name)
    config = spec.preset(**{**SMOKE[name], "device": "cpu"})
    half = getattr(config, spec.budget_field) // 2
    straight = spec.train(config, tmp_path / "straight", quiet=True)
    cut = spec.train(config, tmp_path / "cut", quiet=True, callbacks=[lambda loop: loop.step >= half and loop.request_stop()])
    assert cut.interrupted
    resumed = rlsuite.resume(cut.dir, quiet=True)
    assert resumed.step == straight.step
    a = torch.load(straight.dir / "model" / "policy.pt", weights_only=False)["state_dict"]
    b = torch.load(resumed.dir / "model" / "policy.pt", weights_only=False)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)
    np.testing.assert_array_equal(straight.evaluations["mean_return"], resumed.evaluations["mean_return"])


def test_iql_resume_is_exact(tmp_path):
    """Independent Q-learning cut and resumed mid-episode ends with the same Q-tables."""
    spec = registry.spec("iql")
    config = spec.preset(**SMOKE["iql"])
    straight = spec.train(config, tmp_path / "straight", quiet=True)
    cut = spec.train(config, tmp_path / "cut", quiet=True, callbacks=[lambda loop: loop.step >= 700 and loop.request_stop()])
    resumed = rlsuite.resume(cut.dir, quiet=True)
    np.testing.assert_array_equal(np.load(straight.dir / "model" / "q.npy"), np.load(resumed.dir / "model" / "q.npy"))
    np.testing.assert_array_equal(straight.evaluations["mean_return"], resumed.evaluations["mean_return"])


MUJOCO_SMOKE = {
    "sac": dict(total_steps=300, learning_starts=100, batch_size=32, hidden_sizes=(32, 32)),
    "td3": dict(total_steps=300, learning_starts=100, batch_size=32, hidden_sizes=(32, 32)),
    "ddpg": dict(total_steps=300, learning_starts=100, batch_size=32, hidden_sizes=(32, 32)),
    "ppo": dict(total_steps=256, num_steps=128, minibatch_size=64, update_epochs=1, hidden_sizes=(32, 32)),
}


@pytest.mark.parametrize("env_id", ["HalfCheetah-v5", "Hopper-v5"])
@pytest.mark.parametrize("name", sorted(MUJOCO_SMOKE))
def test_mujoco_presets_train(name, env_id, tmp_path):
    """The zoo presets for MuJoCo envs are configs these envs accept (a few hundred steps each)."""
    pytest.importorskip("mujoco", reason="the rlsuite[mujoco] extra is not installed")
    spec = registry.spec(name)
    assert env_id in spec.presets
    config = spec.preset(env_id, eval_every=0, eval_episodes=1, **MUJOCO_SMOKE[name])
    run = spec.train(config, tmp_path / "run", quiet=True)
    assert run.status == "finished" and np.isfinite(run.evaluations["mean_return"]).all()
