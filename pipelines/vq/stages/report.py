"""report: report.md with the metrics, training curves and the image grids."""
from __future__ import annotations

import shutil

from components.errors import InputError


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "n/a" if v is None else str(v)


def _md_table(df) -> str:
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    sep = "| " + " | ".join("---" for _ in df.columns) + " |"
    rows = ["| " + " | ".join(_fmt(v.item() if hasattr(v, "item") else v) for v in r) + " |"
            for r in df.itertuples(index=False)]
    return "\n".join([head, sep, *rows])


def run_report(ctx) -> None:
    m = ctx.input("evaluate").json("metrics")
    vq_hist = ctx.input("train_vq").df("history")
    pr_hist = ctx.input("train_priors").df("history")
    copied = set()
    for art, name in ((ctx.input("sample"), "samples.png"), (ctx.input("evaluate"), "reconstructions.png"),
                      (ctx.input("evaluate"), "accepted.png"), (ctx.input("evaluate"), "acceptance_curve.png")):
        try:
            shutil.copyfile(art.path(name), ctx.out.path(name))
            copied.add(name)
        except InputError:          # e.g. no sample passed the rejection threshold
            pass
    L = m["levels"]
    lines = [f"# VQ report: {m['model']} ({L} level{'s' if L > 1 else ''}, K={m['num_codes']}, "
             f"{'EMA' if m['ema'] else 'loss-based'} codebook)", "",
             "## Metrics (held-out test images)", "", "| metric | value |", "| --- | --- |"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in m.items()]
    lines += ["", *_honest_section(m, ctx.input("evaluate").json("acceptance_curve"),
                                   "acceptance_curve.png" in copied)]
    _plot_curves(ctx.out.path("curves.png"), vq_hist, pr_hist, L)
    lines += ["", "## Training curves", "", *_stopping_lines(ctx.cfg, vq_hist, pr_hist, L),
              "", "![curves](curves.png)", "",
              "## VQ training", "", _md_table(vq_hist), "",
              "## Prior training (bits per code)", "", _md_table(pr_hist), "",
              "## Reconstructions (top: real, bottom: reconstructed)", "", "![reconstructions](reconstructions.png)", "",
              "## Samples (one row per intended class)", "", "![samples](samples.png)", ""]
    if m.get("acceptance_rate") is not None:
        kept = "![accepted](accepted.png)" if "accepted.png" in copied else "(no sample passed the threshold)"
        lines += [f"## Accepted by rejection sampling (p(class) >= {m['rejection_threshold']}, "
                  f"acceptance {m['acceptance_rate']:.1%})", "", kept, ""]
    with open(ctx.out.path("report.md"), "w") as f:
        f.write("\n".join(lines))
    ctx.out.write_json("metrics", m)
    ctx.log("report.md written")


def _stopping_lines(cfg, vq_hist, pr_hist, levels: int) -> list[str]:
    """Best epoch against the cap, for the VQ model (validation NMSE) and the priors (held-out bits)."""
    out = []
    for name, hist, col, cap, pat in (
            ("VQ model", vq_hist, "val_nmse", cfg.train.epochs, cfg.train.patience),
            ("priors", pr_hist, None, cfg.prior.epochs, cfg.prior.patience)):
        if col is None:
            part = "val" if "val_bits_l0" in hist else "test"
            cols = [f"{part}_bits_l{l}" for l in range(levels) if f"{part}_bits_l{l}" in hist]
            series = hist[cols].sum(axis=1) if cols else None
            what = ("validation bits per code (held-out training maps, sum over levels)" if part == "val" else
                    "test bits per code (sum over levels; no validation maps, prior.val_maps = 0)")
        else:
            series = hist[col] if col in hist else None
            what = "validation NMSE"
        if series is None or not len(series):
            continue
        best = int(series.to_numpy().argmin())
        ran = len(series)
        gain = (f" The last epoch changed it by {series.iloc[-1] - series.iloc[-2]:+.4g} "
                f"({(series.iloc[-1] - series.iloc[-2]) / series.iloc[-2]:+.2%})." if ran >= 2 else "")
        out.append(f"* {name}: best {what} {series.iloc[best]:.4g} at epoch {best + 1} of {ran} run "
                   f"(cap {cap}, patience {pat}); "
                   + ("stopped early by patience." if ran < cap else
                      "ran to the cap" + (" with the last epoch best: still improving, at a lower "
                                          "rate as the learning rate decays." if best == ran - 1 else "."))
                   + gain)
    return out


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f} %"


