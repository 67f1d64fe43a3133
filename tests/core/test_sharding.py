"""Equal-step sharding: same steps on every rank, disjoint shares that cover the data."""
from __future__ import annotations

import numpy as np
import pytest

from components.sharding import epoch_seed, num_steps, shard_batches


@pytest.mark.parametrize("n,world,bs", [(10, 1, 3), (10, 2, 3), (9, 2, 4), (101, 3, 8), (7, 7, 2), (8, 3, 64)])
def test_equal_steps_disjoint_cover(n, world, bs):
    shares = [shard_batches(n, world, r, bs, seed=5, epoch=2) for r in range(world)]
    steps = {len(s) for s in shares}
    assert steps == {num_steps(n, world, bs)}                      # equal step counts
    assert all(len(b) >= 1 and len(b) <= bs for s in shares for b in s)
    flat = np.concatenate([b for s in shares for b in s])
    assert len(flat) == n and sorted(flat.tolist()) == list(range(n))  # disjoint and covering


def test_permutation_is_shared_per_epoch_and_changes_between_epochs():
    a = shard_batches(50, 2, 0, 5, seed=1, epoch=0)
    assert [x.tolist() for x in a] == [x.tolist() for x in shard_batches(50, 2, 0, 5, seed=1, epoch=0)]
    b = shard_batches(50, 2, 0, 5, seed=1, epoch=1)
    assert [x.tolist() for x in a] != [x.tolist() for x in b]
    assert epoch_seed(1, 0) != epoch_seed(1, 1) != epoch_seed(2, 1)


def test_batch_size_one_never_gives_an_empty_step():
    shares = [shard_batches(5, 2, r, 1, seed=0, epoch=0) for r in range(2)]
    assert len(shares[0]) == len(shares[1]) == 3 and all(len(b) == 1 for s in shares for b in s)


def test_fewer_items_than_ranks_is_an_error():
    with pytest.raises(ValueError, match="cannot be shared"):
        shard_batches(1, 2, 0, 4, seed=0, epoch=0)


@pytest.mark.parametrize("n,world,bs", [(10, 2, 3), (101, 3, 8), (64, 2, 16)])
def test_equal_sizes_gives_identical_shapes_and_disjoint_shares(n, world, bs):
    shares = [shard_batches(n, world, r, bs, seed=3, epoch=1, equal_sizes=True) for r in range(world)]
    sizes = {len(b) for s in shares for b in s}
    assert len(sizes) == 1 and sizes.pop() <= bs and len({len(s) for s in shares}) == 1
    flat = np.concatenate([b for s in shares for b in s])
    assert len(set(flat.tolist())) == len(flat)                     # disjoint
    assert len(flat) > n - world * (len(shares[0]) + 1) - world      # only a small remainder left out
