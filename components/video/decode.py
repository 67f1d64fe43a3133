"""Video decoding: probing and integrity checks (PyAV), and frame reading with PyAV or torchcodec.

Public API
----------
* :func:`probe` — container metadata (fps, frame count, size, duration) as :class:`VideoInfo`;
  with ``verify=True`` it also demuxes every packet and decodes the first and last frames, so a
  truncated or corrupt file raises :class:`~components.errors.InputError` naming the reason.
* :func:`read_frames` — decode exactly the requested frame indices (any order, repeats allowed)
  to a ``uint8 [N, H, W, 3]`` RGB array, seeking to the keyframe before each far-apart group
  and using FFmpeg's frame/slice threading (``thread_type = "AUTO"``).
* :func:`read_all_frames` — every frame of a file (for flow extraction and short clips).
* :func:`write_video` — encode ``uint8 [T, H, W, 3]`` frames to an mp4 (H.264) file.
* :func:`resolve_backend` / :func:`torchcodec_status` — which decoder reads frames:
  ``read_frames`` and ``read_all_frames`` take ``backend="pyav"`` (always there) or
  ``"torchcodec"`` (PyTorch's decoder, used where it loads: it needs a torch build and FFmpeg
  libraries that match its wheel). ``resolve_backend("auto")`` picks torchcodec where it loads,
  because ``benchmarks/bench_video_decode.py`` measured it faster (docs/video.md), and PyAV
  otherwise. Both give the same frames at the source size, and resized frames equal within
  one level (both convert to RGB, then resize bilinearly); the backend is still part of a
  cache's identity (``decode.backend`` is resolved into the config).

Frame index ``i`` is the ``i``-th presented frame; it is mapped to and from the stream's
presentation timestamps through the average frame rate (constant-frame-rate assumption, which
holds for the datasets this project reads).
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Iterable, Sequence

import numpy as np

from components.errors import ConfigError, InputError

__all__ = ["BACKENDS", "VideoInfo", "check_backend", "probe", "read_frames", "read_all_frames",
           "resolve_backend", "torchcodec_status", "write_video"]

BACKENDS = ("pyav", "torchcodec")
_TC_STATUS: tuple[bool, str] | None = None


def torchcodec_status() -> tuple[bool, str]:
    """``(True, version)`` when torchcodec imports and loads its FFmpeg core here, else
    ``(False, reason)``. Checked once per process."""
    global _TC_STATUS
    if _TC_STATUS is None:
        try:
            import torchcodec
            from torchcodec.decoders import VideoDecoder  # noqa: F401  (loads the native core)

            _TC_STATUS = (True, str(getattr(torchcodec, "__version__", "?")))
        except Exception as exc:  # ImportError, or OSError/RuntimeError from a library that does not load
            _TC_STATUS = (False, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")
    return _TC_STATUS


def resolve_backend(name: str = "auto") -> str:
    """The decoder for ``name``: ``auto`` is torchcodec where it loads, else PyAV; ``torchcodec``
    where it does not load is a :class:`ConfigError` saying why and what to use instead."""
    if name == "pyav":
        return "pyav"
    if name not in ("auto", "torchcodec"):
        raise ConfigError(f"unknown decode backend {name!r}", param="backend",
                          fix=f"use auto or one of {list(BACKENDS)}")
    ok, info = torchcodec_status()
    if ok:
        return "torchcodec"
    if name == "torchcodec":
        raise ConfigError(f"torchcodec does not load here ({info})", param="backend",
                          fix="use auto or pyav, or install a torchcodec wheel that matches this torch "
                              "build and the system's FFmpeg libraries")
    return "pyav"


@dataclass(frozen=True)
class VideoInfo:
    """Metadata of the first video stream of a file."""

    fps: float
    num_frames: int
    width: int
    height: int
    duration: float
    codec: str

    def as_dict(self) -> dict:
        return asdict(self)


def _open(path: str):
    import av

    if not os.path.exists(path):
        raise InputError("file does not exist", path=path, fix="check the path in the index")
    try:
        container = av.open(path)
    except Exception as exc:  # av.error.* subclasses vary across FFmpeg builds
        raise InputError(f"unreadable container ({type(exc).__name__}: {exc})", path=path,
                         fix="the file is not a readable video; re-download or drop it") from exc
    if not container.streams.video:
        container.close()
        raise InputError("no video stream", path=path, fix="drop this file from the dataset")
    return container


def _stream_fps(stream) -> Fraction:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate or rate <= 0:
        return Fraction(25, 1)
    return Fraction(rate)


def probe(path: str, verify: bool = False) -> VideoInfo:
    """Read a file's metadata; with ``verify`` also check that it is complete and decodable.

    Verification demuxes all packets of the video stream (cheap, no decoding), compares their
    count with the frame count stored in the header, and decodes the first and the last
    frame. Raises :class:`InputError` with the reason (``truncated``, ``undecodable``, ...).
    """
    container = _open(path)
    try:
        stream = container.streams.video[0]
        fps = _stream_fps(stream)
        cc = stream.codec_context
        header_frames = int(stream.frames or 0)
        duration = 0.0
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        num_frames = header_frames or int(round(duration * float(fps)))
        width, height = int(cc.width), int(cc.height)
        if verify:
            num_frames = _verify(container, stream, path, header_frames)
            duration = num_frames / float(fps)
        if num_frames <= 0 or width <= 0 or height <= 0:
            raise InputError(f"empty video stream ({num_frames} frames, {width}x{height})", path=path,
                             fix="drop this file from the dataset")
        return VideoInfo(fps=float(fps), num_frames=num_frames, width=width, height=height,
                         duration=duration or num_frames / float(fps), codec=cc.name)
    finally:
        container.close()


def _verify(container, stream, path: str, header_frames: int) -> int:
    """Demux every packet, decode the first frame and the last GOP; return the readable frame count."""
    import av

    packets, last_key = 0, None
    try:
        for packet in container.demux(stream):
            if packet.size:
                packets += 1
                if packet.is_keyframe and packet.pts is not None:
                    last_key = packet.pts
    except av.error.FFmpegError as exc:
        raise InputError(f"truncated: demuxing failed after {packets} packets ({exc})", path=path,
                         fix="the file is incomplete; re-download or drop it") from exc
    if packets == 0:
        raise InputError("undecodable: no video packets", path=path, fix="drop this file")
    if header_frames and packets < header_frames:
        raise InputError(f"truncated: header declares {header_frames} frames but only {packets} "
                         "packets are readable", path=path, fix="the file is incomplete; re-download or drop it")
    # decode the first frame, then the last GOP (seek to its keyframe) up to the last frame
    try:
        container.seek(stream.start_time or 0, stream=stream, backward=True)
        if next(container.decode(stream), None) is None:
            raise InputError("undecodable: the first frame does not decode", path=path, fix="drop this file")
        if last_key is not None:
            container.seek(last_key, stream=stream, backward=True)
        tail = 0
        for _ in container.decode(stream):
            tail += 1
        if tail == 0:
            raise InputError("undecodable: the last frames do not decode", path=path, fix="drop this file")
    except av.error.FFmpegError as exc:
        raise InputError(f"undecodable: {type(exc).__name__}: {exc}", path=path,
                         fix="the file is corrupt; re-encode or drop it") from exc
    return packets


def _frame_index(frame, start_pts: int, time_base: Fraction, fps: Fraction) -> int:
    if frame.pts is None:
        return -1
    return int(round(float((frame.pts - start_pts) * time_base * fps)))


def _to_rgb(frame, size: tuple[int, int] | None) -> np.ndarray:
    """RGB at the source size, then (``size``) a bilinear resize of the RGB frame. Converting and
    resizing in one swscale call from YUV 4:2:0, as before, came out further from the resized
    original frames (mean |diff| 11.3 against 6.8 levels for 48 -> 36 px rendered clips), at
    0.62-0.67x the frames/s (benchmarks/bench_video_decode.py, resize section); the two steps
    also give torchcodec's resized frames."""
    rgb = frame.reformat(format="rgb24")
    if size is None:
        return rgb.to_ndarray()
    height, width = size
    return rgb.reformat(width=width, height=height, interpolation="BILINEAR").to_ndarray()


