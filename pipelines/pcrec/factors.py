"""Factor tables: (method, seed, node_type, idx, embedding list<float32>) <-> numpy matrices."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from components.errors import InputError


def list_column(mat: np.ndarray) -> pa.Array:
    """A ``list<float32>`` Arrow column from an ``(n, d)`` matrix."""
    mat = np.ascontiguousarray(mat, dtype=np.float32)
    offsets = pa.array(np.arange(0, mat.size + 1, max(mat.shape[1], 1), dtype=np.int32)[: len(mat) + 1])
    return pa.ListArray.from_arrays(offsets, pa.array(mat.reshape(-1)))


def factor_table(method: str, seed: int, users: np.ndarray, items: np.ndarray) -> pa.Table:
    """Rows for one trained model: all users (``idx`` = uid) then all items (``idx`` = iid)."""
    n_u, n_i = len(users), len(items)
    return pa.table({
        "method": pa.array([method] * (n_u + n_i)),
        "seed": pa.array(np.full(n_u + n_i, seed, dtype=np.int64)),
        "node_type": pa.array(["user"] * n_u + ["item"] * n_i),
        "idx": pa.array(np.r_[np.arange(n_u), np.arange(n_i)].astype(np.int64)),
        "embedding": list_column(np.vstack([users, items])),
    })


def matrix(table: pa.Table, n: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """``(mat, present)``: rows placed by ``idx`` into an ``(n, d)`` float32 matrix.

    ``present`` marks the rows found in ``table`` (others are zero). Raises InputError for an
    ``idx`` outside ``0..n-1`` or rows of different length.
    """
    if table.num_rows == 0:
        return np.zeros((n, 0), np.float32), np.zeros(n, bool)
    col = table.column("embedding").combine_chunks()
    lens = pc.list_value_length(col).to_numpy(zero_copy_only=False)
    if (lens != lens[0]).any():
        raise InputError("embeddings of different lengths", path=where, field="embedding",
                         fix="re-run the stage that wrote them")
    flat = pc.list_flatten(col).to_numpy(zero_copy_only=False).astype(np.float32)
    vals = flat.reshape(len(lens), int(lens[0]))
    bad = ~np.isfinite(vals).all(axis=1)
    if bad.any():
        raise InputError(f"{int(bad.sum())} of {len(vals)} embeddings contain NaN or inf",
                         path=where, field="embedding",
                         fix="the stage that wrote them diverged or the file was altered: re-run it "
                         "with --force (e.g. a lower pretrain.lr)")
    idx = table.column("idx").to_numpy().astype(np.int64)
    if idx.min() < 0 or idx.max() >= n:
        raise InputError(f"idx {int(idx.max())} outside 0..{n - 1}", path=where, field="idx",
                         fix="the embeddings do not match the kcore id maps; re-run from kcore")
    mat = np.zeros((n, vals.shape[1]), np.float32)
    mat[idx] = vals
    present = np.zeros(n, bool)
    present[idx] = True
    return mat, present


def select(table: pa.Table, **eq) -> pa.Table:
    """Rows of ``table`` whose columns equal the given values."""
    mask = None
    for k, v in eq.items():
        m = pc.equal(table.column(k), pa.scalar(v))
        mask = m if mask is None else pc.and_(mask, m)
    return table if mask is None else table.filter(mask)


def model_factors(table: pa.Table, method: str, seed: int, n_users: int, n_items: int,
                  where: str) -> tuple[np.ndarray, np.ndarray]:
    """User and item matrices of one (method, seed) from a factor table."""
    t = select(table, method=method, seed=seed)
    U, _ = matrix(select(t, node_type="user"), n_users, where)
    V, _ = matrix(select(t, node_type="item"), n_items, where)
    return U, V


def models(table: pa.Table) -> pd.DataFrame:
    """Distinct (method, seed) pairs in a factor table."""
    return (table.select(["method", "seed"]).to_pandas().drop_duplicates()
            .sort_values(["method", "seed"]).reset_index(drop=True))
