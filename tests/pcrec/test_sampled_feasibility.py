"""The sampled protocol on small catalogues: never a crash after training, all negatives used."""
from __future__ import annotations

import numpy as np
import pytest

from components.errors import InputError
from components.pcrec.metrics import rank_sampled
from components.pcrec.negatives import PositiveSet, free_counts, sample_candidates


def _pos():
    # 6 items; user 0 likes 4 of them (2 negatives exist), user 1 likes 1 (5), user 2 none (6)
    u = np.array([0, 0, 0, 0, 1])
    i = np.array([0, 1, 2, 3, 5])
    return PositiveSet(u, i, 6)


def test_free_counts():
    np.testing.assert_array_equal(free_counts(np.array([0, 1, 2]), _pos()), [2, 5, 6])


def test_too_few_negatives_is_an_error_naming_the_count_unless_allowed():
    with pytest.raises(InputError, match="only 2 non-positive items, 4 sampled negatives"):
        sample_candidates(np.array([0, 1]), _pos(), 4, np.random.default_rng(0))


@pytest.mark.parametrize("n", [4, 9])          # 9 > the catalogue itself
def test_allow_fewer_takes_every_negative_that_exists(n):
    pos = _pos()
    users = np.array([0, 1, 2])
    c = sample_candidates(users, pos, n, np.random.default_rng(0), allow_fewer=True)
    assert c.shape == (3, n)
    for k, u in enumerate(users):
        real = c[k][c[k] >= 0]
        assert len(set(real)) == len(real) == min(n, free_counts(np.array([u]), pos)[0])
        assert not pos.contains(np.full(len(real), u), real).any()
    np.testing.assert_array_equal(sorted(c[0][c[0] >= 0]), [4, 5])     # all of user 0's negatives


def test_padding_never_counts_in_the_rank():
    U = np.ones((1, 1), np.float32)
    V = np.arange(6, dtype=np.float32)[:, None]       # score = item id
    cands = np.array([[4, 5, -1, -1]])
    assert rank_sampled(U, V, np.array([0]), np.array([3]), cands)[0] == 2   # 4 and 5 beat item 3
    assert rank_sampled(U, V, np.array([0]), np.array([5]), cands)[0] == 1   # the tie with itself
    assert rank_sampled(U, V, np.array([0]), np.array([5]), np.array([[4, -1, -1, -1]]))[0] == 0
