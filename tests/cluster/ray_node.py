"""`ray start` for a node that joins a head on 127.0.0.1 (used by the cluster fixture).

`ray start` rewrites 127.0.0.1 / localhost in --address and --node-ip-address to the
machine's outward IP, so a multi-node cluster on loopback needs two small overrides:
keep 127.x addresses as given, and allow joining while RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
(the setting that makes every process of the cluster treat 127.0.0.1 as its node IP). Both
nodes then bind only 127.0.0.1. Everything else is the stock `ray` CLI.
"""
import sys

import ray._private.ray_constants as ray_constants
import ray._private.services as services

ray_constants.ENABLE_RAY_CLUSTER = True
_resolve = services.resolve_ip_for_localhost
services.resolve_ip_for_localhost = lambda host: host if host.startswith("127.") else _resolve(host)

from ray.scripts.scripts import main  # noqa: E402

sys.exit(main())
