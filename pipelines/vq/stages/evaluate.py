"""evaluate: reconstruction, code usage, prior bits/dim, classifier accuracy, rejection, PR."""
from __future__ import annotations

import math

import numpy as np
import torch

from components.vq.build import code_shapes
from components.vq.data import from_frame, from_model_output, to_model_input
from components.vq.grid import save_grid
from components.vq.metrics import prior_bits_per_dim, reconstruction_metrics
from components.vq.rejection import precision_recall, predict, reject
from pipelines.vq.stages.classifier import load_classifier
from pipelines.vq.stages.common import codes_of, images_of, load_priors, load_vqvae
from pipelines.core.train import load_state


def _finite(d: dict) -> dict:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}


def run_evaluate(ctx) -> None:
    cfg = ctx.cfg
    size = cfg.data.image_size
    df = ctx.input("ingest").df("images")
    vq_blob = ctx.input("train_vq")
    vq = load_vqvae(vq_blob)
    var = float(load_state(vq_blob.path("model.pt"))["data_variance"])
    xt, yt, _ = images_of(df, size, "test")
    m: dict = {"model": cfg.model, "levels": vq.levels, "ema": cfg.vq.ema,
               "num_codes": vq.cfg.num_codes, "test_images": len(xt)}
    m.update({f"test_{k}": v for k, v in reconstruction_metrics(vq, xt, var).items()})
    with torch.no_grad():
        rec = vq(xt[:10]).recon
    save_grid(ctx.out.path("reconstructions.png"),
              np.concatenate([from_model_output(xt[:10]), from_model_output(rec)]), ncol=10)

    # prior NLL on held-out codes
    priors = load_priors(ctx.input("train_priors"))
    cdf = ctx.input("extract_codes").df("codes")
    te = cdf[cdf.split == "test"]
    shapes = code_shapes(size, vq.levels)
    codes = codes_of(te, vq.levels, shapes)
    lab = torch.from_numpy(te.label.to_numpy(copy=True)).clamp_min(0)
    total_bits = 0.0
    for l, p in enumerate(priors):
        upper = codes[l + 1] if l + 1 < len(priors) else None
        b = prior_bits_per_dim(p, codes[l], upper, lab if p.spec.n_classes else None)
        m[f"prior_bits_per_code_l{l}"] = b
        total_bits += b * shapes[l][0] * shapes[l][1]
    m["prior_bits_per_image"] = total_bits
    m["prior_bits_per_pixel_dim"] = total_bits / (size * size * xt.shape[1])

    # classifier on real and generated images, rejection sampling, precision / recall
    cls_art = ctx.input("train_classifier")
    info = cls_art.json("classifier")
    s = ctx.input("sample").df("samples")
    m["sample_count"] = len(s)
    m["samples_per_s"] = ctx.input("sample").manifest.get("stats", {}).get("samples_per_s")
    if info.get("trained"):
        clf = load_classifier(cls_art)
        m["classifier_test_accuracy"] = info["test_accuracy"]
        pix, _, _ = from_frame(s.assign(label=s.intended_label, image_id=s.sample_id))
        xs = to_model_input(pix, size)
        probs, feats = predict(clf, xs)
        _, real_feats = predict(clf, xt[: cfg.evaluate.max_real])
        intended = torch.from_numpy(s.intended_label.to_numpy(copy=True))
        if (intended >= 0).all():
            r = reject(probs, intended, cfg.evaluate.threshold)
            m.update(rejection_threshold=cfg.evaluate.threshold, acceptance_rate=r.acceptance_rate,
                     sample_accuracy_before=r.accuracy_before, sample_accuracy_after=r.accuracy_after)
            pb, rb = precision_recall(real_feats.numpy(), feats.numpy(), cfg.evaluate.k)
            pa, ra = precision_recall(real_feats.numpy(), feats[r.keep].numpy(), cfg.evaluate.k)
            m.update(precision_before=pb, recall_before=rb, precision_after=pa, recall_after=ra)
            kept = pix[r.keep.numpy()]
            if len(kept):
                save_grid(ctx.out.path("accepted.png"), kept[:100], ncol=10)
        else:
            pb, rb = precision_recall(real_feats.numpy(), feats.numpy(), cfg.evaluate.k)
            m.update(precision_before=pb, recall_before=rb)
    m = _finite(m)
    ctx.out.write_json("metrics", m)
    ctx.out.stats(**{k: v for k, v in m.items() if isinstance(v, (int, float)) and v is not None})
    ctx.log("test nmse %.4f, bottom perplexity %.1f, bits/code %s, acceptance %s",
            m["test_nmse"], m["test_perplexity_l0"],
            [round(m[f"prior_bits_per_code_l{l}"], 3) for l in range(vq.levels)], m.get("acceptance_rate"))
