"""Ray Train (V2) glue shared by every training stage.

A training stage is ``kind="driver"``: it calls :func:`fit` with a per-worker loop. Inside
the loop, :func:`load_checkpoint` returns the last saved state (after a worker failure or
when the same stage is re-run after a killed driver: the run name and storage path are
derived from the stage fingerprint, so Ray Train finds the earlier checkpoints), and
:func:`report` saves state + metrics (rank 0 writes the checkpoint).

``TrainerConfig(num_workers=0)`` runs the loop in-process (Ray Train V2 local mode) with
checkpoints still persisted under the scratch dir: use it in ``configs/*/tiny.yaml`` and
unit tests (starting Ray Train workers costs ~10-20 s per fit on 2 cores); keep
``num_workers >= 1`` in the demo configs and in the tests that exercise workers themselves.
"""
from __future__ import annotations

import os
import tempfile
from typing import Any, Callable

import torch
from pydantic import Field
from ray.train.backend import Backend
from ray.train.torch import TorchConfig

from pipelines.core.artifacts import local_scratch, push_scratch
from pipelines.core.config import StrictModel


class TrainerConfig(StrictModel):
    """How a training stage is scaled (a ``trainer:`` sub-section of a stage config)."""

    num_workers: int = Field(1, ge=0, description="Ray Train workers (0 = in-process, for tests)")
    use_gpu: bool = Field(False, description="one GPU per worker")
    cpus_per_worker: float = Field(1.0, gt=0)
    max_failures: int = Field(2, ge=-1, description="worker failures to recover from (-1: unlimited)")


CKPT_FILE = "state.pt"


def load_state(path: str):
    """Load a checkpoint or model artifact written by ``torch.save``: tensors and plain types only.

    ``weights_only=True`` refuses any other pickled object (a file planted in a shared
    artifact root cannot run code here); everything else the stages keep sits beside the
    tensors as JSON or Parquet.
    """
    return torch.load(path, map_location="cpu", weights_only=True)
# With num_workers=0 Ray Train runs the loop in this process and does not persist
# checkpoints; fit() then points this at a folder under the stage's scratch dir.
_LOCAL_DIR: str | None = None


