"""Starting or joining Ray, with nothing leaving the machine.

Without an address we start an embedded local Ray bound to 127.0.0.1 (never another
interface). With ``--address auto`` / ``RAY_ADDRESS`` we join the running cluster, which is
how ``ray job submit -- recgen run ...`` works.

Every Ray instance recgen starts (the embedded one here, and the ``ray start`` nodes of the
tests and of ``recgen ray start ...``) runs Ray's own processes with :func:`ray_process_env`:

* ``RAY_USAGE_STATS_ENABLED=0``: no usage report. A ``ray start`` head then still posts one
  "usage stats disabled" report to usage-stats.ray.io; ``RAY_USAGE_STATS_REPORT_URL`` (the
  report URL Ray reads from the environment) is set to ``file:///dev/null``, for which the
  HTTP client opens no socket.
* ``HOME`` = a private directory holding a ``ray_bootstrap_config.yaml``. Ray 2.60's dashboard
  usage-stats module (loaded even with ``include_dashboard=False``) reads
  ``~/ray_bootstrap_config.yaml`` before it checks whether usage stats are enabled; when the
  file is missing it probes the cloud metadata service (169.254.169.254, and a DNS lookup of
  metadata.google.internal). The file is the one ``ray up`` puts on a head node; with it the
  module reads the provider from the file and sends nothing. Task and actor workers get the
  user's real ``HOME`` back through the job's runtime env, so credentials and caches resolve
  as usual.
* Token auth without a file in the user's home: Ray 2.60's ``ray.init`` turns token auth
  on and, when no token exists, writes ``~/.ray/auth_token``. We hand Ray an ephemeral
  per-instance token in ``RAY_AUTH_TOKEN`` instead (or point ``RAY_AUTH_TOKEN_PATH`` at the
  user's existing token), so nothing is written.
* ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` for loopback instances: without it Ray rewrites
  127.0.0.1 to the machine's outward IP and listens on all interfaces.

``docs/cluster.md`` says what an operator should set on real cluster nodes.
"""
from __future__ import annotations

import logging
import os
import secrets
import tempfile
from pathlib import Path

import ray

LOOPBACK = "127.0.0.1"
RAY_HOME_ENV = "RECGEN_RAY_HOME"      # override of the private HOME of Ray's processes
USER_HOME_ENV = "RECGEN_USER_HOME"    # the real HOME, for code running under Ray's HOME
BOOTSTRAP_FILE = "ray_bootstrap_config.yaml"
NO_REPORT_URL = "file:///dev/null"
# What Ray's usage-stats module reads from the bootstrap file: a provider, so it never asks
# the cloud metadata service which cloud this is. "local" is the provider of a hand-started
# (`ray start`) cluster in Ray's own cluster-launcher schema.
BOOTSTRAP_TEXT = (
    "# Written by recgen (pipelines/core/ray_env.py). Ray's dashboard reads this file to learn\n"
    "# the cluster's provider; without it, it probes the cloud metadata service.\n"
    "cluster_name: recgen-local\n"
    "provider:\n"
    "  type: local\n"
)


def is_loopback(address: str | None) -> bool:
    host = (address or "").split("://")[-1]
    return host.startswith(("127.", "localhost", "[::1]", "::1"))


def _resolved(address: str) -> str:
    """``auto`` as the GCS address of the cluster running on this machine (Ray's own lookup), so
    that a driver joining a loopback cluster through ``--address auto`` binds 127.0.0.1 too."""
    if address != "auto":
        return address
    try:
        from ray._private.services import canonicalize_bootstrap_address  # no public accessor in Ray 2.60
        return canonicalize_bootstrap_address(address) or address
    except Exception:  # noqa: BLE001 - no cluster found: ray.init reports that itself
        return address


def user_home() -> str:
    """The user's real home directory (also when called under Ray's private HOME)."""
    return os.environ.get(USER_HOME_ENV) or os.path.expanduser("~")


def ray_home() -> Path:
    """The private HOME of Ray's own processes, with its bootstrap config (created on demand).

    ``$RECGEN_RAY_HOME`` if set, else ``<tmp>/recgen-ray-home-<uid>`` (mode 0700). Never under
    the user's home directory.
    """
    d = Path(os.environ.get(RAY_HOME_ENV) or Path(tempfile.gettempdir()) / f"recgen-ray-home-{os.getuid()}")
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    if d.stat().st_uid != os.getuid():
        raise PermissionError(f"{d} belongs to another user; set {RAY_HOME_ENV} to a private directory")
    f = d / BOOTSTRAP_FILE
    if not f.is_file() or f.read_text() != BOOTSTRAP_TEXT:
        tmp = d / f".{BOOTSTRAP_FILE}.{os.getpid()}"
        tmp.write_text(BOOTSTRAP_TEXT)
        os.replace(tmp, f)
    return d


