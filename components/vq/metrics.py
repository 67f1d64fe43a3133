"""Evaluation metrics: reconstruction MSE / NMSE, code usage, prior bits per dimension."""
from __future__ import annotations

import math

import torch

from components.vq.quantizer import usage_stats


@torch.no_grad()
def reconstruction_metrics(model, x: torch.Tensor, data_variance: float, batch_size: int = 256) -> dict:
    """MSE, NMSE (= MSE / data variance, DeepMind's normalised error) and per-level code usage."""
    model.eval()
    se, n = 0.0, 0
    counts = None
    for s in range(0, len(x), batch_size):
        xb = x[s:s + batch_size]
        out = model(xb)
        se += float(((out.recon - xb) ** 2).sum())
        n += xb.numel()
        c = [cc.detach() for cc in out.counts]
        counts = c if counts is None else [a + b for a, b in zip(counts, c)]
    mse = se / max(n, 1)
    res = {"mse": mse, "nmse": mse / data_variance if data_variance > 0 else float("nan")}
    for l, c in enumerate(counts or []):
        st = usage_stats(c)
        res[f"perplexity_l{l}"], res[f"codes_used_l{l}"] = st["perplexity"], st["codes_used"]
    return res


def nats_to_bits(nats: float) -> float:
    return nats / math.log(2.0)


@torch.no_grad()
def prior_bits_per_dim(prior, codes: torch.Tensor, cond_codes=None, labels=None, batch_size: int = 256) -> float:
    """Average negative log2-likelihood per code position (bits/dim of the latent map)."""
    prior.eval()
    tot, n = 0.0, 0
    for s in range(0, len(codes), batch_size):
        sl = slice(s, s + batch_size)
        nll = prior.nll(codes[sl], None if cond_codes is None else cond_codes[sl],
                        None if labels is None else labels[sl])
        tot += float(nll) * codes[sl].numel()
        n += codes[sl].numel()
    return nats_to_bits(tot / max(n, 1))
