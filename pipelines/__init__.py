"""recgen orchestration: stages, DAGs, the CLI, Ray Train/Tune glue."""
import os as _os

# Ray calls an argument-less ``ray.init`` on the first remote call (ray.put, .remote(), ray.get) when
# nothing is initialised, and that instance binds to the machine's network address. Every Ray
# recgen starts or joins goes through :func:`pipelines.core.ray_env.init_ray` (127.0.0.1), so
# the implicit start is turned off; Ray reads this when it is imported.
_os.environ["RAY_ENABLE_AUTO_CONNECT"] = "0"
# Ray Tune has its own implicit start (``Tuner.fit`` with nothing initialised calls ray.init with
# no arguments), which the setting above does not cover; the engines call init_ray first instead.
_os.environ["TUNE_DISABLE_AUTO_INIT"] = "1"
