"""Readers: CSV/TSV, JSON Lines (Amazon reviews), Parquet and RecBole atomic files.

Each reader returns a :class:`ReadResult`: the rows that parsed, renamed to canonical names
(``user``, ``item``, ``rating`` float64, ``ts`` int64, plus ``domain`` / ``category`` as strings
when mapped), and a *rejects* table (``file``, ``line``, ``reason``, ``raw``) for the rows that did
not. Row-level problems (wrong field count, empty id, non-numeric rating or timestamp, a
negative or fractional timestamp — ``ts`` is whole seconds since the Unix epoch —, invalid
JSON) become rejects; file-level problems (missing file or column, unreadable or empty file)
raise :class:`~components.errors.InputError` at once, naming the file and what is wrong.

Fast path / slow path: text files are first read by the multi-threaded Arrow parser with typed
columns. Only if that meets a malformed row does the reader re-read the file serially with
string columns, which gives exact line numbers and per-row reasons. Well-formed files never pay
for the slow path.

``columns`` maps canonical names to the input's names, e.g. ``{"user": "reviewerID"}``; a value of
``None`` marks an optional column as absent (``rating: None`` for implicit data). Keys not given
fall back to the format's defaults (:data:`DEFAULT_COLUMNS`).
"""
from __future__ import annotations

import csv
import gzip
import json
import os
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from components.data.schema import REJECTS_SCHEMA
from components.errors import InputError

REQUIRED = ("user", "item", "ts")
OPTIONAL = ("rating", "domain", "category")
CANONICAL = REQUIRED + OPTIONAL

DEFAULT_COLUMNS: dict[str, dict[str, str | None]] = {
    "csv": {"user": "user", "item": "item", "rating": "rating", "ts": "ts", "domain": "domain", "category": None},
    "jsonl": {"user": "reviewerID", "item": "asin", "rating": "overall", "ts": "unixReviewTime",
              "domain": None, "category": None},
    "parquet": {"user": "user", "item": "item", "rating": "rating", "ts": "ts", "domain": "domain",
                "category": None},
    "recbole": {"user": "user_id", "item": "item_id", "rating": "rating", "ts": "timestamp",
                "domain": None, "category": None},
}
DEFAULT_COLUMNS["tsv"] = DEFAULT_COLUMNS["csv"]

FORMATS = ("csv", "tsv", "jsonl", "parquet", "recbole")


@dataclass
class ReadResult:
    """Rows read from one file.

    ``table``: canonical columns (``user``, ``item``, ``rating``, ``ts`` and any mapped
    ``domain``/``category``) of the rows that parsed, in file order. ``rejects``: one row per
    bad input row. ``n_rows``: data rows seen (parsed + rejected; blank lines not counted).
    """

    path: str
    table: pa.Table
    rejects: pa.Table

    @property
    def n_rows(self) -> int:
        return self.table.num_rows + self.rejects.num_rows


# ----------------------------------------------------------------------------- helpers

def detect_format(path: str) -> str:
    """The format implied by a file name (``.csv``, ``.tsv``/``.txt``, ``.jsonl``/``.json``,
    ``.parquet``/``.pq``, ``.inter``), ignoring a trailing ``.gz``/``.bz2``/``.zst``."""
    name = os.path.basename(str(path)).lower()
    for comp in (".gz", ".bz2", ".zst"):
        if name.endswith(comp):
            name = name[: -len(comp)]
    ext = os.path.splitext(name)[1]
    table = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".jsonl": "jsonl", ".json": "jsonl",
             ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet", ".inter": "recbole"}
    if ext not in table:
        raise InputError(f"cannot tell the format from the extension '{ext}'", path=str(path),
                         param="fmt", fix=f"pass fmt= one of {FORMATS}")
    return table[ext]


def resolve_columns(fmt: str, columns: Mapping[str, str | None] | None) -> dict[str, str | None]:
    """The canonical -> input column map for ``fmt``, with ``columns`` overriding the defaults."""
    out = dict(DEFAULT_COLUMNS[fmt])
    for k, v in (columns or {}).items():
        if k not in CANONICAL:
            raise InputError(f"unknown canonical column '{k}' in the column map; use {CANONICAL}",
                             field=k)
        out[k] = v
    for k in REQUIRED:
        if not out.get(k):
            raise InputError(f"the column map must name an input column for '{k}'", field=k)
    return out


