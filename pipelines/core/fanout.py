"""Fan-out: a stage's data-parallel work as Ray tasks over shards, one engine for every pipeline.

A stage body (in its own Ray task, or in the driver) calls :func:`fan_out` with a shard
function and a number of *units* (clips, sampling batches, users, models, ...). The units are
cut into contiguous shards of ``fanout.shard_size`` units (:func:`plan_shards`); each shard
runs as one Ray task with the resources its :class:`FanoutConfig` declares. Design points:

* **Determinism.** A shard is only a range of units. Anything random is seeded per *unit*
  (:func:`unit_seed`: a hash of the stage seed and the unit index), never per worker or per
  shard, and every unit is computed the same way in whichever shard it lands. Parts are read
  back in shard order, so a table is the same, bit for bit, for any shard size, shard count
  and node count (``tests/core/test_fanout.py``, ``tests/cluster/test_fanout_cluster.py``).
  The fan-out settings are therefore left out of the stage fingerprint
  (:func:`strip_fanout`): changing them reuses the cached output.
* **Writes go to the artifact root, not to the driver.** Shard tasks may run on any node, so
  they cannot write into a local folder of the stage's process. They write straight under
  :meth:`ArtifactWriter.staging` (a temp folder inside a local root, which on a cluster must
  be a shared filesystem; or a ``.tmp-<uuid>`` prefix of an object store). Every file is
  written whole or not at all (temp + rename, or one PUT), so a retried shard simply
  rewrites its files with the same bytes.
* **One commit.** The shards only stage files. When every shard succeeded the stage goes on
  and commits through the one commit path, :meth:`ArtifactWriter.commit` (manifest last).
  A shard that still fails after ``fanout.max_retries`` retries fails the stage: the staging
  folder is deleted and nothing appears under the final name.
* **Manifest.** Tables written by shards are listed with their parts in shard order
  (``tables.<name>.parts``); ``fanout.<name>`` lists every shard: units, node id, host,
  attempts, rows, seconds.

Without a running Ray (a notebook, a unit test) the shards run one after the other in this
process, through the same code path.
"""
from __future__ import annotations

import hashlib
import io
import os
import socket
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Sequence

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from components.errors import RecgenError
from pipelines.core.artifacts import COMPRESSION, Artifact, Store
from pipelines.core.config import StrictModel

__all__ = ["FanoutConfig", "ShardContext", "ShardWriter", "fan_out", "plan_shards", "unit_seed",
           "strip_fanout", "ShardFailed"]


class FanoutConfig(StrictModel):
    """Sharding and per-shard Ray resources of a fan-out stage (``pipelines/core/fanout.py``).

    The defaults saturate a laptop: one CPU per shard and more shards than cores, so Ray runs
    as many at once as there are CPUs; on a cluster the same shards spread over the nodes.
    None of these settings changes the output (it is the same for any shard size and node
    count), so they are not part of the stage fingerprint.
    """

    shard_size: int = Field(64, ge=1, description="units of work per shard (the stage's docstring names the unit)")
    num_cpus: float = Field(1.0, gt=0, description="CPUs reserved by each shard task (also its torch threads)")
    num_gpus: float = Field(0.0, ge=0, description="GPUs reserved by each shard task")
    memory_gb: float | None = Field(None, gt=0, description="memory reserved by each shard task (GiB), optional")
    max_retries: int = Field(2, ge=0, description="retries of a failed shard (a worker that died, or an error "
                                                  "that is not a recgen input/config error)")
    placement: Literal["nodes", "spread", "default"] = Field(
        "nodes", description="nodes: shard i goes to the alive nodes in turn, in proportion to their CPUs (soft "
                             "affinity: a busy or dead node's shards run elsewhere); spread: Ray's SPREAD; "
                             "default: Ray's default (fills the local node first)")
    max_in_flight: int | None = Field(None, ge=1, description="shards submitted at once (None: all; Ray queues them)")


def fanout_sized(shard_size: int, unit: str, **kw: Any):
    """A pydantic ``Field`` default: a :class:`FanoutConfig` with this stage's shard size."""
    return Field(default_factory=lambda: FanoutConfig(shard_size=shard_size, **kw),
                 description=f"fan-out over shards of {unit}s: shard size and per-shard Ray "
                             "resources (pipelines/core/fanout.py; not part of the fingerprint)")


