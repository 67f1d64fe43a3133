"""The one training engine: Ray Train (V2) glue and the loop skeleton every training stage uses.

A training stage is ``kind="driver"``: it calls :func:`fit` with a per-worker loop. The loop
opens a :class:`Session`, which gives it the skeleton's parts:

* ``rank``, ``world`` and ``device`` (CUDA when the trainer's ``use_gpu``, else CPU), seeded
  torch and capped threads;
* :meth:`Session.prepare`: the model on the device, wrapped in DDP when ``world > 1``, with the
  model's own ``forward_*`` methods still reachable (they run through DDP's forward, so their
  gradients are synchronised) and everything else forwarded to the model;
* :meth:`Session.shard`: equal-step, disjoint, covering shares of any dataset per epoch
  (:mod:`components.sharding`), from a seed shared by all ranks;
* :meth:`Session.epoch_seed` / :meth:`Session.rank_seed`: deterministic per-epoch seeds;
* :meth:`Session.resume`: the latest checkpoint (after a worker failure, or when the stage is
  re-run after a killed driver: the run name and storage path derive from the stage
  fingerprint, so Ray Train finds the earlier checkpoints);
* :meth:`Session.report`: metrics every epoch, the checkpoint from rank 0, and a progress line
  on the run's console;
* :meth:`Session.autocast` (bf16 where the config asks) and :meth:`Session.to_device`.

A :class:`~components.errors.RecgenError` raised inside a loop (a configuration or input
problem) is not a worker crash: it ends the fit at once, without Ray Train's retries, and is
raised again in the driver.

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
    from pipelines.core.console import current_queue

    t = TorchTrainer(
        _engine_loop(train_loop, current_queue(), f"{ctx.pipeline}/{ctx.stage}"),
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
    err = (getattr(result, "metrics", None) or {}).get(_ERROR_KEY)
    if err:
        from components.errors import ConfigError

        raise ConfigError(err)
    result.recgen_local_dir = local_dir
    return result


_ERROR_KEY = "recgen_error"
_PROGRESS_PREFIX = ""


def _engine_loop(train_loop: Callable[[dict], None], console_queue, prefix: str) -> Callable[[dict], None]:
    """The per-worker function Ray Train runs: console channel, then the loop; input errors end it."""
    def run(config: dict) -> None:
        global _PROGRESS_PREFIX
        import ray.train

        from components.errors import RecgenError
        from pipelines.core import console

        if console._SINK is None:
            console.attach(console_queue)
        _PROGRESS_PREFIX = prefix
        try:
            train_loop(config)
        except RecgenError as e:   # a config/input problem: report it and stop, no retries
            ray.train.report({_ERROR_KEY: f"{type(e).__name__}: {e}" if not str(e) else str(e)})
    return run


def _tune_callbacks() -> list:
    """Inside a Ray Tune trial, forward the workers' reports to Tune (Train V2 + Tune)."""
    from ray.tune.trainable.trainable_fn_utils import _in_tune_session

    if not _in_tune_session():
        return []
    from ray.tune.integration.ray_train import TuneReportCallback

    return [TuneReportCallback()]


def world_rank() -> int:
    import ray.train

    return ray.train.get_context().get_world_rank()


class _Methods(torch.nn.Module):
    """Routes DDP's forward to any method of the model (``forward_train``, ...)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *args, _method: str = "forward", **kwargs):
        return getattr(self.model, _method)(*args, **kwargs)


class DataParallel(torch.nn.parallel.DistributedDataParallel):
    """DDP that keeps the wrapped model's own API.

    ``ddp.forward_train(x)`` runs ``model.forward_train(x)`` through DDP's forward (gradients
    are all-reduced as for ``ddp(x)``); other attributes (``features``, ``embeddings``, ...)
    are the model's. ``ddp.unwrapped`` is the model itself (state dicts without prefixes).
    """

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            model = super().__getattr__("module").model
            attr = getattr(model, name)
            if name.startswith("forward") and callable(attr):
                return lambda *a, **k: self(*a, _method=name, **k)
            return attr

    @property
    def unwrapped(self) -> torch.nn.Module:
        return self.module.model


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a :class:`DataParallel` (or the model itself)."""
    return model.unwrapped if isinstance(model, DataParallel) else model


