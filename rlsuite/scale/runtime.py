"""Starting or joining Ray: the one place that imports it, so a missing extra is one message."""

from __future__ import annotations

import os
from typing import Any

from rlsuite.errors import ConfigError, MissingExtraError


def import_ray() -> Any:
    """The ray module, or a MissingExtraError naming the extra that brings it."""
    try:
        import ray
    except ImportError as exc:
        raise MissingExtraError(f"Ray is not installed ({exc}); `--backend ray` and `rlsuite sweep` need the ray extra: pip install 'rlsuite[ray]'.") from None
    return ray


def init_ray(address: str | None = None, num_cpus: int | None = None) -> Any:
    """Join the Ray cluster at `address` ('auto': the one `ray start` left on this machine), or
    start a local Ray instance when address is None and RAY_ADDRESS is unset. A Ray already
    initialized in this process is reused as it is. Returns the ray module."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    address = address or os.environ.get("RAY_ADDRESS") or None
    options: dict[str, Any] = {"include_dashboard": False, "configure_logging": False, "log_to_driver": False}
    if address is None:
        options["num_cpus"] = num_cpus
    try:
        ray.init(address=address, **options)
    except ConnectionError as exc:
        raise ConfigError(
            f"could not join the Ray cluster at {address!r} ({exc}). Start one with `ray start --head` on the head node "
            "(and `ray start --address=HEAD:6379` on the others), then pass --ray-address auto or HEAD:6379; "
            "leave --ray-address unset to start a local Ray instance. Ray 2.60 clusters may require its token: "
            "set RAY_AUTH_MODE=token (the token is in ~/.ray/auth_token on the head)."
        ) from None
    return ray
