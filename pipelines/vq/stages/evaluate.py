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
from components.vq.sample_metrics import (acceptance_curve, assert_independent,
                                          classification_accuracy_score, frechet_distance)
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
    shapes = code_shapes(size, vq.levels, vq.cfg.downsample)
    if priors[-1].spec.n_classes:       # train_priors refuses unlabelled maps for class priors
        te = te[te.label >= 0]
    codes = codes_of(te, vq.levels, shapes)
    lab = torch.from_numpy(te.label.to_numpy(copy=True))
    total_bits = 0.0
    for l, p in enumerate(priors):
        upper = codes[l + 1] if l + 1 < len(priors) else None
        b = prior_bits_per_dim(p, codes[l], upper, lab if p.spec.n_classes else None)
        m[f"prior_bits_per_code_l{l}"] = b
        total_bits += b * shapes[l][0] * shapes[l][1]
    m["prior_bits_per_image"] = total_bits
    m["prior_bits_per_pixel_dim"] = total_bits / (size * size * xt.shape[1])

    # samples: the filter rejects, an independent scorer grades (never the same classifier)
    cls_art = ctx.input("train_classifier")
    info = cls_art.json("classifier")
    s = ctx.input("sample").df("samples")
    m["sample_count"] = len(s)
    m["samples_per_s"] = ctx.input("sample").manifest.get("stats", {}).get("samples_per_s")
    curve = []
    if info.get("trained"):
        xr, yr, _ = images_of(df, size, "train")
        curve = _sample_metrics(ctx, m, info, s, xt, yt, xr, yr)
    m = _finite(m)
    ctx.out.write_json("acceptance_curve", [_finite(r) for r in curve])
    if curve:
        _plot_curve(ctx.out.path("acceptance_curve.png"), curve)
    m = _finite(m)
    ctx.out.write_json("metrics", m)
    ctx.out.stats(**{k: v for k, v in m.items() if isinstance(v, (int, float)) and v is not None})
    ctx.log("test nmse %.4f, bottom perplexity %.1f, bits/code %s, acceptance %s",
            m["test_nmse"], m["test_perplexity_l0"],
            [round(m[f"prior_bits_per_code_l{l}"], 3) for l in range(vq.levels)], m.get("acceptance_rate"))
    for line in honest_lines(m):
        ctx.log("%s", line)


def honest_lines(m: dict) -> list[str]:
    """The sample metrics in a few console lines (judged by the scorer, never the filter)."""
    if m.get("fid_before") is None:
        return [f"{m.get('sample_count')} samples; no labels, so no classifier metrics"]
    f = lambda v, p=False: "n/a" if v is None else (f"{100 * v:.1f}%" if p else f"{v:.3g}")
    out = [f"samples {m['sample_count']} (real reference: {m.get('real_reference_count')} real training "
           f"images, scorer features, {m.get('fid_real_count')} real test images)",
           f"FID all {f(m.get('fid_before'))} | after rejection {f(m.get('fid_after'))} | real reference "
           f"{f(m.get('fid_real_reference'))}",
           f"precision/recall all {f(m.get('precision_before'))}/{f(m.get('recall_before'))} | after "
           f"{f(m.get('precision_after'))}/{f(m.get('recall_after'))} | real reference "
           f"{f(m.get('precision_real_reference'))}/{f(m.get('recall_real_reference'))}"]
    if m.get("acceptance_rate") is not None:
        out += [f"rejection at {m['rejection_threshold']}: kept {m['accepted_count']} "
                f"({f(m['acceptance_rate'], True)}); scorer accuracy {f(m.get('sample_accuracy_before'), True)} "
                f"-> {f(m.get('sample_accuracy_after'), True)} (scorer on real test images "
                f"{f(m.get('scorer_test_accuracy'), True)})",
                f"CAS all {f(m.get('cas_before'), True)} | after rejection {f(m.get('cas_after'), True)} | "
                f"real reference {f(m.get('cas_real_reference'), True)}",
                f"random subset of {m.get('control_count')} samples (control for the accepted set): FID "
                f"{f(m.get('fid_control'))}, precision/recall {f(m.get('precision_control'))}/"
                f"{f(m.get('recall_control'))}, CAS {f(m.get('cas_control'), True)}"]
    return out