def _honest_section(m: dict, curve: list[dict], have_plot: bool) -> list[str]:
    """What rejection buys, judged by a classifier that did not filter (see evaluate)."""
    if m.get("scorer_test_accuracy") is None:
        return ["## Samples", "", f"{m.get('sample_count')} samples; no labels, so no classifier "
                "metrics (FID, CAS, rejection) were computed.", ""]
    out = ["## Samples, judged independently", "",
           f"{m['sample_count']} samples, {m.get('accepted_count', 'n/a')} accepted at p_filter(intended class) >= "
           f"{m.get('rejection_threshold')}. The **filter** (trained on {m['filter_train_images']} real images, "
           f"test accuracy {_pct(m['filter_test_accuracy'])}) only rejects; the **scorer** (the other "
           f"{m['scorer_train_images']} images, another seed, test accuracy {_pct(m['scorer_test_accuracy'])}) "
           f"grades the samples and gives the feature space of FID and precision / recall "
           f"({m['fid_real_count']} real test images). CAS trains a fresh classifier on the samples only "
           f"and tests it on the real test images; every CAS classifier gets the same {m.get('cas_steps', 'n/a')} "
           "optimizer steps (a smaller set runs more epochs).", "",
           f"The last column is the same measurement on {m.get('real_reference_count', 'n/a')} real training "
           "images instead of samples (what a perfect generator would get at this count: the metric's floor "
           "or ceiling, not zero).", "",
           "| | all samples | after rejection | real images (reference) |", "| --- | --- | --- | --- |",
           f"| count | {m['sample_count']} | {m.get('accepted_count', 'n/a')} | {m.get('real_reference_count', 'n/a')} |",
           f"| scorer accuracy (argmax = intended class) | {_pct(m.get('sample_accuracy_before'))} | {_pct(m.get('sample_accuracy_after'))} | {_pct(m.get('scorer_test_accuracy'))} (test set) |",
           f"| CAS (train on samples, test on real) | {_pct(m.get('cas_before'))} | {_pct(m.get('cas_after'))} | {_pct(m.get('cas_real_reference'))} |",
           f"| FID (scorer features, vs test set; lower is better) | {_fmt(m.get('fid_before'))} | {_fmt(m.get('fid_after'))} | {_fmt(m.get('fid_real_reference'))} |",
           f"| precision (fidelity) | {_fmt(m.get('precision_before'))} | {_fmt(m.get('precision_after'))} | {_fmt(m.get('precision_real_reference'))} |",
           f"| recall (diversity) | {_fmt(m.get('recall_before'))} | {_fmt(m.get('recall_after'))} | {_fmt(m.get('recall_real_reference'))} |",
           "", f"For reference, the filter's own accuracy on the samples it kept is "
           f"{_pct(m.get('filter_self_accuracy_after'))}: true by construction for thresholds >= 0.5, "
           "so it is not a quality measure.", ""]
    pa, pc, ra, rc, fa, fc = (m.get(k) for k in ("precision_after", "precision_control", "recall_after",
                                                 "recall_control", "fid_after", "fid_control"))
    if None not in (pa, pc, ra, rc):
        out += [f"What rejection buys, against a random subset of the samples of the same size "
                f"({m.get('control_count')}; FID and recall depend on the count, so all samples are not "
                f"the right comparison): precision {pc:.3f} -> {pa:.3f} ({'up' if pa > pc else 'not up'}), "
                f"recall {rc:.3f} -> {ra:.3f} ({'down' if ra < rc else 'not down'}), FID "
                f"{_fmt(fc)} -> {_fmt(fa)}, CAS {_pct(m.get('cas_control'))} -> {_pct(m.get('cas_after'))}, i.e. "
                + ("fidelity bought with diversity." if pa > pc and ra < rc else
                   "higher fidelity without a loss of diversity at this sample size." if pa > pc else
                   "no gain in fidelity at this sample size."), ""]
    if curve:
        out += ["### Acceptance rate against the threshold", "",
                "| threshold | accepted | acceptance rate | scorer accuracy of accepted |", "| --- | --- | --- | --- |"]
        out += [f"| {r['threshold']:g} | {r['accepted']} | {_pct(r['acceptance_rate'])} | {_pct(r.get('scorer_accuracy'))} |"
                for r in curve]
        out += [""] + (["![acceptance curve](acceptance_curve.png)", ""] if have_plot else [])
    return out


def _plot_curves(path: str, vq_hist, pr_hist, levels: int) -> None:
    """Reconstruction NMSE, bottom perplexity and held-out prior bits per code, per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(11, 3))
    ax[0].plot(vq_hist.epoch, vq_hist.nmse, "o-", label="train")
    if "val_nmse" in vq_hist:
        ax[0].plot(vq_hist.epoch, vq_hist.val_nmse, "s-", label="validation")
    ax[0].set_yscale("log")
    ax[0].set_title("reconstruction NMSE")
    for l in range(levels):
        if f"perplexity_l{l}" in vq_hist:
            ax[1].plot(vq_hist.epoch, vq_hist[f"perplexity_l{l}"], "o-", label=f"level {l}")
        for part, mark in (("val", "s--"), ("test", "o-")):
            if f"{part}_bits_l{l}" in pr_hist:
                ax[2].plot(pr_hist.epoch, pr_hist[f"{part}_bits_l{l}"], mark, label=f"level {l} {part}")
    ax[1].set_title("code perplexity (train)")
    ax[2].set_title("prior bits per code")
    for a in ax:
        a.set_xlabel("epoch")
        a.grid(alpha=0.3)
        a.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
