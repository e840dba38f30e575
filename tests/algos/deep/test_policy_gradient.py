"""The policy-gradient ladder: every rung's Psi_t and critic target on hand-made batches, one
update against hand-computed values, the Box-action error of q_actor_critic, bit-exact resume, and
(slow) learning on CartPole and Acrobot."""

import math
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlsuite.algos.deep import policy_gradient as pg
from rlsuite.cli import main
from rlsuite.core import checkpoint, registry
from rlsuite.core.run import RunDir
from rlsuite.ops.policies import ActorCritic
from rlsuite.rollout.buffers import Rollout

sys.path.insert(0, str(Path(__file__).parent))
from learning import solves  # noqa: E402

GAMMA = 0.5


def config(**overrides):
    return pg.PGConfig(**{**dict(gamma=GAMMA, num_envs=2, num_steps=4, vf_coef=0.5, ent_coef=0.0, max_grad_norm=0.0,
                                 normalize_advantages=False, hidden_sizes=(3,)), **overrides})


def rollout(**columns):
    """A Rollout [T, N] from per-env lists (one list per env, as read in the comments)."""
    t, n = len(columns["rewards"][0]), len(columns["rewards"])
    batch = Rollout.allocate(t, n, (4,), (), torch.long, "cpu")
    batch.obs.normal_(generator=torch.Generator().manual_seed(0))  # irrelevant: the test agents are constant
    for name, per_env in columns.items():
        target = getattr(batch, name)
        if name == "next_value":
            target.copy_(torch.tensor(per_env, dtype=target.dtype))
        else:
            target.copy_(torch.tensor(per_env, dtype=target.dtype).T)
    return batch


# --- Psi_t and the critic's target, rung by rung ----------------------------------------------------

def monte_carlo_batch():
    """What collect_episodes gives: one episode per env from t = 0. Env 0 terminates at t = 2 (3
    steps); row 3 is after its end: invalid, done. collect_episodes zeroes its reward; here it holds
    100 so that only the done mask at t = 2 keeps it out of G. Env 1 is cut by a time limit at
    t = 3: the Monte Carlo rungs have no critic, so its return ends there (next_value 10 is not read)."""
    return rollout(
        rewards=[[1.0, 2.0, 4.0, 100.0], [2.0, 0.0, 4.0, 8.0]],
        terminated=[[0, 0, 1, 0], [0, 0, 0, 0]],
        done=[[0, 0, 1, 1], [0, 0, 0, 1]],
        valid=[[True, True, True, False], [True, True, True, True]],
        values=[[1.0, 2.0, 3.0, 7.0], [0.5, 1.0, 2.0, 4.0]],
        actions=[[0, 1, 0, 1], [1, 0, 0, 1]],
        next_value=[10.0, 10.0],
    )


# gamma = 0.5, G_t = r_t + gamma (1 - done_t) G_{t+1}:
#   env 0: G_2 = 4 (done: the 100 after it is cut off), G_1 = 2 + 0.5 * 4 = 4, G_0 = 1 + 0.5 * 4 = 3
#   env 1: G_3 = 8 (truncated, no bootstrap), G_2 = 4 + 0.5 * 8 = 8, G_1 = 0 + 0.5 * 8 = 4, G_0 = 2 + 0.5 * 4 = 4
# Listed over the valid steps, env 0 then env 1 (the order of batch.valid's True entries is
# row-major [T, N]; `valid_by_env` below reorders).
MC_RETURNS = [[3.0, 4.0, 4.0], [4.0, 4.0, 8.0, 8.0]]


def valid_by_env(x, batch):
    """x [T, N] restricted to the valid steps, env by env."""
    return [x[:, j][batch.valid[:, j]].tolist() for j in range(x.shape[1])]


def test_vpg_weighs_every_step_by_its_episodes_whole_return():
    batch = monte_carlo_batch()
    psi, target = pg.RUNGS["vpg"].weights(batch, config())
    # G_0 of each episode on all of its steps: env 0 -> 3, env 1 -> 4.
    assert valid_by_env(psi, batch) == [[3.0] * 3, [4.0] * 4]
    assert target is None


