"""Does MotionNet's unsupervised objective (and MotionNet trained on it) find the flow?

    python benchmarks/probe_motionnet.py [--clips 96] [--val 24] [--steps 600] [--every 100] [--threads 1]
    python benchmarks/probe_motionnet.py --smooth-beta-per-res 20     # the objective before the fix

On procedural motion clips as the motion demo feeds them (``render_clip`` at 48 px, 8 frames at
stride 2, resized to 36, centre crop 32, frames in [0, 1]) with OpenCV's DIS flow as reference:

1. The weighted objective pre-training minimises (``unsupervised_flow_losses``, pre-training
   weights), per term and per scale, at zero flow, at the DIS flow (area-resized to each scale,
   in pixels of that scale) and at a free flow field optimised directly on the objective
   (Adam, ``--free-steps``, one field per scale, started at zero).
   Measured on the ``--val`` held-out clips.
2. MotionNet (8 frames, ``--width``; ImageNet-normalised input, as in the pipeline) trained on
   that objective alone (AdamW ``--lr``, batch ``--batch``) on the other ``--clips`` clips; every
   ``--every`` steps: end-point error (EPE, px, full scale, mean over pixels) of its flow to DIS
   on the held-out clips, against the EPE of zero flow on the same clips.

Seeded (clips, init, batches); one thread by default. The numbers are a probe of whether the
objective and the network can learn flow here, not a benchmark of speed.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from components.video.flow import compute_flow  # noqa: E402
from components.video.models.motionnet import MotionNet, unsupervised_flow_losses  # noqa: E402
from components.video.motion import MOTION_CLASSES, render_clip  # noqa: E402
from components.video.transforms import NORMALIZATIONS  # noqa: E402

TERMS = ("photometric", "ssim", "smoothness")
#: --smooth-beta-per-res: the pre-fix smoothness (beta 20 r on flow in pixels of a scale of resolution r)
SMOOTH_BETA_PER_RES: float | None = None


def losses(frames, flows) -> dict:
    """``unsupervised_flow_losses`` (defaults), or with smoothness beta = SMOOTH_BETA_PER_RES x r per scale."""
    if SMOOTH_BETA_PER_RES is None:
        return unsupervised_flow_losses(frames, flows)
    out = {}
    for f in flows:
        r = f.shape[-1] / frames.shape[-1]
        for k, v in unsupervised_flow_losses(frames, [f], smooth_beta=SMOOTH_BETA_PER_RES * r).items():
            out[k] = out.get(k, 0.0) + v
    return out


def make_clips(n: int, seed: int = 0, frames: int = 8, stride: int = 2, resize: int = 36, crop: int = 32):
    """(clips (n, 3, T, crop, crop) in [0, 1], DIS flow (n, 2, T-1, crop, crop) in pixels)."""
    xs, fs = [], []
    for i in range(n):
        cls = MOTION_CLASSES[i % len(MOTION_CLASSES)]
        raw = render_clip(cls, size=48, num_frames=24, seed=seed * 100003 + i)
        start = (len(raw) - (frames - 1) * stride - 1) // 2
        sel = raw[start: start + (frames - 1) * stride + 1: stride]
        o = (resize - crop) // 2
        sel = np.stack([cv2.resize(f, (resize, resize), interpolation=cv2.INTER_AREA)[o:o + crop, o:o + crop]
                        for f in sel])
        xs.append(torch.from_numpy(sel).float().div(255).permute(3, 0, 1, 2))
        fs.append(torch.from_numpy(compute_flow(sel, "dis")).permute(3, 0, 1, 2))
    return torch.stack(xs), torch.stack(fs)


def pyramid(flow: torch.Tensor, sizes) -> list[torch.Tensor]:
    """Full-resolution flow (B, 2, P, H, W) -> one per size, area-resized, in pixels of that size."""
    b, _, p, h, w = flow.shape
    flat = flow.transpose(1, 2).reshape(b * p, 2, h, w)
    out = []
    for s in sizes:
        f = flat if s == w else F.interpolate(flat, size=(s, s), mode="area") * (s / w)
        out.append(f.view(b, p, 2, s, s).transpose(1, 2))
    return out


def per_scale(frames, flows) -> list[dict]:
    """The objective's terms at each scale separately (their sum over scales is the objective)."""
    return [{k: float(v) for k, v in losses(frames, [f]).items()} for f in flows]


