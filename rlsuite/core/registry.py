"""Algorithm names -> the module that implements them.

Every algorithm module exposes the same names, so the CLI and the Python API treat them alike:
`Config` (the config dataclass), `PRESETS` (env id -> tuned field values), `SUMMARY` (one line),
`train(config, run_dir=None, *, overwrite=False, resume=False, quiet=False, callbacks=()) -> Run`
and `load_policy(payload) -> policy with act(obs)`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from rlsuite.core.errors import UnknownNameError, suggest


@dataclass(frozen=True)
class AlgoEntry:
    module: str
    summary: str
    family: str


ALGORITHMS: dict[str, AlgoEntry] = {
    # Bandits (Sutton & Barto ch. 2), simulated for many independent runs at once.
    "epsilon_greedy": AlgoEntry("rlsuite.algos.bandits.epsilon_greedy", "epsilon-greedy action values: sample-average or constant step, optimistic initial values", "bandit"),
    "ucb": AlgoEntry("rlsuite.algos.bandits.ucb", "upper-confidence-bound action selection", "bandit"),
    "gradient_bandit": AlgoEntry("rlsuite.algos.bandits.gradient_bandit", "gradient bandit (softmax preferences), with or without a reward baseline", "bandit"),
    "thompson": AlgoEntry("rlsuite.algos.bandits.thompson", "Thompson sampling: Beta-Bernoulli or Gaussian posteriors", "bandit"),
    # Dynamic programming on a known model (ch. 4).
    "policy_evaluation": AlgoEntry("rlsuite.algos.tabular.policy_evaluation", "iterative policy evaluation of a fixed (default: uniform random) policy", "dp"),
    "policy_iteration": AlgoEntry("rlsuite.algos.tabular.policy_iteration", "policy iteration: evaluation and greedy improvement until stable", "dp"),
    "value_iteration": AlgoEntry("rlsuite.algos.tabular.value_iteration", "value iteration with a max-error stopping bound", "dp"),
    # Model-free tabular control (ch. 5-8).
    "mc_control": AlgoEntry("rlsuite.algos.tabular.mc_control", "first-visit Monte Carlo control with an epsilon-soft policy", "tabular"),
    "sarsa": AlgoEntry("rlsuite.algos.tabular.sarsa", "SARSA and n-step SARSA (--n)", "tabular"),
    "expected_sarsa": AlgoEntry("rlsuite.algos.tabular.expected_sarsa", "Expected SARSA", "tabular"),
    "q_learning": AlgoEntry("rlsuite.algos.tabular.q_learning", "Q-learning", "tabular"),
    "double_q_learning": AlgoEntry("rlsuite.algos.tabular.double_q_learning", "Double Q-learning", "tabular"),
    "dyna_q": AlgoEntry("rlsuite.algos.tabular.dyna_q", "Dyna-Q with n planning steps; Dyna-Q+ with an exploration bonus (--kappa)", "tabular"),
    # Deep RL.
    "ppo": AlgoEntry(
        "rlsuite.algos.deep.ppo",
        "Proximal Policy Optimization: clipped or adaptive-KL surrogate, GAE; discrete and Box actions",
        "deep",
    ),
}


def get(name: str) -> ModuleType:
    """The module implementing algorithm `name`."""
    if name not in ALGORITHMS:
        raise UnknownNameError(
            f"unknown algorithm {name!r}.{suggest(name, ALGORITHMS)} Run `rlsuite list` to see all algorithms."
        )
    return importlib.import_module(ALGORITHMS[name].module)
