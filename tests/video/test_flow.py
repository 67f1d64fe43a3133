import numpy as np
import pytest

from components.video.decode import read_frames
from components.video.flow import compute_flow, dequantize_flow, quantize_flow, rgb_difference


def test_quantisation_round_trip():
    rng = np.random.default_rng(0)
    flow = rng.uniform(-30, 30, (3, 8, 8, 2)).astype(np.float32)
    q = quantize_flow(flow, bound=20)
    assert q.dtype == np.uint8
    back = dequantize_flow(q, bound=20)
    inside = np.abs(flow) <= 20
    assert np.abs(back - flow)[inside].max() <= 20 / 255 + 1e-5
    assert np.allclose(back[~inside], np.sign(flow[~inside]) * 20, atol=1e-4)
    assert quantize_flow(np.array([-20.0, 0.0, 20.0])).tolist() == [0, 128, 255]


@pytest.fixture(scope="module")
def bikes_pair(bikes_path):
    return read_frames(bikes_path, [100, 101], size=(54, 128))


@pytest.mark.parametrize("method", ["tvl1", "dis", "farneback"])
def test_flow_recovers_known_shift_on_real_frame(bikes_pair, method):
    frame = bikes_pair[0]
    shifted = np.roll(frame, (2, 3), axis=(0, 1))           # content moves 3 px right, 2 px down
    flow = compute_flow(np.stack([frame, shifted]), method)[0]
    inner = flow[10:-10, 12:-12]
    med = np.median(inner.reshape(-1, 2), axis=0)
    assert abs(med[0] - 3) < 0.5 and abs(med[1] - 2) < 0.5, med


def test_tvl1_and_dis_plausible_on_consecutive_real_frames(bikes_pair):
    a, b = bikes_pair
    g = lambda x: x.mean(-1)
    base = np.abs(g(b) - g(a))[8:-8, 8:-8].mean()
    errs = {}
    for method in ("tvl1", "dis"):
        f = compute_flow(bikes_pair, method)[0]
        assert np.isfinite(f).all() and np.percentile(np.abs(f), 99) < 20
        # warp b back to a along the flow: photometric error must drop below the no-motion error
        h, w = a.shape[:2]
        ys, xs = np.mgrid[0:h, 0:w]
        xb = np.clip(np.round(xs + f[..., 0]), 0, w - 1).astype(int)
        yb = np.clip(np.round(ys + f[..., 1]), 0, h - 1).astype(int)
        errs[method] = np.abs(g(b)[yb, xb] - g(a))[8:-8, 8:-8].mean()
    assert errs["tvl1"] < 0.8 * base and errs["dis"] < 0.8 * base, (errs, base)


def test_rgb_difference():
    f = np.zeros((3, 2, 2, 3), np.uint8)
    f[1] = 10
    f[2] = 5
    d = rgb_difference(f)
    assert d.shape == (2, 2, 2, 3) and d[0].max() == 10 and d[1].min() == -5
