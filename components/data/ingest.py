"""Ingest: from raw reads to canonical, indexed interactions.

Steps (all vectorized, Arrow / numpy):

1. :func:`check_rejects` — fail if the share of rejected rows exceeds ``max_reject_fraction``.
2. :func:`assign_domains` — ``source``/``target`` from a column, from the file, or from item
   categories (e.g. MovieLens genres).
3. :func:`deduplicate` — one row per (domain, user, item): keep ``first`` / ``last`` (by ts,
   ties by file order), ``max`` rating (ties: latest), or ``drop`` every duplicated pair.
4. :func:`apply_threshold` — implicit feedback: keep rows with ``rating >= threshold``.
5. :func:`index_ids` — contiguous ``uid``/``iid`` per domain (ids sorted as strings, so the
   mapping does not depend on the row order) and the id-map tables.

:func:`ingest` runs them in this order and returns an :class:`IngestResult`.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from components.data.readers import ReadResult
from components.data.schema import (DOMAINS, ITEMS_SCHEMA, REJECTS_SCHEMA, USERS_SCHEMA, validate_interactions)
from components.errors import InputError

log = logging.getLogger(__name__)

DuplicatePolicy = Literal["first", "last", "max", "drop"]
Overlap = Literal["source", "target", "drop"]


@dataclass(frozen=True)
class DomainRule:
    """How each row gets its domain.

    ``by="column"``: the mapped ``domain`` column; ``values`` optionally maps raw values to
    ``source``/``target`` (rows with an unmapped value are dropped; without ``values`` any value
    other than ``source``/``target`` is an error). ``by="file"``: each file's own domain.
    ``by="category"``: items whose categories (``sep``-separated tokens, from the item table or the
    ``category`` column) intersect ``source`` go to the source domain, those intersecting
    ``target`` to the target; an item in both goes where ``overlap`` says (or is dropped);
    items in neither are dropped.
    """

    by: Literal["column", "file", "category"] = "column"
    values: Mapping[str, str] | None = None
    sep: str = "|"
    source: Sequence[str] = ()
    target: Sequence[str] = ()
    overlap: Overlap = "source"


@dataclass
class IngestResult:
    """Output of :func:`ingest`: indexed interactions, id maps, rejects and statistics."""

    interactions: pa.Table
    users: pa.Table
    items: pa.Table
    rejects: pa.Table
    stats: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- rejects

def check_rejects(reads: Sequence[ReadResult], max_reject_fraction: float) -> pa.Table:
    """Concatenate the rejects of all reads; raise :class:`InputError` if their share of all
    data rows exceeds ``max_reject_fraction`` (the message shows counts per reason and examples)."""
    rejects = pa.concat_tables([r.rejects for r in reads]) if reads else REJECTS_SCHEMA.empty_table()
    total = sum(r.n_rows for r in reads)
    if total and rejects.num_rows / total > max_reject_fraction:
        reasons = Counter(rejects.column("reason").to_pylist())
        ex = rejects.slice(0, 5).to_pylist()
        examples = "; ".join(f"{e['file']}:{e['line']} {e['reason']}: {e['raw'][:80]!r}" for e in ex)
        by_reason = ", ".join(f"{k}: {v}" for k, v in reasons.most_common())
        raise InputError(
            f"{rejects.num_rows} of {total} rows rejected ({rejects.num_rows / total:.1%} > "
            f"max_reject_fraction={max_reject_fraction}); by reason: {by_reason}; first: {examples}",
            param="max_reject_fraction", fix="fix the input or raise max_reject_fraction")
    return rejects


# ----------------------------------------------------------------------------- domains

def _norm(arr: pa.Array) -> pa.Array:
    return pc.utf8_lower(pc.utf8_trim_whitespace(arr))


def assign_domains(table: pa.Table, rule: DomainRule, *, file_domain: str | None = None,
                   item_categories: pa.Table | None = None, path: str = "input") -> tuple[pa.Table, int]:
    """Add/replace the ``domain`` column of one read according to ``rule``.

    Returns ``(table, n_dropped)`` where dropped rows had no domain (unmapped value, item in no
    selected category, or in both with ``overlap="drop"``). Raises :class:`InputError` on a
    missing column or, without a value map, on a value other than ``source``/``target``.
    """
    n = table.num_rows
    if rule.by == "file":
        if file_domain not in DOMAINS:
            raise InputError(f"rule.by='file' needs a domain ('source'/'target') for every file, "
                             f"got {file_domain!r}", path=path, param="file_domain",
                             fix="pass file_domain='source' or 'target'")
        dom = pa.array(np.full(n, file_domain, dtype=object), pa.string())
    elif rule.by == "column":
        if "domain" not in table.column_names:
            raise InputError("rule.by='column' but the table has no domain column", path=path,
                             param="rule.by", fix="read the input with a domain column, or use another rule.by")
        raw = _norm(table.column("domain").combine_chunks())
        if rule.values:
            keys = pa.array([str(k).strip().lower() for k in rule.values], pa.string())
            vals = pa.array([str(v) for v in rule.values.values()], pa.string())
            bad_vals = [v for v in vals.to_pylist() if v not in DOMAINS]
            if bad_vals:
                raise InputError(f"rule.values maps to {bad_vals}; targets must be 'source' or 'target'",
                                 param="rule.values")
            dom = pc.take(vals, pc.index_in(raw, value_set=keys))
        else:
            bad = pc.invert(pc.fill_null(pc.is_in(raw, value_set=pa.array(DOMAINS)), False))
            n_bad = pc.sum(bad).as_py() or 0
            if n_bad:
                ex = pc.unique(pc.filter(table.column("domain").combine_chunks(), bad)).to_pylist()[:5]
                raise InputError(f"{n_bad} row(s) have a domain other than 'source'/'target' (e.g. {ex})",
                                 path=path, field="domain", param="rule.values",
                                 fix="map the values with rule.values, e.g. {'books': 'source', 'movies': 'target'}")
            dom = raw
    elif rule.by == "category":
        dom = _domain_from_categories(table, rule, item_categories, path)
    else:
        raise InputError(f"unknown domain rule '{rule.by}'")
    keep = pc.is_valid(dom)
    n_keep = pc.sum(keep).as_py() or 0
    cols = {c: table.column(c) for c in ("user", "item", "rating", "ts")}
    cols["domain"] = dom
    out = pa.table(cols)
    if n_keep < n:
        out = out.filter(keep)
    return out, n - n_keep


def _domain_from_categories(table: pa.Table, rule: DomainRule, item_categories: pa.Table | None,
                            path: str) -> pa.Array:
    if not rule.source or not rule.target:
        raise InputError("rule.by='category' needs the source and target category lists "
                         "(rule.source, rule.target)", param="rule.source")
    if item_categories is not None:
        items = item_categories.column("item").combine_chunks()
        cats = item_categories.column("category").combine_chunks()
        row_item_idx = pc.index_in(table.column("item"), value_set=items)
    elif "category" in table.column_names:
        items, row_item_idx = None, None
        cats = table.column("category").combine_chunks()
    else:
        raise InputError("rule.by='category' needs item categories: an item table (item_categories) or a "
                         "category column in the input", path=path, param="item_categories")
    # token-level membership, vectorized over the (item, token) pairs
    tokens = pc.split_pattern(pc.fill_null(cats, ""), rule.sep)
    parent = pc.list_parent_indices(tokens).to_numpy()
    flat = pc.utf8_trim_whitespace(pc.list_flatten(tokens))
    in_s = pc.is_in(flat, value_set=pa.array(list(rule.source), pa.string())).to_numpy(zero_copy_only=False)
    in_t = pc.is_in(flat, value_set=pa.array(list(rule.target), pa.string())).to_numpy(zero_copy_only=False)
    has_s = np.bincount(parent[in_s], minlength=len(cats)) > 0
    has_t = np.bincount(parent[in_t], minlength=len(cats)) > 0
    code = np.full(len(cats), -1, dtype=np.int8)  # -1 none, 0 source, 1 target
    code[has_s & ~has_t] = 0
    code[has_t & ~has_s] = 1
    both = has_s & has_t
    if rule.overlap != "drop":
        code[both] = DOMAINS.index(rule.overlap)
    if row_item_idx is not None:
        idx = pc.fill_null(row_item_idx, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        row_code = np.where(idx >= 0, code[np.maximum(idx, 0)], -1)
    else:
        row_code = code
    names = np.array(DOMAINS, dtype=object)
    return pa.array(names[np.maximum(row_code, 0)], pa.string(), mask=row_code < 0)


# ----------------------------------------------------------------------------- duplicates / threshold

def _codes(arr) -> np.ndarray:
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    return pc.dictionary_encode(arr).indices.to_numpy().astype(np.int64)


def deduplicate(table: pa.Table, policy: DuplicatePolicy) -> tuple[pa.Table, int]:
    """One row per (domain, user, item) according to ``policy``; keeps the file order of the
    kept rows. Returns ``(table, n_removed)``."""
    n = table.num_rows
    if n == 0:
        return table, 0
    d, u, i = (_codes(table.column(c)) for c in ("domain", "user", "item"))
    key = (d * (u.max() + 1) + u) * (i.max() + 1) + i
    ts = table.column("ts").to_numpy()
    row = np.arange(n)
    if policy in ("first", "last", "drop"):
        order = np.lexsort((row, ts, key))
    elif policy == "max":
        r = table.column("rating").to_numpy(zero_copy_only=False).astype(np.float64)
        order = np.lexsort((row, ts, np.nan_to_num(r, nan=-np.inf), key))
    else:
        raise InputError(f"unknown duplicate policy '{policy}'; use first, last, max or drop")
    k = key[order]
    start = np.r_[True, k[1:] != k[:-1]]
    end = np.r_[k[1:] != k[:-1], True]
    if policy == "first":
        keep = order[start]
    elif policy == "drop":
        keep = order[start & end]
    else:
        keep = order[end]
    if len(keep) == n:
        return table, 0
    keep.sort()
    return table.take(pa.array(keep)), n - len(keep)


def apply_threshold(table: pa.Table, threshold: float | None) -> tuple[pa.Table, int]:
    """Implicit feedback: keep rows with ``rating >= threshold`` (null ratings are removed).
    ``None`` keeps everything. Returns ``(table, n_removed)``."""
    if threshold is None:
        return table, 0
    keep = pc.fill_null(pc.greater_equal(table.column("rating"), threshold), False)
    out = table.filter(keep)
    return out, table.num_rows - out.num_rows


# ----------------------------------------------------------------------------- ids

def _dense_rank(arr: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Codes 0..k-1 of ``arr``'s values in sorted string order, and the sorted unique values."""
    uniq = pc.unique(arr)
    uniq = uniq.take(pc.sort_indices(uniq))
    return pc.index_in(arr, value_set=uniq).to_numpy().astype(np.int64), uniq