def test_reinforce_weighs_each_step_by_its_reward_to_go():
    batch = monte_carlo_batch()
    psi, target = pg.RUNGS["reinforce"].weights(batch, config())
    assert valid_by_env(psi, batch) == MC_RETURNS
    assert target is None


def test_reinforce_baseline_subtracts_the_stored_values_and_regresses_on_g():
    batch = monte_carlo_batch()
    psi, target = pg.RUNGS["reinforce_baseline"].weights(batch, config())
    # G - V: env 0 (3 - 1, 4 - 2, 4 - 3) = (2, 2, 1); env 1 (4 - 0.5, 4 - 1, 8 - 2, 8 - 4) = (3.5, 3, 6, 4).
    assert valid_by_env(psi, batch) == [[2.0, 2.0, 1.0], [3.5, 3.0, 6.0, 4.0]]
    assert valid_by_env(target, batch) == MC_RETURNS


def test_reward_to_go_restarts_at_every_episode_end_within_a_column():
    # One env, two episodes in the column (as a collect_rollout batch has them): a step, a
    # termination, the reset transition (invalid, reward 0, not done), a step cut by a time limit.
    #   G_3 = 8; G_2 = 0 + 0.5 * 8 = 4 (invalid); G_1 = 2 (done: not 2 + 0.5 * 4); G_0 = 1 + 0.5 * 2 = 2
    batch = rollout(rewards=[[1.0, 2.0, 0.0, 8.0]], terminated=[[0, 1, 0, 0]], done=[[0, 1, 0, 1]],
                    valid=[[True, True, False, True]], values=[[1.0, 1.0, 1.0, 1.0]], next_value=[3.0])
    psi, _ = pg.RUNGS["reinforce"].weights(batch, config())
    assert valid_by_env(psi, batch) == [[2.0, 2.0, 8.0]]
    psi, target = pg.RUNGS["reinforce_baseline"].weights(batch, config())
    assert valid_by_env(psi, batch) == [[1.0, 1.0, 7.0]] and valid_by_env(target, batch) == [[2.0, 2.0, 8.0]]


def bootstrapping_batch():
    """What collect_rollout gives under NEXT_STEP autoreset, 4 vector steps of 2 envs.
    Env 0: a step, a termination at t = 1, the reset transition t = 2 (invalid: its value 8 is
    V of the terminal observation, never to be read), a step of the next episode; next_value 2
    after it. Env 1: two steps, a time-limit cut at t = 2, the reset transition t = 3, whose
    value 6 is V of the final observation: the cut step bootstraps from it; next_value 1 is V of the
    new episode's first observation (read only by the invalid row)."""
    return rollout(
        rewards=[[1.0, 2.0, 0.0, 4.0], [2.0, 1.0, 4.0, 0.0]],
        terminated=[[0, 1, 0, 0], [0, 0, 0, 0]],
        done=[[0, 1, 0, 0], [0, 0, 1, 0]],
        valid=[[True, True, False, True], [True, True, True, False]],
        values=[[1.0, 1.5, 8.0, 1.0], [0.5, 1.0, 2.0, 6.0]],
        actions=[[0, 1, 1, 0], [1, 0, 1, 0]],
        next_value=[2.0, 1.0],
    )


# V(s_{t+1}): env 0 (1.5, 8, 1, 2), env 1 (1, 2, 6, 1). gamma = 0.5.
# delta_t = r_t + gamma (1 - terminated_t) V(s_{t+1}) - V(s_t), on the valid steps:
#   env 0: t0 1 + 0.5 * 1.5 - 1 = 0.75;  t1 terminated: 2 - 1.5 = 0.5 (not 2 + 0.5 * 8 - 1.5 = 4.5);
#          t3 4 + 0.5 * 2 - 1 = 4
#   env 1: t0 2 + 0.5 * 1 - 0.5 = 2;  t1 1 + 0.5 * 2 - 1 = 1;
#          t2 truncated, bootstraps V(final obs) = 6: 4 + 0.5 * 6 - 2 = 5 (not 4 - 2 = 2)
TD_ERRORS = [[0.75, 0.5, 4.0], [2.0, 1.0, 5.0]]
# TD(0) targets delta + V: env 0 (1.75, 2, 5), env 1 (2.5, 2, 7).
TD_TARGETS = [[1.75, 2.0, 5.0], [2.5, 2.0, 7.0]]