def show(name: str, rows: list[dict], sizes) -> float:
    total = sum(sum(r.values()) for r in rows)
    cells = "  ".join(f"{s:>2}px " + "/".join(f"{r[k]:8.2f}" for k in TERMS) for s, r in zip(sizes, rows))
    print(f"  {name:<10} total {total:9.2f}   [photo/ssim/smooth] {cells}")
    return total


def normalise(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] clips -> what MotionNet sees in the pipeline (ImageNet normalisation, the demo's
    ``clip.normalize``); the losses stay on the [0, 1] frames (``HiddenTwoStream.unit_frames``)."""
    mean, std = (torch.tensor(v).view(1, 3, 1, 1, 1) for v in NORMALIZATIONS["imagenet"])
    return (x - mean) / std


def epe(flow: torch.Tensor, ref: torch.Tensor) -> float:
    return float((flow - ref).pow(2).sum(1).sqrt().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=96, help="training clips")
    ap.add_argument("--val", type=int, default=24, help="held-out clips")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--free-steps", type=int, default=200)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--smooth-beta-per-res", type=float, default=None,
                    help="the objective before the fix: smoothness beta = this x r (it was 20)")
    a = ap.parse_args()
    global SMOOTH_BETA_PER_RES
    SMOOTH_BETA_PER_RES = a.smooth_beta_per_res
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    t0 = time.process_time()
    x, dis = make_clips(a.clips + a.val, a.seed)
    tr, te, dte = x[: a.clips], x[a.clips:], dis[a.clips:]
    W = x.shape[-1]
    sizes = [W // 8, W // 4, W // 2, W]
    print(f"{a.clips} + {a.val} clips {tuple(x.shape[1:])}, DIS |flow| mean {float(dis.pow(2).sum(1).sqrt().mean()):.2f} px "
          f"(full scale); setup {time.process_time() - t0:.1f} s CPU")

    print(f"1. weighted objective on the {a.val} held-out clips, per scale:")
    zero = [torch.zeros_like(f) for f in pyramid(dte, sizes)]
    tz = show("zero", per_scale(te, zero), sizes)
    td = show("DIS", per_scale(te, pyramid(dte, sizes)), sizes)
    free = [torch.zeros_like(f, requires_grad=True) for f in zero]
    opt = torch.optim.Adam(free, lr=0.05)
    for _ in range(a.free_steps):
        loss = sum(losses(te, free).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    tf = show(f"free{a.free_steps}", per_scale(te, [f.detach() for f in free]), sizes)
    print(f"  DIS / zero {td / tz:.3f}, free / zero {tf / tz:.3f}; EPE to DIS (full scale): zero "
          f"{epe(torch.zeros_like(dte), dte):.3f}, free {epe(free[-1].detach(), dte):.3f}")

    print(f"2. MotionNet(frames {x.shape[2]}, width {a.width}), AdamW lr {a.lr}, batch {a.batch}, "
          f"{a.clips} training clips, EPE on the {a.val} held-out clips:")
    net = MotionNet(x.shape[2], a.width)
    opt = torch.optim.AdamW(net.parameters(), lr=a.lr)
    g = torch.Generator().manual_seed(a.seed)
    z_epe = epe(torch.zeros_like(dte), dte)
    t0 = time.process_time()
    for step in range(a.steps + 1):
        if step % a.every == 0:
            net.eval()
            with torch.no_grad():
                flows = net(normalise(te))
                obj = float(sum(losses(te, flows).values()))
            net.train()
            print(f"  step {step:5d}: EPE MotionNet {epe(flows[-1], dte):.3f} vs zero flow {z_epe:.3f} px; "
                  f"held-out objective {obj:.2f}; {time.process_time() - t0:.0f} s CPU", flush=True)
        if step == a.steps:
            break
        idx = torch.randint(0, len(tr), (a.batch,), generator=g)
        loss = sum(losses(tr[idx], net(normalise(tr[idx]))).values())
        opt.zero_grad()
        loss.backward()
        opt.step()


if __name__ == "__main__":
    main()