def index_ids(table: pa.Table) -> tuple[pa.Table, pa.Table, pa.Table]:
    """Add contiguous ``uid``/``iid`` per domain (ids in sorted string order).

    Returns ``(interactions, users, items)``: the interactions with ``uid``/``iid`` replaced or
    added, and the id maps ``users(domain, user, uid)`` / ``items(domain, item, iid)``.
    Applying it again to its own output gives the same ids; after filtering rows it re-indexes
    to 0..n-1 keeping the relative order.
    """
    table = table.select(["user", "item", "rating", "ts", "domain"])
    n = table.num_rows
    uid = np.zeros(n, dtype=np.int64)
    iid = np.zeros(n, dtype=np.int64)
    users, items = [], []
    dom = table.column("domain").combine_chunks()
    for d in DOMAINS:
        mask = pc.equal(dom, d)
        rows = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
        if len(rows) == 0:
            continue
        sub = table.take(pa.array(rows))
        u_codes, u_vals = _dense_rank(sub.column("user").combine_chunks())
        i_codes, i_vals = _dense_rank(sub.column("item").combine_chunks())
        uid[rows], iid[rows] = u_codes, i_codes
        users.append(pa.table({"domain": pa.array([d] * len(u_vals), pa.string()), "user": u_vals,
                               "uid": pa.array(np.arange(len(u_vals)), pa.int64())}, schema=USERS_SCHEMA))
        items.append(pa.table({"domain": pa.array([d] * len(i_vals), pa.string()), "item": i_vals,
                               "iid": pa.array(np.arange(len(i_vals)), pa.int64())}, schema=ITEMS_SCHEMA))
    out = table.append_column("uid", pa.array(uid)).append_column("iid", pa.array(iid))
    users_t = pa.concat_tables(users) if users else USERS_SCHEMA.empty_table()
    items_t = pa.concat_tables(items) if items else ITEMS_SCHEMA.empty_table()
    return validate_interactions(out, indexed=True), users_t, items_t