def test_actor_critic_uses_the_td_error_bootstrapping_through_truncation_only():
    batch = bootstrapping_batch()
    psi, target = pg.RUNGS["actor_critic"].weights(batch, config())
    assert valid_by_env(psi, batch) == TD_ERRORS
    assert valid_by_env(target, batch) == TD_TARGETS


def test_q_actor_critic_weighs_by_q_and_regresses_on_the_sarsa_target():
    # Here values[t] is Q(s_t, a_t) as collected and next_value is E_pi Q(s_T, .): Psi is Q itself,
    # and the SARSA target r + gamma (1 - terminated) Q(s', a') has the TD(0) arithmetic above.
    batch = bootstrapping_batch()
    psi, target = pg.RUNGS["q_actor_critic"].weights(batch, config())
    assert valid_by_env(psi, batch) == [[1.0, 1.5, 1.0], [0.5, 1.0, 2.0]]
    assert valid_by_env(target, batch) == TD_TARGETS


def test_a2c_uses_n_step_returns_to_the_end_of_the_batch():
    batch = bootstrapping_batch()
    psi, target = pg.RUNGS["a2c"].weights(batch, config())
    # A_t = delta_t + gamma (1 - done_t) A_{t+1} (GAE, lambda 1), with the invalid rows' deltas
    # env 0 t2: 0 + 0.5 * 1 - 8 = -7.5 and env 1 t3: 0 + 0.5 * 1 - 6 = -5.5, which done must stop:
    #   env 0: A3 = 4 (= 4 + 0.5 * V(s_T) = 2 - V 1: bootstrapped after the last step),
    #          A1 = 0.5 (done), A0 = 0.75 + 0.5 * 0.5 = 1
    #   env 1: A2 = 5 (done), A1 = 1 + 0.5 * 5 = 3.5, A0 = 2 + 0.5 * 3.5 = 3.75
    # As n-step returns R_t = A_t + V_t: env 1 R_0 = 2 + 0.5 * 1 + 0.25 * 4 + 0.125 * 6 = 4.25 = 3.75 + 0.5.
    assert valid_by_env(psi, batch) == [[1.0, 0.5, 4.0], [3.75, 3.5, 5.0]]
    assert valid_by_env(target, batch) == [[2.0, 2.0, 5.0], [4.25, 4.5, 7.0]]


def test_every_rung_is_covered_above():
    # A rung added to RUNGS needs its own hand-computed test in this file.
    assert set(pg.RUNGS) == {"vpg", "reinforce", "reinforce_baseline", "actor_critic", "q_actor_critic", "a2c"}


# --- one update by hand ----------------------------------------------------------------------

LOGITS = [0.2, -0.3]
P0 = 1 / (1 + math.exp(-0.5))  # softmax(LOGITS)[0]
P1 = 1 - P0


def constant_agent(cfg, critic_bias, critic="v"):
    """An ActorCritic whose weights are all 0, so every hidden activation is tanh(0) = 0 and the
    outputs are the last biases: pi(.|s) = softmax(LOGITS) and the critic member's critic_bias
    (V reads its first entry; a Q critic both) for every s. Gradients reach only those last biases
    (the last weights see zero inputs, the hidden layers get zero through the zero weights), so a
    step of SGD with lr 1 subtracts dLoss/dbias from them."""
    agent = ActorCritic(gym.spaces.Box(-1, 1, (4,)), gym.spaces.Discrete(2), cfg, critic=critic)
    with torch.no_grad():
        for weight in agent.nets.weights:
            weight.zero_()
        agent.nets.biases[-1][0, 0] = torch.tensor(LOGITS)
        agent.nets.biases[-1][1, 0] = torch.tensor(critic_bias)
    return agent


