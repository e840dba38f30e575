"""rlsuite: reinforcement learning from bandits to GRPO, one readable file per algorithm.

    import rlsuite
    run = rlsuite.train("ppo", "CartPole-v1", seed=1)
    policy = rlsuite.load(run.dir)
    action = policy.act(obs)

Algorithm modules are reachable by name too: `from rlsuite import ppo` gives
rlsuite/algos/deep/ppo.py, with `ppo.PPOConfig`, `ppo.preset(env)` and `ppo.train(config)`.
"""

__version__ = "0.1.0"

from rlsuite.core.api import load, make_config, resume, train  # noqa: E402

__all__ = ["load", "make_config", "resume", "train", "__version__"]


def __getattr__(name: str):
    from rlsuite.core.registry import ALGORITHMS, get

    if name in ALGORITHMS:
        return get(name)
    raise AttributeError(f"module 'rlsuite' has no attribute {name!r}")