def ray_process_env(base: dict | None = None, loopback: bool = True) -> dict:
    """Environment for Ray's own processes (GCS, raylet, dashboard) that recgen starts.

    Returns a copy of ``base`` (default ``os.environ``) with usage stats off, ``HOME`` pointing
    at :func:`ray_home`, an auth token that lives in the environment only, and (``loopback``)
    127.0.0.1 kept as the node address.
    """
    env = dict(os.environ if base is None else base)
    home = env.get(USER_HOME_ENV) or env.get("HOME") or os.path.expanduser("~")
    env[USER_HOME_ENV] = home
    env["HOME"] = str(ray_home())
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env.setdefault("RAY_USAGE_STATS_PROMPT_ENABLED", "0")
    # With usage stats off, a `ray start` head still posts one "disabled" report to Ray's
    # server; aim it at a URL scheme that opens no socket (the post fails and is logged).
    env["RAY_USAGE_STATS_REPORT_URL"] = NO_REPORT_URL
    if loopback:
        env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    if env.get("RAY_AUTH_MODE", "").lower() != "disabled" and not (
            env.get("RAY_AUTH_TOKEN") or env.get("RAY_AUTH_TOKEN_PATH")):
        existing = Path(home) / ".ray" / "auth_token"
        if existing.is_file():   # HOME is redirected: name the user's own token explicitly
            env["RAY_AUTH_TOKEN_PATH"] = str(existing)
        else:                    # never written to disk; every process of the instance inherits it
            env["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    return env


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


def init_ray(address: str | None = None, num_cpus: int | None = None, num_gpus: int | None = None,
             verbose: bool = False):
    """Start (or join) Ray and return the context. Idempotent within a process.

    ``verbose``: show the output of Ray's workers (tasks, Ray Train workers and controller) live
    on this console. Otherwise it stays in Ray's log files, and each run copies it into its
    record directory (``pipelines.core.console``); the console shows recgen's own lines.
    """
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    os.environ.setdefault("DGLBACKEND", "pytorch")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    if ray.is_initialized():
        return ray.get_runtime_context()
    address = address or os.environ.get("RAY_ADDRESS") or None
    env_vars = {"DGLBACKEND": "pytorch", "PYTHONUNBUFFERED": "1"}
    if address:
        node_ip = {}
        if is_loopback(_resolved(address)):   # a loopback cluster: this driver's own worker binds 127.0.0.1 too
            _keep_loopback()
            node_ip = {"_node_ip_address": LOOPBACK}
        if os.environ.get(USER_HOME_ENV):  # a job on a node recgen started: workers get the real HOME
            env_vars["HOME"] = os.environ[USER_HOME_ENV]
        return ray.init(address=address, runtime_env={"env_vars": env_vars}, log_to_driver=verbose, **node_ip)
    _keep_loopback()
    # Ray's processes inherit this process's environment when ray.init spawns them: give
    # them the private HOME (and token, usage-stats setting) for the duration of the call,
    # then put the driver's HOME back. Workers get the real HOME through the runtime env.
    child = ray_process_env()
    keep = {k: child[k] for k in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", USER_HOME_ENV,
                                  "RAY_USAGE_STATS_PROMPT_ENABLED") if k in child}
    # ray.init then turns token auth on with this token and says so at WARNING level; that is
    # the intended setting here, not something for the console
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    saved_home = os.environ.get("HOME")
    os.environ.update(keep)
    os.environ["HOME"] = child["HOME"]
    env_vars["HOME"] = child[USER_HOME_ENV]
    try:
        return ray.init(
            address="local",  # always a new embedded instance, never a `ray start` cluster found on the machine
            _node_ip_address=LOOPBACK,
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            include_dashboard=False,
            log_to_driver=verbose,
            runtime_env={"env_vars": env_vars},
            logging_level="WARNING",
            configure_logging=True,
        )
    finally:
        if saved_home is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = saved_home


def shutdown_ray() -> None:
    if ray.is_initialized():
        ray.shutdown()


def main(argv: list[str] | None = None) -> int:
    """``python -m pipelines.core.ray_env --bootstrap-dir DIR``: write the bootstrap file there.

    For images and nodes not started by recgen (KubeRay pods, hand-started nodes): put the file
    in the home directory of the user that runs ``ray start`` (e.g. ``/home/ray`` in Ray's
    images), so the dashboard never probes the cloud metadata service.
    """
    import argparse

    ap = argparse.ArgumentParser(prog="python -m pipelines.core.ray_env")
    ap.add_argument("--bootstrap-dir", required=True, help="directory to write ray_bootstrap_config.yaml into")
    args = ap.parse_args(argv)
    d = Path(args.bootstrap_dir)
    d.mkdir(parents=True, exist_ok=True)
    (d / BOOTSTRAP_FILE).write_text(BOOTSTRAP_TEXT)
    print(d / BOOTSTRAP_FILE)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