def _check_file(path: str) -> None:
    if not os.path.exists(path):
        raise InputError("file not found", path=path, param="path",
                         fix="check path (relative paths are resolved against the current directory)")
    if not os.path.isfile(path):
        raise InputError("not a regular file", path=path)
    if not os.access(path, os.R_OK):
        raise InputError("file is not readable (permission denied)", path=path)
    if os.path.getsize(path) == 0:
        raise InputError("empty input: the file has no bytes", path=path)


def _open_text(path: str):
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="")
    return open(path, encoding="utf-8", errors="replace", newline="")


def _fetch_lines(path: str, wanted: np.ndarray) -> dict[int, str]:
    """Raw text of the given 1-based physical lines (a Python scan; only used for rejects)."""
    want = set(int(x) for x in wanted)
    out: dict[int, str] = {}
    if not want:
        return out
    last = max(want)
    with _open_text(path) as f:
        for n, line in enumerate(f, start=1):
            if n in want:
                out[n] = line.rstrip("\r\n")
            if n >= last:
                break
    return out


def _rejects(path: str, lines, reasons, raws) -> pa.Table:
    n = len(lines)
    return pa.table({"file": pa.array([path] * n, pa.string()), "line": pa.array(lines, pa.int64()),
                     "reason": pa.array(reasons, pa.string()), "raw": pa.array(raws, pa.string())},
                    schema=REJECTS_SCHEMA)