def one_update(rung, cfg, batch, critic_bias, critic="v"):
    agent = constant_agent(cfg, critic_bias, critic)
    before = [p.detach().clone() for p in agent.parameters()]
    metrics = pg.update(agent, torch.optim.SGD(agent.parameters(), lr=1.0), batch, pg.RUNGS[rung], cfg)
    # Only the two last biases may move.
    *others_before, _ = before
    *others_after, _ = list(agent.parameters())
    for x, y in zip(others_before, others_after):
        assert torch.equal(x, y)
    return metrics, agent.nets.biases[-1][0, 0].tolist(), agent.nets.biases[-1][1, 0].tolist()


def test_reinforce_update_by_hand():
    # Valid steps of the Monte Carlo batch: Psi = G = (3, 4, 4 | 4, 4, 8, 8), actions (0, 1, 0 | 1, 0, 0, 1).
    # d(-mean Psi log pi(a))/d logit_0 = -mean(Psi (1[a = 0] - p0)) = -(sum_{a=0} Psi - p0 sum Psi) / 7
    #   sum over a = 0: 3 + 4 (env 0) + 4 + 8 (env 1) = 19; sum Psi = 35
    #   grad_0 = -(19 - 35 p0) / 7; grad_1 = -grad_0 (the two (onehot - pi) entries sum to 0)
    # No critic in the loss: the critic member's bias stays (0.5, 0).
    metrics, policy, critic = one_update("reinforce", config(), monte_carlo_batch(), [0.5, 0.0])
    grad0 = -(19 - 35 * P0) / 7
    assert policy == pytest.approx([0.2 - grad0, -0.3 + grad0], abs=1e-6)
    assert critic == [0.5, 0.0]
    # policy_loss = -mean(Psi log pi(a)) = -(19 log p0 + 16 log p1) / 7
    assert metrics["losses/policy_loss"] == pytest.approx(-(19 * math.log(P0) + 16 * math.log(P1)) / 7, rel=1e-6)
    assert "losses/value_loss" not in metrics


def test_reinforce_baseline_update_by_hand():
    # The batch's stored values are what the constant critic says: V = 0.5 everywhere.
    batch = monte_carlo_batch()
    batch.values.fill_(0.5)
    # Psi = G - 0.5 = (2.5, 3.5, 3.5 | 3.5, 3.5, 7.5, 7.5): sum over a = 0: 19 - 4 * 0.5 = 17; sum 35 - 7 * 0.5 = 31.5
    #   grad_0 = -(17 - 31.5 p0) / 7
    # Critic: d(vf_coef * 0.5 mean (V - G)^2)/dV = vf_coef * mean(V - G) = 0.5 * (0.5 - 35 / 7) = -2.25
    #   V <- 0.5 + 2.25 = 2.75; the second critic output, unread by a V critic, stays 0.
    metrics, policy, critic = one_update("reinforce_baseline", config(vf_coef=0.5), batch, [0.5, 0.0])
    grad0 = -(17 - 31.5 * P0) / 7
    assert policy == pytest.approx([0.2 - grad0, -0.3 + grad0], abs=1e-6)
    assert critic == pytest.approx([2.75, 0.0], abs=1e-6)
    # value_loss = 0.5 mean (G - 0.5)^2 = 0.5 (2.5^2 + 2 * 3.5^2 + 2 * 3.5^2 + 2 * 7.5^2) / 7
    assert metrics["losses/value_loss"] == pytest.approx(0.5 * (2.5**2 + 4 * 3.5**2 + 2 * 7.5**2) / 7, rel=1e-6)


