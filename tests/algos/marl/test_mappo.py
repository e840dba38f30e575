"""MAPPO and IPPO: per-agent GAE targets and advantages on a hand-made team batch (an agent that
leaves early, a time-limit cut, a reset transition, a rollout cut mid-episode), and one update
checked against a loss and its gradient computed independently with plain torch ops."""

import copy
import math
import sys
import types

import numpy as np
import pytest
import torch
from gymnasium import spaces

from rlsuite.algos.marl import mappo
from rlsuite.envs.grid_goals import GridGoals
from rlsuite.envs.multiagent import MultiAgentVectorEnv
from rlsuite.ops.policies import TeamActorCritic
from rlsuite.rollout.multiagent import TeamCursor, TeamRollout, collect_team_rollout

GAMMA, LAM = 0.9, 0.8
GARBAGE = 1e6
"""What an invalid row holds where it must never be read (the value of an agent that is gone)."""
OBS_DIM, STATE_DIM, N_ACTIONS = 3, 5, 3


def config(**overrides):
    return mappo.MAPPOConfig(**{**dict(gamma=GAMMA, gae_lambda=LAM, num_envs=2, num_steps=4, update_epochs=1, num_minibatches=1,
                                       max_grad_norm=0.0, ent_coef=0.01, vf_coef=0.5, clip_coef=0.2, hidden_sizes=(4,),
                                       activation="tanh"), **overrides})


def team(**columns):
    """A TeamRollout [T=4, N=2, A=2] from per-(env, agent) lists: columns[name][n][i] is the
    column of agent i in copy n over time (next_value: [n][i] scalars)."""
    def tensor(name, dtype):
        return torch.tensor(columns[name], dtype=dtype).permute(2, 0, 1).contiguous()  # [N, A, T] -> [T, N, A]

    generator = torch.Generator().manual_seed(0)
    return TeamRollout(
        obs=torch.randn(4, 2, 2, OBS_DIM, generator=generator),
        states=torch.randn(4, 2, STATE_DIM, generator=generator),
        actions=tensor("actions", torch.long),
        logprobs=torch.zeros(4, 2, 2),
        values=tensor("values", torch.float32),
        rewards=tensor("rewards", torch.float32),
        terminated=tensor("terminated", torch.float32),
        done=tensor("done", torch.float32),
        valid=tensor("valid", torch.bool),
        next_value=torch.tensor(columns["next_value"], dtype=torch.float32),
    )


def hand_made_rollout():
    """Two copies of a two-agent env, T = 4, as collect_team_rollout writes them.

    Copy 0: agent 1 reaches its goal at t1 (terminated) and is gone from t2 (invalid, done, reward
    0, value garbage); agent 0 is cut by the time limit at t2 and bootstraps from V(final obs) =
    0.7, which the reset transition t3 holds (t3: no agent on, both invalid). next_value after
    the reset transition is the new episode's and is never read: garbage.
    Copy 1: agent 1 is cut by a time limit at t1 while agent 0 goes on: the row after the cut
    holds V(agent 1's final obs) = 0.9 (read), the row after that garbage (never read); agent 0
    is still on when the rollout ends at t3 and bootstraps from next_value 0.8.
    """
    G = GARBAGE
    return team(
        rewards=[[[1.0, -0.2, 0.3, 0.0], [0.5, 2.0, 0.0, 0.0]],
                 [[-0.1, 0.2, -0.3, 0.4], [0.6, -0.5, 0.0, 0.0]]],
        values=[[[0.5, 0.4, 0.6, 0.7], [1.0, 1.5, G, G]],
                [[0.2, 0.3, 0.1, 0.5], [1.2, -0.4, 0.9, G]]],
        terminated=[[[0, 0, 0, 0], [0, 1, 0, 0]],
                    [[0, 0, 0, 0], [0, 0, 0, 0]]],
        done=[[[0, 0, 1, 1], [0, 1, 1, 1]],
              [[0, 0, 0, 0], [0, 1, 1, 1]]],
        valid=[[[True, True, True, False], [True, True, False, False]],
               [[True, True, True, True], [True, True, False, False]]],
        actions=[[[0, 1, 2, 0], [2, 2, 0, 0]],
                 [[1, 0, 2, 1], [0, 1, 0, 0]]],
        next_value=[[G, G], [0.8, G]],
    )


