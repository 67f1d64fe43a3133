"""`recgen ray ARGS...`: Ray's own CLI, run with the environment that keeps a node on the machine.

``recgen ray start --head --node-ip-address 127.0.0.1 ...`` is ``ray start`` with usage stats
off, Ray's processes under a private HOME whose ``ray_bootstrap_config.yaml`` stops the
dashboard's cloud-metadata probe, and (for a 127.x node address) 127.0.0.1 kept as the node's
address. See :mod:`pipelines.core.ray_env` and ``docs/cluster.md``.

Token auth: the head and every client (``ray job submit``, ``ray status``) must share one
token. Set ``RAY_AUTH_TOKEN`` (or ``RAY_AUTH_TOKEN_PATH``) in the shell first; a token that
only the head knew would lock the clients out, so ``recgen ray start`` refuses to make one up.
"""
from __future__ import annotations

import os
import shutil

from components.errors import ConfigError


def cmd_ray(args) -> int:
    from pipelines.core.ray_env import ray_process_env

    argv = list(args.ray_args)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        raise ConfigError("recgen ray: give Ray CLI arguments, e.g. recgen ray start --head --node-ip-address 127.0.0.1")
    ip = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--node-ip-address"), "")
    env = ray_process_env(loopback=ip.startswith("127."))
    shared_token = (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
                    or env.get("RAY_AUTH_TOKEN_PATH"))  # the last: the user's ~/.ray/auth_token
    if argv[0] == "start" and env.get("RAY_AUTH_MODE", "").lower() != "disabled" and not shared_token:
        raise ConfigError("recgen ray start: no auth token in the environment; the head and its clients must "
                          "share one: export RAY_AUTH_TOKEN=$(python -c 'import secrets; print(secrets.token_hex(32))')"
                          " (or RAY_AUTH_TOKEN_PATH=FILE, or RAY_AUTH_MODE=disabled on a private machine)")
    ray = shutil.which("ray", path=env.get("PATH")) or "ray"
    os.execvpe(ray, [ray, *argv], env)
    return 0  # not reached


def register(subparsers) -> None:
    p = subparsers.add_parser("ray", help="Ray's CLI with recgen's loopback/no-telemetry environment "
                              "(e.g. recgen ray start --head --node-ip-address 127.0.0.1)")
    p.add_argument("ray_args", nargs="...", help="arguments for the ray CLI")
    p.set_defaults(func=cmd_ray)
