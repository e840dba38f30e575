"""Model-free tabular control (Sutton & Barto ch. 5-8): bad input, training/resume/CLI plumbing,
and (slow) the book's qualitative results. The exact one-update tests are in test_updates.py."""

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import rlsuite
from rlsuite.algos.tabular import double_q_learning, dyna_q, expected_sarsa, mc_control, q_learning, sarsa
from rlsuite import cli
from rlsuite.errors import ConfigError, UnsupportedEnvError
from rlsuite.core import checkpoint
from rlsuite.core.run import RunDir
from rlsuite.rollout import tabular

ALL = {"mc_control": mc_control, "sarsa": sarsa, "expected_sarsa": expected_sarsa,
       "q_learning": q_learning, "double_q_learning": double_q_learning, "dyna_q": dyna_q}


class Chain(gym.Env):
    """0 -> 1 -> 2 -> terminal with rewards 1, 2, 3 and a single action."""

    observation_space = gym.spaces.Discrete(4)
    action_space = gym.spaces.Discrete(1)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.s = 0
        return 0, {}

    def step(self, action):
        self.s += 1
        return self.s, float(self.s), self.s == 3, False, {}


class MaximizationBias(gym.Env):
    """Example 6.7 (Figure 6.5): from A (state 0) 'left' goes to B (state 1) and 'right' ends the
    episode, both with reward 0; every action in B ends it with reward ~ N(-0.1, 1). Gymnasium
    needs one action space, so A's 10 actions alternate left (even) and right (odd)."""

    observation_space = gym.spaces.Discrete(3)
    action_space = gym.spaces.Discrete(10)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.s = 0
        return 0, {}

    def step(self, action):
        if self.s == 1:
            self.s = 2
            return 2, float(self.np_random.normal(-0.1, 1.0)), True, False, {}
        self.s = 1 if action % 2 == 0 else 2
        return self.s, 0.0, self.s == 2, False, {}


# --- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(ALL))
def test_continuous_observations_are_refused_before_any_work(name):
    config = ALL[name].SPEC.config(env="CartPole-v1")
    with pytest.raises(UnsupportedEnvError, match="Discrete observation"):
        ALL[name].train(config, "run", quiet=True)
    assert not Path("run").exists()


class BoxActions(Chain):
    action_space = gym.spaces.Box(-1.0, 1.0, (1,))


def test_continuous_actions_are_refused():
    gym.register("BoxActionsTest-v0", entry_point=BoxActions)
    try:
        with pytest.raises(UnsupportedEnvError, match="Discrete action"):
            q_learning.train(q_learning.SPEC.config(env="BoxActionsTest-v0"), "run", quiet=True)
    finally:
        gym.registry.pop("BoxActionsTest-v0")
    assert not Path("run").exists()


@pytest.mark.parametrize("name", list(ALL))
@pytest.mark.parametrize("field, value", [("gamma", 1.5), ("gamma", -0.1), ("alpha", 0.0), ("alpha", 1.5), ("epsilon", -0.1), ("epsilon", 1.1)])
def test_out_of_range_fields_are_config_errors(name, field, value):
    with pytest.raises(ConfigError, match=field):
        ALL[name].SPEC.config(**{field: value})


def test_method_parameters_are_checked():
    with pytest.raises(ConfigError, match="n "):
        sarsa.SPEC.config(n=0)
    with pytest.raises(ConfigError, match="planning_steps"):
        dyna_q.SPEC.config(planning_steps=-1)
    with pytest.raises(ConfigError, match="kappa"):
        dyna_q.SPEC.config(kappa=-1.0)


def test_cli_reports_bad_env_and_runs_q_learning(capsys):
    assert cli.main(["train", "q_learning", "--env", "CartPole-v1", "--quiet"]) == 2
    assert "tabular" in capsys.readouterr().err
    assert cli.main(["train", "sarsa", "--n", "0", "--quiet"]) == 2
    assert cli.main(["train", "q_learning", "--env", "CliffWalking-v1", "--total-steps", "3000", "--quiet"]) == 0
    policy = rlsuite.load("runs/q_learning-CliffWalking-v1-seed1")
    assert int(policy.act(36)) in range(4)
    assert policy.act(np.array([36, 24])).shape == (2,)


# --- training plumbing --------------------------------------------------------------------------

RESUME_CASES = {
    "sarsa": dict(n=3),
    "mc_control": dict(env="CliffWalking-v1", gamma=1.0),
    "double_q_learning": {},
    "dyna_q": dict(env="CliffWalking-v1", planning_steps=3, kappa=0.01),
}


def _tables(run_dir):
    payload = checkpoint.load_state(RunDir(Path(run_dir)).latest_checkpoint())
    return payload["parts"]["agent"], payload["state"].cursor


@pytest.mark.parametrize("name", list(RESUME_CASES))
def test_resume_continues_exactly(name):
    module = ALL[name]
    config = module.SPEC.config(total_steps=2_500, eval_every=0, **RESUME_CASES[name])
    straight = module.train(config, "straight", quiet=True)
    first = module.train(module.SPEC.config(**{**RESUME_CASES[name], "total_steps": 1_200, "eval_every": 0}), "split", quiet=True)
    assert first.step == 1_200
    resumed = rlsuite.resume("split", quiet=True, total_steps=2_500)
    assert straight.step == resumed.step == 2_500
    a, carry_a = _tables("straight")
    b, carry_b = _tables("split")
    for key in a:
        if isinstance(a[key], np.ndarray):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert carry_a == carry_b
    for part in ("config.yaml", "run.yaml", "metrics.csv", "eval.csv", "model/q.npy", "curve.png"):
        assert (straight.dir / part).is_file(), part
    policy = rlsuite.load(straight.dir)
    np.testing.assert_array_equal(policy.act(np.arange(5)), np.argmax(np.load(straight.dir / "model" / "q.npy")[:5], 1))
    np.testing.assert_array_equal(policy.q, np.load(straight.dir / "model" / "q.npy"))