# gamma = 0.9, lambda = 0.8 (gamma lambda = 0.72). delta_t = r_t + gamma (1 - terminated_t) V_{t+1} - V_t,
# A_t = delta_t + 0.72 (1 - done_t) A_{t+1}, per agent, over its valid steps:
# copy 0, agent 0 (V 0.5, 0.4, 0.6, then V(final obs) 0.7 in the reset row):
#   t2 truncated, bootstraps: 0.3 + 0.9 * 0.7 - 0.6 = 0.33          A2 = 0.33
#   t1: -0.2 + 0.9 * 0.6 - 0.4 = -0.06                             A1 = -0.06 + 0.72 * 0.33 = 0.1776
#   t0: 1.0 + 0.9 * 0.4 - 0.5 = 0.86                               A0 = 0.86 + 0.72 * 0.1776 = 0.987872
# copy 0, agent 1 (terminated at t1; the garbage after it is not read):
#   t1: 2.0 - 1.5 = 0.5                                            A1 = 0.5
#   t0: 0.5 + 0.9 * 1.5 - 1.0 = 0.85                               A0 = 0.85 + 0.72 * 0.5 = 1.21
# copy 1, agent 0 (never done; t3 bootstraps from next_value 0.8):
#   t3: 0.4 + 0.9 * 0.8 - 0.5 = 0.62                               A3 = 0.62
#   t2: -0.3 + 0.9 * 0.5 - 0.1 = 0.05                              A2 = 0.05 + 0.72 * 0.62 = 0.4964
#   t1: 0.2 + 0.9 * 0.1 - 0.3 = -0.01                              A1 = -0.01 + 0.72 * 0.4964 = 0.347408
#   t0: -0.1 + 0.9 * 0.3 - 0.2 = -0.03                             A0 = -0.03 + 0.72 * 0.347408 = 0.22013376
# copy 1, agent 1 (truncated at t1, bootstraps from V(final obs) = 0.9 in the row after):
#   t1: -0.5 + 0.9 * 0.9 + 0.4 = 0.71                              A1 = 0.71
#   t0: 0.6 + 0.9 * -0.4 - 1.2 = -0.96                             A0 = -0.96 + 0.72 * 0.71 = -0.4488
# Keyed (copy, agent): the valid steps' advantages, and targets A + V.
ADVANTAGES = {(0, 0): [0.987872, 0.1776, 0.33], (0, 1): [1.21, 0.5],
              (1, 0): [0.22013376, 0.347408, 0.4964, 0.62], (1, 1): [-0.4488, 0.71]}
TARGETS = {(0, 0): [1.487872, 0.5776, 0.93], (0, 1): [2.21, 2.0],
           (1, 0): [0.42013376, 0.647408, 0.5964, 1.12], (1, 1): [0.7512, 0.31]}


def on_valid_steps(x, rollout):
    """x [T, N, A] restricted to each (copy, agent)'s valid steps."""
    return {(n, i): x[:, n, i][rollout.valid[:, n, i]].tolist() for n in range(2) for i in range(2)}


def assert_close_dicts(got, expected):
    assert got.keys() == expected.keys()
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-5, atol=1e-6, err_msg=str(key))


def test_targets_and_advantages_per_agent_on_a_hand_made_batch():
    rollout = hand_made_rollout()
    advantages, targets = mappo.targets_and_advantages(rollout, config())
    assert advantages.shape == targets.shape == (4, 2, 2)
    assert_close_dicts(on_valid_steps(advantages, rollout), ADVANTAGES)
    assert_close_dicts(on_valid_steps(targets, rollout), TARGETS)


