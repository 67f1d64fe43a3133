import numpy as np
import pytest

from components.errors import InputError
from components.video.decode import probe, read_all_frames, read_frames, write_video


def test_probe_real_clips(bikes_path, carphone_path):
    b = probe(bikes_path, verify=True)
    assert (b.num_frames, b.width, b.height, round(b.fps)) == (250, 640, 272, 25)
    c = probe(carphone_path)
    assert (c.num_frames, c.width, c.height) == (120, 176, 144) and abs(c.fps - 29.97) < 0.01


def test_seek_aware_read_matches_sequential_decode(carphone_path):
    allf = read_all_frames(carphone_path, size=(36, 44))
    idx = [119, 0, 60, 61, 5, 60, 100]                # any order, repeats, far apart (seeks)
    got = read_frames(carphone_path, idx, size=(36, 44), seek_gap=8)
    assert got.shape == (7, 36, 44, 3)
    for k, i in enumerate(idx):
        assert np.array_equal(got[k], allf[i]), i
    same = read_frames(carphone_path, idx, size=(36, 44), threads=False)
    assert np.array_equal(same, got)


def test_write_and_read_back(tmp_path):
    rng = np.random.default_rng(0)
    frames = np.repeat(rng.integers(0, 255, (12, 1, 1, 3), dtype=np.uint8), 32, 1).repeat(32, 2)
    p = write_video(str(tmp_path / "a.mp4"), frames, fps=10)
    info = probe(p, verify=True)
    assert (info.num_frames, info.width, info.height, info.fps) == (12, 32, 32, 10.0)
    back = read_all_frames(p)
    assert np.abs(back.astype(int) - frames.astype(int)).mean() < 6   # lossy, but the same colours


def test_truncated_and_corrupt_files_are_rejected_with_reason(tmp_path):
    frames = np.random.default_rng(1).integers(0, 255, (30, 32, 32, 3), dtype=np.uint8)
    good = write_video(str(tmp_path / "good.mp4"), frames, faststart=True)
    data = open(good, "rb").read()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    probe(str(cut))                                         # the header alone looks fine ...
    with pytest.raises(InputError, match="truncated: header declares 30 frames"):
        probe(str(cut), verify=True)                        # ... verification finds the truth
    with pytest.raises(InputError, match="truncated: frames \\[29\\] not found"):
        read_frames(str(cut), [29])
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(InputError, match="unreadable container"):
        probe(str(junk))
    with pytest.raises(InputError, match="does not exist"):
        probe(str(tmp_path / "nope.mp4"))


def test_resized_frames_are_rgb_first_then_resized(tmp_path):
    """``size`` resizes the decoded RGB frame (bilinear): the frames equal that two-step result,
    and they are closer to the resized original than a one-step YUV -> RGB + resize was
    (benchmarks/bench_video_decode.py prints both)."""
    import av
    import cv2

    from components.video.motion import render_clip

    src = render_clip("rotate_cw", size=48, num_frames=10, seed=0)
    p = write_video(str(tmp_path / "m.mp4"), src, fps=12)
    got = read_frames(p, list(range(10)), size=(36, 36)).astype(int)
    full = read_frames(p, list(range(10)))
    two_step = np.stack([av.VideoFrame.from_ndarray(f, format="rgb24")
                         .reformat(width=36, height=36, interpolation="BILINEAR").to_ndarray() for f in full])
    assert np.array_equal(got, two_step)
    assert np.array_equal(read_all_frames(p, size=(36, 36)).astype(int), got)
    truth = np.stack([cv2.resize(f, (36, 36), interpolation=cv2.INTER_AREA) for f in src]).astype(int)
    with av.open(p) as c:
        one_step = np.stack([f.reformat(width=36, height=36, format="rgb24").to_ndarray()
                             for f in c.decode(video=0)]).astype(int)
    assert np.abs(got - truth).mean() < 0.75 * np.abs(one_step - truth).mean()