def read_frames(path: str, indices: Sequence[int] | np.ndarray, *, size: tuple[int, int] | None = None,
                threads: bool = True, seek_gap: int = 48, backend: str = "pyav") -> np.ndarray:
    """Decode the frames ``indices`` of ``path`` to a ``uint8 [len(indices), H, W, 3]`` array.

    ``size=(H, W)`` resizes the RGB frames in FFmpeg's scaler (bilinear). Indices may repeat and
    come in any order. Sorted unique indices are grouped; a gap larger than ``seek_gap`` frames
    starts a new group, and each group begins with a seek to the keyframe before its first
    frame, so reading a few frames from a long file does not decode the whole file.
    Raises :class:`InputError` if a requested frame is not in the file (truncated / too short).
    ``backend="torchcodec"``: torchcodec decodes the unique indices in one call (exact seeks,
    its own resize, one FFmpeg thread; see the module docstring).
    """
    import av

    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size == 0:
        raise InputError("no frame indices requested", path=path, fix="check the sampler")
    if idx.min() < 0:
        raise InputError(f"negative frame index {int(idx.min())}", path=path, fix="check the sampler")
    wanted = np.unique(idx)
    if backend == "torchcodec":
        # one FFmpeg thread: per-clip decoders are short-lived, and starting FFmpeg's threads for
        # each cost more than it saved (benchmarks/bench_video_decode.py, resized clips)
        dec = _tc_open(path, size, threads=False)
        if int(wanted[-1]) >= len(dec):
            raise InputError(f"truncated: frames {[int(i) for i in wanted[wanted >= len(dec)][:5]]} not found",
                             path=path, fix="the file is shorter than its index says; re-ingest it")
        frames = _tc_call(path, lambda: dec.get_frames_at(indices=wanted.tolist()))
        return frames[np.searchsorted(wanted, idx)]
    check_backend(backend)
    groups: list[list[int]] = [[int(wanted[0])]]
    for i in wanted[1:]:
        if i - groups[-1][-1] > seek_gap:
            groups.append([int(i)])
        else:
            groups[-1].append(int(i))

    got: dict[int, np.ndarray] = {}
    container = _open(path)
    try:
        stream = container.streams.video[0]
        if threads:
            stream.thread_type = "AUTO"
        fps = _stream_fps(stream)
        tb = stream.time_base or Fraction(1, 1_000_000)
        start_pts = stream.start_time or 0
        for group in groups:
            first, last = group[0], group[-1]
            need = set(group)
            target_pts = start_pts + int(first / fps / tb)
            if first > 0:
                container.seek(target_pts, stream=stream, backward=True, any_frame=False)
            else:
                container.seek(start_pts, stream=stream, backward=True, any_frame=False)
            counter = None
            try:
                for frame in container.decode(stream):
                    i = _frame_index(frame, start_pts, tb, fps)
                    if i < 0:  # no timestamps: count frames (valid only when we started at 0)
                        counter = 0 if counter is None else counter + 1
                        i = counter
                    if i in need:
                        got[i] = _to_rgb(frame, size)
                        need.discard(i)
                    if i >= last or not need:
                        break
            except av.error.FFmpegError as exc:
                raise InputError(f"undecodable while reading frame {first}..{last}: {exc}", path=path,
                                 fix="the file is corrupt; re-encode or drop it") from exc
            if need:
                raise InputError(f"truncated: frames {sorted(need)[:5]} not found", path=path,
                                 fix="the file is shorter than its index says; re-ingest it")
    finally:
        container.close()
    return np.stack([got[int(i)] for i in idx])


