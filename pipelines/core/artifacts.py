"""The artifact store: Parquet outputs of stages, written atomically, with manifests.

Layout: ``<root>/<pipeline>/<stage>/<fingerprint>/`` with the stage's Parquet tables (zstd),
any other files, and ``_manifest.json`` written last. Roots are URIs resolved by
:mod:`pyarrow.fs` (local paths, ``file://``, ``s3://``, ``gs://``); an S3-compatible server
other than AWS is named the standard way, ``AWS_ENDPOINT_URL=http://host:port`` (read by
pyarrow >= 13, so also by Ray Train's checkpoint storage), with credentials from the usual
``AWS_*`` variables or files.

**The manifest is the commit point** (:meth:`ArtifactWriter.commit`, one path for every
filesystem): a stage writes into a unique temp folder (local roots:
``<root>/<pipeline>/<stage>/.tmp-<uuid>`` on the same filesystem; remote roots: a local temp
dir), the files are then published under the final prefix (local: one directory rename;
object stores: the objects are uploaded under the final prefix) and ``_manifest.json`` is
written last (a rename locally, a single PUT on object stores; both atomic). Readers, cache
checks and ``recgen artifacts`` treat a prefix without a manifest as absent; a re-commit
deletes the old manifest before anything else. Leftovers of killed writers (``.tmp-*``
entries, prefixes without a manifest) are deleted when the stage next runs, once nothing in
them changed for :data:`STALE_TEMP_S` seconds (:meth:`Store.clean_stale`).
"""
from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from components.errors import InputError

MANIFEST = "_manifest.json"
COMPRESSION = "zstd"
TMP_MARK = ".tmp-"
# A temp entry or manifest-less output folder in which nothing changed for this long is a
# leftover of a killed writer (a live one is uploading, or its stage is still running).
STALE_TEMP_S = 24 * 3600


def is_remote(uri: str | os.PathLike) -> bool:
    """A URI with a scheme other than ``file://`` (``s3://``, ``gs://``, ...)."""
    uri = str(uri)
    return "://" in uri and not uri.startswith("file://")


