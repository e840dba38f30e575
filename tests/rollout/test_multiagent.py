"""collect_team_rollout on a hand-written two-agent env, every column against values worked out
by hand, with a real TeamActorCritic (MAPPO's and IPPO's) acting.

TwoAgents keeps a clock t: agent a observes [t, 1] (padded to [t, 1, 0]), gets reward t and
terminates at t == 2; agent b observes [t, 2, 3], gets 10 t and is truncated at t == horizon,
3 + seed % 3. state() is [t, agents on]. Reset with seed 0, copy 0 has horizon 3 and copy 1
horizon 4; six vector steps then are (a "." marks a reset transition):

    step      1   2        3           4           5           6
    copy 0    t1  t2 a-end t3 b-trunc  .           t1          t2 a-end
    copy 1    t1  t2 a-end t3          t4 b-trunc  .           t1
"""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rlsuite.algos.marl.mappo import VARIANTS, MAPPOConfig, make_agent
from rlsuite.envs.multiagent import MultiAgentVectorEnv
from rlsuite.rollout.multiagent import TeamCursor, TeamEpisodes, TeamRollout, collect_team_rollout

sys.path.insert(0, str(Path(__file__).parents[1] / "envs"))
from two_agents import install  # noqa: E402


@pytest.fixture
def envs(monkeypatch):
    envs = MultiAgentVectorEnv(install(monkeypatch), 2)
    yield envs
    envs.close()


# [step][copy] = (agent a, agent b), worked out from the table in the module docstring
VALID = [[(1, 1), (1, 1)], [(1, 1), (1, 1)], [(0, 1), (0, 1)], [(0, 0), (0, 1)], [(1, 1), (0, 0)], [(1, 1), (1, 1)]]
REWARDS = [[(1, 10), (1, 10)], [(2, 20), (2, 20)], [(0, 30), (0, 30)], [(0, 0), (0, 40)], [(1, 10), (0, 0)], [(2, 20), (1, 10)]]
TERMINATED = [[(0, 0), (0, 0)], [(1, 0), (1, 0)], [(0, 0), (0, 0)], [(0, 0), (0, 0)], [(0, 0), (0, 0)], [(1, 0), (0, 0)]]
# terminated or truncated, and 1 wherever the agent was not on (invalid rows count as done)
DONE = [[(0, 0), (0, 0)], [(1, 0), (1, 0)], [(1, 1), (1, 0)], [(1, 1), (1, 1)], [(0, 0), (1, 1)], [(1, 0), (0, 0)]]
# the observations the agents acted on (the reset transitions' rows hold the final observations)
OBS = {
    0: [[[0, 1, 0], [0, 2, 3]], [[1, 1, 0], [1, 2, 3]], [[2, 1, 0], [2, 2, 3]], [[0, 0, 0], [3, 2, 3]],
        [[0, 1, 0], [0, 2, 3]], [[1, 1, 0], [1, 2, 3]]],
    1: [[[0, 1, 0], [0, 2, 3]], [[1, 1, 0], [1, 2, 3]], [[2, 1, 0], [2, 2, 3]], [[0, 0, 0], [3, 2, 3]],
        [[0, 0, 0], [4, 2, 3]], [[0, 1, 0], [0, 2, 3]]],
}
STATES = {0: [[0, 2], [1, 2], [2, 1], [3, 0], [0, 2], [1, 2]], 1: [[0, 2], [1, 2], [2, 1], [3, 1], [4, 0], [0, 2]]}


