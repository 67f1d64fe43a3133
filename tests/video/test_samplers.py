import numpy as np
import pytest

from components.errors import ConfigError
from components.video import samplers


def test_dense_centre_and_random_start():
    # 100 frames, 8 at stride 4 -> span 29, slack 71, centre start 35
    idx = samplers.dense_indices(100, 8, 4)
    assert idx.tolist() == [35 + 4 * i for i in range(8)]
    starts = {int(samplers.dense_indices(100, 8, 4, train=True, rng=s)[0]) for s in range(50)}
    assert min(starts) >= 0 and max(starts) <= 71 and len(starts) > 10
    for s in range(20):
        d = np.diff(samplers.dense_indices(100, 8, 4, train=True, rng=s))
        assert (d == 4).all()


def test_dense_short_video_clamps_to_last_frame():
    idx = samplers.dense_indices(5, 4, 2)
    assert idx.tolist() == [0, 2, 4, 4]


def test_multi_view_clips_are_evenly_spread():
    v = samplers.dense_views(120, 8, 2, 3)         # span 15
    assert v.shape == (3, 8)
    assert v[:, 0].tolist() == [12, 52, 92]          # floor(centre - span / 2), centres 20, 60, 100
    assert (np.diff(v, axis=1) == 2).all()
    assert samplers.multi_clip_starts(10, 15, 4).tolist() == [0, 0, 0, 0]


def test_tsn_segments_train_and_test():
    test = samplers.tsn_indices(90, 3)               # segments [0,30),[30,60),[60,90) -> centres
    assert test[:, 0].tolist() == [15, 45, 75]
    for s in range(30):
        tr = samplers.tsn_indices(90, 3, train=True, rng=s)[:, 0]
        assert 0 <= tr[0] < 30 <= tr[1] < 60 <= tr[2] < 90
    stack = samplers.tsn_indices(90, 3, new_length=5)
    assert stack.shape == (3, 5) and (np.diff(stack, axis=1) == 1).all() and stack.max() <= 89


def test_slowfast_pathways_align():
    slow, fast = samplers.slowfast_indices(200, 4, 16, 8)
    assert len(fast) == 32 and len(slow) == 4
    assert (np.diff(fast) == 2).all() and (np.diff(slow) == 16).all()
    assert slow.tolist() == fast[::8].tolist()
    with pytest.raises(ConfigError, match="multiple of alpha"):
        samplers.slowfast_indices(200, 4, 6, 4)


def test_spatial_crops():
    assert samplers.spatial_crops(36, 36, 32, 1) == [(2, 2)]
    assert samplers.spatial_crops(40, 60, 32, 3) == [(4, 0), (4, 14), (4, 28)]
    five = samplers.spatial_crops(36, 36, 32, 5)
    assert (0, 0) in five and (4, 4) in five and (2, 2) in five
    with pytest.raises(ConfigError):
        samplers.spatial_crops(36, 36, 40, 1)
