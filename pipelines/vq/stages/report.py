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
                      (ctx.input("evaluate"), "accepted.png")):
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
    lines += ["", "## VQ training", "", _md_table(vq_hist), "",
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
