"""Errors a user can act on. The CLI prints them as one message and exits non-zero.

Each error states what was wrong and how to fix it; anything else reaching the CLI is a bug.
This module imports nothing from rlsuite, so every layer (ops included) may raise these.

Exit codes of the `rlsuite` command: 0 finished; 2 bad input (any RLSuiteError below);
3 training diverged (NonFiniteError); 4 interrupted by Ctrl-C or SIGTERM with a resumable
checkpoint saved (EXIT_INTERRUPTED); 130 aborted by a second Ctrl-C.
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


class RunInUseError(RunDirError):
    """Another live process holds the run directory's lock."""


class InputError(RLSuiteError, ValueError):
    """A value passed to the Python API (e.g. an observation given to Policy.act) is malformed."""


class DataError(RLSuiteError):
    """A dataset file, column or row is missing or malformed (reported by row)."""


class MissingExtraError(RLSuiteError):
    """An optional dependency group (an extra such as rlsuite[llm]) is not installed."""


def require_extra(module: str, extra: str) -> None:
    """Import `module` or say which extra to install; nothing is installed or downloaded for you."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{module} is not installed ({exc}); it comes with the {extra} extra: pip install 'rlsuite[{extra}]'."
        ) from None


class NonFiniteError(RLSuiteError):
    """Training produced NaN or infinity; the last good checkpoint is kept."""

    exit_code = 3


EXIT_INTERRUPTED = 4
"""Exit status of a run stopped by Ctrl-C or SIGTERM after saving a resumable checkpoint."""
EXIT_ABORTED = 130
"""Exit status of a run aborted at once by a second Ctrl-C (the conventional 128 + SIGINT)."""


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
