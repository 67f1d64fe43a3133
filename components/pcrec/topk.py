"""Top-K recommendation by dot product with seen items excluded.

Public API: :func:`top_k`.
"""
from __future__ import annotations

import numpy as np
import torch

from components.pcrec.metrics import _as_tensor
from components.pcrec.negatives import PositiveSet, positive_mask


@torch.no_grad()
def top_k(user_emb, item_emb, users: np.ndarray, k: int, exclude: PositiveSet | None = None,
          chunk: int = 2048) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` best unseen items for each user.

    Args:
        user_emb, item_emb: factor matrices; the score is the dot product.
        users: user ids to recommend for.
        k: list length.
        exclude: seen (user, item) pairs never recommended.

    Returns:
        ``(items, scores, valid)``, each ``(len(users), k)``; ``valid`` is False where a user
        has fewer than ``k`` unseen items (those slots hold item -1 and score -inf).
        Ties keep the lower item id first.
    """
    U = _as_tensor(user_emb).float()
    V = _as_tensor(item_emb).float()
    users = np.asarray(users, dtype=np.int64)
    k_eff = min(k, V.shape[0])
    items = np.full((len(users), k), -1, dtype=np.int64)
    scores = np.full((len(users), k), -np.inf, dtype=np.float32)
    for s in range(0, len(users), chunk):
        u = users[s:s + chunk]
        sc = U[torch.from_numpy(np.array(u))] @ V.T
        if exclude is not None:
            sc[torch.from_numpy(positive_mask(u, exclude))] = -torch.inf
        # stable order: sort descending by score, ties by ascending item id
        order = torch.sort(sc, dim=1, descending=True, stable=True)
        items[s:s + chunk, :k_eff] = order.indices[:, :k_eff].numpy()
        scores[s:s + chunk, :k_eff] = order.values[:, :k_eff].numpy()
    valid = np.isfinite(scores)
    items[~valid] = -1
    return items, scores, valid
