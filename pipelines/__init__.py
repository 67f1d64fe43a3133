"""recgen orchestration: stages, DAGs, the CLI, Ray Train/Tune glue."""
import os as _os

# Ray calls a bare ``ray.init()`` on the first remote call (ray.put, .remote(), ray.get) when
# nothing is initialised, and that instance binds to the machine's network address. Every Ray
# recgen starts or joins goes through :func:`pipelines.core.ray_env.init_ray` (127.0.0.1), so
# the implicit start is turned off; Ray reads this when it is imported.
_os.environ["RAY_ENABLE_AUTO_CONNECT"] = "0"