def test_targets_and_advantages_are_the_same_for_both_variants():
    """The variants differ in their networks only: GAE reads the stored per-agent values."""
    rollout = hand_made_rollout()
    a = mappo.targets_and_advantages(rollout, config())
    b = mappo.targets_and_advantages(rollout, config(value_norm=False))
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y)


# --- one update, against the loss computed independently --------------------------------------------

def make_team(variant, obs_space=None, **overrides):
    cfg = config(**overrides)
    one = obs_space or spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
    team_space = spaces.Box(-np.inf, np.inf, (2, *one.shape), np.float32)
    agent = TeamActorCritic(team_space, spaces.Discrete(N_ACTIONS), cfg, state_dim=STATE_DIM, agent_observation_space=one,
                            value_norm=cfg.value_norm, **mappo.VARIANTS[variant]._asdict())
    # Orthogonal init gives the actor near-zero logits; random weights make every input matter.
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in agent.parameters():
            p.copy_(0.7 * torch.randn(p.shape, generator=generator))
    return cfg, agent


def mlp_by_hand(weights, biases, k, x):
    """Member k of a ParallelMLP, tanh hidden layers, as plain matrix products: x [..., in]."""
    for layer, (w, b) in enumerate(zip(weights, biases)):
        x = x @ w[k] + b[k, 0]
        if layer < len(weights) - 1:
            x = torch.tanh(x)
    return x


def outputs_by_hand(agent, obs, states):
    """Logits [B, 2, n_actions] and critic outputs [B, 2], agent by agent, without TeamActorCritic's code."""
    actor_w, actor_b = list(agent.actor.weights), list(agent.actor.biases)
    critic_w, critic_b = list(agent.critic.weights), list(agent.critic.biases)
    logits, values = [], []
    for i in range(2):
        if agent.shared:  # one network; the agent's one-hot id after its input
            one_hot = torch.zeros(obs.shape[0], 2)
            one_hot[:, i] = 1.0
            critic_in = states if agent.centralized else obs[:, i]
            logits.append(mlp_by_hand(actor_w, actor_b, 0, torch.cat([obs[:, i], one_hot], -1)))
            values.append(mlp_by_hand(critic_w, critic_b, 0, torch.cat([critic_in, one_hot], -1))[:, 0])
        else:  # agent i's own networks on its own observation
            logits.append(mlp_by_hand(actor_w, actor_b, i, obs[:, i]))
            values.append(mlp_by_hand(critic_w, critic_b, i, obs[:, i])[:, 0])
    return torch.stack(logits, 1), torch.stack(values, 1)


def loss_by_hand(agent, rollout, cfg, norm_mean, norm_var):
    """The MAPPO loss on the valid (step, agent) entries only, from the hand-made numbers above."""
    valid = rollout.valid
    obs, states = rollout.obs.flatten(0, 1), rollout.states.flatten(0, 1)
    logits, out = outputs_by_hand(agent, obs, states)
    logits, out = logits.unflatten(0, (4, 2))[valid], out.unflatten(0, (4, 2))[valid]
    # the valid entries in row-major [T, N, A] order, from the tables above
    adv_by_key = {key: list(v) for key, v in ADVANTAGES.items()}
    tgt_by_key = {key: list(v) for key, v in TARGETS.items()}
    adv, tgt = [], []
    for t in range(4):
        for n in range(2):
            for i in range(2):
                if valid[t, n, i]:
                    adv.append(adv_by_key[n, i].pop(0))
                    tgt.append(tgt_by_key[n, i].pop(0))
    adv, tgt = torch.tensor(adv, dtype=torch.float64), torch.tensor(tgt, dtype=torch.float64)
    assert len(adv) == 11  # copy 0: 3 + 2 agent-steps, copy 1: 4 + 2
    adv = ((adv - adv.mean()) / (adv.std() + 1e-8)).float()  # over the 11 valid entries only
    if norm_mean is not None:
        tgt = (tgt - norm_mean) / math.sqrt(norm_var + 1e-8)
    tgt = tgt.float()
    log_pi = torch.log_softmax(logits, -1)
    logp = log_pi.gather(-1, rollout.actions[valid][:, None])[:, 0]
    ratio = torch.exp(logp - rollout.logprobs[valid])
    surrogate = torch.min(ratio * adv, ratio.clamp(1 - cfg.clip_coef, 1 + cfg.clip_coef) * adv)
    policy_loss = -surrogate.mean()
    value_loss = 0.5 * ((out - tgt) ** 2).mean()
    entropy = -(log_pi.exp() * log_pi).sum(-1).mean()
    return policy_loss + cfg.vf_coef * value_loss - cfg.ent_coef * entropy, (policy_loss, value_loss, entropy)


