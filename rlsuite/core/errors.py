"""Errors a user can act on. The CLI prints them as one message and exits non-zero.

Each error states what was wrong and how to fix it; anything else reaching the CLI is a bug.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class RLSuiteError(Exception):
    """Base for every error caused by user input rather than by a bug in rlsuite."""

    exit_code = 2


class ConfigError(RLSuiteError):
    """A configuration field is unknown, of the wrong type or out of range."""


class UnknownNameError(RLSuiteError):
    """An algorithm, environment or preset name that does not exist."""


class UnsupportedEnvError(RLSuiteError):
    """The environment's spaces are not ones the chosen algorithm can handle."""


class CheckpointError(RLSuiteError):
    """A checkpoint or saved model is missing, truncated or not an rlsuite file."""


class RunDirError(RLSuiteError):
    """The run directory exists (and would be overwritten) or is not a run directory."""


class NonFiniteError(RLSuiteError):
    """Training produced NaN or infinity; the last good checkpoint is kept."""

    exit_code = 3


def suggest(name: str, candidates: Iterable[str], n: int = 3) -> str:
    """' Did you mean: a, b?' for the closest candidates, or '' when none is close."""
    candidates = list(candidates)
    lowered = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    return f" Did you mean: {', '.join(lowered[c] for c in close)}?" if close else ""


def check(condition: bool, message: str) -> None:
    """Raise ConfigError(message) unless condition holds; used by config __post_init__."""
    if not condition:
        raise ConfigError(message)