def fit(ctx, train_loop: Callable[[dict], None], loop_config: dict, trainer: TrainerConfig,
        name: str = "train"):
    """Run ``train_loop`` under a ``TorchTrainer`` whose storage lives in ``ctx.scratch_dir``.

    Returns the ``ray.train.Result``. Raises the worker's error if training fails for good.
    """
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    resources = {"CPU": trainer.cpus_per_worker}
    if trainer.use_gpu:
        resources["GPU"] = 1
    env = {"env_vars": {"DGLBACKEND": "pytorch",
                        "OMP_NUM_THREADS": str(max(1, int(trainer.cpus_per_worker)))}}
    t = TorchTrainer(
        train_loop,
        train_loop_config=loop_config,
        torch_config=process_group_config(),
        scaling_config=ScalingConfig(num_workers=trainer.num_workers, use_gpu=trainer.use_gpu,
                                     resources_per_worker=resources),
        run_config=RunConfig(
            name=f"{ctx.stage}-{name}",
            storage_path=ctx.scratch_dir,
            failure_config=FailureConfig(max_failures=trainer.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
            worker_runtime_env=env,
            callbacks=_tune_callbacks(),
        ),
    )
    global _LOCAL_DIR
    # a local folder also for a remote (s3://) scratch dir: a mirror that report() uploads to
    _LOCAL_DIR = (local_scratch(os.path.join(ctx.scratch_dir, f"{ctx.stage}-{name}-local"))
                  if trainer.num_workers == 0 else None)
    try:
        result = t.fit()
    finally:
        local_dir, _LOCAL_DIR = _LOCAL_DIR, None
    if getattr(result, "error", None):
        raise result.error
    result.recgen_local_dir = local_dir
    return result


def _tune_callbacks() -> list:
    """Inside a Ray Tune trial, forward the workers' reports to Tune (Train V2 + Tune)."""
    from ray.tune.trainable.trainable_fn_utils import _in_tune_session

    if not _in_tune_session():
        return []
    from ray.tune.integration.ray_train import TuneReportCallback

    return [TuneReportCallback()]


def worker_setup(seed: int, threads: int) -> tuple[int, int]:
    """Per-worker prologue of a training loop: seed torch, cap its threads, return (rank, world)."""
    import ray.train

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    ctx = ray.train.get_context()
    return ctx.get_world_rank(), ctx.get_world_size()


def world_rank() -> int:
    import ray.train

    return ray.train.get_context().get_world_rank()


def load_checkpoint() -> dict | None:
    """The state dict saved by the last :func:`report` of this run, or None."""
    import ray.train

    if _LOCAL_DIR is not None:
        f = os.path.join(_LOCAL_DIR, CKPT_FILE)
        return load_state(f) if os.path.exists(f) else None
    ckpt = ray.train.get_checkpoint()
    if ckpt is None:
        return None
    with ckpt.as_directory() as d:
        return load_state(os.path.join(d, CKPT_FILE))


def report(metrics: dict[str, Any], state: dict | None = None) -> None:
    """Report metrics; with ``state``, rank 0 also saves it as the run's checkpoint."""
    import ray.train
    from ray.train import Checkpoint

    if state is not None and _LOCAL_DIR is not None:
        os.makedirs(_LOCAL_DIR, exist_ok=True)
        tmp = os.path.join(_LOCAL_DIR, CKPT_FILE + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, os.path.join(_LOCAL_DIR, CKPT_FILE))
        push_scratch(_LOCAL_DIR, CKPT_FILE)  # remote scratch: the checkpoint survives this process
        ray.train.report(metrics)
    elif state is not None and world_rank() == 0:
        with tempfile.TemporaryDirectory() as d:
            torch.save(state, os.path.join(d, CKPT_FILE))
            ray.train.report(metrics, checkpoint=Checkpoint.from_directory(d))
    else:
        ray.train.report(metrics)


def final_state(result) -> dict | None:
    """The state dict of the last checkpoint of a finished run."""
    local_dir = getattr(result, "recgen_local_dir", None)
    if local_dir is not None:
        f = os.path.join(local_dir, CKPT_FILE)
        return load_state(f) if os.path.exists(f) else None
    ckpt = getattr(result, "checkpoint", None)
    if ckpt is None:
        return None
    with ckpt.as_directory() as d:
        return load_state(os.path.join(d, CKPT_FILE))


# --- torch.distributed set-up ---------------------------------------------------------------

def _pg_dir(token: str) -> str:
    return os.path.join(tempfile.gettempdir(), f"recgen-pg-{os.getuid()}", token)


def _pg_init(backend: str, url: str, world_rank: int, world: int, timeout_s: int, loopback: bool) -> None:
    """Runs on each worker: torch.distributed env vars, then the process group."""
    from datetime import timedelta

    import ray.train
    import torch.distributed as dist

    c = ray.train.get_context()
    os.environ.update(LOCAL_RANK=str(c.get_local_rank()), LOCAL_WORLD_SIZE=str(c.get_local_world_size()),
                      NODE_RANK=str(c.get_node_rank()), RANK=str(world_rank), WORLD_SIZE=str(world))
    if loopback:
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # gloo binds lo; no host-name lookup
    if url.startswith("file://"):
        os.makedirs(os.path.dirname(url[len("file://"):]), mode=0o700, exist_ok=True)
    dist.init_process_group(backend=backend, init_method=url, rank=world_rank, world_size=world,
                            timeout=timedelta(seconds=timeout_s))


def _pg_shutdown(url: str) -> None:
    import shutil

    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
    if url.startswith("file://"):
        shutil.rmtree(os.path.dirname(url[len("file://"):]), ignore_errors=True)


def _node_address() -> tuple[str, int]:
    import socket

    import ray.util

    ip = ray.util.get_node_ip_address()
    with socket.socket() as s:
        s.bind((ip, 0))
        return ip, s.getsockname()[1]


class _ProcessGroupBackend(Backend):
    """Ray's torch backend, except for the rendezvous (see :class:`ProcessGroupConfig`)."""

    share_cuda_visible_devices = True

    def on_start(self, worker_group, backend_config):
        import uuid

        import ray

        n = len(worker_group)
        gpus = worker_group.get_resources_per_worker().get("GPU", 0)
        backend = backend_config.backend or ("nccl" if gpus > 0 else "gloo")
        addr, port = worker_group.execute_single(0, _node_address)
        loopback = addr.startswith("127.")
        url = f"file://{_pg_dir(uuid.uuid4().hex)}/store" if loopback else f"tcp://{addr}:{port}"
        backend_config._recgen_url = url
        ray.get([worker_group.execute_single_async(i, _pg_init, backend=backend, url=url, world_rank=i, world=n,
                                                   timeout_s=backend_config.timeout_s, loopback=loopback)
                 for i in range(n)])

    def on_shutdown(self, worker_group, backend_config):
        import ray

        try:
            ray.get(worker_group.execute_async(_pg_shutdown, url=getattr(backend_config, "_recgen_url", "")),
                    timeout=60)
        except Exception:  # noqa: BLE001 - a dead worker group has nothing left to close
            pass


class ProcessGroupConfig(TorchConfig):
    """The ``torch_config`` of every recgen trainer: Ray's ``TorchConfig`` with one change.

    On a loopback cluster (workers on 127.x) the ranks meet through a ``FileStore`` in a
    private temp dir and gloo is pinned to ``lo``: c10d's TCPStore would listen on every
    interface and, for its log lines, reverse-resolve ``::ffff:127.0.0.1`` through the
    machine's DNS resolver (a query that leaves the machine). On a real cluster the ranks meet
    through a TCP rendezvous at rank 0's node address, as with Ray's default.
    """

    @property
    def backend_cls(self):
        return _ProcessGroupBackend


def process_group_config() -> ProcessGroupConfig:
    return ProcessGroupConfig()
