"""Ray rollout workers (rlsuite.scale.ray) on a local Ray instance: the learner's batch is the
workers' slices side by side, a dead worker is replaced and logged, a Ray run checkpoints and
resumes its workers' envs, and PPO learns as well with two workers as in-process."""

import functools
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import rlsuite
from rlsuite.algos.deep import ppo
from rlsuite.core.seeding import derive_seed
from rlsuite.envs.resolver import resolve
from rlsuite.errors import ConfigError
from rlsuite.ops.policies import ActorCritic
from rlsuite.rollout import onpolicy
from rlsuite.scale.ray import RayRollouts, RolloutWorker, WorkersFailedError

ray = pytest.importorskip("ray")
HERE = Path(__file__).parent
SMALL = dict(total_steps=1024, num_envs=4, num_steps=32, minibatch_size=64, update_epochs=2, eval_every=512, eval_episodes=2, device="cpu")


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    """One local Ray instance for the module. Its workers inherit the environment as it is when
    Ray starts, so what crashing_env reads is set here: they import it from this folder, and
    its marker lives in a folder of this module's."""
    crash_dir = tmp_path_factory.mktemp("crash")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    os.environ["RLSUITE_TEST_CRASH_MARKER"] = str(crash_dir / "crashed")
    os.environ["RLSUITE_TEST_LEARNER_PID"] = str(os.getpid())
    sys.path.insert(0, str(HERE))
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    yield crash_dir / "crashed"
    ray.shutdown()
    for name in ("RLSUITE_TEST_CRASH_MARKER", "RLSUITE_TEST_LEARNER_PID"):
        os.environ.pop(name, None)


CRASHING = dict(SMALL, backend="ray", num_workers=2)


def make_agent(config):
    info = resolve(config.env)
    return functools.partial(ActorCritic, info.observation_space, info.action_space, config)


def test_the_learner_batch_is_each_workers_slice_in_worker_order(local_ray):
    """Worker k's [T, n] slice lands in columns k*n ... (k+1)*n - 1: replayed in this process by
    the same RolloutWorker with the same seed and weights, each slice comes out identical."""
    config = ppo.preset("CartPole-v1", backend="ray", num_workers=2, **SMALL)
    factory = make_agent(config)
    torch.manual_seed(0)
    learner = factory()
    rollouts = RayRollouts(config, factory)
    try:
        rollout = onpolicy.allocate_rollout(config, learner, torch.device("cpu"))
        episodes, cursor = rollouts.collect(learner, rollout, rollouts.reset(0))
        assert cursor is None and rollout.obs.shape[:2] == (32, 4)
        replayed_episodes = 0
        for k in range(2):
            local = RolloutWorker(config, factory, 2, derive_seed(config.seed, "train-envs", k))
            part, finished, _ = local.collect(learner.state_dict())
            replayed_episodes += len(finished.returns)
            columns = slice(2 * k, 2 * k + 2)
            for name in ("obs", "actions", "logprobs", "values", "rewards", "terminated", "done", "valid"):
                torch.testing.assert_close(getattr(rollout, name)[:, columns], getattr(part, name), rtol=0, atol=0, msg=name)
            torch.testing.assert_close(rollout.next_value[columns], part.next_value, rtol=0, atol=0)
        assert len(episodes.returns) == replayed_episodes
        # the two workers' envs are seeded apart: their slices differ
        assert not torch.equal(rollout.obs[:, 0:2], rollout.obs[:, 2:4])
    finally:
        rollouts.close()


def test_the_learner_normalizes_by_every_workers_observations(local_ray):
    """--normalize-obs: after a round the learner's running mean and variance are those of all
    the observations the workers normalized (on top of its starting statistics), replayed here
    in-process; the next round's weights carry them to every worker."""
    config = ppo.preset("CartPole-v1", backend="ray", num_workers=2, **{**SMALL, "normalize_obs": True})
    factory = make_agent(config)
    torch.manual_seed(0)
    learner = factory()
    learner.obs_norm.update(torch.randn(5, 4))  # a learner that has seen something already
    before = {name: value.clone() for name, value in learner.state_dict().items()}
    rollouts = RayRollouts(config, factory)
    try:
        rollout = onpolicy.allocate_rollout(config, learner, torch.device("cpu"))
        rollouts.collect(learner, rollout, None)
    finally:
        rollouts.close()
    seen = [RolloutWorker(config, factory, 2, derive_seed(config.seed, "train-envs", k)).collect(before)[2] for k in range(2)]
    assert seen[0].shape == (32, 2, 4)
    expected = factory()
    expected.load_state_dict(before)
    expected.obs_norm.update(torch.as_tensor(np.concatenate([s.reshape(-1, 4) for s in seen])))
    for name in ("mean", "var", "count"):
        torch.testing.assert_close(getattr(learner.obs_norm, name), getattr(expected.obs_norm, name), rtol=1e-12, atol=1e-12, msg=name)
    assert float(learner.obs_norm.count) == pytest.approx(5 + 2 * 32 * 2, abs=1e-6)