def _parse_float(col: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """Parse a column to float64. Returns (values, is_missing, is_bad) where ``is_bad`` marks
    present but non-numeric (or infinite) values. Numeric columns pass straight through."""
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_timestamp(col.type):
        col = pc.cast(pc.cast(col, pa.timestamp("s")), pa.int64())
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        col = pc.utf8_trim_whitespace(col)
        missing = pc.fill_null(pc.equal(col, ""), True).to_numpy(zero_copy_only=False)
        col = pc.if_else(pa.array(missing), pa.scalar(None, col.type), col)
        try:
            vals = pc.cast(col, pa.float64())
            bad = np.zeros(len(col), dtype=bool)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            parsed = pd.to_numeric(pd.Series(col.to_numpy(zero_copy_only=False)), errors="coerce")
            bad = (parsed.isna().to_numpy() & ~missing)
            vals = pa.array(parsed.to_numpy(dtype=np.float64, na_value=np.nan), pa.float64(),
                            mask=parsed.isna().to_numpy())
    elif pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_boolean(col.type):
        vals = pc.cast(col, pa.float64())
        missing = col.is_null().to_numpy(zero_copy_only=False)
        bad = np.zeros(len(col), dtype=bool)
    else:
        raise InputError(f"column of type {col.type} cannot be read as a number")
    arr = vals.to_numpy(zero_copy_only=False)
    nonfinite = ~np.isfinite(arr) & ~missing & ~bad
    # NaN written as text counts as missing, +-inf as bad.
    bad = bad | (nonfinite & np.isinf(arr))
    missing = missing | (nonfinite & np.isnan(arr))
    vals = pa.array(np.where(missing | bad, 0.0, arr), pa.float64(), mask=missing | bad)
    return vals, missing, bad


def _empty_id(col) -> np.ndarray:
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        return col.is_null().to_numpy(zero_copy_only=False)
    return pc.fill_null(pc.equal(pc.utf8_trim_whitespace(col), ""), True).to_numpy(zero_copy_only=False)


def _to_string(col) -> pa.Array:
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    return col if pa.types.is_string(col.type) else pc.cast(col, pa.string())


def _analyze(path: str, table: pa.Table, line_of: Callable[[np.ndarray], np.ndarray],
             raw_of: Callable[[np.ndarray], list[str]], blank: np.ndarray | None = None) -> tuple[pa.Table, pa.Table]:
    """Validate canonical-named columns row by row (vectorized); split into (good, rejects).

    ``line_of(row_idx)`` maps table row indices to physical line numbers, ``raw_of(lines)``
    returns the raw text of those lines. ``blank`` marks rows to drop silently (blank lines).
    """
    n = table.num_rows
    reasons = ["", "blank"]
    reason = np.zeros(n, dtype=np.int8)  # index into `reasons`; 0 = good

    def mark(mask, why):
        if not mask.any():
            return
        if why not in reasons:
            reasons.append(why)
        reason[mask & (reason == 0)] = reasons.index(why)

    if blank is not None:
        mark(blank, "blank")
    mark(_empty_id(table.column("user")), "empty user id")
    mark(_empty_id(table.column("item")), "empty item id")
    cols = {"user": _to_string(table.column("user")), "item": _to_string(table.column("item"))}
    if "rating" in table.column_names:
        rating, _miss, bad = _parse_float(table.column("rating"))
        mark(bad, "non-numeric rating")
    else:
        rating = pa.nulls(n, pa.float64())
    ts, miss, bad = _parse_float(table.column("ts"))
    mark(bad, "non-numeric ts")
    mark(miss, "missing ts")
    # ts is whole seconds since the Unix epoch: negative or fractional values are rejects
    tsv = np.nan_to_num(ts.to_numpy(zero_copy_only=False), nan=0.0)
    mark(tsv < 0, "negative ts")
    mark(tsv != np.floor(tsv), "fractional ts")
    cols["rating"] = rating
    for extra in ("domain", "category"):
        if extra in table.column_names:
            cols[extra] = _to_string(table.column(extra))
    good_mask = reason == 0
    tsv = ts.to_numpy(zero_copy_only=False)
    cols["ts"] = pa.array(np.floor(np.nan_to_num(tsv, nan=0.0)).astype(np.int64), pa.int64())
    out = pa.table(cols)
    order = ["user", "item", "rating", "ts"] + [c for c in ("domain", "category") if c in cols]
    out = out.select(order)
    if good_mask.all():
        return out, REJECTS_SCHEMA.empty_table()
    good = out.filter(pa.array(good_mask))
    bad_idx = np.flatnonzero(reason > 1)
    lines = line_of(bad_idx)
    raws = raw_of(lines)
    why = np.asarray(reasons, dtype=object)[reason[bad_idx]]
    return good, _rejects(path, lines.tolist(), why.tolist(), raws)


def _line_mapper(first_line: int, skipped_lines: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Map row index i -> physical line, given the lines the parser skipped (sorted)."""
    skipped = np.sort(np.asarray(skipped_lines, dtype=np.int64))
    valid_before = skipped - first_line - np.arange(len(skipped))

    def line_of(idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64)
        return first_line + idx + np.searchsorted(valid_before, idx, side="right")
    return line_of


def _require_rows(path: str, table: pa.Table, rejects: pa.Table) -> None:
    if table.num_rows + rejects.num_rows == 0:
        raise InputError("empty input: no data rows", path=path)


# ----------------------------------------------------------------------------- delimited text

def _read_header(path: str, delimiter: str, quote: bool) -> list[str]:
    with _open_text(path) as f:
        first = f.readline()
    if not first.strip():
        raise InputError("empty input: the first line (the header) is blank", path=path)
    first = first.lstrip("\ufeff").rstrip("\r\n")
    if quote:
        return next(csv.reader([first], delimiter=delimiter))
    return first.split(delimiter)


def read_delimited(path: str, *, delimiter: str = ",", columns: Mapping[str, str | None] | None = None,
                   fmt: str = "csv", quote: bool = True, header_names: list[str] | None = None) -> ReadResult:
    """Read a delimited text file with a header line.

    ``delimiter``: field separator; ``quote``: honour ``"`` quoting (RecBole files do not);
    ``header_names``: use these names instead of the header line's (which is still skipped).
    """
    path = str(path)
    _check_file(path)
    cmap = resolve_columns(fmt, columns)
    names = header_names or _read_header(path, delimiter, quote)
    wanted = {k: v for k, v in cmap.items() if v}
    missing = [f"{v} (for {k})" for k, v in wanted.items() if v not in names]
    if missing:
        raise InputError(f"missing column(s) {missing}; the header has {names}", path=path,
                         param="columns", fix="fix the header or map the columns (columns=)")
    include = list(dict.fromkeys(wanted.values()))

    def read(typed: bool, threads: bool, on_bad):
        types = {c: pa.string() for c in include}
        if typed:
            for k in ("rating", "ts"):
                if k in wanted:
                    types[wanted[k]] = pa.float64()
        return pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(use_threads=threads, skip_rows=1, column_names=names,
                                           block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, quote_char='"' if quote else False,
                                             ignore_empty_lines=False, invalid_row_handler=on_bad),
            convert_options=pacsv.ConvertOptions(include_columns=include, column_types=types,
                                                 strings_can_be_null=True, null_values=[""],
                                                 quoted_strings_can_be_null=True))

    def renamed(t: pa.Table) -> pa.Table:
        # one input column may feed two canonical names; build them explicitly
        return pa.table({k: t.column(v) for k, v in wanted.items()})

    skipped: list[tuple[int | None, str, int, int]] = []

    def on_bad(row):
        skipped.append((row.number, row.text, row.expected_columns, row.actual_columns))
        return "skip"

    try:
        try:
            table = read(True, True, on_bad)
            fast_ok = not skipped
        except pa.ArrowInvalid:
            fast_ok = False
        if not fast_ok:  # slow path: strings, serial, exact line numbers
            skipped.clear()
            table = read(False, False, on_bad)
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot parse the file: {e}", path=path) from None

    table = renamed(table)
    blank = np.ones(table.num_rows, dtype=bool)
    for c in table.column_names:
        blank &= table.column(c).is_null().to_numpy(zero_copy_only=False)
    # blank lines arrive as all-null rows (dropped silently); the handler only sees bad field counts
    field_rejects = [(number, f"wrong field count (expected {exp}, got {act})", text)
                     for number, text, exp, act in skipped]
    line_of = _line_mapper(2, np.array([s[0] for s in skipped], dtype=np.int64))
    good, rej = _analyze(path, table, line_of, lambda ls: _raw_lines(path, ls), blank=blank)
    if field_rejects:
        fr = _rejects(path, [r[0] for r in field_rejects], [r[1] for r in field_rejects], [r[2] for r in field_rejects])
        rej = pa.concat_tables([fr, rej]).sort_by("line")
    _check_repeated_header(path, rej)
    _require_rows(path, good, rej)
    return ReadResult(path, good, rej)


def _check_repeated_header(path: str, rejects: pa.Table) -> None:
    """A rejected row that repeats the header line means concatenated files: fail, not skip."""
    if rejects.num_rows == 0:
        return
    with _open_text(path) as f:
        header = f.readline().strip()
    lines = rejects.column("line").to_pylist()
    hits = [n for n, raw in zip(lines, rejects.column("raw").to_pylist())
            if raw is not None and raw.strip() == header]
    if hits:
        raise InputError(f"line {hits[0]} repeats the header line ({os.path.basename(path)}:{hits[0]}; "
                         f"{len(hits)} repeat(s))", path=path,
                         fix="the file looks like several files concatenated: remove the repeated "
                         "header lines")


def _raw_lines(path: str, lines: np.ndarray) -> list[str]:
    got = _fetch_lines(path, lines)
    return [got.get(int(n), "") for n in lines]


# ----------------------------------------------------------------------------- JSON Lines

def read_jsonl(path: str, *, columns: Mapping[str, str | None] | None = None) -> ReadResult:
    """Read JSON Lines, one object per line (Amazon review format by default:
    ``reviewerID``, ``asin``, ``overall``, ``unixReviewTime``). Lines that are not JSON objects
    become rejects ("invalid JSON")."""
    path = str(path)
    _check_file(path)
    cmap = resolve_columns("jsonl", columns)
    wanted = {k: v for k, v in cmap.items() if v}
    fields = list(dict.fromkeys(wanted.values()))
    typed = {wanted[k]: pa.float64() if k in ("rating", "ts") else pa.string() for k in wanted}
    schema = pa.schema([(f, typed[f]) for f in fields])
    table = None
    if not path.endswith(".gz"):
        try:
            raw = pajson.read_json(path, parse_options=pajson.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="ignore", newlines_in_values=False))
            n_lines = _count_lines(path)
            if raw.num_rows == n_lines:  # no blank lines: row i is line i + 1
                table = raw
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            table = None
    if table is not None:
        _require_rows(path, table, REJECTS_SCHEMA.empty_table())
        _check_json_fields(path, table, wanted)
        t = pa.table({k: table.column(v) for k, v in wanted.items()})
        good, rej = _analyze(path, t, lambda idx: np.asarray(idx) + 1, lambda ls: _raw_lines(path, ls))
        return ReadResult(path, good, rej)
    return _read_jsonl_slow(path, wanted)


def _count_lines(path: str, chunk: int = 1 << 24) -> int:
    """Physical lines of a file (a final line without newline counts), read in chunks."""
    n, last = 0, b"\n"
    with open(path, "rb") as f:
        while block := f.read(chunk):
            n += block.count(b"\n")
            last = block[-1:]
    return n + (0 if last == b"\n" else 1)


def _check_json_fields(path: str, table: pa.Table, wanted: dict[str, str]) -> None:
    for k, v in wanted.items():
        if k in REQUIRED and table.num_rows and table.column(v).null_count == table.num_rows:
            raise InputError(f"key '{v}' (for {k}) is missing in every object", path=path,
                             param="columns", fix="map the keys with columns=")


def _read_jsonl_slow(path: str, wanted: dict[str, str]) -> ReadResult:
    fields = list(dict.fromkeys(wanted.values()))
    values: dict[str, list] = {f: [] for f in fields}
    lines: list[int] = []
    bad_lines, bad_reasons, bad_raw = [], [], []
    try:
        with _open_text(path) as f:
            for n, line in enumerate(f, start=1):
                s = line.strip()
                if not s:
                    continue
                try:
                    obj = json.loads(s)
                except json.JSONDecodeError as e:
                    obj, err = None, f"invalid JSON ({e.msg})"
                else:
                    err = None if isinstance(obj, dict) else "invalid JSON (not an object)"
                if err:
                    bad_lines.append(n), bad_reasons.append(err), bad_raw.append(line.rstrip("\r\n"))
                    continue
                lines.append(n)
                for fld in fields:
                    v = obj.get(fld)
                    values[fld].append(None if v is None else (v if isinstance(v, str) else json.dumps(v)))
    except OSError as e:
        raise InputError(f"cannot read the file: {e}", path=path) from None
    table = pa.table({f: pa.array(values[f], pa.string()) for f in fields})
    rej0 = _rejects(path, bad_lines, bad_reasons, bad_raw)
    _require_rows(path, table, rej0)
    _check_json_fields(path, table, wanted)
    t = pa.table({k: table.column(v) for k, v in wanted.items()})
    line_arr = np.asarray(lines, dtype=np.int64)
    good, rej = _analyze(path, t, lambda idx: line_arr[idx], lambda ls: _raw_lines(path, ls))
    rej = pa.concat_tables([rej0, rej]).sort_by("line")
    return ReadResult(path, good, rej)


# ----------------------------------------------------------------------------- Parquet

def read_parquet(path: str, *, columns: Mapping[str, str | None] | None = None) -> ReadResult:
    """Read a Parquet file. Rejects report the 1-based row number as ``line``."""
    path = str(path)
    _check_file(path)
    cmap = resolve_columns("parquet", columns)
    wanted = {k: v for k, v in cmap.items() if v}
    try:
        names = pq.read_schema(path).names
    except (pa.ArrowInvalid, OSError) as e:
        raise InputError(f"not a readable Parquet file: {e}", path=path) from None
    missing = [f"{v} (for {k})" for k, v in wanted.items() if v not in names]
    if missing:
        raise InputError(f"missing column(s) {missing}; the file has {names}", path=path,
                         param="columns", fix="map the columns with columns=")
    table = pq.read_table(path, columns=list(dict.fromkeys(wanted.values())))
    t = pa.table({k: table.column(v) for k, v in wanted.items()})

    def raw_of(lines):
        idx = pa.array(np.asarray(lines) - 1)
        rows = t.take(idx).to_pylist()
        return [json.dumps(r, default=str) for r in rows]

    good, rej = _analyze(path, t, lambda idx: np.asarray(idx) + 1, raw_of)
    _require_rows(path, good, rej)
    return ReadResult(path, good, rej)


# ----------------------------------------------------------------------------- RecBole atomic files

def recbole_header(path: str) -> list[str]:
    """Column names of a RecBole atomic file (``name:type`` header, tab-separated), types stripped."""
    path = str(path)
    _check_file(path)
    names = _read_header(path, "\t", quote=False)
    return [n.split(":", 1)[0].strip() for n in names]


def read_recbole(path: str, *, columns: Mapping[str, str | None] | None = None) -> ReadResult:
    """Read a RecBole ``.inter`` atomic file (tab-separated, ``name:type`` header, no quoting)."""
    return read_delimited(path, delimiter="\t", columns=columns, fmt="recbole", quote=False,
                          header_names=recbole_header(path))


def read_item_categories(path: str, *, item: str | None = None, category: str | None = None,
                         fmt: str | None = None) -> pa.Table:
    """Read an item side table (RecBole ``.item``, CSV/TSV or Parquet) as ``(item, category)``
    strings. Defaults: ``item_id``/``genre`` for ``.item`` files, ``item``/``category`` otherwise."""
    path = str(path)
    _check_file(path)
    fmt = fmt or ("recbole" if str(path).lower().endswith(".item") else detect_format(path))
    item = item or ("item_id" if fmt == "recbole" else "item")
    category = category or ("genre" if fmt == "recbole" else "category")
    if fmt == "parquet":
        names = pq.read_schema(path).names
        table = None
    else:
        delimiter = "," if fmt == "csv" else "\t"
        quote = fmt == "csv"
        names = recbole_header(path) if fmt == "recbole" else _read_header(path, delimiter, quote)
    missing = [c for c in (item, category) if c not in names]
    if missing:
        raise InputError(f"missing column(s) {missing} in the item table; found {names}", path=path,
                         param="item" if item in missing else "category",
                         fix="pass item= / category= naming the table's item id and category columns")
    try:
        if fmt == "parquet":
            table = pq.read_table(path, columns=[item, category])
        else:
            table = pacsv.read_csv(path, read_options=pacsv.ReadOptions(skip_rows=1, column_names=names),
                                   parse_options=pacsv.ParseOptions(delimiter=delimiter,
                                                                    quote_char='"' if quote else False),
                                   convert_options=pacsv.ConvertOptions(
                                       include_columns=[item, category],
                                       column_types={item: pa.string(), category: pa.string()}))
    except (pa.ArrowInvalid, OSError) as e:
        raise InputError(f"cannot parse the item table: {e}", path=path) from None
    return pa.table({"item": _to_string(table.column(item)), "category": _to_string(table.column(category))})


# ----------------------------------------------------------------------------- dispatch

def read_interactions(path: str, *, fmt: str = "auto", columns: Mapping[str, str | None] | None = None,
                      delimiter: str | None = None) -> ReadResult:
    """Read one interactions file of any supported format (``fmt="auto"``: from the extension)."""
    path = str(path)
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt not in FORMATS:
        raise InputError(f"unknown format '{fmt}'; use one of {FORMATS}", path=path)
    if fmt in ("csv", "tsv"):
        return read_delimited(path, delimiter=delimiter or ("," if fmt == "csv" else "\t"),
                              columns=columns, fmt=fmt)
    if fmt == "jsonl":
        return read_jsonl(path, columns=columns)
    if fmt == "parquet":
        return read_parquet(path, columns=columns)
    return read_recbole(path, columns=columns)


__all__ = ["ReadResult", "read_interactions", "read_delimited", "read_jsonl", "read_parquet", "read_recbole",
           "read_item_categories", "recbole_header", "detect_format", "resolve_columns", "DEFAULT_COLUMNS",
           "FORMATS"]