@pytest.mark.parametrize("variant", ["mappo", "ippo"])
def test_every_column_by_hand(envs, variant):
    torch.manual_seed(0)
    config = MAPPOConfig(hidden_sizes=(8,), value_norm=False)
    agent = make_agent(VARIANTS[variant], config, envs)
    cursor = TeamCursor.reset(envs, seed=0)
    assert [env.horizon for env in envs.envs] == [3, 4]
    rollout, episodes, after = collect_team_rollout(envs, agent, 6, cursor)

    assert isinstance(rollout, TeamRollout) and isinstance(episodes, TeamEpisodes)
    assert rollout.valid.dtype == torch.bool and rollout.valid.tolist() == np.array(VALID, bool).tolist()
    assert rollout.rewards.tolist() == np.array(REWARDS, float).tolist()
    assert rollout.terminated.dtype == torch.float32 and rollout.terminated.tolist() == np.array(TERMINATED, float).tolist()
    assert rollout.done.dtype == torch.float32 and rollout.done.tolist() == np.array(DONE, float).tolist()
    for n in (0, 1):
        assert rollout.obs[:, n].tolist() == np.array(OBS[n], float).tolist(), n
        assert rollout.states[:, n].tolist() == np.array(STATES[n], float).tolist(), n

    # episodes in the order they ended: copy 0 at step 3, copy 1 at step 4
    assert episodes.returns == [63.0, 103.0] and episodes.lengths == [3, 4]
    assert episodes.agent_returns.shape == (2, 2) and episodes.agent_returns.tolist() == [[3.0, 60.0], [3.0, 100.0]]

    # the cursor after step 6: copy 0's a has just terminated again, copy 1 is one step in
    assert after.alive.tolist() == [[False, True], [True, True]]
    assert after.obs.tolist() == [[[2, 1, 0], [2, 2, 3]], [[1, 1, 0], [1, 2, 3]]]
    assert after.state.tolist() == [[2, 1], [1, 2]]

    # the env got exactly the sampled actions of the agents that were on, and nothing at reset transitions
    for n, env in enumerate(envs.envs):
        sent = [{name: int(rollout.actions[t, n, i]) for i, name in enumerate("ab") if VALID[t][n][i]}
                for t in range(6) if any(VALID[t][n])]
        assert env.received == sent, n

    # the stored log-probabilities and values are the agent's on the stored inputs; next_value is V of the cursor
    assert rollout.logprobs.shape == rollout.values.shape == (6, 2, 2) and rollout.next_value.shape == (2, 2)
    with torch.no_grad():
        flat = rollout.obs.flatten(0, 1), rollout.states.flatten(0, 1)
        logp = agent.policy(flat[0]).log_prob(rollout.actions.flatten(0, 1)).view(6, 2, 2)
        values = agent.value(*flat).view(6, 2, 2)
        next_value = agent.value(agent.features(after.obs), torch.as_tensor(after.state))
    torch.testing.assert_close(rollout.logprobs, logp)
    torch.testing.assert_close(rollout.values, values)
    torch.testing.assert_close(rollout.next_value, next_value)
    torch.testing.assert_close(rollout.next_values, torch.cat([values[1:], next_value[None]]))


def test_rollouts_continue_from_the_cursor(envs):
    torch.manual_seed(0)
    agent = make_agent(VARIANTS["mappo"], MAPPOConfig(hidden_sizes=(8,)), envs)
    cursor = TeamCursor.reset(envs, seed=0)
    first, episodes_a, cursor = collect_team_rollout(envs, agent, 2, cursor)
    second, episodes_b, cursor = collect_team_rollout(envs, agent, 4, cursor)
    valid = torch.cat([first.valid, second.valid])
    done = torch.cat([first.done, second.done])
    assert valid.tolist() == np.array(VALID, bool).tolist() and done.tolist() == np.array(DONE, float).tolist()
    assert episodes_a.returns == [] and episodes_a.agent_returns.shape == (0, 2)
    assert episodes_b.returns == [63.0, 103.0] and episodes_b.lengths == [3, 4]


class FixedTeam:
    """A stub TeamActorCritic: always action 1; value = t + 100 i (t = the observation's clock)."""

    agent_ids = torch.eye(2)

    def features(self, obs):
        return torch.as_tensor(obs, dtype=torch.float32)

    def value(self, features, state):
        return features[..., 0] + torch.tensor([0.0, 100.0])

    def act(self, features, state):
        n = features.shape[0]
        return torch.ones(n, 2, dtype=torch.long), torch.zeros(n, 2), self.value(features, state)


def test_values_line_up_with_the_bootstrap_after_a_truncation(envs):
    rollout, _, _ = collect_team_rollout(envs, FixedTeam(), 6, TeamCursor.reset(envs, seed=0))
    # copy 1's b is truncated at step 4 (t = 4); next_values there must be V(its final observation) = 4 + 100
    assert rollout.next_values[3, 1, 1].item() == 104.0 and rollout.done[3, 1, 1].item() == 1.0
    assert rollout.terminated[3, 1, 1].item() == 0.0
    assert rollout.values[:, 0, 1].tolist() == [100, 101, 102, 103, 100, 101]
    assert rollout.next_value.tolist() == [[2, 102], [1, 101]]
    assert all(acts == {name: 1 for name in acts} for env in envs.envs for acts in env.received)