# --- the book's results (slow) ------------------------------------------------------------------

@pytest.mark.slow
def test_cliff_walking_online_returns_order_expected_sarsa_sarsa_q_learning():
    """Example 6.6 / Figure 6.4 (epsilon 0.1, alpha 0.5): online sum of rewards per episode is
    about -25 for SARSA and -50 for Q-learning; Expected SARSA is a little better than SARSA
    (Figure 6.3). Averaged over 12 runs, episodes 101-300 (standard errors are ~0.3-1)."""
    means = {}
    for module in (expected_sarsa, sarsa, q_learning):
        returns, _ = module.averaged_returns(module.SPEC.config(alpha=0.5, epsilon=0.1, gamma=1.0, seed=7), runs=12, episodes=300)
        means[module.__name__.split(".")[-1]] = returns[:, 100:].mean()
    assert means["expected_sarsa"] > means["sarsa"] + 2, means
    assert means["sarsa"] > means["q_learning"] + 10, means
    assert -32 < means["sarsa"] < -20 and -60 < means["q_learning"] < -40, means


@pytest.mark.slow
def test_q_learning_greedy_policy_walks_the_cliff_edge():
    run = q_learning.train(q_learning.SPEC.config(seed=3, total_steps=15_000, eval_every=0), "run", quiet=True)
    assert run.final_eval == -13.0
    env = gym.make("CliffWalking-v1")
    policy = rlsuite.load(run.dir)
    s, _ = env.reset(seed=0)
    path = [int(s)]
    for _ in range(20):
        s, r, terminated, _, _ = env.step(int(policy.act(s)))
        path.append(int(s))
        if terminated:
            break
    # Up from the start (36), right along row 2 (24..35), down to the goal (47): 13 steps.
    assert path == [36, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 47]


@pytest.mark.slow
def test_sarsa_on_windy_gridworld_matches_example_6_5():
    """Example 6.5 (epsilon 0.1, alpha 0.5, gamma 1): about 170 episodes are completed in the first
    8000 time steps (the graph of Example 6.5)."""
    config = sarsa.SPEC.config(env="WindyGridWorld-v0", alpha=0.5, epsilon=0.1, gamma=1.0)
    episodes = []
    for run in range(3):
        env = gym.make("WindyGridWorld-v0")
        agent = sarsa.agent_factory(config)(70, 4, np.random.default_rng([9, run]))
        _, (returns, _), _ = tabular.run_steps(env, agent, tabular.EpisodeCursor(reset_seed=run), max_steps=8_000)
        episodes.append(len(returns))
    assert 140 < np.mean(episodes) < 200, episodes


@pytest.mark.slow
def test_dyna_q_planning_speeds_up_the_maze():
    """Figure 8.2: with n = 5 or 50 planning steps the 2nd-10th episodes are far shorter than with
    n = 0 (book: about 15-20 steps vs. hundreds). Here 8 runs each."""
    steps = {}
    for n in (0, 5, 50):
        _, lengths = dyna_q.averaged_returns(dyna_q.SPEC.config(planning_steps=n, seed=2), runs=8, episodes=10)
        steps[n] = lengths[:, 1:].mean()
    assert steps[0] > 150, steps
    assert steps[5] < steps[0] / 3 and steps[50] < steps[0] / 5, steps
    assert steps[50] < steps[5], steps


@pytest.mark.slow
def test_dyna_q_plus_trains_and_finds_the_goal():
    _, lengths = dyna_q.averaged_returns(dyna_q.SPEC.config(planning_steps=20, kappa=1e-3, seed=4), runs=3, episodes=20)
    assert lengths[:, -5:].mean() < 40, lengths


@pytest.mark.slow
def test_mc_control_finds_the_goal_on_deterministic_frozen_lake():
    config = mc_control.SPEC.config(gamma=0.95, epsilon=0.1, seed=5)
    env_factory = lambda: gym.make("FrozenLake-v1", is_slippery=False)  # noqa: E731
    for run in range(3):
        env = env_factory()
        agent = mc_control.agent_factory(config)(16, 4, np.random.default_rng([5, run]))
        tabular.run_steps(env, agent, tabular.EpisodeCursor(reset_seed=run), max_episodes=1_500)
        greedy = tabular.GreedyPolicy(agent.q_values())
        s, _ = env.reset(seed=0)
        total, done, t = 0.0, False, 0
        while not done and t < 50:
            s, r, terminated, truncated, _ = env.step(int(greedy.predict(np.array([s]))[0]))
            total, done, t = total + r, terminated or truncated, t + 1
        assert total == 1.0 and t == 6, (run, total, t)  # 6 moves is the shortest path on the 4x4 map


@pytest.mark.slow
def test_double_q_learning_removes_maximization_bias():
    """Example 6.7 / Figure 6.5 (alpha 0.1, epsilon 0.1, gamma 1): Q-learning goes left from A far
    more often than Double Q-learning; the optimal behaviour is left 5% of the time (epsilon / 2)."""
    left = {}
    for module in (q_learning, double_q_learning):
        config = module.SPEC.config(alpha=0.1, epsilon=0.1, gamma=1.0, seed=11)
        _, lengths = module.averaged_returns(config, runs=150, episodes=300, make_env=MaximizationBias)
        went_left = lengths == 2
        left[module.__name__.split(".")[-1]] = (went_left.mean(), went_left[:, 100:].mean())
    assert left["q_learning"][0] > 2 * left["double_q_learning"][0], left
    assert left["double_q_learning"][1] < 0.1 < left["q_learning"][1], left  # episodes 101-300
