"""VQ benchmarks (same run, same machine): VQ training images/s, the prior training step's CPU time
with the old loss path against `CausalPrior.nll`, and cached prior sampling against naive sampling
that recomputes the whole network *and* its conditioning at every position.

    python benchmarks/bench_vq.py [--quick]

Prints one line per measurement and the ratio fast / naive (target >= 5x for the bottom prior).
Untrained weights: sampling cost does not depend on the weights' values.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from components.vq.build import build_priors  # noqa: E402
from components.vq.sampling import ancestral_sample, sample_prior, sample_prior_naive  # noqa: E402
from components.vq.vqvae import HierarchicalVQVAE, VQVAESpec  # noqa: E402


def _images(n: int, size: int) -> torch.Tensor:
    path = "/usr/share/datasets/fashion-mnist"
    if os.path.isdir(path):
        from components.vq.data import load_images, to_model_input
        ds = load_images(path)
        return to_model_input(ds.images[:n], size)
    return torch.rand(n, 1, size, size) - 0.5


def bench_training(levels: int, steps: int, batch: int, hidden: int) -> float:
    torch.manual_seed(0)
    x = _images(batch * 4, 32)
    m = HierarchicalVQVAE(VQVAESpec(in_channels=1, hidden=hidden, res_channels=hidden // 2, n_res=2,
                                    num_codes=512, code_dim=32, levels=levels, ema=True))
    opt = torch.optim.Adam(m.parameters(), lr=2e-3)

    def step(i):
        xb = x[(i % 4) * batch:(i % 4 + 1) * batch]
        loss = m(xb).loss
        opt.zero_grad()
        loss.backward()
        opt.step()

    step(0)                                               # warm-up
    t0 = time.perf_counter()
    for i in range(steps):
        step(i + 1)
    return steps * batch / (time.perf_counter() - t0)


def bench_prior_step(steps: int, batch: int, small_batch: int = 16) -> dict[str, float]:
    """CPU-seconds per training step of the demo's priors (configs/vq/fashion.yaml: 14x14 bottom
    conditioned on 7x7 top codes, class-conditional, 40 channels, 4 + 4 layers, K = 512, random
    codes), interleaved in one process: the old loss path (``F.cross_entropy`` on the (B, K, H, W)
    logits) and ``CausalPrior.nll`` (flat head, fused cross-entropy; the same function) at
    ``batch``, and ``nll`` at ``small_batch`` (the demo's prior batch; per-step cost for the
    schedule's CPU budget, docs/vq.md "Prior schedule")."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    priors = build_priors(levels=2, num_codes=512, image_size=28, channels=40, layers=4, top_layers=4,
                          attn_every=2, heads=2, dropout=0.1, cond_res=1, n_classes=10, downsample=1)
    opt = torch.optim.Adam([p for m in priors for p in m.parameters()], lr=1e-4)
    data = {b: ([torch.randint(0, 512, (b, 14, 14)), torch.randint(0, 512, (b, 7, 7))],
                torch.randint(0, 10, (b,))) for b in (batch, small_batch)}
    old = lambda p, c, up, lab: F.cross_entropy(p(c, up, lab), c)
    new = lambda p, c, up, lab: p.nll(c, up, lab)
    cases = {f"old B{batch}": (old, batch), f"nll B{batch}": (new, batch),
             f"nll B{small_batch}": (new, small_batch)}
    cpu = {k: 0.0 for k in cases}

    def step(f, b):
        codes, labels = data[b]
        loss = f(priors[0], codes[0], codes[1], labels) + f(priors[1], codes[1], None, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for f, b in cases.values():                          # warm-up
        step(f, b)
    for _ in range(steps):
        for name, (f, b) in cases.items():
            reps = max(batch // b, 1)                    # as many images per timing as batch
            c0 = time.process_time()
            for _ in range(reps):
                step(f, b)
            cpu[name] += (time.process_time() - c0) / reps
    return {k: v / steps for k, v in cpu.items()}


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    q = args.quick
    hidden, steps, batch = (32, 5, 32) if q else (64, 20, 64)
    n = 16 if q else 64
    print(f"# bench_vq: torch {torch.__version__}, threads={args.threads}, quick={q}")
    for levels, name in ((1, "vqvae"), (2, "vqvae2")):
        ips = bench_training(levels, steps, batch, hidden)
        print(f"train {name:7s} hidden={hidden} batch={batch}: {ips:8.1f} images/s")

    c = bench_prior_step(3 if q else 10, 64)
    print("prior training step, demo shapes (14x14 + 7x7, 40 ch), CPU-s per step: "
          + ", ".join(f"{k} {v:.3f}" for k, v in c.items())
          + f"; old/nll at batch 64 {c['old B64'] / c['nll B64']:5.2f}x; "
          f"720 x B16 vs 200 x B64 old: {720 * c['nll B16'] / (200 * c['old B64']):5.2f}x CPU")

    torch.manual_seed(0)
    priors = build_priors(levels=2, num_codes=512, image_size=32, channels=64, layers=6, top_layers=4,
                          attn_every=2, heads=4, dropout=0.1, cond_res=2, n_classes=10)
    bottom, top = priors
    labels = torch.arange(n) % 10
    top_codes = torch.randint(0, 512, (n, 4, 4))
    for name, prior, cond in (("bottom 8x8 gated PixelCNN | top codes", bottom, top_codes),
                              ("top 4x4 PixelSNAIL-style", top, None)):
        fast, tf = _timed(lambda: sample_prior(prior, n, cond, labels, generator=torch.Generator().manual_seed(1)))
        slow, ts = _timed(lambda: sample_prior_naive(prior, n, cond, labels, generator=torch.Generator().manual_seed(1)))
        same = float((fast == slow).float().mean())
        print(f"prior {name}: cached {n / tf:8.1f} samples/s, naive {n / ts:8.1f} samples/s, "
              f"ratio {ts / tf:5.2f}x (identical codes: {same:.3f})")
    vq = HierarchicalVQVAE(VQVAESpec(in_channels=1, hidden=hidden, res_channels=hidden // 2, n_res=2,
                                     num_codes=512, code_dim=32, levels=2))
    (_, _), tf = _timed(lambda: ancestral_sample(vq, priors, n, labels, batch_size=n, seed=3))
    (_, _), ts = _timed(lambda: ancestral_sample(vq, priors, n, labels, batch_size=n, seed=3,
                                                 sampler=sample_prior_naive))
    print(f"ancestral vqvae2 (top + bottom + decode): cached {n / tf:8.1f} samples/s, "
          f"naive {n / ts:8.1f} samples/s, ratio {ts / tf:5.2f}x")


if __name__ == "__main__":
    main()
