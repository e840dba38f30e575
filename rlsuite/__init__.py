"""rlsuite: reinforcement learning from bandits to GRPO, one readable file per algorithm.

    import rlsuite
    run = rlsuite.train("ppo", "CartPole-v1", seed=1)
    policy = rlsuite.load(run.dir)
    action = policy.act(obs)
    rlsuite.open_run(run.dir).evaluations      # column name -> NumPy array
    rlsuite.sweep("ppo", "CartPole-v1", grid={"learning_rate": [1e-3, 3e-4]}, seeds=3)   # on Ray Tune

Algorithm modules are reachable by name too: `from rlsuite import ppo` gives
rlsuite/algos/deep/ppo.py, with `ppo.PPOConfig`, `ppo.preset(env)`, `ppo.train(config)` and
`ppo.SPEC`, the declaration the registry and CLI read.
"""

__version__ = "0.2.0"

from rlsuite.api import load, make_config, open_run, resume, sweep, train  # noqa: E402

__all__ = ["load", "make_config", "open_run", "resume", "sweep", "train", "__version__"]


def __getattr__(name: str):
    import importlib

    from rlsuite.core.registry import ALGORITHMS

    if name in ALGORITHMS:
        return importlib.import_module(ALGORITHMS[name].module)
    raise AttributeError(f"module 'rlsuite' has no attribute {name!r}")