# ----------------------------------------------------------------------------- statistics

def domain_stats(table: pa.Table) -> dict:
    """Per-domain users / items / interactions / density, and the shared users (same ``user``
    string in both domains)."""
    out: dict = {}
    user_sets = {}
    dom = table.column("domain").combine_chunks()
    for d in DOMAINS:
        sub = table.filter(pc.equal(dom, d))
        nu = len(pc.unique(sub.column("user").combine_chunks())) if sub.num_rows else 0
        ni = len(pc.unique(sub.column("item").combine_chunks())) if sub.num_rows else 0
        out[d] = {"users": nu, "items": ni, "interactions": sub.num_rows,
                  "density": (sub.num_rows / (nu * ni)) if nu and ni else 0.0}
        user_sets[d] = pc.unique(sub.column("user").combine_chunks()) if sub.num_rows else pa.array([], pa.string())
    out["shared_users"] = int(pc.sum(pc.is_in(user_sets["source"], value_set=user_sets["target"])).as_py() or 0)
    return out


def format_stats(stats: dict, title: str = "") -> str:
    """A small text table of :func:`domain_stats` output."""
    lines = [title] if title else []
    lines.append(f"{'domain':<8} {'users':>9} {'items':>9} {'interactions':>13} {'density':>9}")
    for d in DOMAINS:
        s = stats[d]
        lines.append(f"{d:<8} {s['users']:>9,} {s['items']:>9,} {s['interactions']:>13,} {s['density']:>9.4%}")
    lines.append(f"shared users: {stats['shared_users']:,}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- pipeline

def ingest(reads: Sequence[ReadResult], rule: DomainRule, *, file_domains: Sequence[str | None] | None = None,
           item_categories: pa.Table | None = None, duplicates: DuplicatePolicy = "last",
           implicit_threshold: float | None = None, max_reject_fraction: float = 0.01) -> IngestResult:
    """Turn raw reads into canonical, indexed interactions (see the module docstring).

    ``file_domains[k]`` is the domain of ``reads[k]`` for ``rule.by == "file"``.
    Raises :class:`InputError` when rejects exceed ``max_reject_fraction`` or nothing is left.
    """
    rejects = check_rejects(reads, max_reject_fraction)
    file_domains = list(file_domains) if file_domains is not None else [None] * len(reads)
    parts, no_domain = [], 0
    for r, fd in zip(reads, file_domains):
        t, dropped = assign_domains(r.table, rule, file_domain=fd, item_categories=item_categories, path=r.path)
        parts.append(t)
        no_domain += dropped
    table = pa.concat_tables(parts, promote_options="permissive") if parts else None
    paths = ", ".join(r.path for r in reads)
    if table is None or table.num_rows == 0:
        raise InputError(f"no rows left after domain assignment ({no_domain} rows had no domain)", path=paths,
                         param="rule", fix="check rule (column / file / categories)")
    table = validate_interactions(table, source=paths)
    n_read = table.num_rows + no_domain
    table, n_dup = deduplicate(table, duplicates)
    table, n_thr = apply_threshold(table, implicit_threshold)
    if table.num_rows == 0:
        raise InputError(f"no rows left after the implicit-feedback threshold {implicit_threshold}",
                         path=paths, param="implicit_threshold", fix="lower implicit_threshold")
    inter, users, items = index_ids(table)
    stats = {"rows_read": n_read, "rejected": rejects.num_rows, "no_domain": no_domain,
             "duplicates_removed": n_dup, "below_threshold": n_thr, "rows": inter.num_rows,
             **domain_stats(inter)}
    log.info("ingest: %s", {k: v for k, v in stats.items() if k not in DOMAINS})
    return IngestResult(inter, users, items, rejects, stats)
