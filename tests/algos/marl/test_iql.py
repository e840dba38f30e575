"""Independent Q-learning: one update of every agent's table against values worked out by hand,
the behaviour and greedy policies, and the training loop's wiring (what it hands learn_step).

learn_step's table: 2 agents, 4 observations, 2 actions; gamma 0.5, alpha 0.5.
    Q_0[1] = [2, 6]    Q_1[2] = [8, 4]    every other entry 0
"""

import numpy as np
import pytest

from rlsuite.algos.marl import iql
from rlsuite.algos.marl.iql import IQLConfig, TeamTables, behave, learn_step

CONFIG = IQLConfig(gamma=0.5, alpha=0.5)


def table():
    q = np.zeros((2, 4, 2))
    q[0, 1] = [2.0, 6.0]
    q[1, 2] = [8.0, 4.0]
    return q


def update(obs, actions, rewards, next_obs, terminated, acted, q=None):
    q = table() if q is None else q
    learn_step(q, np.array(obs), np.array(actions), np.array(rewards, np.float32), np.array(next_obs), np.array(terminated),
               np.array(acted), CONFIG)
    return q


def test_terminated_drops_the_bootstrap():
    # agent 0: o = 0, a = 1, r = 1, o' = 1, terminated: target 1 -> Q = 0 + 0.5 (1 - 0) = 0.5
    q = update([[0, 0]], [[1, 0]], [[1.0, 0.0]], [[1, 0]], [[True, False]], [[True, False]])
    expected = table()
    expected[0, 0, 1] = 0.5
    assert np.array_equal(q, expected)


def test_not_terminated_bootstraps_from_its_own_table():
    # agent 0 not terminated (e.g. truncated by the time limit): target 1 + 0.5 max Q_0[1] = 4 -> Q = 2
    # agent 1: o = 3, a = 0, r = 2, o' = 2: target 2 + 0.5 max Q_1[2] = 6 -> Q = 3 (Q_0[2] would give 1)
    q = update([[0, 3]], [[1, 0]], [[1.0, 2.0]], [[1, 2]], [[False, False]], [[True, True]])
    expected = table()
    expected[0, 0, 1], expected[1, 3, 0] = 2.0, 3.0
    assert np.array_equal(q, expected)


def test_agents_that_did_not_act_are_not_updated():
    # agent 1 was not on (gone, or a reset transition): its reward of 5 changes nothing
    q = update([[0, 0]], [[1, 1]], [[1.0, 5.0]], [[1, 2]], [[True, False]], [[True, False]])
    expected = table()
    expected[0, 0, 1] = 0.5
    assert np.array_equal(q, expected)
    assert np.array_equal(update([[0, 0]], [[1, 1]], [[1.0, 5.0]], [[1, 2]], [[True, False]], [[False, False]]), table())


def test_two_copies_on_one_pair_compose_in_order():
    # copy 0, agent 0: o = 0, a = 1, r = 1, terminated      -> Q_0[0, 1] = 0.5
    # copy 1, agent 0: o = 0, a = 1, r = 3, o' = 0 (not terminated), bootstrapping from the updated row:
    #   target 3 + 0.5 max(0, 0.5) = 3.25 -> Q_0[0, 1] = 0.5 + 0.5 (3.25 - 0.5) = 1.875
    # (the other order would give 1.5 then 1.25; each copy from the original table, 0.5 or 1.5)
    q = update([[0, 0], [0, 0]], [[1, 0], [1, 0]], [[1.0, 0.0], [3.0, 0.0]], [[1, 0], [0, 0]], [[True, False], [False, False]],
               [[True, False], [True, False]])
    expected = table()
    expected[0, 0, 1] = 1.875
    assert np.array_equal(q, expected)


def test_behave_is_epsilon_greedy_per_agent_in_its_own_table():
    q = np.zeros((2, 3, 3))
    q[0, 1] = [0.0, 5.0, 0.0]  # agent 0 in o = 1 prefers action 1
    q[1, 1] = [0.0, 0.0, 7.0]  # agent 1 in o = 1 prefers action 2
    q[1, 2] = [9.0, 0.0, 0.0]  # agent 1 in o = 2 prefers action 0
    q[0, 2] = [0.0, 0.0, 9.0]  # agent 0 in o = 2 prefers action 2
    rng = np.random.default_rng(0)
    actions = behave(q, np.array([[1, 1], [1, 2], [2, 1]]), 0.0, rng)
    assert actions.shape == (3, 2) and actions.tolist() == [[1, 2], [1, 0], [2, 2]]
    # ties are broken at random: agent 0 in o = 0 has three equal actions
    picks = {int(behave(q, np.array([[0, 1]]), 0.0, rng)[0, 0]) for _ in range(60)}
    assert picks == {0, 1, 2}
    # epsilon 1: uniform whatever the table says
    draws = np.array([behave(q, np.array([[1, 1]]), 1.0, rng)[0] for _ in range(3000)])
    for i in range(2):
        assert np.bincount(draws[:, i], minlength=3) / 3000 == pytest.approx([1 / 3] * 3, abs=0.04)
    # epsilon 0.3: the greedy action with probability 0.7 + 0.3 / 3 = 0.8
    draws = np.array([behave(q, np.array([[1, 1]]), 0.3, rng)[0] for _ in range(3000)])
    assert (draws[:, 0] == 1).mean() == pytest.approx(0.8, abs=0.03) and (draws[:, 1] == 2).mean() == pytest.approx(0.8, abs=0.03)