def fingerprint_of(obj: Any) -> str:
    """Stable sha256 of a JSON-able object."""
    blob = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def file_fingerprint(path: str | Path, chunk: int = 1 << 22) -> str:
    """sha256 of a file's bytes (used for raw input files of ingest stages)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


class Store:
    """An artifact root. ``Store("artifacts")``, ``Store("s3://bucket/recgen")``."""

    def __init__(self, uri: str | os.PathLike):
        uri = str(uri)
        self.uri = uri
        if is_remote(uri):
            self.fs, self.base = pafs.FileSystem.from_uri(uri)
            self.local = False
        else:
            path = uri[len("file://"):] if uri.startswith("file://") else uri
            self.base = str(Path(path).expanduser().resolve())
            self.fs = pafs.LocalFileSystem()
            self.local = True

    # -- paths -----------------------------------------------------------------------
    def join(self, *parts: str) -> str:
        return "/".join([self.base.rstrip("/"), *parts])

    def stage_dir(self, pipeline: str, stage: str, fp: str) -> str:
        return self.join(pipeline, stage, fp[:16])

    def scratch_dir(self, pipeline: str, stage: str, fp: str) -> str:
        """Persistent scratch (checkpoints): a local path for local roots, a URI (with its
        scheme, usable as Ray Train ``storage_path``) for remote roots."""
        path = self.join("_scratch", pipeline, stage, fp[:16])
        return path if self.local else f"{self.uri.split('://', 1)[0]}://{path}"

    def clear_scratch(self, pipeline: str, stage: str, fp: str) -> None:
        """Forget checkpoints of a stage (``--force`` must retrain, not resume)."""
        path = self.join("_scratch", pipeline, stage, fp[:16])
        if self.exists(path):
            self.fs.delete_dir(path)

    def exists(self, path: str) -> bool:
        return self.fs.get_file_info(path).type != pafs.FileType.NotFound

    def check_writable(self) -> None:
        """Fail early, naming the root, when it cannot be written."""
        try:
            if self.local:  # object stores have no folders (create_dir would add marker objects)
                self.fs.create_dir(self.base, recursive=True)
            probe = self.join(f".probe-{uuid.uuid4().hex}")
            with self.fs.open_output_stream(probe) as f:
                f.write(b"ok")
            self.fs.delete_file(probe)
        except Exception as e:  # pyarrow raises OSError subclasses with terse texts
            raise InputError(f"artifact root is not writable ({e})", path=self.uri,
                             fix="pass a writable directory or bucket with --artifacts") from None

    # -- reading ---------------------------------------------------------------------
    def read_json(self, path: str) -> Any:
        with self.fs.open_input_stream(path) as f:
            return json.loads(f.read().decode())

    def write_json_atomic(self, path: str, obj: Any) -> None:
        """Write a JSON file so that readers see the old version or the new one, never a part:
        a temp file + rename locally; one PUT on object stores (atomic there, while a "move"
        is a copy + delete)."""
        self.write_bytes_atomic(path, json.dumps(obj, indent=2, sort_keys=False, default=str).encode())

    def write_bytes_atomic(self, path: str, data: bytes) -> None:
        """Write a file so that it exists whole or not at all: a temp file + rename locally, a
        single PUT on object stores (an interrupted upload leaves no object)."""
        if not self.local:
            with self.fs.open_output_stream(path) as f:
                f.write(data)
            return
        parent = path.rsplit("/", 1)[0]
        self.fs.create_dir(parent, recursive=True)
        tmp = f"{path}{TMP_MARK}{uuid.uuid4().hex}"
        with self.fs.open_output_stream(tmp) as f:
            f.write(data)
        self.fs.move(tmp, path)

    def remove_output(self, path: str) -> None:
        """Delete a stage output folder: the manifest first (the output is then absent for
        every reader), then the rest."""
        m = f"{path}/{MANIFEST}"
        if self.exists(m):
            self.fs.delete_file(m)
        if self.exists(path):
            self.fs.delete_dir(path)

    def _newest_mtime_ns(self, info: pafs.FileInfo) -> int | None:
        times = [info.mtime_ns] if info.mtime_ns else []
        if info.type == pafs.FileType.Directory:
            sel = pafs.FileSelector(info.path, recursive=True, allow_not_found=True)
            times += [i.mtime_ns for i in self.fs.get_file_info(sel) if i.mtime_ns]
        return max(times) if times else None

    def clean_stale(self, pipeline: str, stage: str, max_age_s: float | None = None) -> list[str]:
        """Delete what killed writers left under ``<root>/<pipeline>/<stage>/``: temp entries
        (``.tmp-*``, ``*.tmp-*``) and output folders without a manifest, in which nothing
        changed for ``max_age_s`` seconds (default :data:`STALE_TEMP_S`). Returns the deleted paths. Best effort (a failure
        to clean never fails a stage)."""
        gone: list[str] = []
        max_age_s = STALE_TEMP_S if max_age_s is None else max_age_s
        try:
            sel = pafs.FileSelector(self.join(pipeline, stage), allow_not_found=True)
            infos = self.fs.get_file_info(sel)
        except OSError:
            return gone
        now_ns = time.time_ns()
        for info in infos:
            try:
                if TMP_MARK not in info.base_name:
                    if info.type != pafs.FileType.Directory or self.exists(f"{info.path}/{MANIFEST}"):
                        continue
                newest = self._newest_mtime_ns(info)
                if newest is None or now_ns - newest < max_age_s * 1e9:
                    continue
                if info.type == pafs.FileType.Directory:
                    self.fs.delete_dir(info.path)
                else:
                    self.fs.delete_file(info.path)
                gone.append(info.path)
            except OSError:
                continue
        return gone

    def manifest(self, pipeline: str, stage: str, fp: str) -> dict | None:
        path = self.stage_dir(pipeline, stage, fp) + "/" + MANIFEST
        if not self.exists(path):
            return None
        try:
            m = self.read_json(path)
        except Exception:
            return None
        return m if m.get("fingerprint") == fp else None

    def artifact(self, pipeline: str, stage: str, fp: str) -> "Artifact":
        m = self.manifest(pipeline, stage, fp)
        if m is None:
            raise InputError(f"no finished artifact for stage '{stage}' ({fp[:16]})",
                             path=self.stage_dir(pipeline, stage, fp),
                             fix=f"run `recgen run {pipeline} --until {stage}` first")
        return Artifact(self, self.stage_dir(pipeline, stage, fp), m)

    def list_stage_outputs(self, pipeline: str) -> list[dict]:
        """Every finished stage output under the root for a pipeline (manifests)."""
        out = []
        root = self.join(pipeline)
        if not self.exists(root):
            return out
        sel = pafs.FileSelector(root, recursive=True)
        for info in self.fs.get_file_info(sel):
            parts = info.path[len(root) + 1:].split("/")
            # only <stage>/<fingerprint>/_manifest.json (never one inside a temp entry)
            if len(parts) != 3 or parts[2] != MANIFEST or TMP_MARK in info.path:
                continue
            try:
                m = self.read_json(info.path)
            except Exception:
                continue
            if isinstance(m, dict) and str(m.get("fingerprint", "")).startswith(parts[1]):
                out.append(m)
        return out

    def writer(self, pipeline: str, stage: str, fp: str) -> "ArtifactWriter":
        return ArtifactWriter(self, pipeline, stage, fp)


@dataclass
class Artifact:
    """A finished stage output: read tables and files."""

    store: Store
    dir: str
    manifest: dict
    _local_cache: dict = field(default_factory=dict, repr=False)

    @property
    def fingerprint(self) -> str:
        return self.manifest["fingerprint"]

    @property
    def tables(self) -> list[str]:
        return sorted(self.manifest.get("tables", {}))

    def _table_paths(self, name: str) -> list[str]:
        """The Parquet file(s) of a table: ``<name>.parquet``, or the parts a fan-out wrote
        (``<name>/part-NNNNN.parquet``, in shard order; :mod:`pipelines.core.fanout`)."""
        meta = self.manifest.get("tables", {}).get(name)
        if meta is None:
            raise InputError(f"stage '{self.manifest.get('stage')}' has no table '{name}' "
                             f"(tables: {', '.join(self.tables) or 'none'})", path=self.dir)
        if "parts" in meta:
            return [f"{self.dir}/{p}" for p in meta["parts"]]
        return [f"{self.dir}/{name}.parquet"]

    def table(self, name: str, columns: list[str] | None = None) -> pa.Table:
        """The whole table (a sharded table: its parts concatenated in shard order)."""
        paths = self._table_paths(name)
        if len(paths) == 1:
            return pq.read_table(paths[0], columns=columns, filesystem=self.store.fs)
        return pa.concat_tables(self.iter_parts(name, columns))

    def iter_parts(self, name: str, columns: list[str] | None = None):
        """The table one Parquet file at a time (shard order): memory bounded by a part."""
        for p in self._table_paths(name):
            yield pq.read_table(p, columns=columns, filesystem=self.store.fs)

    def df(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        return self.table(name, columns).to_pandas()

    def json(self, name: str) -> Any:
        return self.store.read_json(f"{self.dir}/{name}.json")

    def path(self, fname: str) -> str:
        """A local filesystem path of a file of this artifact (downloaded if remote)."""
        src = f"{self.dir}/{fname}"
        if self.store.local:
            if not os.path.exists(src):
                raise InputError(f"artifact file '{fname}' is missing", path=self.dir)
            return src
        if fname not in self._local_cache:
            d = tempfile.mkdtemp(prefix="recgen-art-")
            dst = os.path.join(d, os.path.basename(fname))
            pafs.copy_files(src, dst, source_filesystem=self.store.fs,
                            destination_filesystem=pafs.LocalFileSystem())
            self._local_cache[fname] = dst
        return self._local_cache[fname]


class ArtifactWriter:
    """Collects one stage's outputs in a unique temp folder; :meth:`commit` publishes them.

    Local roots stage inside ``<root>/<pipeline>/<stage>/.tmp-<uuid>`` (same filesystem,
    so publishing is one rename); remote roots stage in a local temp dir and upload. Creating
    a writer first deletes stale leftovers of the stage (:meth:`Store.clean_stale`).
    """

    def __init__(self, store: Store, pipeline: str, stage: str, fp: str):
        self.store, self.pipeline, self.stage, self.fp = store, pipeline, stage, fp
        self.final = store.stage_dir(pipeline, stage, fp)
        store.clean_stale(pipeline, stage)
        if store.local:
            parent = Path(self.final).parent
            parent.mkdir(parents=True, exist_ok=True)
            self.tmp = str(parent / f"{TMP_MARK}{uuid.uuid4().hex}")
            os.makedirs(self.tmp)
        else:
            self.tmp = tempfile.mkdtemp(prefix="recgen-stage-")
        self._tables: dict[str, dict] = {}
        self._stats: dict[str, Any] = {}
        self._fanout: dict[str, Any] = {}
        self._staging: str | None = None   # remote roots: the shard staging prefix, once asked for
        self.committed = False

    def staging(self) -> str:
        """Where shard tasks (:mod:`pipelines.core.fanout`) write, a path on the artifact root's
        filesystem that every node reaches: for a local root the temp folder itself (inside
        the root: a shared filesystem on a cluster); for an object store a prefix
        ``<root>/<pipeline>/<stage>/.tmp-<uuid>`` whose objects :meth:`commit` copies under the
        final prefix (server-side) and :meth:`abort` deletes."""
        if self.store.local:
            return self.tmp
        if self._staging is None:
            self._staging = self.store.join(self.pipeline, self.stage, f"{TMP_MARK}{uuid.uuid4().hex}")
        return self._staging

    def add_parts(self, name: str, parts: list[dict]) -> None:
        """Register a table written as parts under :meth:`staging` (``[{"file", "rows",
        "schema"}]`` in shard order). Every part must have the same schema."""
        if name in self._tables:
            raise ValueError(f"table '{name}' written twice in stage '{self.stage}'")
        schemas = {json.dumps(p["schema"], sort_keys=False) for p in parts if p["rows"]} or \
            {json.dumps(parts[0]["schema"]) if parts else "{}"}
        if len(schemas) > 1:
            raise ValueError(f"stage '{self.stage}': the shards of table '{name}' have different "
                             f"schemas: {sorted(schemas)}")
        schema = json.loads(next(iter(schemas)))
        self._tables[name] = {"rows": int(sum(p["rows"] for p in parts)), "schema": schema,
                              "parts": [p["file"] for p in parts]}

    def merge_parts(self, name: str) -> None:
        """Turn the parts of table ``name`` into one ``<name>.parquet`` (for readers that open
        the file itself), streaming one part at a time (memory: one part)."""
        meta = self._tables.pop(name)
        staging = self.staging()
        dest = self.path(f"{name}.parquet")
        writer = None
        try:
            for rel in meta["parts"]:
                t = pq.read_table(f"{staging}/{rel}", filesystem=self.store.fs)
                if writer is None:
                    writer = pq.ParquetWriter(dest, t.schema, compression=COMPRESSION)
                writer.write_table(t)
        finally:
            if writer is not None:
                writer.close()
        for rel in meta["parts"]:
            self.store.fs.delete_file(f"{staging}/{rel}")
        if self.store.local and os.path.isdir(f"{staging}/{name}") and not os.listdir(f"{staging}/{name}"):
            os.rmdir(f"{staging}/{name}")
        self._tables[name] = {"rows": meta["rows"], "schema": meta["schema"]}

    def add_fanout(self, name: str, record: dict) -> None:
        """The shard records of one fan-out (index, units, node id, attempts, files): they go
        into the manifest under ``fanout.<name>``."""
        self._fanout[name] = record

    def path(self, fname: str) -> str:
        """Local path to write an arbitrary file (PNG, .pt, .md) into this artifact."""
        p = os.path.join(self.tmp, fname)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    def write_table(self, name: str, data: pd.DataFrame | pa.Table,
                    schema: pa.Schema | None = None) -> pa.Table:
        if isinstance(data, pd.DataFrame):
            table = pa.Table.from_pandas(data, schema=schema, preserve_index=False)
        else:
            table = data.cast(schema) if schema is not None else data
        pq.write_table(table, self.path(f"{name}.parquet"), compression=COMPRESSION)
        self._tables[name] = {"rows": table.num_rows,
                              "schema": {f.name: str(f.type) for f in table.schema}}
        return table

    def write_json(self, name: str, obj: Any) -> None:
        with open(self.path(f"{name}.json"), "w") as f:
            json.dump(obj, f, indent=2, default=str)

    def stats(self, **kv: Any) -> None:
        self._stats.update(kv)

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self._staging is not None:
            try:
                if self.store.exists(self._staging):
                    self.store.fs.delete_dir(self._staging)
            except OSError:
                pass   # a leftover .tmp-* prefix is cleaned by the next run (clean_stale)

    def commit(self, manifest: dict) -> dict:
        """Publish, on every filesystem the same way: (1) delete what is at the final name (a
        forced redo, or a leftover without manifest), manifest first; (2) put the files under
        the final name (local: rename the temp folder; object stores: upload the objects);
        (3) write the manifest, last: the commit point."""
        files = _list_files(self.tmp, pafs.LocalFileSystem())
        staged = []
        if self._staging is not None and self.store.exists(self._staging):
            staged = _list_files(self._staging, self.store.fs)
        files = sorted(set(files) | set(staged))
        self.store.remove_output(self.final)
        if self.store.local:
            os.rename(self.tmp, self.final)
        else:
            _upload_dir(self.tmp, self.final, self.store.fs)
            for rel in staged:   # shards written straight to the object store: server-side copies
                self.store.fs.copy_file(f"{self._staging}/{rel}", f"{self.final}/{rel}")
            shutil.rmtree(self.tmp, ignore_errors=True)
            if self._staging is not None and self.store.exists(self._staging):
                self.store.fs.delete_dir(self._staging)
        manifest = dict(manifest)
        manifest["tables"] = self._tables
        manifest["stats"] = self._stats
        manifest["files"] = files
        if self._fanout:
            manifest["fanout"] = self._fanout
        manifest["committed_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.store.write_json_atomic(f"{self.final}/{MANIFEST}", manifest)
        self.committed = True
        return manifest


def _list_files(root: str, fs: pafs.FileSystem) -> list[str]:
    infos = fs.get_file_info(pafs.FileSelector(root, recursive=True))
    return [i.path[len(root) + 1:] for i in infos if i.type == pafs.FileType.File]


def _upload_dir(local_dir: str, dest: str, fs: pafs.FileSystem) -> None:
    """Every file under ``local_dir`` as an object under ``dest`` (one PUT each)."""
    pafs.copy_files(local_dir, dest, source_filesystem=pafs.LocalFileSystem(),
                    destination_filesystem=fs)


# --- local mirrors of remote scratch folders (checkpoints of in-process training) -------------
_MIRRORS: dict[str, tuple[pafs.FileSystem, str]] = {}


def local_scratch(uri: str) -> str:
    """A local directory for the scratch folder ``uri`` (``Store.scratch_dir`` + a name).

    A local path (or ``file://``) is returned as it is. For a remote URI (``s3://...``): a
    fresh local temp dir holding a copy of what the folder already has (so a rerun resumes
    from its checkpoint); :func:`push_scratch` uploads files back. The temp dir is removed when
    the process exits. Code that writes checkpoints with ``open``/``torch.save`` uses this
    instead of building a local path from the URI.
    """
    uri = str(uri)
    if not is_remote(uri):
        return uri[len("file://"):] if uri.startswith("file://") else uri
    fs, path = pafs.FileSystem.from_uri(uri)
    local = tempfile.mkdtemp(prefix="recgen-scratch-")
    atexit.register(shutil.rmtree, local, True)
    if fs.get_file_info(path).type == pafs.FileType.Directory:
        pafs.copy_files(path, local, source_filesystem=fs,
                        destination_filesystem=pafs.LocalFileSystem())
    _MIRRORS[local] = (fs, path)
    return local


def push_scratch(local_dir: str, *names: str) -> None:
    """Upload files of a :func:`local_scratch` mirror (``names`` relative to it; all files
    when none) to its remote folder. A no-op for a local scratch folder."""
    mirror = _MIRRORS.get(local_dir)
    if mirror is None:
        return
    fs, path = mirror
    lfs = pafs.LocalFileSystem()
    for name in names or _list_files(local_dir, lfs):
        pafs.copy_files(os.path.join(local_dir, name), f"{path}/{name}",
                        source_filesystem=lfs, destination_filesystem=fs)
