"""Starting or joining Ray.

Without an address we start an embedded local Ray bound to 127.0.0.1 (never another
interface). With ``--address auto`` / ``RAY_ADDRESS`` we join the running cluster, which is
how ``ray job submit -- recgen run ...`` works.
"""
from __future__ import annotations

import os

import ray

LOOPBACK = "127.0.0.1"


def init_ray(address: str | None = None, num_cpus: int | None = None, num_gpus: int | None = None):
    """Start (or join) Ray and return the context. Idempotent within a process."""
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    os.environ.setdefault("DGLBACKEND", "pytorch")
    if ray.is_initialized():
        return ray.get_runtime_context()
    address = address or os.environ.get("RAY_ADDRESS") or None
    env = {"env_vars": {"DGLBACKEND": "pytorch", "PYTHONUNBUFFERED": "1"}}
    if address:
        return ray.init(address=address, runtime_env=env, log_to_driver=True)
    return ray.init(
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