class ShardBatchSampler(torch.utils.data.Sampler):
    """Batches of :meth:`Session.shard` for a DataLoader (``set_epoch`` before each epoch)."""

    def __init__(self, session: "Session", n: int, batch_size: int):
        self.session, self.n, self.batch_size, self.epoch = session, n, batch_size, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        return iter([b.tolist() for b in self.session.shard(self.n, self.batch_size, self.epoch)])

    def __len__(self) -> int:
        from components.sharding import num_steps

        return num_steps(self.n, self.session.world, self.batch_size)


class Session:
    """One worker's view of a training run (see the module docstring).

    Args:
        seed: the run's seed (torch is seeded with it; shards and epoch seeds derive from it).
        threads: torch CPU threads of this worker.
        use_gpu: place the model and batches on this worker's GPU (``trainer.use_gpu``).
        bf16: bf16 autocast in :meth:`autocast` (CUDA, or CPU when asked explicitly).
    """

    def __init__(self, seed: int, threads: int = 1, use_gpu: bool = False, bf16: bool = False):
        import ray.train

        try:
            c = ray.train.get_context()
            self.rank, self.world = c.get_world_rank(), c.get_world_size()
        except Exception:  # noqa: BLE001 - Train V2's local mode inside a Tune trial has no Train context
            self.rank, self.world = 0, 1
        self.seed, self.bf16 = int(seed), bool(bf16)
        torch.manual_seed(self.seed)
        torch.set_num_threads(max(1, int(threads)))
        self.device = torch.device("cpu")
        if use_gpu:
            if not torch.cuda.is_available():
                from components.errors import ConfigError

                raise ConfigError("trainer.use_gpu is true but this worker sees no CUDA device; "
                                  "set trainer.use_gpu: false or run on GPU nodes")
            import ray.train.torch as rtt

            self.device = rtt.get_device()
            torch.cuda.set_device(self.device)

    # -- model and data ------------------------------------------------------------------
    def prepare(self, model: torch.nn.Module, ddp: bool = True, **ddp_kwargs) -> torch.nn.Module:
        """``model`` on this worker's device; a :class:`DataParallel` of it when ``world > 1``.

        ``ddp=False``: device placement only (loops that all-reduce gradients themselves).
        """
        model = model.to(self.device)
        if self.world == 1 or not ddp:
            return model
        if self.device.type == "cuda":
            ddp_kwargs.setdefault("device_ids", [self.device])
        return DataParallel(_Methods(model), **ddp_kwargs)

    def shard(self, n: int, batch_size: int, epoch: int, equal_sizes: bool = False) -> list[torch.Tensor]:
        """This rank's batches of ``range(n)`` for ``epoch`` (equal steps on every rank;
        ``equal_sizes``: also equal batch sizes, see :func:`components.sharding.shard_batches`)."""
        from components.errors import ConfigError
        from components.sharding import shard_batches

        try:
            return [torch.from_numpy(b) for b in shard_batches(n, self.world, self.rank, batch_size,
                                                                self.seed, epoch, equal_sizes)]
        except ValueError as e:
            raise ConfigError(f"{e}; use fewer trainer.num_workers") from None

    def loader(self, dataset, batch_size: int, num_workers: int = 0) -> "torch.utils.data.DataLoader":
        """A DataLoader over this rank's equal-step shard; call ``loader.batch_sampler.set_epoch(e)``."""
        return torch.utils.data.DataLoader(dataset, batch_sampler=ShardBatchSampler(self, len(dataset), batch_size),
                                           num_workers=num_workers, pin_memory=self.pin_memory)

    def epoch_seed(self, epoch: int, salt: int = 0) -> int:
        """Same on every rank (shuffles that must agree)."""
        from components.sharding import epoch_seed

        return epoch_seed(self.seed, epoch, salt)

    def rank_seed(self, epoch: int, salt: int = 0) -> int:
        """Different on every rank (augmentation, negative sampling of this rank's share)."""
        from components.sharding import epoch_seed

        return epoch_seed(self.seed, epoch, salt, 1 + self.rank)

    def to_device(self, x):
        """Tensors (or a dict/list/tuple of them) on this worker's device, asynchronously from pinned memory."""
        if isinstance(x, torch.Tensor):
            return x.to(self.device, non_blocking=self.device.type == "cuda")
        if isinstance(x, dict):
            return {k: self.to_device(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return type(x)(self.to_device(v) for v in x)
        return x

    @property
    def pin_memory(self) -> bool:
        """Whether data loaders should pin host memory (only useful for a CUDA device)."""
        return self.device.type == "cuda"

    def autocast(self):
        """bf16 autocast on this worker's device type when ``bf16``, else a no-op context."""
        import contextlib

        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    # -- checkpoints and reports ------------------------------------------------------------
    def resume(self) -> dict | None:
        """The state saved by the last :meth:`report` of this run (None on a fresh start)."""
        return load_checkpoint()

    def restore(self, **objects) -> tuple[int, list]:
        """Load the last checkpoint into ``objects`` (name -> anything with ``load_state_dict``,
        saved under that name by :meth:`state`); returns ``(first epoch to run, history so far)``,
        ``(0, [])`` on a fresh start."""
        state = self.resume()
        if state is None:
            return 0, []
        for name, obj in objects.items():
            obj.load_state_dict(state[name])
        return int(state["epoch"]) + 1, list(state["history"])

    @staticmethod
    def state(epoch: int, history: list, **objects) -> dict:
        """A checkpoint: each object's state dict (tensors on the CPU), the epoch and the history."""
        def cpu(sd):
            return {k: (v.detach().cpu() if isinstance(v, torch.Tensor) else v) for k, v in sd.items()}

        out = {name: (cpu(unwrap(o).state_dict()) if isinstance(o, torch.nn.Module) else o.state_dict())
               for name, o in objects.items()}
        return {**out, "epoch": epoch, "history": history}

    def report(self, metrics: dict[str, Any], state: dict | None = None, progress: str | None = None) -> None:
        """Report ``metrics`` (every rank), save ``state`` (rank 0), show ``progress`` (rank 0)."""
        report(metrics, state)
        if progress is not None and self.rank == 0:
            from pipelines.core.console import emit

            emit(f"[{_PROGRESS_PREFIX or 'train'}] {progress}")

    def all_mean(self, value: float) -> float:
        """Mean of a float over ranks (the value itself when ``world == 1``)."""
        if self.world == 1:
            return float(value)
        import torch.distributed as dist

        t = torch.tensor([float(value)], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return float(t.item()) / self.world


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
        _report_local(metrics)
    elif state is not None and world_rank() == 0:
        with tempfile.TemporaryDirectory() as d:
            torch.save(state, os.path.join(d, CKPT_FILE))
            ray.train.report(metrics, checkpoint=Checkpoint.from_directory(d))
    else:
        ray.train.report(metrics)


def _report_local(metrics: dict[str, Any]) -> None:
    """``ray.train.report`` of an in-process (local mode) run; inside a Tune trial, where Train
    V2's local mode refuses it, the metrics go to Tune directly."""
    import ray.train
    from ray.tune.trainable.trainable_fn_utils import _in_tune_session

    try:
        ray.train.report(metrics)
    except Exception:  # noqa: BLE001
        if not _in_tune_session():
            raise
        import ray.tune

        ray.tune.report(metrics)


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