def strip_fanout(section: Any, dumped: Any) -> Any:
    """``dumped`` (the JSON dump of config ``section``) without its :class:`FanoutConfig`
    fields, for the stage fingerprint: the output does not depend on them."""
    from pydantic import BaseModel

    if isinstance(section, BaseModel) and isinstance(dumped, dict):
        return {k: strip_fanout(getattr(section, k, None), v) for k, v in dumped.items()
                if not isinstance(getattr(section, k, None), FanoutConfig)}
    if isinstance(section, dict) and isinstance(dumped, dict):
        return {k: strip_fanout(section.get(k), v) for k, v in dumped.items()
                if not isinstance(section.get(k), FanoutConfig)}
    return dumped


def plan_shards(n_units: int, shard_size: int) -> list[tuple[int, int]]:
    """Contiguous ``[lo, hi)`` unit ranges of at most ``shard_size`` units (none when n_units is 0)."""
    return [(lo, min(lo + shard_size, n_units)) for lo in range(0, n_units, shard_size)]


def unit_seed(seed: int, unit: int, salt: str = "") -> int:
    """A 63-bit seed for one unit of work: the same in any shard, on any node."""
    h = hashlib.sha256(f"{int(seed)}:{salt}:{int(unit)}".encode()).digest()
    return int.from_bytes(h[:8], "little") >> 1


class ShardFailed(RuntimeError):
    """A shard failed after its retries (the message names the shard and the last error)."""


# ----------------------------------------------------------------------------- shard side
class ShardWriter:
    """Writes one shard's files under the stage's staging folder at the artifact root."""

    def __init__(self, store_uri: str, staging: str, index: int):
        self.store_uri, self.staging, self.index = store_uri, staging, index
        self._store: Store | None = None
        self.parts: dict[str, dict] = {}
        self.files: list[str] = []

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.store_uri)
        return self._store

    def write_table(self, name: str, data, schema: pa.Schema | None = None) -> pa.Table:
        """This shard's part of table ``name``: ``<name>/part-<shard>.parquet``."""
        import pandas as pd

        if name in self.parts:
            raise ValueError(f"shard {self.index} wrote table '{name}' twice")
        if isinstance(data, pd.DataFrame):
            table = pa.Table.from_pandas(data, schema=schema, preserve_index=False)
        else:
            table = data.cast(schema) if schema is not None else data
        table = table.replace_schema_metadata(None)
        buf = pa.BufferOutputStream()
        pq.write_table(table, buf, compression=COMPRESSION)
        rel = f"{name}/part-{self.index:05d}.parquet"
        self.write_bytes(rel, buf.getvalue().to_pybytes())
        self.parts[name] = {"file": rel, "rows": table.num_rows,
                            "schema": {f.name: str(f.type) for f in table.schema}}
        return table

    def write_bytes(self, rel: str, data: bytes) -> str:
        """Any other file of the stage output (``rel`` relative to it); whole or not at all."""
        self.store.write_bytes_atomic(f"{self.staging}/{rel}", data)
        self.files.append(rel)
        return rel

    def save_npy(self, rel: str, array) -> str:
        import numpy as np

        b = io.BytesIO()
        np.save(b, array)
        return self.write_bytes(rel, b.getvalue())


@dataclass
class ShardContext:
    """What a shard function sees: its unit range, its items, the stage inputs, a writer."""

    pipeline: str
    stage: str
    cfg: Any
    seed: int
    index: int
    lo: int
    hi: int
    items: Any
    store_uri: str
    inputs: dict[str, tuple[str, dict]]
    out: ShardWriter
    _artifacts: dict = field(default_factory=dict, repr=False)

    @property
    def units(self) -> range:
        return range(self.lo, self.hi)

    def input(self, name: str) -> Artifact:
        """An input artifact of the stage, read from the artifact root (no driver involved)."""
        if name not in self.inputs:
            raise KeyError(f"stage '{self.stage}' did not declare input '{name}'")
        if name not in self._artifacts:
            d, m = self.inputs[name]
            self._artifacts[name] = Artifact(self.out.store, d, m)
        return self._artifacts[name]

    def unit_seed(self, unit: int, salt: str = "") -> int:
        return unit_seed(self.seed, unit, salt)


def _node_id() -> str:
    try:
        import ray

        if ray.is_initialized():
            return ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001
        pass
    return "local"


