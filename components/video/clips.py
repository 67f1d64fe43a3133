"""Cut model inputs from indexed videos: the bridge between the clip index and a model's inputs.

A model declares its inputs as ``{name: InputSpec}`` (``components.video.models``; each spec has
``channels``, ``frames``, ``layout`` ``BCTHW``/``BCHW``, ``modality`` ``rgb``/``flow``/``rgbdiff``).
:func:`plan_inputs` turns those into :class:`InputPlan` s at the run's budget (frames, crop
size), and :class:`ClipDataset` produces, for each index row, a ``dict`` of tensors:

* Time. ``sampling="dense"``: one window of ``T`` frames at stride ``tau`` (random start in
  training, ``temporal_views`` evenly spaced windows at test). A ``BCTHW`` input with ``n``
  frames takes every ``T/n``-th frame of the window (SlowFast's slow pathway), a ``BCHW``
  input the window's centre (single-frame / two-stream spatial stream). ``sampling="tsn"``:
  ``n`` TSN segments over the whole video (random offset in training, centre at test).
* Stacks. Each time step carries ``L = channels / per_frame`` consecutive frames of its
  modality: ``rgb`` (3 per frame), ``flow`` (``u, v`` interleaved per frame, as in the
  two-stream paper's flow stacking), ``rgbdiff`` (3 per frame).
  TSN models (``segments=K``) take their stacks along time instead: ``(C, K * n, H, W)``
  with the ``n = frames / K`` consecutive frames of each snippet in order.
* Space. Frames are decoded at ``resize x resize``; training takes a random ``size`` crop, test
  takes ``spatial_views`` crops (1 = centre, 3, 5; see :func:`samplers.spatial_crops`).

Flow comes from a cache (``flow_files``: video_id -> ``.npy`` of quantised ``uint8 [N-1, h, w, 2]``
at the same ``resize``, written by the flow stage) or is computed on the fly (``flow_method``).
Evaluation items have a leading view dimension ``V = temporal_views * spatial_views``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch

from components.errors import ConfigError
from components.video import samplers
from components.video.decode import read_all_frames, read_frames
from components.video.flow import compute_flow, dequantize_flow, rgb_difference
from components.video.transforms import crop, flow_to_tensor, rgb_to_tensor, rgbdiff_to_tensor

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
    """Model inputs + label for each row of a clip index (see the module docstring)."""

    def __init__(self, index: pd.DataFrame, plans: list[InputPlan], *, train: bool, stride: int = 1,
                 size: int = 32, resize: int = 36, sampling: str = "dense", temporal_views: int = 1,
                 spatial_views: int = 1, flow_files: Mapping[str, str] | None = None,
                 flow_method: str = "dis", flow_bound: float = 20.0, cache_frames: bool = False,
                 seed: int = 0):
        if sampling not in ("dense", "tsn"):
            raise ConfigError(f"sampling must be 'dense' or 'tsn', got {sampling!r}")
        if size > resize:
            raise ConfigError(f"crop size {size} is larger than the decoded size {resize}")
        self.rows = index.reset_index(drop=True).to_dict("records")
        self.plans, self.train, self.stride = plans, train, stride
        self.size, self.resize, self.sampling = size, resize, sampling
        self.temporal_views = 1 if train else temporal_views
        self.spatial_views = 1 if train else spatial_views
        self.flow_files = dict(flow_files or {})
        self.flow_method, self.flow_bound = flow_method, flow_bound
        self.cache_frames = cache_frames
        self._cache: dict[str, np.ndarray] = {}
        self.seed = seed
        self.epoch = 0
        self.window = max((p.steps for p in plans if p.layout == "BCTHW"), default=1)

    def set_epoch(self, epoch: int) -> None:
        """Change the training randomness (crops, offsets) per epoch, reproducibly."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.rows)

    # -- time ------------------------------------------------------------------------
    def _steps(self, plan: InputPlan, n: int, window: np.ndarray, rng) -> np.ndarray:
        """Start frame of each time step of ``plan`` (stack of ``plan.stack`` frames follows)."""
        extra = plan.stack - 1 + (plan.modality != "rgb")       # frames the stack needs after its start
        last_start = max(0, n - 1 - extra)
        if self.sampling == "tsn" and plan.layout == "BCTHW":
            idx = samplers.tsn_indices(n, plan.steps, new_length=extra + 1, train=self.train, rng=rng)[:, 0]
        elif plan.layout == "BCTHW":
            idx = window[:: len(window) // plan.steps][: plan.steps]
        else:
            idx = np.array([window[len(window) // 2] - (plan.stack // 2 if plan.stack > 1 else 0)])
        return np.clip(idx, 0, last_start)

    def _windows(self, n: int, rng) -> list[np.ndarray]:
        if self.sampling == "tsn" or self.temporal_views == 1:
            return [samplers.dense_indices(n, self.window, self.stride, train=self.train, rng=rng)]
        return list(samplers.dense_views(n, self.window, self.stride, self.temporal_views))

    # -- pixels ----------------------------------------------------------------------
    def _decode(self, row: dict, needed: np.ndarray) -> dict[int, np.ndarray]:
        n, start, key = int(row["num_frames"]), int(row["frame_start"]), str(row["video_id"])
        needed = np.unique(np.clip(needed, 0, n - 1))
        if self.cache_frames:
            if key not in self._cache:
                self._cache[key] = read_all_frames(row["path"], size=(self.resize, self.resize),
                                                   max_frames=start + n)[start:start + n]
            allf = self._cache[key]
            return {int(i): allf[min(int(i), len(allf) - 1)] for i in needed}
        arr = read_frames(row["path"], needed + start, size=(self.resize, self.resize))
        return dict(zip(needed.tolist(), arr))

    def _flow(self, row: dict, starts: np.ndarray, frames: dict[int, np.ndarray]) -> np.ndarray:
        """float flow ``[len(starts), h, w, 2]`` between frame i and i+1 for each start i."""
        n = int(row["num_frames"])
        path = self.flow_files.get(str(row["video_id"]))
        if path is not None:
            q = np.load(path, mmap_mode="r")
            return dequantize_flow(np.asarray(q[np.clip(starts, 0, len(q) - 1)]), self.flow_bound)
        out = []
        for i in starts:
            a, b = frames[int(min(i, n - 1))], frames[int(min(i + 1, n - 1))]
            out.append(compute_flow(np.stack([a, b]), self.flow_method)[0])
        return np.stack(out)

    def _item(self, row: dict, rng) -> dict[str, torch.Tensor]:
        n = int(row["num_frames"])
        views = []   # (per-plan step starts, window)
        for window in self._windows(n, rng):
            views.append({p.name: self._steps(p, n, window, rng) for p in self.plans})
        # frames needed (flow from cache needs none for the flow inputs themselves)
        needed = []
        for starts in views:
            for p in self.plans:
                if p.modality == "flow" and str(row["video_id"]) in self.flow_files:
                    continue
                extra = p.stack - 1 + (p.modality != "rgb")
                needed.append((starts[p.name][:, None] + np.arange(extra + 1)[None, :]).ravel())
        frames = self._decode(row, np.concatenate(needed)) if needed else {}
        if self.train:
            crops = [tuple(int(v) for v in rng.integers(0, self.resize - self.size + 1, 2))]
        else:
            crops = samplers.spatial_crops(self.resize, self.resize, self.size, self.spatial_views)
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
                for (y, x) in crops:
                    a = crop(arr, y, x, self.size)
                    t = (rgb_to_tensor(a) if p.modality == "rgb" else flow_to_tensor(a, self.flow_bound)
                         if p.modality == "flow" else rgbdiff_to_tensor(a))               # [c, steps*stack, h, w]
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

    def __getitem__(self, i: int) -> tuple[dict[str, torch.Tensor], int]:
        row = self.rows[i]
        rng = np.random.default_rng([self.seed, self.epoch, i]) if self.train else None
        return self._item(row, rng), int(row["label_id"])
