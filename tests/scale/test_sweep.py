"""rlsuite sweep: the grid (parsed and checked before Ray starts), the summary and curves of
finished run directories (no Ray), the sweep directory's overwrite rules, and end to end on a
local Ray instance."""

import csv
import dataclasses
import math
import subprocess
import sys
from typing import Literal

import numpy as np
import pytest
import yaml

from rlsuite.cli import main
from rlsuite.core import config as configs
from rlsuite.errors import ConfigError, RunDirError, check
from rlsuite.scale import sweep


@dataclasses.dataclass(frozen=True)
class ToyConfig(configs.TrainConfig):
    """A config with one field of each kind the command line has to read."""

    lr: float = 0.1
    batch: int = 32
    layers: tuple[int, ...] = (64,)
    kind: Literal["a", "b"] = "a"
    clip: float | None = None
    flag: bool = False

    def __post_init__(self):
        super().__post_init__()
        check(self.lr >= 0, f"lr must be >= 0, got {self.lr}.")
        check(self.batch <= self.total_steps, f"batch ({self.batch}) must be <= total_steps ({self.total_steps}).")


BASE = ToyConfig(seed=1, env="CartPole-v1")


def names(settings):
    return [s.name for s in settings]


# --- the grid ----------------------------------------------------------------------------------
def test_grid_is_the_cartesian_product_with_typed_values():
    grid = sweep.parse_grid_flags(["lr=0.1,3e-4", "layers=64 64,32", "kind=a,b"])
    settings = sweep.plan(BASE, grid)
    assert names(settings) == [
        "lr=0.1,layers=64x64,kind=a", "lr=0.1,layers=64x64,kind=b", "lr=0.1,layers=32,kind=a", "lr=0.1,layers=32,kind=b",
        "lr=3e-4,layers=64x64,kind=a", "lr=3e-4,layers=64x64,kind=b", "lr=3e-4,layers=32,kind=a", "lr=3e-4,layers=32,kind=b",
    ]
    second = settings[5]
    assert second.values == {"lr": 3e-4, "layers": (64, 64), "kind": "b"}
    assert type(second.config.lr) is float and second.config.layers == (64, 64) and second.config.kind == "b"
    assert second.config.batch == 32 and second.config.seed == 1  # everything else is the base config's

    optional = sweep.plan(BASE, sweep.parse_grid_flags(["clip=none,0.2", "flag=false,yes", "batch=16,1e2"]))
    assert len(optional) == 8 and [optional[0].values, optional[-1].values] == [{"clip": None, "flag": False, "batch": 16}, {"clip": 0.2, "flag": True, "batch": 100}]
    assert type(optional[-1].config.batch) is int

    # From Python: typed values, or one comma-separated string; dashes read as underscores.
    typed = sweep.plan(BASE, {"lr": [0.5, 0.25], "layers": [[8, 8]], "total-steps": "1000,2000"})
    assert names(typed)[0] == "lr=0.5,layers=8x8,total_steps=1000" and typed[-1].config.total_steps == 2000


@pytest.mark.parametrize("flags, message", [
    (["lr=0.1", "btach=1,2"], r"--grid btach: ToyConfig has no config field 'btach'\. Did you mean: batch\? `rlsuite train ALGO --help`"),
    (["lr=0.1,abc"], r"--grid lr=abc: lr must be of type float; got 'abc'"),
    (["lr=0.1,-1"], r"--grid lr=-1: lr must be >= 0, got -1\.0"),
    (["batch=16,0.5"], r"--grid batch=0\.5: batch must be an integer; got '0\.5'"),
    (["kind=a,c"], r"--grid kind=c: kind must be one of 'a', 'b'; got 'c'"),
    (["flag=true,maybe"], r"--grid flag=maybe: flag must be of type bool"),
    (["lr=0.1,0.10"], r"--grid lr lists the value '0\.1' twice \(as '0\.10'\)"),
    (["lr"], r"--grid takes FIELD=V1,V2"),
    (["lr=0.1,,0.2"], r"empty value"),
    (["lr=0.1", "lr=0.2"], r"--grid lr is given twice"),
    (["seed=1,2"], r"seed cannot be swept; seeds are set by --seeds"),
    (["env=CartPole-v1,Acrobot-v1"], r"env cannot be swept; presets differ per environment"),
    (["batch=16,50000", "total-steps=40000,100000"],  # each value is valid alone, one pair is not
     r"setting batch=50000,total_steps=40000 is not a valid config: batch \(50000\) must be <= total_steps \(40000\)"),
])
def test_a_bad_key_or_value_is_one_config_error_naming_it(flags, message):
    with pytest.raises(ConfigError, match=message):
        sweep.plan(BASE, sweep.parse_grid_flags(flags))


