"""The PettingZoo parallel-API adapter (rlsuite.envs.multiagent) on a hand-written two-agent env
whose every number is known in advance (tests/envs/two_agents.py says what it does).
"""

import sys
from pathlib import Path

import numpy as np
import pytest
from gymnasium import spaces

from rlsuite.core.seeding import derive_seed
from rlsuite.envs import multiagent
from rlsuite.envs.evaluation import TeamEvaluator, record_team_video, run_team_episodes
from rlsuite.envs.multiagent import MultiAgentVectorEnv, global_state, is_multiagent_id, parallel_env_factory, read_spaces
from rlsuite.envs.resolver import require, resolve
from rlsuite.errors import MissingExtraError, UnknownNameError, UnsupportedEnvError

sys.path.insert(0, str(Path(__file__).parent))
from two_agents import StateNotImplemented, TwoAgents, WithState, install, parallel_env  # noqa: E402

@pytest.fixture
def fake_id(monkeypatch):
    """FAKE_ID importable as the module fake_marl_pkg.two_agents."""
    return install(monkeypatch)


@pytest.fixture
def no_mpe2(monkeypatch):
    """As if mpe2 were not installed (its already imported submodules forgotten for the test)."""
    for name in [n for n in sys.modules if n.startswith("mpe2.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "mpe2", None)


def f32(rows):
    return np.array(rows, dtype=np.float32)


def test_one_episode_then_the_reset_transition(fake_id):
    envs = MultiAgentVectorEnv(fake_id, 1)
    assert envs.agents == ("a", "b") and envs.num_agents == 2 and envs.obs_shape == (3,)
    assert envs.spaces.observation_space == spaces.Box(-np.inf, np.inf, (3,), np.float32)
    assert envs.spaces.action_space == spaces.Discrete(3) and envs.spaces.state_dim == 2
    obs, state, alive = envs.reset(seed=1)  # horizon 3 + 1 % 3 = 4
    assert obs.dtype == np.float32 and np.array_equal(obs, f32([[[0, 1, 0], [0, 2, 3]]]))
    assert np.array_equal(state, f32([[0, 2]])) and np.array_equal(alive, [[True, True]])

    # step t: obs, alive after, rewards, terminated, truncated
    expected = [
        (1, [[1, 1, 0], [1, 2, 3]], [True, True], [1, 10], [False, False], [False, False]),
        (2, [[2, 1, 0], [2, 2, 3]], [False, True], [2, 20], [True, False], [False, False]),  # a terminates
        (3, [[0, 0, 0], [3, 2, 3]], [False, True], [0, 30], [False, False], [False, False]),  # a absent: zeros
        (4, [[0, 0, 0], [4, 2, 3]], [False, False], [0, 40], [False, False], [False, True]),  # b truncated
    ]
    for t, o, on, r, term, trunc in expected:
        step = envs.step(np.array([[2, 1]]))
        assert np.array_equal(step.obs, f32([o])), t
        assert np.array_equal(step.alive, [on]), t
        assert step.rewards.dtype == np.float32 and np.array_equal(step.rewards, f32([r])), t
        assert np.array_equal(step.terminated, [term]) and np.array_equal(step.truncated, [trunc]), t
        assert np.array_equal(step.reset, [False]), t
        assert np.array_equal(step.state, f32([[t, sum(on)]])), t
        if t < 4:
            assert step.team_returns == [] and step.agent_returns == [] and step.lengths == [], t
    assert step.team_returns == [103.0] and step.lengths == [4]
    assert len(step.agent_returns) == 1 and np.array_equal(step.agent_returns[0], [3.0, 100.0])

    # the step after the end: a reset transition whose actions are ignored
    sent = len(envs.envs[0].received)
    step = envs.step(np.array([[2, 1]]))
    assert len(envs.envs[0].received) == sent  # the env was not stepped
    assert np.array_equal(step.reset, [True]) and np.array_equal(step.alive, [[True, True]])
    assert np.array_equal(step.obs, f32([[[0, 1, 0], [0, 2, 3]]]))
    assert np.array_equal(step.rewards, np.zeros((1, 2))) and not step.terminated.any() and not step.truncated.any()
    assert np.array_equal(step.state, f32([[0, 2]])) and step.team_returns == [] and step.lengths == []
    assert envs.envs[0].seeds == [0, 1, None]  # read_spaces' probe, reset(seed=1), the autoreset

    # and the next episode counts from zero again (horizon kept: 4)
    for _ in range(4):
        step = envs.step(np.array([[0, 0]]))
    assert step.team_returns == [103.0] and step.lengths == [4]
    # the actions reached the env as Python ints, only for the agents that were on
    assert envs.envs[0].received[:4] == [{"a": 2, "b": 1}, {"a": 2, "b": 1}, {"b": 1}, {"b": 1}]
    assert all(type(v) is int for acts in envs.envs[0].received for v in acts.values())
    envs.close()
    assert envs.envs[0].closed


def test_copies_are_seeded_apart_and_end_apart(fake_id):
    envs = MultiAgentVectorEnv(fake_id, 3)
    envs.reset(seed=6)  # copies seeded 6, 7, 8: horizons 3, 4, 5
    assert [env.seeds[-1] for env in envs.envs] == [6, 7, 8]
    assert [env.horizon for env in envs.envs] == [3, 4, 5]
    ended = []
    for t in range(1, 7):
        step = envs.step(np.array([[0, 1], [1, 2], [2, 0]]))
        ended.append((t, step.team_returns, step.lengths, [list(r) for r in step.agent_returns]))
        if t == 4:  # copy 0 resets while 1 ends and 2 goes on
            assert np.array_equal(step.reset, [True, False, False])
            assert np.array_equal(step.rewards, f32([[0, 0], [0, 40], [0, 40]]))
            assert np.array_equal(step.alive, [[True, True], [False, False], [False, True]])
    assert ended == [(1, [], [], []), (2, [], [], []), (3, [63.0], [3], [[3.0, 60.0]]), (4, [103.0], [4], [[3.0, 100.0]]),
                     (5, [153.0], [5], [[3.0, 150.0]]), (6, [], [], [])]
    assert [env.received[0] for env in envs.envs] == [{"a": 0, "b": 1}, {"a": 1, "b": 2}, {"a": 2, "b": 0}]
    envs.reset(seed=None)
    assert [env.seeds[-1] for env in envs.envs] == [None, None, None]


def test_discrete_observations_through_the_adapter(fake_id):
    envs = MultiAgentVectorEnv(fake_id, 1, discrete=True)
    assert envs.discrete_obs and envs.obs_shape == () and envs.spaces.observation_space == spaces.Discrete(6)
    obs, _, _ = envs.reset(seed=1)
    assert obs.dtype == np.int64 and np.array_equal(obs, [[0, 1]])
    got = [envs.step(np.zeros((1, 2), np.int64)).obs.tolist() for _ in range(3)]
    assert got == [[[1, 2]], [[2, 3]], [[0, 4]]]  # a's final observation at its last step, then 0 while absent


def test_global_state_function():
    env = TwoAgents()  # no state(): the observations, concatenated
    box = spaces.Box(-np.inf, np.inf, (3,), np.float32)
    both = np.array([True, True])
    assert np.array_equal(global_state(env, box, f32([[1, 2, 3], [4, 5, 6]]), both), f32([1, 2, 3, 4, 5, 6]))
    assert np.array_equal(global_state(env, box, f32([[1, 2, 3], [4, 5, 6]]), np.array([True, False])), f32([1, 2, 3, 0, 0, 0]))
    # Discrete: one-hot of (observation - start) per agent
    assert np.array_equal(global_state(env, spaces.Discrete(3, start=2), np.array([4, 2]), both), f32([0, 0, 1, 1, 0, 0]))
    assert np.array_equal(global_state(StateNotImplemented(), spaces.Discrete(6), np.array([0, 5]), both),
                          np.eye(6, dtype=np.float32)[[0, 5]].reshape(-1))
    # the env's state() wins, flattened, whatever obs says
    with_state = WithState()
    with_state.reset(seed=0)
    assert np.array_equal(global_state(with_state, box, f32([[9, 9, 9], [9, 9, 9]]), both), f32([0, 2]))


def test_global_state_falls_back_to_concatenated_box_observations(fake_id):
    envs = MultiAgentVectorEnv(fake_id, 1, state="missing")
    assert envs.spaces.state_dim == 6
    _, state, _ = envs.reset(seed=1)
    assert np.array_equal(state, f32([[0, 1, 0, 0, 2, 3]]))
    envs.step(np.zeros((1, 2), np.int64))
    assert np.array_equal(envs.step(np.zeros((1, 2), np.int64)).state, f32([[2, 1, 0, 2, 2, 3]]))
    assert np.array_equal(envs.step(np.zeros((1, 2), np.int64)).state, f32([[0, 0, 0, 3, 2, 3]]))  # a gone: zeros


def test_global_state_falls_back_to_one_hot_discrete_observations(fake_id):
    envs = MultiAgentVectorEnv(fake_id, 1, state="not_implemented", discrete=True)
    assert envs.spaces.state_dim == 12
    _, state, _ = envs.reset(seed=1)
    assert np.array_equal(state, [np.eye(6)[[0, 1]].reshape(-1)])
    step = envs.step(np.zeros((1, 2), np.int64))
    assert np.array_equal(step.state, [np.eye(6)[[1, 2]].reshape(-1)])


@pytest.mark.parametrize("start", [1, 5])
def test_absent_agent_with_discrete_start_gives_an_empty_state_block(start):
    # agent a absent: its slot holds the lowest observation (start), and its block of the state is zeros
    space = spaces.Discrete(6, start=start)
    assert np.array_equal(multiagent.empty_observations(space, 2), [start, start])
    state = global_state(TwoAgents(), space, np.array([start, start + 4]), np.array([False, True]))
    assert np.array_equal(state, np.concatenate([np.zeros(6), np.eye(6)[4]]))


def test_observations_of_different_lengths_are_zero_padded(fake_id):
    env = parallel_env()
    got = read_spaces(env, fake_id)
    assert got.agents == ("a", "b") and got.observation_space.shape == (3,) and got.observation_space.dtype == np.float32
    assert got.state_dim == 2 and env.seeds == [0]


def test_different_action_spaces_are_refused_with_a_way_out(fake_id):
    with pytest.raises(UnsupportedEnvError) as info:
        MultiAgentVectorEnv(fake_id, 1, b_actions=4)
    message = str(info.value)
    assert "different action spaces" in message and "a: Discrete(3), b: Discrete(4)" in message
    assert "Wrap the env so every agent has the same space" in message and "no-op" in message


def test_mixed_observation_kinds_and_no_agents_are_refused():
    class Mixed(TwoAgents):
        def observation_space(self, agent):
            return spaces.Discrete(4) if agent == "a" else spaces.Box(0, 1, (2,), np.float32)

    with pytest.raises(UnsupportedEnvError, match="flat Box vectors or the same Discrete space.*Flatten them"):
        read_spaces(Mixed(), "mixed")

    class Nobody(TwoAgents):
        possible_agents = []

    with pytest.raises(UnsupportedEnvError, match="has no agents"):
        read_spaces(Nobody(), "nobody")


def test_ids_and_factory_errors(fake_id, monkeypatch, no_mpe2):
    assert is_multiagent_id(fake_id) and is_multiagent_id("rlsuite/grid_goals_v0") and is_multiagent_id("mpe2/simple_spread_v3")
    assert not is_multiagent_id("CartPole-v1") and not is_multiagent_id("GridWorld4x4-v0")
    env = parallel_env_factory(fake_id, discrete=True)(render_mode="ansi")
    assert isinstance(env, WithState) and env.discrete and env.render_mode == "ansi"
    with pytest.raises(UnknownNameError, match="no module 'no_such_marl_pkg' is installed"):
        parallel_env_factory("no_such_marl_pkg/env_v0")
    with pytest.raises(UnknownNameError, match="is not a PettingZoo environment: json has no parallel_env"):
        parallel_env_factory("json")
    with pytest.raises(MissingExtraError, match=r"pip install 'rlsuite\[marl\]'"):
        parallel_env_factory("mpe2/simple_spread_v3")
    monkeypatch.setitem(multiagent.BUILTIN, "my/alias_v0", "fake_marl_pkg.two_agents")
    assert isinstance(parallel_env_factory("my/alias_v0")(), WithState)


@pytest.mark.parametrize("env_id, module", [("rlsuite/nope_v0", "rlsuite.nope_v0"), ("mpe2/simple_sprad_v3", "mpe2.simple_sprad_v3"),
                                            ("pettingzoo/butterfly/pistonbal_v6", "pettingzoo.butterfly.pistonbal_v6")])
def test_a_typo_in_an_installed_package_names_the_missing_module(env_id, module):
    pytest.importorskip("mpe2")
    with pytest.raises(UnknownNameError, match=f"no module '{module}'"):
        parallel_env_factory(env_id)


def test_run_team_episodes_counts_each_copy_once(fake_id):
    envs = MultiAgentVectorEnv(fake_id, 3)
    seen = []

    def act(obs):
        seen.append(obs.copy())
        return np.ones((3, 2), np.int64)

    team, agents, lengths = run_team_episodes(act, envs, seed=0)  # horizons 3, 4, 5
    # copy 0 resets at step 4 and plays 1 more step of a new episode (+1, +10) that must not count
    assert np.array_equal(team, [63.0, 103.0, 153.0])
    assert np.array_equal(agents, [[3.0, 60.0], [3.0, 100.0], [3.0, 150.0]])
    assert np.array_equal(lengths, [3, 4, 5]) and len(seen) == 5
    assert np.array_equal(seen[0], np.tile(f32([[0, 1, 0], [0, 2, 3]]), (3, 1, 1)))


def test_team_evaluator_rows(fake_id):
    evaluate = TeamEvaluator(fake_id, 2, lambda obs: np.zeros(obs.shape[:2], np.int64), seed=0)
    row = evaluate(100)
    seed = derive_seed(0, "eval", 100)
    assert evaluate.envs.envs[0].seeds[:2] == [0, seed] and evaluate.envs.envs[1].seeds[0] == seed + 1  # (0: read_spaces' probe)
    lengths = [3 + s % 3 for s in (seed, seed + 1)]
    returns = [3 + 10 * h * (h + 1) / 2 for h in lengths]
    assert list(row)[0] == "mean_return"
    assert row["mean_return"] == pytest.approx(np.mean(returns)) and row["mean_length"] == pytest.approx(np.mean(lengths))
    assert row["episodes"] == 2.0 and row["return_a"] == 3.0
    assert row["return_b"] == pytest.approx(np.mean([r - 3 for r in returns]))
    assert evaluate(100) == row  # seeded by step
    envs = evaluate.envs
    evaluate.close()
    assert evaluate.envs is None and all(env.closed for env in envs.envs)


def test_record_team_video(fake_id, tmp_path):
    import imageio.v3 as iio

    total, steps = record_team_video(lambda obs: np.zeros((1, 2), np.int64), fake_id, tmp_path / "v.gif", seed=2)  # horizon 5
    assert (total, steps) == (153.0, 5)
    frames = iio.imread(tmp_path / "v.gif", index=None)
    assert frames.shape[:3] == (6, 4, 6)
    assert [int(f[0, 0, 0]) for f in frames] == [0, 10, 20, 30, 40, 50]


# --- the resolver --------------------------------------------------------------------------------

def acts_on(algo):
    from rlsuite.core import registry

    return registry.spec(algo).acts_on


def test_resolve_gives_the_pettingzoo_kind_and_one_agents_spaces(fake_id):
    info = resolve("rlsuite/grid_goals_v0")
    assert info.kind == "pettingzoo" and info.agents == ("agent_0", "agent_1")
    assert info.observation_space == spaces.Discrete(25 * 26) and info.action_space == spaces.Discrete(5)
    assert not info.has_model and info.max_episode_steps is None
    assert resolve("rlsuite/grid_goals_v0", num_agents=3, size=4).observation_space == spaces.Discrete(16 * 17 * 17)
    fake = resolve(fake_id)
    assert fake.agents == ("a", "b") and fake.observation_space.shape == (3,) and fake.kind == "pettingzoo"
    assert resolve("CartPole-v1").agents == ()


def test_require_matches_algorithms_and_kinds(fake_id):
    grid = resolve("rlsuite/grid_goals_v0")
    for algo in ("mappo", "ippo", "iql"):
        require(grid, algo, acts_on(algo))
    require(resolve(fake_id), "mappo", acts_on("mappo"))
    with pytest.raises(UnsupportedEnvError) as info:
        require(resolve("CartPole-v1"), "mappo", acts_on("mappo"))
    assert "mappo trains teams of agents on multi-agent PettingZoo envs, but CartPole-v1 is a single-agent env" in str(info.value)
    assert "rlsuite/grid_goals_v0" in str(info.value) and "single-agent algorithm (ppo, dqn, ...)" in str(info.value)
    with pytest.raises(UnsupportedEnvError, match="FrozenLake-v1 is a single-agent env"):
        require(resolve("FrozenLake-v1"), "iql", acts_on("iql"))
    for algo in ("ppo", "q_learning", "dqn"):
        with pytest.raises(UnsupportedEnvError) as info:
            require(grid, algo, acts_on(algo))
        assert f"rlsuite/grid_goals_v0 is a multi-agent env (2 agents); {algo} trains one agent" in str(info.value)
        assert "mappo, ippo, or iql" in str(info.value)
    with pytest.raises(UnsupportedEnvError, match="iql keeps a Q-table per agent.*needs Discrete observations"):
        require(resolve(fake_id), "iql", acts_on("iql"))


def test_resolve_mpe2():
    pytest.importorskip("mpe2")
    spread = resolve("mpe2/simple_spread_v3")
    assert spread.kind == "pettingzoo" and spread.agents == ("agent_0", "agent_1", "agent_2")
    assert spread.observation_space.shape == (18,) and spread.action_space == spaces.Discrete(5)
    require(spread, "mappo", acts_on("mappo"))
    with pytest.raises(UnsupportedEnvError) as info:
        require(spread, "iql", acts_on("iql"))
    assert "iql keeps a Q-table per agent indexed by its observation, so it needs Discrete observations" in str(info.value)
    assert "Box(-inf, inf, (18,), float32)" in str(info.value) and "Use mappo or ippo" in str(info.value)
    with pytest.raises(UnsupportedEnvError, match="mpe2/simple_spread_v3 is a multi-agent env \\(3 agents\\); ppo trains one agent"):
        require(spread, "ppo", acts_on("ppo"))
    with pytest.raises(UnsupportedEnvError, match="mappo handles Discrete actions.*continuous_actions=True"):
        require(resolve("mpe2/simple_spread_v3", continuous_actions=True), "mappo", acts_on("mappo"))
    tag = resolve("mpe2/simple_tag_v3")  # predators and prey see different widths: padded to the longest
    assert len(tag.agents) == 4 and tag.observation_space.shape == (16,)


def test_resolve_errors(fake_id, no_mpe2):
    with pytest.raises(UnsupportedEnvError, match="different action spaces"):
        resolve(fake_id, b_actions=2)
    with pytest.raises(UnknownNameError) as info:
        resolve("no_such_marl_pkg/env_v0")
    assert "unknown environment 'no_such_marl_pkg/env_v0'" in str(info.value) and "mpe2/simple_spread_v3" in str(info.value)
    with pytest.raises(MissingExtraError) as info:
        resolve("mpe2/simple_spread_v3")
    assert "needs the 'mpe2' package, which is not installed" in str(info.value) and "pip install 'rlsuite[marl]'" in str(info.value)


def test_env_kwargs_are_parsed_as_yaml_values_and_reach_the_env(fake_id):
    kwargs = multiagent.parse_env_kwargs(("N=4", "local_ratio=0", "continuous_actions=false", "name=abc", "ratio=0.25"))
    assert kwargs == {"N": 4, "local_ratio": 0, "continuous_actions": False, "name": "abc", "ratio": 0.25}
    assert multiagent.parse_env_kwargs(()) == {}
    for bad in ("N4", "=3", "two words=1"):
        with pytest.raises(multiagent.ConfigError, match="key=value"):
            multiagent.parse_env_kwargs((bad,))
    envs = MultiAgentVectorEnv(fake_id, 1, **multiagent.parse_env_kwargs(("b_actions=3", "discrete=true")))
    assert envs.discrete_obs
    with pytest.raises(multiagent.ConfigError, match="does not take env_kwargs"):
        MultiAgentVectorEnv(fake_id, 1, bogus=1)