def _sample_metrics(ctx, m: dict, info: dict, s, xt, yt, xr, yr) -> list[dict]:
    """Rejection with the filter; accuracy, acceptance curve, CAS, FID and precision / recall
    judged by the scorer (a classifier trained on the other half of the real images).

    Each sample metric also gets a *real-data reference* at the same count: as many real
    training images as there are samples (seeded draw), measured the same way (FID, precision /
    recall against the same test images; CAS of a classifier trained on them). That is the value
    a perfect generator would get at this sample size, i.e. the noise floor of the metric.
    """
    cfg = ctx.cfg
    ev = cfg.evaluate
    cls_art = ctx.input("train_classifier")
    filt, scorer = load_classifier(cls_art, "classifier"), load_classifier(cls_art, "scorer")
    assert_independent(filt, scorer)
    m.update(filter_test_accuracy=info["classifier"]["test_accuracy"],
             scorer_test_accuracy=info["scorer"]["test_accuracy"],
             filter_train_images=info["classifier"]["train_images"],
             scorer_train_images=info["scorer"]["train_images"])
    pix, _, _ = from_frame(s.assign(label=s.intended_label, image_id=s.sample_id))
    xs = to_model_input(pix, cfg.data.image_size)
    f_probs, _ = predict(filt, xs)
    s_probs, s_feats = predict(scorer, xs)
    real = xt[: ev.max_real]
    _, real_feats = predict(scorer, real)
    real_feats, s_feats = real_feats.numpy(), s_feats.numpy()
    m["fid_real_count"] = len(real_feats)
    m["fid_before"] = frechet_distance(real_feats, s_feats)
    pb, rb = precision_recall(real_feats, s_feats, ev.k)
    m.update(precision_before=pb, recall_before=rb)
    ref = torch.from_numpy(np.sort(np.random.default_rng(ctx.seed).permutation(len(xr))[: len(xs)]))
    _, ref_feats = predict(scorer, xr[ref])
    ref_feats = ref_feats.numpy()
    m["real_reference_count"] = len(ref)
    m["fid_real_reference"] = frechet_distance(real_feats, ref_feats)
    pr_, rr_ = precision_recall(real_feats, ref_feats, ev.k)
    m.update(precision_real_reference=pr_, recall_real_reference=rr_)
    intended = torch.from_numpy(s.intended_label.to_numpy(copy=True))
    if not (intended >= 0).all():        # unconditional samples: no intended class to check
        return []
    n_classes = int(f_probs.shape[1])
    r = reject(f_probs, intended, ev.threshold)
    correct = s_probs.argmax(1) == intended
    keep = r.keep
    m.update(rejection_threshold=ev.threshold, acceptance_rate=r.acceptance_rate,
             accepted_count=int(keep.sum()),
             sample_accuracy_before=float(correct.float().mean()),
             sample_accuracy_after=float(correct[keep].float().mean()) if keep.any() else float("nan"),
             filter_self_accuracy_after=r.accuracy_after)
    # every CAS classifier gets as many optimizer steps as the one on all samples (a smaller set
    # runs more epochs), so a small accepted set is not scored low merely for fewer updates
    bs = cfg.classifier.batch_size
    fit_kw = dict(width=cfg.classifier.width, epochs=cfg.classifier.epochs, batch_size=bs,
                  lr=cfg.classifier.lr, seed=ctx.seed,
                  steps=cfg.classifier.epochs * math.ceil(len(xs) / bs))
    m["cas_steps"] = fit_kw["steps"]
    m["cas_before"] = classification_accuracy_score(xs, intended, xt, yt, n_classes, **fit_kw)
    m["cas_real_reference"] = classification_accuracy_score(xr[ref], yr[ref], xt, yt, n_classes, **fit_kw)
    m["cas_after"] = (classification_accuracy_score(xs[keep], intended[keep], xt, yt, n_classes, **fit_kw)
                      if keep.sum() >= 2 else float("nan"))
    m["fid_after"] = frechet_distance(real_feats, s_feats[keep.numpy()])
    pa, ra = precision_recall(real_feats, s_feats[keep.numpy()], ev.k)
    m.update(precision_after=pa, recall_after=ra)
    # control: a random subset of all samples as large as the accepted set. FID and recall depend
    # on the count (fewer points: larger k-NN balls, noisier covariances), so "after rejection" is
    # compared with this, not with all samples, to see what the filter itself buys.
    ctrl = np.sort(np.random.default_rng(ctx.seed + 1).permutation(len(xs))[: int(keep.sum())])
    m["control_count"] = len(ctrl)
    m["fid_control"] = frechet_distance(real_feats, s_feats[ctrl])
    pc, rc = precision_recall(real_feats, s_feats[ctrl], ev.k) if len(ctrl) else (float("nan"),) * 2
    m.update(precision_control=pc, recall_control=rc)
    c = torch.from_numpy(ctrl)
    m["cas_control"] = (classification_accuracy_score(xs[c], intended[c], xt, yt, n_classes, **fit_kw)
                        if len(ctrl) >= 2 else float("nan"))
    kept = pix[keep.numpy()]
    if len(kept):
        save_grid(ctx.out.path("accepted.png"), kept[:100], ncol=10)
    return acceptance_curve(f_probs, intended, ev.curve_thresholds, s_probs)


def _plot_curve(path: str, curve: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [r["threshold"] for r in curve]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(t, [r["acceptance_rate"] for r in curve], "o-", label="acceptance rate (filter)")
    ax.plot(t, [r.get("scorer_accuracy") for r in curve], "s--", label="accuracy of kept (scorer)")
    ax.set_xlabel("threshold on p_filter(intended class)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
