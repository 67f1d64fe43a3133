"""Canonical interaction schema and its validation.

Every reader produces, and every stage after ingest consumes, interactions in this schema:

========  =======================  ===============================================
column    type                     meaning
========  =======================  ===============================================
user      string (not null)        the user's id as given in the input
item      string (not null)        the item's id as given in the input
rating    float64 (nullable)       explicit rating; null for implicit feedback
ts        int64 (not null)         event time in seconds (Unix epoch)
domain    string (not null)        ``"source"`` or ``"target"``
uid       int64 (indexed only)     contiguous per domain: 0 .. n_users(domain)-1
iid       int64 (indexed only)     contiguous per domain: 0 .. n_items(domain)-1
========  =======================  ===============================================

The same ``user`` string in both domains is a *shared* (overlapping) user.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from components.errors import InputError

DOMAINS: tuple[str, str] = ("source", "target")

INTERACTIONS_SCHEMA = pa.schema([
    pa.field("user", pa.string(), nullable=False),
    pa.field("item", pa.string(), nullable=False),
    pa.field("rating", pa.float64(), nullable=True),
    pa.field("ts", pa.int64(), nullable=False),
    pa.field("domain", pa.string(), nullable=False),
])

INDEXED_SCHEMA = INTERACTIONS_SCHEMA.append(pa.field("uid", pa.int64(), nullable=False)).append(
    pa.field("iid", pa.int64(), nullable=False))

USERS_SCHEMA = pa.schema([("domain", pa.string()), ("user", pa.string()), ("uid", pa.int64())])
ITEMS_SCHEMA = pa.schema([("domain", pa.string()), ("item", pa.string()), ("iid", pa.int64())])

REJECTS_SCHEMA = pa.schema([
    ("file", pa.string()),    # the input file
    ("line", pa.int64()),     # 1-based physical line (header = line 1); row number for Parquet
    ("reason", pa.string()),  # e.g. "wrong field count (expected 4, got 3)", "non-numeric rating"
    ("raw", pa.string()),     # the raw line / row as text
])


def empty_rejects() -> pa.Table:
    """An empty rejects table."""
    return REJECTS_SCHEMA.empty_table()


def validate_interactions(table: pa.Table, *, indexed: bool = False, source: str = "interactions") -> pa.Table:
    """Check that ``table`` follows the canonical schema and return it cast to exactly that schema.

    ``indexed=True`` also requires the ``uid``/``iid`` columns. Raises :class:`InputError` naming
    ``source`` (a file or table name) on a missing column, an uncastable type, a null in a
    required column, or a domain other than ``source``/``target``. Extra columns are dropped.
    """
    schema = INDEXED_SCHEMA if indexed else INTERACTIONS_SCHEMA
    missing = [f.name for f in schema if f.name not in table.column_names]
    if missing:
        raise InputError(f"missing column(s) {missing}; found {table.column_names}", path=source,
                         param="table", fix="map your columns to user,item,rating,ts,domain")
    cols = []
    for f in schema:
        col = table.column(f.name)
        if col.type != f.type:
            try:
                col = pc.cast(col, f.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise InputError(f"cannot convert to {f.type}: {e}", path=source, field=f.name) from None
        if not f.nullable and col.null_count:
            raise InputError(f"{col.null_count} null value(s) in a required column", path=source, field=f.name)
        cols.append(col)
    out = pa.Table.from_arrays(cols, schema=schema)
    bad = pc.invert(pc.is_in(out.column("domain"), value_set=pa.array(DOMAINS)))
    n_bad = pc.sum(bad).as_py() or 0
    if n_bad:
        examples = pc.unique(pc.filter(out.column("domain"), bad)).to_pylist()[:5]
        raise InputError(f"{n_bad} row(s) with a domain other than 'source'/'target' (e.g. {examples})",
                         path=source, field="domain", param="table",
                         fix="assign domains first (components.data.ingest.assign_domains: from a column, "
                             "categories or per file)")
    return out
