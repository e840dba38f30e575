"""Environments. Importing this package registers rlsuite's own ids with Gymnasium."""

from rlsuite.envs import bandits, gridworlds  # noqa: F401  (bandit-10..., GridWorld4x4-v0, WindyGridWorld-v0, DynaMaze-v0, ...)