def test_q_actor_critic_update_by_hand():
    # Q(s, .) = (1, 2) everywhere. One env: a step, a termination, the reset transition (invalid),
    # a step; the stored values are Q(s_t, a_t) for actions (0, 1, 1, 0): (1, 2, 2, 1), and
    # next_value = E_pi Q(s_T, .) = p0 * 1 + p1 * 2 = 2 - p0.
    batch = rollout(rewards=[[1.0, 3.0, 0.0, 2.0]], terminated=[[0, 1, 0, 0]], done=[[0, 1, 0, 0]],
                    valid=[[True, True, False, True]], values=[[1.0, 2.0, 2.0, 1.0]], actions=[[0, 1, 1, 0]],
                    next_value=[2 - P0])
    # Valid steps t0, t1, t3: Psi = Q(s, a) = (1, 2, 1), actions (0, 1, 0).
    #   grad_0 = -(sum_{a=0} Psi - p0 sum Psi) / 3 = -(2 - 4 p0) / 3
    # SARSA targets, gamma 0.5: t0 1 + 0.5 * Q(s_1, a_1) = 1 + 0.5 * 2 = 2; t1 terminated: 3;
    #   t3 2 + 0.5 * (2 - p0) = 3 - p0 / 2.
    # Critic: vf_coef * 0.5 mean (Q(s, a) - y)^2 over 3 steps; each step's gradient goes to the
    # output of its own action:
    #   dQ_0: 0.5 * ((1 - 2) + (1 - (3 - p0 / 2))) / 3 = 0.5 * (-3 + p0 / 2) / 3
    #   dQ_1: 0.5 * (2 - 3) / 3 = -0.5 / 3
    metrics, policy, critic = one_update("q_actor_critic", config(num_envs=1), batch, [1.0, 2.0], critic="q")
    grad0 = -(2 - 4 * P0) / 3
    assert policy == pytest.approx([0.2 - grad0, -0.3 + grad0], abs=1e-6)
    assert critic == pytest.approx([1.0 - 0.5 * (-3 + P0 / 2) / 3, 2.0 + 0.5 / 3], abs=1e-6)
    # value_loss = 0.5 * ((-1)^2 + (-1)^2 + (-2 + p0 / 2)^2) / 3
    assert metrics["losses/value_loss"] == pytest.approx(0.5 * (1 + 1 + (2 - P0 / 2) ** 2) / 3, rel=1e-6)


def test_a2c_update_with_entropy_bonus_by_hand():
    # V = 0.5 everywhere. One env: two steps, a time-limit cut at t2 (bootstraps V(final obs) =
    # values[3] = 0.5), the reset transition t3 (invalid). gamma 0.5, lambda 1:
    #   delta: t0 1 + 0.25 - 0.5 = 0.75; t1 0 + 0.25 - 0.5 = -0.25; t2 2 + 0.25 - 0.5 = 1.75
    #   A2 = 1.75, A1 = -0.25 + 0.5 * 1.75 = 0.625, A0 = 0.75 + 0.5 * 0.625 = 1.0625 (sum 3.4375)
    batch = rollout(rewards=[[1.0, 0.0, 2.0, 0.0]], terminated=[[0, 0, 0, 0]], done=[[0, 0, 1, 0]],
                    valid=[[True, True, True, False]], values=[[0.5] * 4], actions=[[0, 1, 1, 0]], next_value=[0.5])
    cfg = config(num_envs=1, ent_coef=0.1, vf_coef=0.5)
    # Policy term: actions (0, 1, 1): grad_0 = -(1.0625 - 3.4375 p0) / 3.
    # Entropy term -ent_coef H, H = -(p0 log p0 + p1 log p1), the same in every state:
    #   dH/d logit_j = -p_j (log p_j + H), so d(-0.1 H)/d logit_j = 0.1 p_j (log p_j + H).
    # Critic: vf_coef * mean(V - R) = 0.5 * (-mean A) = -0.5 * 3.4375 / 3.
    metrics, policy, critic = one_update("a2c", cfg, batch, [0.5, 0.0])
    entropy = -(P0 * math.log(P0) + P1 * math.log(P1))
    grad0 = -(1.0625 - 3.4375 * P0) / 3 + 0.1 * P0 * (math.log(P0) + entropy)
    grad1 = (1.0625 - 3.4375 * P0) / 3 + 0.1 * P1 * (math.log(P1) + entropy)
    assert policy == pytest.approx([0.2 - grad0, -0.3 - grad1], abs=1e-6)
    assert critic == pytest.approx([0.5 + 0.5 * 3.4375 / 3, 0.0], abs=1e-6)
    assert metrics["losses/entropy"] == pytest.approx(entropy, rel=1e-6)


