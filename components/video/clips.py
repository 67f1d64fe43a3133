"""Cut model inputs from indexed videos: the bridge between the clip index and a model's inputs.

A model declares its inputs as ``{name: InputSpec}`` (``components.video.models``; each spec has
``channels``, ``frames``, ``layout`` ``BCTHW``/``BCHW``, ``modality`` ``rgb``/``flow``/``rgbdiff``).
:func:`plan_inputs` turns those into :class:`InputPlan` s at the run's budget (frames, crop
size), and :class:`ClipDataset` produces, for each index row, a ``dict`` of tensors:

* Time. ``sampling="dense"``: one window of ``T`` frames at stride ``tau`` (random start in
  training, ``temporal_views`` evenly spaced windows at test). With ``fps`` the window lies on a
  time grid of ``fps`` frames per second (``tau`` counts grid frames; each video's own frame rate
  maps them to source frames, :func:`samplers.fps_step`). A ``BCTHW`` input with ``n``
  frames takes every ``T/n``-th frame of the window (SlowFast's slow pathway), a ``BCHW``
  input the window's centre (single-frame / two-stream spatial stream). ``sampling="tsn"``:
  ``n`` TSN segments over the whole video (random offset in training, centre at test, or
  ``tsn_snippets`` evenly spaced snippets scored one by one: the TSN 25-snippet test).
* Stacks. Each time step carries ``L = channels / per_frame`` consecutive frames of its
  modality: ``rgb`` (3 per frame), ``flow`` (``u, v`` interleaved per frame, as in the
  two-stream paper's flow stacking), ``rgbdiff`` (3 per frame).
  TSN models (``segments=K``) take their stacks along time instead: ``(C, K * n, H, W)``
  with the ``n = frames / K`` consecutive frames of each snippet in order.
* Space. Frames are decoded with their short side at ``resize`` (aspect ratio kept,
  :func:`transforms.short_side_size`). Training takes a random ``size`` crop, optionally after a
  short-side scale jitter (``scale``) and with random horizontal flips (``hflip``); test takes
  ``spatial_views`` crops (1 = centre, 3 along the long side, 5; :func:`samplers.spatial_crops`).
  RGB is normalised with the model family's statistics (``normalize``).
* Memory. Frames stream from disk per item (seek + decode of the needed frames) unless the
  whole index decodes to at most ``cache_mb`` MB; then each video is decoded once and kept.
* Randomness. Training draws come from ``(seed, epoch, crc32(video_id))``: the index's relative
  ids, so the same files give the same samples wherever they are stored.

Flow comes from a cache (``flow_files``: video_id -> ``.npy`` of quantised ``uint8 [N-1, h, w, 2]``
at the same decode size, written by the flow stage) or is computed on the fly (``flow_method``).
Evaluation items have a leading view dimension ``V = temporal_views * spatial_views``.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch

from components.errors import ConfigError, InputError
from components.video import samplers
from components.video.decode import check_backend, read_all_frames, read_frames
from components.video.flow import compute_flow, dequantize_flow, rgb_difference
from components.video.transforms import (NORMALIZATIONS, crop_resize, flow_to_tensor, hflip, random_crop_box,
                                         rgb_to_tensor, rgbdiff_to_tensor, short_side_size)

__all__ = ["InputPlan", "plan_inputs", "ClipDataset"]

_PER_FRAME = {"rgb": 3, "flow": 2, "rgbdiff": 3}


@dataclass(frozen=True)
class InputPlan:
    """One model input at the run's budget."""

    name: str
    modality: str      # rgb | flow | rgbdiff
    layout: str        # BCTHW | BCHW
    steps: int         # time steps (T of a clip, K TSN segments; 1 for BCHW)
    stack: int         # L consecutive frames per time step
    stack_axis: str = "channels"   # channels: (L*c, T, H, W); time: (c, T*L, H, W) (TSN)

    @property
    def channels(self) -> int:
        return self.stack * _PER_FRAME[self.modality]