def test_team_tables_predict_each_agents_greedy_action():
    q = np.zeros((3, 4, 3))
    q[0, 2] = [1.0, 3.0, 2.0]
    q[1, 2] = [5.0, 0.0, 0.0]
    q[2, 0] = [0.0, 0.0, 4.0]
    q[1, 3] = [0.0, 6.0, 6.0]  # a tie: the lowest index
    tables = TeamTables(q, np.random.default_rng(0))
    assert tables.num_agents == 3 and tables.action_space.n == 3 and tables.observation_space.shape == (3,)
    assert tables.predict(np.array([[2, 2, 0], [0, 3, 0]])).tolist() == [[1, 0, 2], [0, 1, 2]]
    assert tables.predict(np.array([2, 3, 1])).tolist() == [1, 1, 0]  # one team: [A]


def test_team_tables_checkpoint_round_trip():
    tables = TeamTables(np.arange(12.0).reshape(2, 3, 2), np.random.default_rng(4))
    saved = tables.state_dict()
    expected_draw = tables.rng.random()
    tables.q[...] = 0.0
    tables.load_state_dict(saved)
    assert np.array_equal(tables.q, np.arange(12.0).reshape(2, 3, 2)) and tables.rng.random() == expected_draw
    with pytest.raises(ValueError, match=r"q has shape \(2, 3, 3\), expected \(2, 3, 2\)"):
        tables.load_state_dict({"q": np.zeros((2, 3, 3)), "rng": saved["rng"]})


def test_config_checks():
    with pytest.raises(Exception, match="alpha"):
        IQLConfig(alpha=0.0)
    with pytest.raises(Exception, match="epsilon"):
        IQLConfig(epsilon=1.5)


def test_training_hands_learn_step_the_envs_terminated_and_who_acted(tmp_path, monkeypatch, capsys):
    """The loop passes each step's `terminated` (not truncated) and the agents on before the step;
    GridGoals truncates everyone still out at step 50, so 100 vector steps see truncations."""
    from rlsuite import api
    from rlsuite.envs import multiagent

    steps, calls = [], []
    real_step, real_learn = multiagent.MultiAgentVectorEnv.step, iql.learn_step

    def step(self, actions):
        out = real_step(self, actions)
        if self.num_envs == 2:  # the training envs (evaluation uses 3 copies)
            steps.append(out)
        return out

    def learn(q, obs, actions, rewards, next_obs, terminated, acted, config):
        calls.append((obs.copy(), actions.copy(), rewards.copy(), next_obs.copy(), terminated.copy(), acted.copy()))
        real_learn(q, obs, actions, rewards, next_obs, terminated, acted, config)

    monkeypatch.setattr(multiagent.MultiAgentVectorEnv, "step", step)
    monkeypatch.setattr(iql, "learn_step", learn)
    run = api.train("iql", "rlsuite/grid_goals_v0", run_dir=tmp_path / "run", total_steps=200, num_envs=2, eval_every=200,
                    eval_episodes=3, epsilon=1.0, quiet=True)
    assert run.step == 200 and len(calls) == len(steps) == 100
    truncations = 0
    for k, (obs, actions, rewards, next_obs, terminated, acted) in enumerate(calls):
        step = steps[k]
        assert np.array_equal(terminated, step.terminated) and np.array_equal(rewards, step.rewards)
        assert np.array_equal(next_obs, step.obs)
        if k:
            assert np.array_equal(acted, steps[k - 1].alive) and np.array_equal(obs, steps[k - 1].obs)
            assert not acted[steps[k].reset].any()  # a reset transition updates nobody
        else:
            assert acted.all()
        truncations += int(step.truncated.sum())
        # in GridGoals an agent terminates exactly when it arrives, the only time its reward is positive
        assert np.array_equal(terminated, acted & (rewards > 0))
    assert truncations > 0
    q = np.load(run.dir / "model" / "q.npy")
    assert q.shape == (2, 25 * 26, 5) and np.count_nonzero(q) > 0
    assert (run.dir / "agents.png").is_file() and (run.dir / "curve.png").is_file()
    policy = api.load(run.dir)
    obs = np.array([[3, 400], [10, 20]])
    assert policy.act(obs).tolist() == q[[0, 1], obs].argmax(-1).tolist()
    # `rlsuite eval` takes the team path for the exported tables too
    from rlsuite.cli import main

    monkeypatch.undo()
    capsys.readouterr()
    assert main(["eval", str(run.dir), "--episodes", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("iql on rlsuite/grid_goals_v0: team return ") and "over 2 episodes" in lines[0]
    assert lines[1].startswith("  agent_0 ") and ", agent_1 " in lines[1]
