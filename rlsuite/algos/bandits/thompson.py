"""Thompson sampling (posterior sampling; Sutton & Barto 2nd ed., Section 2.10, and Russo et al.
2018, "A Tutorial on Thompson Sampling", Algorithm 2 for Beta-Bernoulli bandits):

    loop:  theta(a) ~ posterior of q*(a), for every arm
           A <- argmax_a theta(a);  R <- bandit(A);  update the posterior of arm A

Two conjugate models, chosen by `likelihood` ("auto" picks by the testbed's reward kind):
- "bernoulli": Beta(alpha, beta) prior; after R in {0, 1}: alpha(A) += R, beta(A) += 1 - R.
- "gaussian": rewards N(q*(a), 1) with known unit variance and a N(mu0, sigma0^2) prior; the
  posterior is N((mu0/sigma0^2 + sum R) / (1/sigma0^2 + N), 1 / (1/sigma0^2 + N)).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Literal

import numpy as np

from rlsuite.algos.bandits import BanditConfig, Session, no_policy
from rlsuite.core import config as configs
from rlsuite.core import run as runs
from rlsuite.core.errors import UnsupportedEnvError, check
from rlsuite.ops import bandits as ops

SUMMARY = "Thompson sampling: Beta-Bernoulli or Gaussian posteriors"


@dataclasses.dataclass(frozen=True)
class Config(BanditConfig):
    likelihood: Literal["auto", "bernoulli", "gaussian"] = "auto"
    """Reward model: 'bernoulli' (Beta prior), 'gaussian' (unit noise, Normal prior), 'auto' (the testbed's)."""
    prior_alpha: float = 1.0
    """Beta prior alpha (successes + 1); Beta(1, 1) is uniform."""
    prior_beta: float = 1.0
    """Beta prior beta (failures + 1)."""
    prior_mean: float = 0.0
    """Mean mu0 of the Gaussian prior on q*(a)."""
    prior_std: float = 1.0
    """Standard deviation sigma0 > 0 of the Gaussian prior on q*(a)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.prior_alpha > 0 and self.prior_beta > 0, f"prior_alpha and prior_beta must be > 0, got {self.prior_alpha}, {self.prior_beta}.")
        check(self.prior_std > 0, f"prior_std must be > 0, got {self.prior_std}.")


PRESETS: dict[str, dict[str, Any]] = {}
preset = functools.partial(configs.with_preset, Config, PRESETS)  # preset(env=None, **overrides) -> Config
HAS_POLICY = False  # the result is the learning curve; rlsuite.load() has nothing to load
load_policy = no_policy


def train(config: Config, run_dir=None, *, overwrite: bool = False, resume: bool = False, quiet: bool = False, callbacks=()) -> runs.Run:
    """Run Thompson sampling on config.runs testbeds for config.steps pulls each."""
    with Session("thompson", config, run_dir, overwrite=overwrite, resume=resume, quiet=quiet, callbacks=callbacks) as s:
        likelihood = s.reward_kind if config.likelihood == "auto" else config.likelihood
        if likelihood == "bernoulli" and s.reward_kind != "bernoulli":
            raise UnsupportedEnvError(
                f"likelihood 'bernoulli' needs rewards in {{0, 1}}, but {config.env} has {s.reward_kind} rewards; "
                "use --likelihood gaussian (or auto), or --env bandit-10-bernoulli."
            )
        rows = np.arange(config.runs)
        shape = (config.runs, s.k)
        alpha, beta = np.full(shape, config.prior_alpha), np.full(shape, config.prior_beta)
        reward_sum, N = np.zeros(shape), np.zeros(shape)
        for _ in s.steps():
            if likelihood == "bernoulli":
                theta = s.rng.beta(alpha, beta)
            else:
                mean, std = ops.gaussian_posterior(config.prior_mean, config.prior_std, reward_sum, N)
                theta = mean + std * s.rng.standard_normal(shape)
            A = theta.argmax(axis=1)  # continuous samples: ties have probability 0
            R = s.pull(A)
            if likelihood == "bernoulli":
                alpha, beta = ops.beta_posterior(alpha, beta, A, R)
            else:
                reward_sum[rows, A] += R
                N[rows, A] += 1
        return s.finish()