def test_a_field_cannot_be_both_fixed_and_swept_and_seeds_count_from_the_base_seed():
    with pytest.raises(ConfigError, match=r"lr is both fixed \(--lr VALUE\) and swept"):
        sweep.plan(BASE, {"lr": [0.1, 0.2]}, fixed=["env", "lr"])
    assert sweep.seed_list(1, 3) == [1, 2, 3] and sweep.seed_list(10, 2) == [10, 11]
    with pytest.raises(ConfigError, match="--seeds must be >= 1"):
        sweep.seed_list(1, 0)
    with pytest.raises(ConfigError, match="runs past the largest seed"):
        sweep.seed_list(2**32 - 1, 2)


def test_cli_rejects_bad_grids_before_ray_starts(tmp_path, capsys):
    """One line on stderr, exit 2, nothing written, Ray never imported by the failing command."""
    cases = [
        (["--grid", "alph=0.1,0.5"], "--grid alph: QLearningConfig has no config field 'alph'. Did you mean: alpha?"),
        (["--grid", "alpha=0.1,2"], "--grid alpha=2: alpha (step size) must be in (0, 1], got 2.0."),
        (["--grid", "alpha=0.1", "--alpha", "0.3"], "alpha is both fixed (--alpha VALUE) and swept"),
        ([], "a sweep needs at least one --grid FIELD=V1,V2"),
        (["--grid", "alpha=0.1", "--seeds", "0"], "--seeds must be >= 1"),
    ]
    for extra, message in cases:
        assert main(["sweep", "q_learning", "--env", "CliffWalking-v1", *extra]) == 2, extra
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "sweeps").exists()
    # --seed is a config field (the first seed), not an abbreviation of --seeds
    code = "import sys; from rlsuite.cli import build_parser; ns, rest = build_parser().parse_known_args(['sweep', 'ppo', '--seed', '5']); " \
           "assert ns.seeds == 3 and rest == ['--seed', '5'], (ns, rest); assert 'ray' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_without_ray_the_sweep_names_the_extra_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    assert main(["sweep", "q_learning", "--grid", "alpha=0.1,0.5", "--dir", "sw"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'rlsuite[ray]'" in err and "Traceback" not in err
    assert not (tmp_path / "sw").exists()


