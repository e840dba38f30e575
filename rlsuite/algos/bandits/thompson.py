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
from typing import Any, Literal

import numpy as np

from rlsuite.algos.bandits import ACTS_ON, NO_POLICY, BanditConfig, Testbed, bandit_loop
from rlsuite.core.run import Run
from rlsuite.core.spec import AlgorithmSpec
from rlsuite.errors import UnsupportedEnvError, check
from rlsuite.ops import bandits as ops


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


@dataclasses.dataclass(frozen=True)
class Posterior:
    """Sufficient statistics of every arm's posterior, [runs, k] each."""

    alpha: np.ndarray
    beta: np.ndarray
    reward_sum: np.ndarray
    N: np.ndarray


def sample(post: Posterior, likelihood: str, config: Config, rng: np.random.Generator) -> np.ndarray:
    """theta(a) ~ posterior of q*(a), for every arm of every run."""
    if likelihood == "bernoulli":
        return rng.beta(post.alpha, post.beta)
    mean, std = ops.gaussian_posterior(config.prior_mean, config.prior_std, post.reward_sum, post.N)
    return mean + std * rng.standard_normal(mean.shape)


def update(post: Posterior, A: np.ndarray, R: np.ndarray, likelihood: str) -> Posterior:
    """Condition arm A's posterior on reward R (Beta counts, or the Gaussian's sum and count)."""
    if likelihood == "bernoulli":
        alpha, beta = ops.beta_posterior(post.alpha, post.beta, A, R)
        return dataclasses.replace(post, alpha=alpha, beta=beta)
    rows = np.arange(A.shape[0])
    reward_sum, N = post.reward_sum.copy(), post.N.copy()
    reward_sum[rows, A] += R
    N[rows, A] += 1
    return dataclasses.replace(post, reward_sum=reward_sum, N=N)


def train(config: Config, run_dir=None, **options: Any) -> Run:
    """Run Thompson sampling on config.runs testbeds for config.steps pulls each."""
    testbed = Testbed("thompson", config)
    likelihood = testbed.reward_kind if config.likelihood == "auto" else config.likelihood
    if likelihood == "bernoulli" and testbed.reward_kind != "bernoulli":
        testbed.close()
        raise UnsupportedEnvError(
            f"likelihood 'bernoulli' needs rewards in {{0, 1}}, but {config.env} has {testbed.reward_kind} rewards; "
            "use --likelihood gaussian (or auto), or --env bandit-10-bernoulli."
        )
    shape = (config.runs, testbed.k)
    with bandit_loop("thompson", config, testbed, run_dir, **options) as loop:
        post = loop.start(lambda: Posterior(np.full(shape, config.prior_alpha), np.full(shape, config.prior_beta), np.zeros(shape), np.zeros(shape)))
        while loop.running():
            A = sample(post, likelihood, config, testbed.rng).argmax(axis=1)  # continuous samples: ties have probability 0
            R = testbed.pull(A)
            post = update(post, A, R, likelihood)
            loop.record(1, testbed.metrics(), state=post)
        return loop.finish()


SPEC = AlgorithmSpec(
    name="thompson",
    family="bandit",
    summary="Thompson sampling: Beta-Bernoulli or Gaussian posteriors",
    config=Config,
    train=train,
    acts_on=ACTS_ON,
    no_policy_reason=NO_POLICY,
    budget_field="steps",
)
preset = SPEC.preset