def plan_inputs(inputs: Mapping[str, Any], frames: int | None = None,
                segments: int | None = None, snippet: int | None = None) -> list[InputPlan]:
    """Plans for a model's ``{name: InputSpec}`` with the densest clip input at ``frames`` frames.

    Other clip inputs keep their ratio to the densest one (SlowFast: slow = fast / alpha).
    ``frames=None`` keeps the published frame counts. ``segments=K`` (TSN) instead splits each
    clip input's ``frames`` into ``K`` snippets of ``snippet`` (default ``frames / K``)
    consecutive frames.
    """
    clip_specs = {k: s for k, s in inputs.items() if s.layout == "BCTHW"}
    densest = max((s.frames for s in clip_specs.values()), default=1)
    plans = []
    for name, s in inputs.items():
        if s.modality not in _PER_FRAME:
            raise ConfigError(f"input '{name}': unknown modality {s.modality!r}")
        per = _PER_FRAME[s.modality]
        if s.channels % per:
            raise ConfigError(f"input '{name}': {s.channels} channels is not a multiple of {per} ({s.modality})")
        steps = 1
        if segments and s.layout == "BCTHW":
            n = snippet or s.frames // segments
            if n < 1 or s.channels != per:
                raise ConfigError(f"input '{name}': {s.frames} frames x {s.channels} channels cannot be cut into "
                                  f"{segments} TSN segments")
            plans.append(InputPlan(name, s.modality, s.layout, segments, n, "time"))
            continue
        if s.layout == "BCTHW":
            if densest % s.frames:
                raise ConfigError(f"input '{name}': {s.frames} frames does not divide the densest input's {densest}")
            ratio = densest // s.frames
            steps = (frames // ratio if frames else s.frames)
            if steps < 1 or (frames and frames % ratio):
                raise ConfigError(f"frames={frames} must be a multiple of {ratio} for input '{name}'")
        elif s.layout != "BCHW":
            raise ConfigError(f"input '{name}': unknown layout {s.layout!r}")
        plans.append(InputPlan(name, s.modality, s.layout, steps, s.channels // per))
    return plans


class ClipDataset(torch.utils.data.Dataset):
    """Model inputs + label for each row of a clip index (see the module docstring).

    Args:
        index: clip index rows (``video_id, path, label_id, fps, num_frames, frame_start,
            width, height``; :data:`components.video.index.INDEX_COLUMNS`).
        plans: :func:`plan_inputs` of the model.
        train: random sampling/augmentation (seeded per ``(seed, epoch, video_id)``) or the
            deterministic test views.
        stride: ``tau`` between the frames of a dense window; in frames of the source video, or
            of the ``fps`` time grid when ``fps`` is given.
        size: square crop side fed to the model.
        resize: short side (pixels) frames are decoded at; the aspect ratio is kept.
        sampling: ``dense`` or ``tsn``.
        temporal_views, spatial_views: test views (clips x crops; 1, 3 along the long side, or 5).
        flow_files: ``video_id -> .npy`` of the flow cache; other clips get flow on the fly.
        flow_method, flow_bound: on-the-fly flow estimator and the flow clipping bound.
        cache_mb: decoded videos stay in memory when the whole index decodes to at most this
            many MB (estimated from ``num_frames x h x w x 3`` at the decode size); otherwise every
            item streams its frames from disk (``read_frames``). 0 = always stream.
        seed: run seed.
        fps: sample dense windows on a time grid of ``fps`` frames per second (each video's own
            frame rate converts it to source frames); None = on the source frames.
        scale: training short-side scale jitter ``(lo, hi)`` in pixels (``size <= lo <= hi``);
            None = a plain random crop of the decoded frame.
        hflip: random horizontal flips in training (off: a flip changes direction classes).
        normalize: a :data:`~components.video.transforms.NORMALIZATIONS` key for RGB inputs.
        tsn_snippets: TSN test protocol: score ``tsn_snippets`` evenly spaced snippets one by
            one (each view feeds one snippet to all K segment slots) instead of the K centres.
        backend: frame decoder, ``pyav`` or ``torchcodec``
            (:func:`components.video.decode.resolve_backend` turns ``auto`` into one of them).
    """

    def __init__(self, index: pd.DataFrame, plans: list[InputPlan], *, train: bool, stride: int = 1,
                 size: int = 32, resize: int = 36, sampling: str = "dense", temporal_views: int = 1,
                 spatial_views: int = 1, flow_files: Mapping[str, str] | None = None,
                 flow_method: str = "dis", flow_bound: float = 20.0, cache_mb: float = 0.0,
                 seed: int = 0, fps: float | None = None, scale: tuple[int, int] | None = None,
                 hflip: bool = False, normalize: str = "kinetics_pytorchvideo",
                 tsn_snippets: int | None = None, backend: str = "pyav"):
        if sampling not in ("dense", "tsn"):
            raise ConfigError(f"sampling must be 'dense' or 'tsn', got {sampling!r}")
        if size > resize:
            raise ConfigError(f"crop size {size} is larger than the decoded short side {resize}")
        if normalize not in NORMALIZATIONS:
            raise ConfigError(f"normalize must be one of {sorted(NORMALIZATIONS)}, got {normalize!r}")
        if fps is not None and fps <= 0:
            raise ConfigError(f"fps must be > 0, got {fps}")
        if scale is not None and not (size <= scale[0] <= scale[1]):
            raise ConfigError(f"scale {tuple(scale)} must satisfy size ({size}) <= lo <= hi")
        if tsn_snippets is not None and tsn_snippets < 1:
            raise ConfigError(f"tsn_snippets must be >= 1, got {tsn_snippets}")
        check_backend(backend)
        self.backend = backend
        self.rows = index.reset_index(drop=True).to_dict("records")
        self.plans, self.train, self.stride = plans, train, stride
        self.size, self.resize, self.sampling = size, resize, sampling
        self.temporal_views = 1 if train else temporal_views
        self.spatial_views = 1 if train else spatial_views
        self.flow_files = dict(flow_files or {})
        self.flow_method, self.flow_bound = flow_method, flow_bound
        self.fps, self.scale, self.hflip = fps, (tuple(scale) if scale is not None else None), hflip
        self.mean, self.std = NORMALIZATIONS[normalize]
        self.tsn_snippets = None if train else tsn_snippets
        self.decoded_mb = sum(int(r["num_frames"]) * int(np.prod(self.frame_size(r))) * 3
                              for r in self.rows) / 1e6
        self.cache_frames = cache_mb > 0 and self.decoded_mb <= cache_mb
        self._cache: dict[str, np.ndarray] = {}
        self.seed = seed
        self.epoch = 0
        self.window = max((p.steps for p in plans if p.layout == "BCTHW"), default=1)
        # per-item seeds from the relative video id, never from a position or an absolute path
        self._keys = [zlib.crc32(str(r["video_id"]).encode()) for r in self.rows]

    def set_epoch(self, epoch: int) -> None:
        """Change the training randomness (crops, offsets, flips) per epoch, reproducibly."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.rows)

    def frame_size(self, row: Mapping) -> tuple[int, int]:
        """``(h, w)`` a row's frames are decoded at: short side ``resize``, aspect ratio kept."""
        return short_side_size(int(row["height"]), int(row["width"]), self.resize)

    def step(self, row: Mapping) -> float:
        """Source frames between two frames of a dense window (``stride``, at ``fps`` if set)."""
        if self.fps is None:
            return float(self.stride)
        return samplers.fps_step(self.stride, float(row["fps"]), self.fps)

    # -- time ------------------------------------------------------------------------
    @staticmethod
    def _extra(plan: InputPlan) -> int:
        """Frames a stack needs after its start frame (flow / rgbdiff pairs need one more)."""
        return plan.stack - 1 + (plan.modality != "rgb")

    def _steps(self, plan: InputPlan, n: int, window: np.ndarray, rng) -> np.ndarray:
        """Start frame of each time step of ``plan`` (stack of ``plan.stack`` frames follows)."""
        last_start = max(0, n - 1 - self._extra(plan))
        if self.sampling == "tsn" and plan.layout == "BCTHW":
            idx = samplers.tsn_indices(n, plan.steps, new_length=self._extra(plan) + 1, train=self.train,
                                       rng=rng)[:, 0]
        elif plan.layout == "BCTHW":
            idx = window[:: len(window) // plan.steps][: plan.steps]
        else:
            idx = np.array([window[len(window) // 2] - (plan.stack // 2 if plan.stack > 1 else 0)])
        return np.clip(idx, 0, last_start)

    def clip_views(self, row: Mapping, rng=None) -> list[dict[str, np.ndarray]]:
        """Per view, ``{plan name: start frame of each time step}`` (relative to ``frame_start``)."""
        n = int(row["num_frames"])
        if self.sampling == "tsn" and self.tsn_snippets:
            views = []
            starts = {p.name: samplers.tsn_indices(n, self.tsn_snippets, new_length=self._extra(p) + 1)[:, 0]
                      for p in self.plans}
            for v in range(self.tsn_snippets):
                views.append({p.name: np.full(p.steps, starts[p.name][v], dtype=np.int64) for p in self.plans})
            return views
        step = self.step(row)
        if self.sampling == "tsn" or self.temporal_views == 1:
            windows = [samplers.dense_indices(n, self.window, step, train=self.train, rng=rng)]
        else:
            windows = list(samplers.dense_views(n, self.window, step, self.temporal_views))
        return [{p.name: self._steps(p, n, w, rng) for p in self.plans} for w in windows]

    # -- pixels ----------------------------------------------------------------------
    def _decode(self, row: dict, needed: np.ndarray) -> dict[int, np.ndarray]:
        n, start, key = int(row["num_frames"]), int(row["frame_start"]), str(row["video_id"])
        needed = np.unique(np.clip(needed, 0, n - 1))
        size = self.frame_size(row)
        if self.cache_frames:
            if key not in self._cache:
                self._cache[key] = read_all_frames(row["path"], size=size, max_frames=start + n,
                                                   backend=self.backend)[start:start + n]
            allf = self._cache[key]
            return {int(i): allf[min(int(i), len(allf) - 1)] for i in needed}
        arr = read_frames(row["path"], needed + start, size=size, backend=self.backend)
        return dict(zip(needed.tolist(), arr))

    def _flow(self, row: dict, starts: np.ndarray, frames: dict[int, np.ndarray]) -> np.ndarray:
        """float flow ``[len(starts), h, w, 2]`` between frame i and i+1 for each start i."""
        n = int(row["num_frames"])
        path = self.flow_files.get(str(row["video_id"]))
        if path is not None:
            q = np.load(path, mmap_mode="r")
            if tuple(q.shape[1:3]) != self.frame_size(row):
                raise InputError(f"cached flow is {q.shape[1]}x{q.shape[2]} but frames decode at "
                                 f"{self.frame_size(row)[0]}x{self.frame_size(row)[1]}", path=path,
                                 fix="recompute the flow cache at the same short side (resize)")
            return dequantize_flow(np.asarray(q[np.clip(starts, 0, len(q) - 1)]), self.flow_bound)
        out = []
        for i in starts:
            a, b = frames[int(min(i, n - 1))], frames[int(min(i + 1, n - 1))]
            out.append(compute_flow(np.stack([a, b]), self.flow_method)[0])
        return np.stack(out)

    def crop_boxes(self, row: Mapping, rng=None) -> list[tuple[int, int, int, bool]]:
        """``(y, x, side, flip)`` windows of the decoded frame: one random box (scale jitter,
        flip) in training, the ``spatial_views`` test crops (side = ``size``) otherwise."""
        h, w = self.frame_size(row)
        if self.train:
            y, x, side = random_crop_box(h, w, self.size, rng, self.scale)
            flip = bool(self.hflip and rng.random() < 0.5)
            return [(y, x, side, flip)]
        return [(y, x, self.size, False) for y, x in samplers.spatial_crops(h, w, self.size, self.spatial_views)]

    def _item(self, row: dict, rng) -> dict[str, torch.Tensor]:
        n = int(row["num_frames"])
        views = self.clip_views(row, rng)
        # frames needed (flow from cache needs none for the flow inputs themselves)
        needed = []
        for starts in views:
            for p in self.plans:
                if p.modality == "flow" and str(row["video_id"]) in self.flow_files:
                    continue
                needed.append((starts[p.name][:, None] + np.arange(self._extra(p) + 1)[None, :]).ravel())
        frames = self._decode(row, np.concatenate(needed)) if needed else {}
        boxes = self.crop_boxes(row, rng)
        out: dict[str, list[torch.Tensor]] = {p.name: [] for p in self.plans}
        for starts in views:
            for p in self.plans:
                s = starts[p.name]
                seq = (s[:, None] + np.arange(p.stack)[None, :]).ravel()          # [steps*stack]
                if p.modality == "rgb":
                    arr = np.stack([frames[int(min(i, n - 1))] for i in seq])
                elif p.modality == "flow":
                    arr = self._flow(row, seq, frames)
                else:
                    pairs = np.stack([np.stack([frames[int(min(i, n - 1))], frames[int(min(i + 1, n - 1))]])
                                      for i in seq])
                    arr = np.concatenate([rgb_difference(pr) for pr in pairs])
                for (y, x, side, flip) in boxes:
                    a = crop_resize(arr, y, x, side, self.size, is_flow=p.modality == "flow")
                    if flip:
                        a = hflip(a, is_flow=p.modality == "flow")
                    t = (rgb_to_tensor(a, self.mean, self.std) if p.modality == "rgb"
                         else flow_to_tensor(a, self.flow_bound) if p.modality == "flow"
                         else rgbdiff_to_tensor(a))                                          # [c, steps*stack, h, w]
                    c = t.shape[0]
                    if p.stack_axis == "time":
                        out[p.name].append(t)
                        continue
                    # stack -> channels: [c, steps, stack, h, w] -> [steps, stack, c] order in channels
                    t = t.view(c, p.steps, p.stack, self.size, self.size).permute(2, 0, 1, 3, 4)
                    t = t.reshape(p.stack * c, p.steps, self.size, self.size)
                    out[p.name].append(t[:, 0] if p.layout == "BCHW" else t)
        if self.train:
            return {k: v[0] for k, v in out.items()}
        return {k: torch.stack(v) for k, v in out.items()}

    def item_rng(self, i: int) -> np.random.Generator | None:
        """The training randomness of item ``i`` this epoch (None at test)."""
        if not self.train:
            return None
        return np.random.default_rng([self.seed & 0xFFFFFFFF, self.epoch, self._keys[i]])

    def __getitem__(self, i: int) -> tuple[dict[str, torch.Tensor], int]:
        row = self.rows[i]
        return self._item(row, self.item_rng(i)), int(row["label_id"])
