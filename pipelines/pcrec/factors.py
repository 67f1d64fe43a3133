"""Factor tables: (method, seed, node_type, idx, embedding list<float32>) <-> numpy matrices."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from components.errors import ConfigError, InputError


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


# The config key whose learning rate drives the stage that wrote a factor table (its name is
# the part of ``where`` before the first "/"). target_embed only applies the pre-trained encoder.
_TRAINED_BY = {"pretrain": ("pretrain", "pretrain.lr"), "target_embed": ("pretrain", "pretrain.lr"),
               "finetune": ("finetune", "finetune.train.lr"),
               "baselines": ("baselines", "baselines.lightgcn.train.lr (lightgcn) or "
                                          "baselines.joint_mf.train.lr (joint_mf, default finetune.train.lr)")}


def lr_key(stage: str, method: str | None = None) -> str:
    """The learning-rate config key of the training stage ``stage`` (and ``method``)."""
    if stage == "baselines" and method in ("lightgcn", "joint_mf"):
        return f"baselines.{method}.train.lr" + (" (default finetune.train.lr)" if method == "joint_mf" else "")
    return _TRAINED_BY.get(stage, (stage, f"{stage} learning rate"))[1]


def divergence_fix(where: str, method: str | None = None) -> str:
    """Hint for non-finite factors found in ``where`` (``"<stage>/<table>"``): name the stage
    that trained them and its learning-rate key."""
    stage = where.split("/", 1)[0].strip()
    trained_by, key = _TRAINED_BY.get(stage, (stage, None))
    if stage == "baselines" and method in ("lightgcn", "joint_mf"):
        key = lr_key(stage, method)
    how = f"lower {key}" if key else "lower learning rate"
    return (f"the {trained_by} stage diverged (or the file was altered): re-run it with "
            f"--force {trained_by} and a {how}")


def matrix(table: pa.Table, n: int, where: str, method: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(mat, present)``: rows placed by ``idx`` into an ``(n, d)`` float32 matrix.

    ``present`` marks the rows found in ``table`` (others are zero). Raises InputError for an
    ``idx`` outside ``0..n-1``, rows of different length, or NaN/inf values (the hint names the
    stage that trained them, from ``where`` = ``"<stage>/<table>"``, and its lr key; ``method``
    refines it for baselines).
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
        raise InputError(f"{int(bad.sum())} of {len(vals)} embeddings"
                         + (f" of {method}" if method else "") + " contain NaN or inf",
                         path=where, field="embedding",
                         fix=divergence_fix(where, method))
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
    U, _ = matrix(select(t, node_type="user"), n_users, where, method)
    V, _ = matrix(select(t, node_type="item"), n_items, where, method)
    return U, V


def models(table: pa.Table) -> pd.DataFrame:
    """Distinct (method, seed) pairs in a factor table."""
    return (table.select(["method", "seed"]).to_pandas().drop_duplicates()
            .sort_values(["method", "seed"]).reset_index(drop=True))


INIT_GEOMETRIES = ("raw", "center", "whiten")


def init_geometry(mat: np.ndarray, present: np.ndarray, mode: str, rms_norm: float) -> np.ndarray:
    """Pre-trained vectors reshaped before they initialise MF (``finetune.init_geometry``).

    * ``raw``: unchanged (the encoder's unit vectors).
    * ``center``: minus the mean of the ``present`` rows, then scaled so that the present rows'
      root-mean-square norm is ``rms_norm``. Contrastive embeddings share a mean direction (mean
      pairwise cosine 0.25 on ML-1M, 0.86 untrained); left in, it adds the same large term to
      every user-item score at the start of MF.
    * ``whiten``: centred, then PCA-whitened (every principal direction of the present rows gets
      unit variance; directions with variance below 1e-6 of the largest are dropped), then scaled
      like ``center``: the few dominant directions of a low-rank embedding no longer swamp the rest.

    Rows not ``present`` (no pre-trained vector) stay as they are (zero). ``rms_norm`` is meant to
    match the random initialisation, ``init_std * sqrt(factors)``.
    """
    if mode not in INIT_GEOMETRIES:
        raise ConfigError(f"finetune.init_geometry must be one of {INIT_GEOMETRIES}, got {mode!r}")
    out = np.array(mat, dtype=np.float32, copy=True)
    if mode == "raw" or not present.any() or out.shape[1] == 0:
        return out
    x = out[present].astype(np.float64)
    x -= x.mean(0, keepdims=True)
    if mode == "whiten" and len(x) > 1:
        _, s, vt = np.linalg.svd(x, full_matrices=False)
        keep = s > 1e-3 * s[0] if s.size and s[0] > 0 else np.zeros_like(s, bool)
        x = x @ vt[keep].T / (s[keep] / np.sqrt(len(x)))      # unit variance per direction
        x = np.pad(x, ((0, 0), (0, out.shape[1] - x.shape[1])))
    rms = float(np.sqrt((x ** 2).sum(1).mean()))
    out[present] = (x * (rms_norm / rms if rms > 0 else 0.0)).astype(np.float32)
    return out
