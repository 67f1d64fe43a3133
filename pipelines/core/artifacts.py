"""The artifact store: Parquet outputs of stages, written atomically, with manifests.

Layout: ``<root>/<pipeline>/<stage>/<fingerprint>/`` with the stage's Parquet tables (zstd),
any other files, and ``_manifest.json`` written last. A folder without a manifest is never
read. Roots are URIs resolved by :mod:`pyarrow.fs` (local paths, ``file://``, ``s3://``,
``gs://``).
"""
from __future__ import annotations

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
        if "://" in uri and not uri.startswith("file://"):
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
        data = json.dumps(obj, indent=2, sort_keys=False, default=str).encode()
        parent = path.rsplit("/", 1)[0]
        self.fs.create_dir(parent, recursive=True)
        tmp = f"{path}.tmp-{uuid.uuid4().hex}"
        with self.fs.open_output_stream(tmp) as f:
            f.write(data)
        self.fs.move(tmp, path)

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
            if info.base_name == MANIFEST and "/.tmp-" not in info.path:
                try:
                    out.append(self.read_json(info.path))
                except Exception:
                    continue
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

    def _table_path(self, name: str) -> str:
        if name not in self.manifest.get("tables", {}):
            raise InputError(f"stage '{self.manifest.get('stage')}' has no table '{name}' "
                             f"(tables: {', '.join(self.tables) or 'none'})", path=self.dir)
        return f"{self.dir}/{name}.parquet"

    def table(self, name: str, columns: list[str] | None = None) -> pa.Table:
        return pq.read_table(self._table_path(name), columns=columns, filesystem=self.store.fs)

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
    """Collects one stage's outputs in a temp folder; :meth:`commit` publishes them.

    Local roots stage inside ``<root>/<pipeline>/<stage>/.tmp-<uuid>`` (same filesystem,
    so the final rename is atomic); remote roots stage in a local temp dir and upload.
    """

    def __init__(self, store: Store, pipeline: str, stage: str, fp: str):
        self.store, self.pipeline, self.stage, self.fp = store, pipeline, stage, fp
        self.final = store.stage_dir(pipeline, stage, fp)
        if store.local:
            parent = Path(self.final).parent
            parent.mkdir(parents=True, exist_ok=True)
            self.tmp = str(parent / f".tmp-{uuid.uuid4().hex}")
            os.makedirs(self.tmp)
        else:
            self.tmp = tempfile.mkdtemp(prefix="recgen-stage-")
        self._tables: dict[str, dict] = {}
        self._stats: dict[str, Any] = {}
        self.committed = False

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

    def commit(self, manifest: dict) -> dict:
        """Publish: move the temp folder to its final name, then write the manifest."""
        fs = self.store.fs
        if self.store.exists(self.final):  # a leftover without manifest (killed run) or a forced redo
            fs.delete_dir(self.final)
        if self.store.local:
            os.rename(self.tmp, self.final)
        else:
            staging = f"{self.final}.tmp-{uuid.uuid4().hex}"
            pafs.copy_files(self.tmp, staging, source_filesystem=pafs.LocalFileSystem(),
                            destination_filesystem=fs)
            fs.move(staging, self.final)
            shutil.rmtree(self.tmp, ignore_errors=True)
        manifest = dict(manifest)
        manifest["tables"] = self._tables
        manifest["stats"] = self._stats
        manifest["files"] = sorted(_list_files(self.final, fs))
        manifest["committed_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.store.write_json_atomic(f"{self.final}/{MANIFEST}", manifest)
        self.committed = True
        return manifest


def _list_files(root: str, fs: pafs.FileSystem) -> list[str]:
    infos = fs.get_file_info(pafs.FileSelector(root, recursive=True))
    return [i.path[len(root) + 1:] for i in infos if i.type == pafs.FileType.File]
