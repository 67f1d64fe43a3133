"""Interaction partitions, the retrain watermark, and the snapshot file the pipeline reads.

A partition is one file (CSV/TSV/RecBole ``.inter`` with a header line, or Parquet) in
``partitions.dir``; names sort in time order (``000-base.inter``, ``001-2000-12.inter``...).
The watermark is the name of the last partition consumed. A snapshot concatenates every
partition up to a watermark into one file (header once), written atomically and only once,
so the same partitions always give the same bytes and the same ingest fingerprint.
"""
from __future__ import annotations

import fnmatch
import json
import os
import uuid
from pathlib import Path

from components.errors import InputError


def list_partitions(directory: str, pattern: str) -> list[Path]:
    d = Path(directory)
    if not d.is_dir():
        raise InputError("partition folder does not exist", path=str(d),
                         fix="create it or set partitions.dir in the retrain config")
    return sorted(p for p in d.iterdir() if p.is_file() and fnmatch.fnmatch(p.name, pattern))


def read_watermark(path: Path) -> dict:
    if not path.exists():
        return {"watermark": None, "partitions": []}
    return json.loads(path.read_text())


def write_json_atomic(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)


def new_partitions(parts: list[Path], watermark: str | None) -> list[Path]:
    return [p for p in parts if watermark is None or p.name > watermark]


def build_snapshot(parts: list[Path], out: Path) -> Path:
    """Concatenate ``parts`` into ``out`` (kept if it already exists). Returns ``out``."""
    if out.exists():
        return out
    if not parts:
        raise InputError("no partitions to build a snapshot from", path=str(out.parent))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex}")
    try:
        if out.suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            tables = [pq.read_table(p) for p in parts]
            for p, t in zip(parts, tables):
                if t.schema != tables[0].schema:
                    raise InputError(f"schema {t.schema} differs from {parts[0].name}'s", path=str(p),
                                     fix="write every partition with the same columns and types")
            pq.write_table(pa.concat_tables(tables), tmp)
        else:
            header = None
            with open(tmp, "wb") as w:
                for p in parts:
                    with open(p, "rb") as r:
                        first = r.readline()
                        if not first.strip():
                            raise InputError("partition is empty (no header line)", path=str(p),
                                             fix="remove the file or re-export it with a header")
                        if header is None:
                            header = first
                            w.write(first)
                        elif first.rstrip(b"\r\n") != header.rstrip(b"\r\n"):
                            raise InputError(f"header {first.decode(errors='replace').strip()!r} differs "
                                             f"from {parts[0].name}'s", path=str(p), row=1,
                                             fix="every partition needs the same header line")
                        body = r.read()
                        if body and not body.endswith(b"\n"):
                            body += b"\n"
                        w.write(body)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return out