def read_all_frames(path: str, *, size: tuple[int, int] | None = None, threads: bool = True,
                    max_frames: int | None = None, backend: str = "pyav") -> np.ndarray:
    """Decode every frame (or the first ``max_frames``) to ``uint8 [T, H, W, 3]``."""
    import av

    if backend == "torchcodec":
        dec = _tc_open(path, size, threads)
        stop = len(dec) if max_frames is None else min(len(dec), max_frames)
        if stop <= 0:
            raise InputError("undecodable: no frames", path=path, fix="drop this file")
        return _tc_call(path, lambda: dec.get_frames_in_range(start=0, stop=stop))
    check_backend(backend)
    container = _open(path)
    out = []
    try:
        stream = container.streams.video[0]
        if threads:
            stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                out.append(_to_rgb(frame, size))
                if max_frames is not None and len(out) >= max_frames:
                    break
        except av.error.FFmpegError as exc:
            raise InputError(f"undecodable after {len(out)} frames: {exc}", path=path,
                             fix="the file is corrupt; re-encode or drop it") from exc
    finally:
        container.close()
    if not out:
        raise InputError("undecodable: no frames", path=path, fix="drop this file")
    return np.stack(out)


def check_backend(backend: str) -> None:
    """A :class:`ConfigError` (``param="backend"``) unless ``backend`` is one of :data:`BACKENDS`."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown decode backend {backend!r}", param="backend",
                          fix=f"use one of {list(BACKENDS)} (resolve 'auto' with resolve_backend)")


def _tc_open(path: str, size: tuple[int, int] | None, threads: bool):
    """A torchcodec decoder of ``path`` giving NHWC uint8 frames, resized to ``size=(H, W)``."""
    ok, info = torchcodec_status()
    if not ok:
        raise ConfigError(f"torchcodec does not load here ({info})", param="backend", fix="use pyav")
    from torchcodec.decoders import VideoDecoder
    from torchcodec.transforms import Resize

    if not os.path.exists(path):
        raise InputError("file does not exist", path=path, fix="check the path in the index")
    try:
        return VideoDecoder(path, dimension_order="NHWC", seek_mode="exact",
                            num_ffmpeg_threads=0 if threads else 1,
                            transforms=[Resize(size=list(size))] if size is not None else None)
    except Exception as exc:  # torchcodec raises RuntimeError / ValueError for unreadable files
        raise InputError(f"unreadable container ({type(exc).__name__}: {str(exc)[:200]})", path=path,
                         fix="the file is not a readable video; re-download or drop it") from exc


def _tc_call(path: str, fn) -> np.ndarray:
    try:
        return fn().data.numpy()
    except Exception as exc:
        raise InputError(f"undecodable ({type(exc).__name__}: {str(exc)[:200]})", path=path,
                         fix="the file is corrupt; re-encode or drop it") from exc


def write_video(path: str, frames: np.ndarray | Iterable[np.ndarray], fps: int = 25, *,
                codec: str = "libx264", crf: int = 18, gop: int = 16, faststart: bool = False) -> str:
    """Encode RGB ``uint8 [T, H, W, 3]`` frames (H, W even) into ``path``; returns ``path``.

    Written to a temporary name and renamed, so an interrupted write leaves no partial file.
    ``faststart`` puts the index (moov atom) before the data, so a truncated copy still opens.
    """
    import av

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise InputError(f"frames must be uint8 [T,H,W,3], got {frames.dtype} {frames.shape}", path=path)
    t, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise InputError(f"frame size {w}x{h} must be even for yuv420p", path=path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}.mp4"
    options = {"crf": str(crf), "preset": "veryfast"} if codec == "libx264" else {}
    container_opts = {"movflags": "faststart"} if faststart else {}
    with av.open(tmp, mode="w", format="mp4", options=container_opts) as container:
        stream = container.add_stream(codec, rate=fps, options=options)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.gop_size = gop
        for arr in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)
    return path
