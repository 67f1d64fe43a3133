"""Starting or joining Ray.

Without an address we start an embedded local Ray bound to 127.0.0.1 (never another
interface). With ``--address auto`` / ``RAY_ADDRESS`` we join the running cluster, which is
how ``ray job submit -- recgen run ...`` works.
"""
from __future__ import annotations

import os

import ray

LOOPBACK = "127.0.0.1"


def _keep_loopback() -> None:
    """Make Ray treat 127.0.0.1 as this node's IP (and bind there).

    Ray rewrites 127.0.0.1 / localhost (``_node_ip_address``, ``RAY_ADDRESS``) to the
    machine's outward IP and then listens on all interfaces, unless
    RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0. Set both the constant (already read at import) and
    the variable (inherited by the GCS, raylet and workers this process starts). Only for an
    embedded Ray or a loopback address: a driver joining a real cluster keeps Ray's default.
    """
    import ray._private.ray_constants as rc

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    rc.ENABLE_RAY_CLUSTER = False


def init_ray(address: str | None = None, num_cpus: int | None = None, num_gpus: int | None = None):
    """Start (or join) Ray and return the context. Idempotent within a process."""
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    os.environ.setdefault("DGLBACKEND", "pytorch")
    if ray.is_initialized():
        return ray.get_runtime_context()
    address = address or os.environ.get("RAY_ADDRESS") or None
    env = {"env_vars": {"DGLBACKEND": "pytorch", "PYTHONUNBUFFERED": "1"}}
    if address:
        if address.split("://")[-1].startswith(("127.", "localhost")):
            _keep_loopback()
        return ray.init(address=address, runtime_env=env, log_to_driver=True)
    _keep_loopback()
    return ray.init(
        address="local",  # always a new embedded instance, never a `ray start` cluster found on the machine
        _node_ip_address=LOOPBACK,
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        include_dashboard=False,
        runtime_env=env,
        logging_level="WARNING",
        configure_logging=True,
    )


def shutdown_ray() -> None:
    if ray.is_initialized():
        ray.shutdown()