def _run_shard(fn: Callable, sctx: ShardContext, shared: Any, num_cpus: float | None) -> dict:
    """Body of one shard task: run ``fn``, return the shard record (small; no data).
    ``num_cpus``: the task's CPUs, also its torch threads (None: in-process, left alone)."""
    os.environ.setdefault("DGLBACKEND", "pytorch")
    threads = max(1, int(num_cpus or 1))
    if num_cpus is None:
        pass
    elif "torch" in sys.modules:   # a reused worker: set torch's pool to this shard's CPUs
        sys.modules["torch"].set_num_threads(threads)
    else:                        # read when the shard function imports torch
        os.environ["OMP_NUM_THREADS"] = str(threads)
    t0 = time.perf_counter()
    stats = fn(sctx, shared) or {}
    return {"index": sctx.index, "units": [sctx.lo, sctx.hi], "node_id": _node_id(),
            "host": socket.gethostname(), "pid": os.getpid(),
            "seconds": round(time.perf_counter() - t0, 3),
            "parts": sctx.out.parts, "files": sorted(sctx.out.files), "stats": stats}


def _retryable(err: BaseException) -> bool:
    return not isinstance(err, RecgenError)


def _cause(err: BaseException) -> BaseException:
    """The user's exception inside a RayTaskError (or ``err`` itself)."""
    cause = getattr(err, "cause", None)
    return cause if isinstance(cause, BaseException) else err


# ----------------------------------------------------------------------------- driver side
@dataclass
class FanoutResult:
    """The shard records (shard order) and each shard's returned stats."""

    shards: list[dict]

    @property
    def stats(self) -> list[dict]:
        return [s["stats"] for s in self.shards]

    @property
    def nodes(self) -> list[str]:
        return sorted({s["node_id"] for s in self.shards})


def fan_out(ctx, name: str, fn: Callable[[ShardContext, Any], dict | None], n_units: int,
            cfg: FanoutConfig, *, items: Sequence | None = None, shared: Any = None,
            seed: int | None = None, local: bool = False) -> FanoutResult:
    """Run ``fn(shard_ctx, shared)`` over the shards of ``n_units`` units and register what
    the shards wrote with ``ctx.out`` (tables as parts, other files, the shard records).

    ``fn`` must be a module-level function (it is shipped to the workers). It writes through
    ``shard_ctx.out`` and returns a small JSON-able dict of stats. ``items[lo:hi]`` (a list,
    array or DataFrame slice) is passed to the shard as ``shard_ctx.items``; ``shared`` goes
    to every shard once through Ray's object store. Seeds: ``shard_ctx.unit_seed(u)``.
    ``local``: run the shards in this process (inputs only this node can read).

    Raises the shard's own :class:`RecgenError` at once (bad input is not retried), or
    :class:`ShardFailed` when a shard still fails after ``cfg.max_retries`` retries.
    """
    if items is not None and len(items) != n_units:
        raise ValueError(f"fan_out {name}: {len(items)} items for {n_units} units")
    ranges = plan_shards(n_units, cfg.shard_size)
    writer = ctx.out
    staging = writer.staging()
    store_uri = writer.store.uri
    inputs = {k: (a.dir, a.manifest) for k, a in ctx.inputs.items()}
    seed = ctx.seed if seed is None else seed

    def sctx_of(i: int) -> ShardContext:
        lo, hi = ranges[i]
        it = None
        if items is not None:
            it = items.iloc[lo:hi] if hasattr(items, "iloc") else items[lo:hi]
        return ShardContext(ctx.pipeline, ctx.stage, ctx.cfg, seed, i, lo, hi, it, store_uri, inputs,
                            ShardWriter(store_uri, staging, i))

    t0 = time.perf_counter()
    records = _run_ray(fn, sctx_of, len(ranges), shared, cfg, name) if _ray_on() and not local else \
        _run_inline(fn, sctx_of, len(ranges), shared, cfg, name)
    secs = time.perf_counter() - t0
    records.sort(key=lambda r: r["index"])
    tables: dict[str, list[dict]] = {}
    for r in records:
        for t, part in r["parts"].items():
            tables.setdefault(t, []).append(part)
    for t, parts in tables.items():
        writer.add_parts(t, parts)
    nodes = sorted({r["node_id"] for r in records})
    writer.add_fanout(name, {
        "units": n_units, "shard_size": cfg.shard_size, "num_shards": len(records),
        "nodes": nodes, "seconds": round(secs, 3),
        "resources": {"num_cpus": cfg.num_cpus, "num_gpus": cfg.num_gpus, "memory_gb": cfg.memory_gb},
        "shards": [{k: r[k] for k in ("index", "units", "node_id", "host", "attempts", "seconds")}
                   | {"rows": {t: p["rows"] for t, p in r["parts"].items()}, "files": len(r["files"])}
                   for r in records]})
    if hasattr(ctx, "log") and records:
        retried = sum(r["attempts"] - 1 for r in records)
        ctx.log("%s: %d units in %d shards on %d node(s), %d retried, %.1fs", name, n_units,
                len(records), len(nodes), retried, secs)
    return FanoutResult(records)