def old_log_probs(agent, rollout):
    """log pi_old(a): the current policy's, shifted by +-0.3 so that some ratios leave the clip range."""
    logits, _ = outputs_by_hand(agent, rollout.obs.flatten(0, 1), rollout.states.flatten(0, 1))
    logp = torch.log_softmax(logits, -1).unflatten(0, (4, 2)).gather(-1, rollout.actions[..., None])[..., 0]
    shift = 0.3 * torch.tensor([1.0, -1.0, 0.0]).repeat(6)[:16].reshape(4, 2, 2)
    return (logp + shift).detach()


# Chan's update of a RunningNorm (mean 0.3, var 2, count 4) with the 11 valid targets:
#   mean = (4 * 0.3 + 11 * m) / 15,  var = (4 * 2 + 11 * v + (m - 0.3)^2 * 4 * 11 / 15) / 15
# with m, v the targets' mean and population variance.
PRIOR_MEAN, PRIOR_VAR, PRIOR_COUNT = 0.3, 2.0, 4.0


def expected_norm():
    targets = np.concatenate([TARGETS[k] for k in TARGETS])
    m, v, n = targets.mean(), targets.var(), len(targets)
    total = PRIOR_COUNT + n
    return (PRIOR_COUNT * PRIOR_MEAN + n * m) / total, (PRIOR_COUNT * PRIOR_VAR + n * v + (m - PRIOR_MEAN) ** 2 * PRIOR_COUNT * n / total) / total


@pytest.mark.parametrize("variant, overrides", [
    ("mappo", dict(value_norm=True)),
    ("mappo", dict(value_norm=False)),
    ("ippo", dict(value_norm=False)),
    ("ippo", dict(value_norm=True, max_grad_norm=0.1)),
], ids=["mappo", "mappo-no-value-norm", "ippo", "ippo-value-norm-grad-clip"])
def test_one_update_matches_the_loss_and_gradient_computed_by_hand(variant, overrides):
    cfg, agent = make_team(variant, **overrides)
    rollout = hand_made_rollout()
    rollout.logprobs = old_log_probs(agent, rollout)
    if agent.value_norm is not None:
        agent.value_norm.mean.fill_(PRIOR_MEAN)
        agent.value_norm.var.fill_(PRIOR_VAR)
        agent.value_norm.count.fill_(PRIOR_COUNT)
        norm_mean, norm_var = expected_norm()
    else:
        norm_mean = norm_var = None

    reference = copy.deepcopy(agent)
    loss, (policy_loss, value_loss, entropy) = loss_by_hand(reference, rollout, cfg, norm_mean, norm_var)
    params = list(reference.parameters())
    grads = torch.autograd.grad(loss, params)
    if cfg.max_grad_norm > 0:
        total = torch.sqrt(sum((g ** 2).sum() for g in grads))
        assert total > cfg.max_grad_norm  # the clip is active in this case
        grads = [g * cfg.max_grad_norm / (total + 1e-6) for g in grads]
    lr = 0.1
    metrics = mappo.update(agent, torch.optim.SGD(agent.parameters(), lr=lr), rollout, cfg)

    assert metrics["losses/policy_loss"] == pytest.approx(policy_loss.item(), rel=1e-5, abs=1e-6)
    assert metrics["losses/value_loss"] == pytest.approx(value_loss.item(), rel=1e-5)
    assert metrics["losses/entropy"] == pytest.approx(entropy.item(), rel=1e-5)
    assert 0 < metrics["losses/clip_fraction"] < 1  # some of the +-0.3 shifts leave [0.8, 1.2], some not
    for (name, new), old, grad in zip(agent.named_parameters(), params, grads):
        torch.testing.assert_close(new.detach(), old.detach() - lr * grad, rtol=1e-5, atol=1e-6, msg=name)
    if agent.value_norm is not None:
        assert agent.value_norm.mean.item() == pytest.approx(norm_mean, rel=1e-6)
        assert agent.value_norm.var.item() == pytest.approx(norm_var, rel=1e-6)
        assert agent.value_norm.count.item() == pytest.approx(PRIOR_COUNT + 11)