def test_a_worker_killed_mid_run_is_replaced_and_logged(local_ray, tmp_path):
    """One worker's env kills its process at its 100th step; the run still finishes its whole
    budget, and events.log says which worker died and that it was restarted."""
    local_ray.unlink(missing_ok=True)
    config = ppo.preset("crashing_env:CrashingCartPole-v1", **{**CRASHING, "total_steps": 2048})
    run = ppo.train(config, tmp_path / "run", quiet=True)
    assert local_ray.exists(), "the crash never happened: the test proves nothing"
    assert run.status == "finished" and run.step >= 2048
    log = (run.dir / "events.log").read_text()
    assert "Ray rollout worker" in log and "died" in log and "restarted it" in log and "restart 1 of at most 3" in log
    assert len(run.metrics) > 0 and (run.dir / "model" / "policy.pt").is_file()


def test_restarts_beyond_the_limit_stop_the_run_with_one_message(local_ray, tmp_path):
    local_ray.unlink(missing_ok=True)
    config = ppo.preset("crashing_env:CrashingCartPole-v1", **CRASHING, max_worker_restarts=0)
    with pytest.raises(WorkersFailedError, match="--max-worker-restarts.*rlsuite resume"):
        ppo.train(config, tmp_path / "run", quiet=True)
    assert local_ray.exists()
    assert rlsuite.open_run(tmp_path / "run").status != "finished"


def test_a_ray_run_resumes_bit_exact(local_ray, tmp_path):
    """Cut at half and resumed, a 2-worker run ends with the same weights as one that went
    straight through: the checkpoint holds every worker's envs, cursor and RNG."""
    config = ppo.preset("CartPole-v1", backend="ray", num_workers=2, **SMALL)
    straight = ppo.train(config, tmp_path / "straight", quiet=True)
    cut = ppo.train(config, tmp_path / "cut", quiet=True, callbacks=[lambda loop: loop.step >= 512 and loop.request_stop()])
    assert cut.interrupted
    resumed = rlsuite.resume(cut.dir, quiet=True)
    a = torch.load(straight.dir / "model" / "policy.pt", weights_only=False)["state_dict"]
    b = torch.load(resumed.dir / "model" / "policy.pt", weights_only=False)["state_dict"]
    assert all(torch.equal(a[key], b[key]) for key in a)
    np.testing.assert_array_equal(straight.evaluations["mean_return"], resumed.evaluations["mean_return"])


def test_worker_options_are_checked_before_any_work():
    with pytest.raises(ConfigError, match="needs --backend ray"):
        ppo.preset("CartPole-v1", num_workers=2)
    with pytest.raises(ConfigError, match="multiple of num_workers"):
        ppo.preset("CartPole-v1", backend="ray", num_workers=3)
    with pytest.raises(ConfigError, match="whole episodes"):
        rlsuite.train("reinforce", "CartPole-v1", backend="ray", num_workers=2, num_envs=2, quiet=True)


@pytest.mark.slow
def test_ppo_with_two_ray_workers_solves_cartpole_like_the_local_collector(local_ray, tmp_path):
    """The tuned CartPole preset, seed 1, 100k env steps: in-process it reaches 475 (see
    tests/algos/deep/test_ppo.py); collected by two Ray workers it must too."""
    run = ppo.train(ppo.preset("CartPole-v1", seed=1, backend="ray", num_workers=2), tmp_path / "ray", quiet=True)
    assert run.final_eval >= 475, run.evaluations


def test_a_missing_ray_names_the_extra(monkeypatch):
    """Without Ray installed, --backend ray stops with one line naming rlsuite[ray]."""
    from rlsuite.errors import MissingExtraError
    from rlsuite.scale import runtime

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(MissingExtraError, match=r"pip install 'rlsuite\[ray\]'"):
        runtime.import_ray()


def test_cli_backend_ray_without_ray_exits_2_with_one_line(tmp_path):
    import subprocess

    code = ("import sys; sys.modules['ray'] = None; from rlsuite.cli import main; "
            "sys.exit(main(['train', 'ppo', '--backend', 'ray', '--num-workers', '2', '--total-steps', '512', '--run-dir', 'r']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "rlsuite[ray]" in done.stderr and "Traceback" not in done.stderr
