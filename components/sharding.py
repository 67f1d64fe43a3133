"""Equal-step sharding of a dataset across data-parallel ranks (no framework code).

Every rank of a data-parallel run must take the same number of optimizer steps (collectives
such as DDP's gradient all-reduce pair up step by step; a rank with one step more waits
forever). :func:`shard_batches` gives each rank a disjoint share of a permutation that is the
same on every rank (it depends on ``seed`` and ``epoch`` only), the shares together cover all
``n`` items, and every rank splits its share into the same number of batches (sizes differ by
at most one item between ranks, never zero; with ``batch_size=1`` a shorter share repeats
its first item so that no step is empty).

Public API: :func:`epoch_seed`, :func:`num_steps`, :func:`shard_batches`.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["epoch_seed", "num_steps", "shard_batches"]


def epoch_seed(seed: int, epoch: int, *salt: int) -> int:
    """A 63-bit seed derived from ``(seed, epoch, *salt)``, stable across processes and runs."""
    words = [int(x) & 0xFFFFFFFF for x in (seed, epoch, *salt)]
    return int(np.random.SeedSequence(words).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def num_steps(n: int, world: int, batch_size: int) -> int:
    """Steps per epoch on every rank: enough for the largest share, ``ceil(ceil(n / world) / bs)``."""
    if n < world:
        raise ValueError(f"n={n} items cannot be shared by world={world} ranks (every rank needs one)")
    return max(1, math.ceil(math.ceil(n / world) / batch_size))


def shard_batches(n: int, world: int, rank: int, batch_size: int, seed: int, epoch: int,
                  equal_sizes: bool = False) -> list[np.ndarray]:
    """This rank's batches (int64 index arrays into ``range(n)``) for one epoch.

    Args:
        n: dataset size; world, rank: data-parallel size and this rank (``0 <= rank < world``);
        batch_size: maximum items per batch on one rank; seed, epoch: the shared permutation.
        equal_sizes: every batch on every rank has the same size (for collectives that need
            equal shapes, e.g. an all-gather of keys): ``steps = max(1, (n // world) // bs)``
            batches of ``(n // world) // steps`` items; the remaining items of this epoch's
            permutation (fewer than ``world * steps`` plus ``n % world``) are left out.
    """
    if not 0 <= rank < world:
        raise ValueError(f"rank={rank} outside 0..{world - 1}")
    perm = np.random.default_rng(epoch_seed(seed, epoch)).permutation(n)
    if equal_sizes:
        share = n // world
        if share == 0:
            raise ValueError(f"n={n} items cannot be shared by world={world} ranks (every rank needs one)")
        steps = math.ceil(share / batch_size)
        size = share // steps
        mine = perm[rank * share: rank * share + steps * size]
        return [b.astype(np.int64) for b in np.split(mine, steps)]
    steps = num_steps(n, world, batch_size)
    mine = perm[rank::world]
    if len(mine) < steps:   # only with batch_size 1: repeat this rank's first items, never an empty step
        mine = np.concatenate([mine, mine[: steps - len(mine)]])
    return [b.astype(np.int64) for b in np.array_split(mine, steps)]