# --- summary and curves of finished run directories (no Ray) -------------------------------------
def fake_run(root, setting, seed, alpha, finals, status="finished", error=None):
    """A run directory as a sweep trial leaves it: eval.csv's headline ends at finals[-1]."""
    run = root / sweep.trial_name(setting, seed)
    run.mkdir(parents=True)
    meta = {"format": "rlsuite-run-v2", "algo": "q_learning", "status": status, "step": 100 * len(finals), "unit": "env steps"}
    if error:
        meta["error"] = error
    (run / "run.yaml").write_text(yaml.safe_dump(meta))
    (run / "config.yaml").write_text(yaml.safe_dump({"env": "CliffWalking-v1", "seed": seed, "alpha": alpha}))
    with (run / "eval.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "mean_return", "std_return"])
        writer.writerows([(100 * (i + 1), v, 0.0) for i, v in enumerate(finals)])
    return run


def fake_sweep(root):
    settings = [sweep.Setting("alpha=0.1", {"alpha": 0.1}, None), sweep.Setting("alpha=0.5", {"alpha": 0.5}, None),
                sweep.Setting("alpha=0.9", {"alpha": 0.9}, None)]
    curves = {("alpha=0.1", 1): [0, 1], ("alpha=0.1", 2): [0, 2], ("alpha=0.1", 3): [-2, 4],
              ("alpha=0.5", 1): [5, 10], ("alpha=0.5", 2): [6, 12]}
    trials = []
    for (setting, seed), finals in curves.items():
        fake_run(root, setting, seed, float(setting.split("=")[1]), finals)
        trials.append(sweep.Trial(setting, seed, root / sweep.trial_name(setting, seed)))
    fake_run(root, "alpha=0.5", 3, 0.5, [7], status="failed", error="NonFiniteError: losses/td is NaN")
    trials.append(sweep.Trial("alpha=0.5", 3, root / "alpha=0.5-seed3"))
    trials.append(sweep.Trial("alpha=0.9", 1, root / "alpha=0.9-seed1", error="UnsupportedEnvError: no such thing"))
    return settings, [sweep.read_trial(t) for t in trials]


def test_summary_statistics_over_seeds_by_hand(tmp_path):
    settings, trials = fake_sweep(tmp_path)
    assert [t.final for t in trials[:5]] == [1, 2, 4, 10, 12]
    assert [t.status for t in trials[5:]] == ["failed", "failed"] and not any(t.ok for t in trials[5:])
    assert trials[5].error == "NonFiniteError: losses/td is NaN"

    summaries = sweep.summarize(settings, trials, mode="max")
    assert [s.setting for s in summaries] == ["alpha=0.5", "alpha=0.1", "alpha=0.9"]  # best mean first, all-failed last
    best, second, dead = summaries
    assert best.mean == pytest.approx(11.0) and best.std == pytest.approx(math.sqrt(2.0))  # (10, 12): sample std
    assert (best.min, best.max, best.n, best.failed) == (10, 12, 2, 1)
    assert second.mean == pytest.approx(7 / 3) and second.std == pytest.approx(math.sqrt(7 / 3))  # (1, 2, 4): sum of squares 42/9 over 2
    assert (second.min, second.max, second.n, second.failed) == (1, 4, 3, 0)
    assert dead.n == 0 and dead.failed == 1 and math.isnan(dead.mean) and "no such thing" in dead.errors[0]
    assert [s.setting for s in sweep.summarize(settings, trials, mode="min")] == ["alpha=0.1", "alpha=0.5", "alpha=0.9"]

    sweep.write_summary(tmp_path / "summary.csv", summaries)
    rows = list(csv.DictReader((tmp_path / "summary.csv").open()))
    assert list(rows[0]) == ["rank", "setting", "alpha", "mean", "std", "min", "max", "n", "failed", "error"]
    assert [(r["rank"], r["setting"], r["alpha"], r["n"], r["failed"]) for r in rows] == [
        ("1", "alpha=0.5", "0.5", "2", "1"), ("2", "alpha=0.1", "0.1", "3", "0"), ("3", "alpha=0.9", "0.9", "0", "1")]
    assert float(rows[1]["mean"]) == pytest.approx(7 / 3, rel=1e-5) and float(rows[1]["std"]) == pytest.approx(1.527525, rel=1e-5)
    assert rows[2]["mean"] == "" and "seed 1: UnsupportedEnvError: no such thing" in rows[2]["error"]
    assert "seed 3: NonFiniteError" in rows[0]["error"]

    sweep.write_trials(tmp_path / "trials.csv", trials)
    trial_rows = list(csv.DictReader((tmp_path / "trials.csv").open()))
    assert len(trial_rows) == 7 and trial_rows[2] == {"setting": "alpha=0.1", "seed": "3", "status": "finished", "final": "4",
                                                      "run_dir": "alpha=0.1-seed3", "error": ""}


def test_curves_draw_the_mean_and_band_over_the_finished_seeds_of_each_setting(tmp_path, monkeypatch):
    from rlsuite.core import plotting

    settings, trials = fake_sweep(tmp_path)
    drawn = {}
    original = plotting.save_figure

    def capture(fig, out):
        ax = fig.axes[0]
        drawn["lines"] = {line.get_label(): line.get_ydata().tolist() for line in ax.get_lines()}
        drawn["bands"] = [collection.get_paths()[0].vertices[:, 1] for collection in ax.collections]
        return original(fig, out)

    monkeypatch.setattr(plotting, "save_figure", capture)
    out = sweep.plot_sweep(trials, tmp_path / "curves.png", "title")
    assert out.stat().st_size > 1000
    lines = drawn["lines"]
    assert lines == {"q_learning CliffWalking-v1 alpha=0.1 (mean of 3 seeds)": [-2 / 3, 7 / 3],
                     "q_learning CliffWalking-v1 alpha=0.5 (mean of 2 seeds)": [5.5, 11.0]}  # the failed seed 3 (7) is left out
    bands = sorted((b.min(), b.max()) for b in drawn["bands"])
    assert bands == [(-2.0, 4.0), (5.0, 12.0)]  # min-max over the seeds
    assert sweep.plot_sweep([t for t in trials if not t.ok], tmp_path / "none.png", "title") is None


def test_a_trial_without_evaluations_or_stopped_by_an_interrupt_is_not_counted(tmp_path):
    run = fake_run(tmp_path, "s", 1, 0.1, [])
    trial = sweep.read_trial(sweep.Trial("s", 1, run))
    assert trial.status == "failed" and "recorded no evaluation to rank by" in trial.error and "--metric" in trial.error
    stopped = sweep.read_trial(sweep.Trial("s", 2, fake_run(tmp_path, "s", 2, 0.1, [1.0], status="running")))
    assert stopped.interrupted and "when the sweep was interrupted" in stopped.error and "--overwrite" in stopped.error
    never = sweep.read_trial(sweep.Trial("s", 3, tmp_path / "s-seed3"))
    assert never.interrupted and "never started" in never.error
    remote = sweep.read_trial(sweep.Trial("s", 3, tmp_path / "s-seed3", reported=True))
    assert remote.status == "failed" and "file system every node mounts" in remote.error


# --- the sweep directory -----------------------------------------------------------------------
def test_sweep_directory_is_never_clobbered_without_overwrite_and_only_a_sweep_is_cleared(tmp_path):
    folder = tmp_path / "sw"
    (folder / "notes").mkdir(parents=True)
    with pytest.raises(RunDirError, match="already exists. Use --overwrite"):
        sweep.check_sweep_dir(folder, overwrite=False)
    with pytest.raises(RunDirError, match="not an rlsuite sweep directory"):
        sweep.check_sweep_dir(folder, overwrite=True)

    fake_run(folder, "alpha=0.1", 1, 0.1, [1.0])
    (folder / "summary.csv").write_text("old")
    (folder / "tune").mkdir()
    sweep._write_manifest(folder, status="finished", trials=[{"setting": "alpha=0.1", "seed": 1, "run_dir": "alpha=0.1-seed1"}])
    with sweep.locked_sweep_dir(folder, overwrite=True):
        assert sorted(p.name for p in folder.iterdir()) == [".lock", "notes"]  # the old sweep is gone, the user's notes stay
        sweep._write_manifest(folder, status="running", trials=[])
        with pytest.raises(RunDirError, match="in use by another rlsuite process"):
            with sweep.locked_sweep_dir(folder, overwrite=True):
                pass
    (folder / "stray").write_text("x")
    with pytest.raises(RunDirError, match="already exists"):
        sweep.check_sweep_dir(folder, overwrite=False)

    # A sweep.yaml edited by hand (or by a bug) never reaches outside the folder, nor deletes a
    # trial folder that holds no rlsuite run.
    outside = fake_run(tmp_path, "outside", 1, 0.1, [1.0])
    (folder / "alpha=0.1-seed9").mkdir()
    sweep._write_manifest(folder, status="finished", trials=[{"run_dir": "../outside-seed1"}, {"run_dir": "alpha=0.1-seed9"}, {"run_dir": ".."}])
    with sweep.locked_sweep_dir(folder, overwrite=True):
        pass
    assert outside.is_dir() and (folder / "alpha=0.1-seed9").is_dir() and (folder / "stray").is_file()


# --- end to end on Ray ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.tune")
    if ray.is_initialized():  # another module's Ray: the sweep joins it as it is
        yield ray
        return
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_sweep_end_to_end_ranks_the_setting_that_learns_first(local_ray, tmp_path):
    """Q-learning on the cliff: alpha=0.5 finds the 13-step path within 5,000 steps, alpha=0.001
    learns nothing that changes the greedy policy (it walks into the wall: -1000)."""
    from rlsuite import api

    result = api.sweep("q_learning", "CliffWalking-v1", grid={"alpha": "0.001,0.5"}, seeds=2, sweep_dir="sw",
                       total_steps=5000, eval_every=1000, quiet=True)
    folder = tmp_path / "sw"
    assert result.dir == folder and not result.failed
    run_dirs = sorted(p.name for p in folder.iterdir() if (p / "run.yaml").is_file())
    assert run_dirs == ["alpha=0.001-seed1", "alpha=0.001-seed2", "alpha=0.5-seed1", "alpha=0.5-seed2"]
    for name in run_dirs:
        config = yaml.safe_load((folder / name / "config.yaml").read_text())
        assert f"alpha={config['alpha']}-seed{config['seed']}" == name  # each trial trained its own setting and seed
        assert config["total_steps"] == 5000 and (folder / name / "eval.csv").is_file()
    rows = list(csv.DictReader((folder / "summary.csv").open()))
    assert [r["setting"] for r in rows] == ["alpha=0.5", "alpha=0.001"]
    assert [(float(r["mean"]), r["n"], r["failed"]) for r in rows] == [(-13.0, "2", "0"), (-1000.0, "2", "0")]
    assert len(list(csv.DictReader((folder / "trials.csv").open()))) == 4
    assert (folder / "curves.png").stat().st_size > 1000 and (folder / "tune").is_dir()
    assert yaml.safe_load((folder / "sweep.yaml").read_text())["status"] == "finished"
    assert result.best.setting == "alpha=0.5" and result.metric == "mean return"


@pytest.mark.slow
def test_sweep_cli_lists_a_failed_trial_and_counts_the_others(local_ray, tmp_path, capsys):
    """Thompson sampling with a Bernoulli likelihood cannot run on Gaussian rewards: that trial
    fails at train time, the Gaussian one still counts, the exit code says something failed."""
    code = main(["sweep", "thompson", "--env", "bandit-10", "--grid", "likelihood=gaussian,bernoulli", "--seeds", "1",
                 "--runs", "20", "--steps", "50", "--metric", "bandit/average_reward", "--dir", "sw", "--quiet"])
    out, err = capsys.readouterr()
    assert code == sweep.EXIT_TRIALS_FAILED
    assert "likelihood=gaussian" in out and "Sweep directory" in out
    assert "failed: likelihood=bernoulli-seed1: likelihood 'bernoulli' needs rewards in {0, 1}" in err and "Traceback" not in err
    rows = list(csv.DictReader((tmp_path / "sw" / "summary.csv").open()))
    assert [(r["setting"], r["n"], r["failed"]) for r in rows] == [("likelihood=gaussian", "1", "0"), ("likelihood=bernoulli", "0", "1")]
    assert np.isfinite(float(rows[0]["mean"])) and "needs rewards in {0, 1}" in rows[1]["error"]
    assert main(["sweep", "thompson", "--env", "bandit-10", "--grid", "likelihood=gaussian", "--dir", "sw"]) == 2
    assert "already exists. Use --overwrite" in capsys.readouterr().err