def _ray_on() -> bool:
    try:
        import ray

        return ray.is_initialized()
    except ImportError:  # pragma: no cover
        return False


def _run_inline(fn, sctx_of, n: int, shared, cfg: FanoutConfig, name: str) -> list[dict]:
    out = []
    for i in range(n):
        for attempt in range(1, cfg.max_retries + 2):
            try:
                rec = _run_shard(fn, sctx_of(i), shared, None)
                break
            except Exception as e:  # noqa: BLE001
                if not _retryable(e) or attempt > cfg.max_retries:
                    if not _retryable(e):
                        raise
                    raise ShardFailed(f"{name}: shard {i} failed {attempt} time(s): {e!r}") from e
        rec["attempts"] = attempt
        out.append(rec)
    return out


def _node_slots(cfg: FanoutConfig) -> list[str]:
    """Alive node ids, each repeated once per shard it can run at a time (CPUs / num_cpus,
    GPUs / num_gpus), interleaved: ``[a, b, a]`` for a 2-CPU node a and a 1-CPU node b. One
    node (or none that fits): [] (Ray's default placement)."""
    import ray

    per_node = []
    for n in sorted(ray.nodes(), key=lambda n: n["NodeID"]):
        res = n.get("Resources", {})
        if not n.get("Alive"):
            continue
        k = int(res.get("CPU", 0) // cfg.num_cpus) if cfg.num_cpus else 1
        if cfg.num_gpus:
            k = min(k, int(res.get("GPU", 0) // cfg.num_gpus))
        if k > 0:
            per_node.append((n["NodeID"], k))
    if len(per_node) < 2:
        return []
    return [node for r in range(max(k for _, k in per_node)) for node, k in per_node if r < k]


def _run_ray(fn, sctx_of, n: int, shared, cfg: FanoutConfig, name: str) -> list[dict]:
    import ray

    opts: dict[str, Any] = {"num_cpus": cfg.num_cpus, "num_gpus": cfg.num_gpus,
                            "max_retries": cfg.max_retries,   # a worker process or node that died
                            "retry_exceptions": False,          # errors: retried here, counted
                            "name": name}
    if cfg.memory_gb:
        opts["memory"] = int(cfg.memory_gb * 2**30)
    if cfg.placement == "spread":
        opts["scheduling_strategy"] = "SPREAD"
    slots = _node_slots(cfg) if cfg.placement == "nodes" else []
    base = ray.remote(_run_shard)
    shared_ref = ray.put(shared)
    limit = cfg.max_in_flight or n
    pending = list(range(n))
    attempts = [0] * n
    running: dict[Any, int] = {}
    out: list[dict] = []

    def submit(i: int) -> None:
        attempts[i] += 1
        o = dict(opts)
        if slots:   # retries go to the next node in turn
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            node = slots[(i + attempts[i] - 1) % len(slots)]
            o["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node, soft=True, _spill_on_unavailable=True)
        running[base.options(**o).remote(fn, sctx_of(i), shared_ref, cfg.num_cpus)] = i

    try:
        while pending or running:
            while pending and len(running) < limit:
                submit(pending.pop(0))
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                i = running.pop(ref)
                try:
                    rec = ray.get(ref)
                except Exception as e:  # noqa: BLE001 - RayTaskError, WorkerCrashedError, ...
                    real = _cause(e)
                    if not _retryable(real):
                        raise real from None
                    if attempts[i] > cfg.max_retries:
                        tb = "".join(traceback.format_exception_only(type(real), real)).strip()
                        raise ShardFailed(f"{name}: shard {i} failed {attempts[i]} time(s); last error: "
                                          f"{tb}") from None
                    submit(i)
                    continue
                rec["attempts"] = attempts[i]
                out.append(rec)
    finally:
        # A failed fan-out: stop the rest, and wait until they have stopped, so that none of
        # them writes into the staging folder after the writer's abort has deleted it.
        for ref in running:
            ray.cancel(ref, force=False)
        if running:
            ray.wait(list(running), num_returns=len(running), timeout=60)
    return out