def test_update_skips_steps_where_no_agent_is_on():
    """The reset transition (copy 0, t3) has no valid agent: its garbage enters nothing, even with
    non-finite observations there."""
    cfg, agent = make_team("mappo")
    rollout = hand_made_rollout()
    rollout.logprobs = old_log_probs(agent, rollout)
    rollout.obs[3, 0] = float("nan")
    rollout.states[3, 0] = float("nan")
    metrics = mappo.update(agent, torch.optim.SGD(agent.parameters(), lr=0.1), rollout, cfg)
    assert all(math.isfinite(v) for v in metrics.values()), metrics
    assert all(torch.isfinite(p).all() for p in agent.parameters())


def test_minibatches_split_env_steps_and_run_every_epoch():
    """num_minibatches * update_epochs optimizer steps (3 minibatches of the 7 env steps with an agent on, twice)."""
    cfg, agent = make_team("mappo", num_minibatches=3, update_epochs=2)
    rollout = hand_made_rollout()
    rollout.logprobs = old_log_probs(agent, rollout)
    optimizer = torch.optim.SGD(agent.parameters(), lr=0.01)
    steps = []
    optimizer.register_step_post_hook(lambda opt, args, kwargs: steps.append(1))
    metrics = mappo.update(agent, optimizer, rollout, cfg)
    assert len(steps) == 6
    assert all(math.isfinite(v) for v in metrics.values())


# --- what collect_team_rollout writes, on a real env -------------------------------------------------

def test_collected_rollout_follows_the_team_conventions():
    """GridGoals cut at 3 steps, 12 vector steps of 2 copies: replayed step by step with the
    rollout's own actions, every row holds the observation the agents acted on (the reset
    transition's row holds the final one), every value is V of that row, and next_value is V of
    the observation after the last step."""
    kwargs = dict(max_cycles=3)
    envs = MultiAgentVectorEnv("rlsuite/grid_goals_v0", 2, **kwargs)
    cfg = mappo.MAPPOConfig(env="rlsuite/grid_goals_v0", hidden_sizes=(8,))
    torch.manual_seed(0)
    agent = mappo.make_agent(mappo.VARIANTS["mappo"], cfg, envs)
    agent.value_norm.update(torch.tensor([-3.0, 1.0, 2.0]))  # values in reward units != the critic's output
    rollout, episodes, cursor = collect_team_rollout(envs, agent, 12, TeamCursor.reset(envs, 7))

    replay = MultiAgentVectorEnv("rlsuite/grid_goals_v0", 2, **kwargs)
    obs, state, alive = replay.reset(seed=7)
    resets = 0
    for t in range(12):
        assert torch.equal(rollout.obs[t], agent.features(obs)) and torch.equal(rollout.states[t], torch.as_tensor(state))
        assert torch.equal(rollout.valid[t], torch.as_tensor(alive))
        with torch.no_grad():
            torch.testing.assert_close(rollout.values[t], agent.value(agent.features(obs), torch.as_tensor(state)))
        step = replay.step(rollout.actions[t].numpy())
        ended = torch.as_tensor(step.terminated | step.truncated, dtype=torch.float32)
        # done: the agent's trajectory ended at t, or it was not on (invalid rows never carry GAE)
        assert torch.equal(rollout.done[t], torch.maximum(ended, (~rollout.valid[t]).float()))
        assert torch.equal(rollout.rewards[t], torch.as_tensor(step.rewards))
        assert torch.equal(rollout.terminated[t], torch.as_tensor(step.terminated, dtype=torch.float32))
        resets += int(step.reset.sum())
        for n in np.nonzero(step.reset)[0]:  # a reset transition: nobody acted, nothing earned
            assert not rollout.valid[t, n].any() and (rollout.rewards[t, n] == 0).all() and (rollout.done[t, n] == 1).all()
        obs, state, alive = step.obs, step.state, step.alive
    # with max_cycles 3 every copy's episode is over by step 3, then a reset transition: at
    # least 12 // 4 = 3 per copy
    assert resets >= 6 and len(episodes.returns) >= 6
    assert (rollout.rewards[~rollout.valid] == 0).all() and (rollout.done[~rollout.valid] == 1).all()
    with torch.no_grad():
        torch.testing.assert_close(rollout.next_value, agent.value(agent.features(obs), torch.as_tensor(state)))
    np.testing.assert_array_equal(cursor.obs, obs)


