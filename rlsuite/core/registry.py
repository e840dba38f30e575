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
