"""Aspect-preserving decode, crops along the long side, scale jitter, flips, normalisation,
time-based (fps) sampling and the streaming / cached decode paths of ClipDataset."""
import numpy as np
import pytest
import torch

from components.errors import ConfigError
from components.video import samplers
from components.video.clips import ClipDataset, plan_inputs
from components.video.decode import read_frames, write_video
from components.video.index import build_index, scan_folder
from components.video.models.registry import InputSpec
from components.video.transforms import (NORMALIZATIONS, crop_resize, hflip, normalization_for, random_crop_box,
                                         rgb_to_tensor, short_side_size)


def _frames(t: int, h: int, w: int) -> np.ndarray:
    """Frames whose pixels encode the column (red), the row (green) and the frame index (blue)."""
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.zeros((t, h, w, 3), np.uint8)
    out[..., 0] = (xx * 255 // (w - 1))[None]
    out[..., 1] = (yy * 255 // (h - 1))[None]
    out[..., 2] = (np.arange(t) * 255 // max(t - 1, 1))[:, None, None]
    return out


@pytest.fixture(scope="module")
def wide_index(tmp_path_factory):
    """One class, one 48x96 (h x w) clip of 12 frames at 12 fps."""
    root = tmp_path_factory.mktemp("wide")
    write_video(str(root / "a" / "wide.mp4"), _frames(12, 48, 96), fps=12)
    idx, rej = build_index(scan_folder(str(root), val_fraction=0.0))
    assert rej.empty and (idx["width"].item(), idx["height"].item()) == (96, 48)
    return idx


def test_short_side_size_keeps_the_aspect_ratio():
    assert short_side_size(272, 640, 36) == (36, 85)          # bikes.mp4, landscape
    assert short_side_size(640, 272, 36) == (85, 36)          # portrait
    assert short_side_size(144, 176, 128) == (128, 156)
    assert short_side_size(50, 50, 20) == (20, 20)
    with pytest.raises(ConfigError):
        short_side_size(0, 10, 5)


def test_three_test_crops_run_along_the_long_side(wide_index):
    # decoded at short side 16 -> 16 x 32 (not squashed to 16 x 16); 16-px crops at x = 0, 8, 16
    assert samplers.spatial_crops(16, 32, 16, 3) == [(0, 0), (0, 8), (0, 16)]
    assert samplers.spatial_crops(32, 16, 16, 3) == [(0, 0), (8, 0), (16, 0)]
    plans = plan_inputs({"rgb": InputSpec(3, 4, 112)}, frames=4)
    ds = ClipDataset(wide_index, plans, train=False, stride=1, size=16, resize=16, spatial_views=3,
                     normalize="inception")
    assert ds.frame_size(ds.rows[0]) == (16, 32)
    x, _ = ds[0]
    assert x["rgb"].shape == (3, 3, 4, 16, 16)
    idx = ds.clip_views(ds.rows[0])[0]["rgb"]
    full = read_frames(wide_index["path"].item(), idx, size=(16, 32))           # [4, 16, 32, 3]
    for v, x0 in enumerate((0, 8, 16)):
        expect = rgb_to_tensor(full[:, :, x0:x0 + 16], *NORMALIZATIONS["inception"])
        assert torch.equal(x["rgb"][v], expect)
    # the red channel encodes the column: left crop < centre crop < right crop
    red = [float(x["rgb"][v, 0].mean()) for v in range(3)]
    assert red[0] < red[1] < red[2]


def test_five_crops_and_crop_larger_than_the_short_side(wide_index):
    five = samplers.spatial_crops(16, 32, 16, 5)
    assert sorted(five) == [(0, 0), (0, 0), (0, 8), (0, 16), (0, 16)]
    with pytest.raises(ConfigError):
        ClipDataset(wide_index, plan_inputs({"rgb": InputSpec(3, 4, 112)}, frames=4), train=False,
                    size=20, resize=16)


def test_scale_jitter_window_and_flow_rescaling():
    rng = np.random.default_rng(0)
    sides = set()
    for _ in range(200):
        y, x, side = random_crop_box(36, 80, 32, rng, scale=(36, 72))
        # short side s in [36, 72] -> window 32 * 36 / s in [16, 32]
        assert 16 <= side <= 32 and 0 <= y <= 36 - side and 0 <= x <= 80 - side
        sides.add(side)
    assert len(sides) > 8
    assert random_crop_box(36, 80, 32, rng)[2] == 32                 # no jitter: a plain crop
    flow = np.full((2, 40, 40, 2), 4.0, np.float32)
    half = crop_resize(flow, 0, 0, 40, 20, is_flow=True)
    assert half.shape == (2, 20, 20, 2) and np.allclose(half, 2.0)     # vectors shrink with the pixels
    with pytest.raises(ConfigError):
        random_crop_box(36, 80, 32, rng, scale=(30, 40))


def test_hflip_mirrors_and_negates_flow_u():
    f = np.arange(2 * 1 * 3 * 2, dtype=np.float32).reshape(2, 1, 3, 2)
    out = hflip(f, is_flow=True)
    assert np.array_equal(out[..., 1], f[:, :, ::-1, 1]) and np.array_equal(out[..., 0], -f[:, :, ::-1, 0])


def test_training_flips_only_when_enabled(wide_index):
    plans = plan_inputs({"rgb": InputSpec(3, 2, 112)}, frames=2)
    kw = dict(train=True, stride=1, size=16, resize=16, normalize="inception")
    on = ClipDataset(wide_index, plans, hflip=True, **kw)
    off = ClipDataset(wide_index, plans, **kw)
    flips = []
    for e in range(12):
        on.set_epoch(e)
        flips.append(on.crop_boxes(on.rows[0], on.item_rng(0))[0][3])
        off.set_epoch(e)
        assert not off.crop_boxes(off.rows[0], off.item_rng(0))[0][3]
    assert any(flips) and not all(flips)
    # a flipped item is the mirror of the same window without the flip
    e = flips.index(True)
    on.set_epoch(e)
    off.set_epoch(e)
    a, b = on[0][0]["rgb"], off[0][0]["rgb"]
    assert torch.equal(a, b.flip(-1))


def test_normalization_per_model_family():
    assert normalization_for("r3d_18", "resnet3d") == "kinetics_torchvision"
    assert normalization_for("i3d_r50", "resnet3d") == "kinetics_pytorchvideo"
    assert normalization_for("slowfast_r50_8x8", "slowfast") == "kinetics_pytorchvideo"
    assert normalization_for("x3d_xs", "x3d") == "kinetics_pytorchvideo"
    assert normalization_for("i3d", "inception3d") == "inception"
    assert normalization_for("tsn_rgb", "tsn") == "imagenet"
    assert normalization_for("two_stream", "two_stream") == "imagenet"
    white = np.full((1, 2, 2, 3), 255, np.uint8)
    t = rgb_to_tensor(white, *NORMALIZATIONS["inception"])
    assert torch.allclose(t, torch.ones_like(t))                      # [-1, 1] scaling
    m, s = NORMALIZATIONS["imagenet"]
    assert torch.allclose(rgb_to_tensor(white, m, s)[:, 0, 0, 0], torch.tensor([(1 - a) / b for a, b in zip(m, s)]))


def test_fps_step_and_fractional_stride():
    assert samplers.fps_step(2, 30.0, 15.0) == 4.0
    assert samplers.fps_step(1, 25.0, 10.0) == 2.5
    assert samplers.dense_indices(100, 4, 2.5, start=0).tolist() == [0, 3, 5, 8]     # round(k * 2.5)
    assert samplers.dense_indices(100, 4, 2.0).tolist() == samplers.dense_indices(100, 4, 2).tolist()
    v = samplers.dense_views(120, 4, 2.5, 3)
    assert v.shape == (3, 4) and (np.diff(v, axis=1) >= 2).all()
    with pytest.raises(ConfigError):
        samplers.fps_step(1, 0.0, 10.0)


def test_fps_sampling_covers_the_same_time_whatever_the_frame_rate(tmp_path):
    # the same 16 images as a 12 fps video and as a 24 fps video (each image shown twice)
    frames = _frames(16, 32, 32)
    write_video(str(tmp_path / "c" / "v12.mp4"), frames, fps=12)
    write_video(str(tmp_path / "c" / "v24.mp4"), np.repeat(frames, 2, axis=0), fps=24)
    idx, rej = build_index(scan_folder(str(tmp_path), val_fraction=0.0))
    assert rej.empty and sorted(idx["fps"].round().tolist()) == [12.0, 24.0]
    plans = plan_inputs({"rgb": InputSpec(3, 4, 112)}, frames=4)
    ds = ClipDataset(idx, plans, train=False, stride=2, size=32, resize=32, fps=6.0)
    by_fps = {round(r["fps"]): i for i, r in enumerate(ds.rows)}
    steps = {f: ds.step(ds.rows[i]) for f, i in by_fps.items()}
    assert steps == {12: 4.0, 24: 8.0}                                  # 2 frames at 6 fps = 1/3 s
    def images(x):   # blue encodes the source image index (0..15); the codec is lossy -> round
        level = (x[0, 2].mean((-1, -2)) * 0.225 + 0.45) * 255
        return torch.round(level * 15 / 255).int().tolist()

    a, b = images(ds[by_fps[12]][0]["rgb"]), images(ds[by_fps[24]][0]["rgb"])
    assert a == b and np.diff(a).tolist() == [4, 4, 4]          # the same images, 1/3 s = 4 images apart
    plain = ClipDataset(idx, plans, train=False, stride=2, size=32, resize=32)       # frame-based: differ
    pa_, pb = images(plain[by_fps[12]][0]["rgb"]), images(plain[by_fps[24]][0]["rgb"])
    assert np.diff(pa_).tolist() == [2, 2, 2] and np.diff(pb).tolist() == [1, 1, 1]


def test_streaming_is_the_default_and_equals_the_cache(motion_root):
    idx, _ = build_index(scan_folder(motion_root))
    plans = plan_inputs({"rgb": InputSpec(3, 4, 112)}, frames=4)
    stream = ClipDataset(idx, plans, train=True, size=24, resize=28, seed=2)
    cached = ClipDataset(idx, plans, train=True, size=24, resize=28, seed=2, cache_mb=1000)
    small = ClipDataset(idx, plans, train=True, size=24, resize=28, seed=2, cache_mb=cached.decoded_mb / 2)
    assert not stream.cache_frames and cached.cache_frames and not small.cache_frames
    for i in (0, 7):
        assert torch.equal(stream[i][0]["rgb"], cached[i][0]["rgb"])
    assert len(stream._cache) == 0 and len(cached._cache) == 2