class ShiftedGoals(GridGoals):
    """GridGoals whose observations are Discrete(n, start=1): every observation is one more."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._obs_space = spaces.Discrete(self._obs_space.n, start=1)

    def _observations(self, agents=None):
        return {name: o + 1 for name, o in super()._observations(agents).items()}


def test_discrete_observations_with_a_nonzero_start_survive_an_agent_leaving(monkeypatch):
    """Regression: an absent agent's slot used to hold 0, outside Discrete(n, start=1), and the
    one-hot encoding of 0 - start = -1 raised at the first step after an agent left early."""
    module = types.ModuleType("shifted_goals_v0")
    module.parallel_env = lambda **kwargs: ShiftedGoals(**kwargs)
    monkeypatch.setitem(sys.modules, "shifted_goals_v0", module)
    envs = MultiAgentVectorEnv("shifted_goals_v0", 2, size=3)
    assert envs.spaces.observation_space.start == 1
    cfg = mappo.MAPPOConfig(env="shifted_goals_v0", hidden_sizes=(8,))
    torch.manual_seed(0)
    agent = mappo.make_agent(mappo.VARIANTS["mappo"], cfg, envs)
    rollout, episodes, _ = collect_team_rollout(envs, agent, 100, TeamCursor.reset(envs, 0))
    left_early = ~rollout.valid & rollout.valid.any(-1, keepdim=True)
    assert left_early.any() and episodes.returns
    assert (rollout.obs.sum(-1) == 1).all()  # one-hot network inputs everywhere, agents gone included


def test_env_kwargs_shape_the_team_in_training_evaluation_and_the_saved_policy(tmp_path):
    """env_kwargs reach the training envs, the evaluator and the export: three agents on grid_goals."""
    import rlsuite
    from rlsuite.core import registry
    from rlsuite.errors import ConfigError

    spec = registry.spec("mappo")
    config = spec.preset("rlsuite/grid_goals_v0", env_kwargs=("num_agents=3", "max_cycles=20"), total_steps=320, num_envs=2,
                         num_steps=20, update_epochs=1, eval_every=0, eval_episodes=2)
    run = spec.train(config, tmp_path / "run", quiet=True)
    assert {"return_agent_0", "return_agent_1", "return_agent_2"} <= set(run.evaluations)
    assert run.evaluations["mean_length"].max() <= 20
    policy = rlsuite.load(run.dir)
    assert policy.observation_space.shape == (3,) and policy.act(np.zeros((5, 3), np.int64)).shape == (5, 3)
    with pytest.raises(ConfigError, match="key=value"):
        spec.preset("rlsuite/grid_goals_v0", env_kwargs=("num_agents",))