def test_normalized_psi_uses_the_valid_steps_only():
    # reinforce with normalize_advantages: Psi = standardized (3, 4, 4, 4, 4, 8, 8) over the 7 valid
    # steps (the invalid row's 100 would dominate otherwise); the gradient is -mean(z (1[a=0] - p0)).
    _, policy, _ = one_update("reinforce", config(normalize_advantages=True), monte_carlo_batch(), [0.5, 0.0])
    g = np.array([3.0, 4.0, 4.0, 4.0, 4.0, 8.0, 8.0])  # env 0 t0..t2, env 1 t0..t3
    is0 = np.array([0, 1, 0, 1, 0, 0, 1]) == 0  # actions (0, 1, 0 | 1, 0, 0, 1) in that order
    z = (g - g.mean()) / (g.std(ddof=1) + 1e-8)
    grad0 = -np.mean(z * (is0 - P0))
    assert policy == pytest.approx([0.2 - grad0, -0.3 + grad0], abs=1e-6)


# --- errors ------------------------------------------------------------------------------------

def test_q_actor_critic_refuses_box_actions_before_any_run_directory(tmp_path, capsys):
    assert main(["train", "q_actor_critic", "--env", "Pendulum-v1", "--run-dir", "run", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Discrete" in err and "Pendulum-v1" in err
    assert not (tmp_path / "run").exists()


# --- resume ------------------------------------------------------------------------------------

def final_state(run_dir):
    return checkpoint.load_state(RunDir(run_dir).latest_checkpoint())


def assert_same_checkpoint(a_dir, b_dir):
    a, b = final_state(a_dir), final_state(b_dir)
    for name in ("agent", "optimizer"):
        flat_a, flat_b = torch.utils._pytree.tree_flatten(a["parts"][name])[0], torch.utils._pytree.tree_flatten(b["parts"][name])[0]
        assert len(flat_a) == len(flat_b)
        for x, y in zip(flat_a, flat_b):
            assert torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y, name
    assert a["step"] == b["step"] and a["evaluations"] == b["evaluations"]


@pytest.mark.parametrize("algo", ["reinforce", "a2c"])
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, algo):
    spec = registry.spec(algo)
    cfg = spec.preset("CartPole-v1", seed=3, total_steps=2048, num_envs=4, hidden_sizes=(32, 32), eval_every=512,
                      eval_episodes=2, checkpoint_every=0)
    whole = spec.train(cfg, tmp_path / "whole", quiet=True)
    cut = spec.train(cfg, tmp_path / "cut", quiet=True, callbacks=[lambda loop: loop.step >= 1024 and loop.request_stop()])
    # reinforce's iterations are whole episodes of 4 envs: the cut lands past 1024, somewhere.
    assert cut.interrupted and 1024 <= cut.step < 2048
    resumed = spec.train(cfg, tmp_path / "cut", resume=True, quiet=True)
    assert not resumed.interrupted and resumed.step == whole.step >= 2048
    assert_same_checkpoint(tmp_path / "whole", tmp_path / "cut")
    for column in whole.evaluations:
        np.testing.assert_array_equal(resumed.evaluations[column], whole.evaluations[column])


# --- learning ------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("algo", ["reinforce_baseline", "a2c"])
def test_solves_cartpole_within_300k_steps(algo):
    """Evaluation mean >= 475 within the preset's 300k env steps on 3 of 3 seeds."""
    spec = registry.spec(algo)
    assert solves(spec.train, lambda seed: spec.preset("CartPole-v1", seed=seed), (1, 2, 3), 475, 3)


@pytest.mark.slow
def test_a2c_solves_acrobot():
    """Evaluation mean >= -100 within 300k env steps on 3 of 3 seeds (the preset evaluates every 20k)."""
    spec = registry.spec("a2c")
    assert solves(spec.train, lambda seed: spec.preset("Acrobot-v1", seed=seed, total_steps=300_000), (1, 2, 3), -100, 3)
