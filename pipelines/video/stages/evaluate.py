"""evaluate: multi-view top-1/top-5, confusion matrix PNG, report.md."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from components.video.train_loop import confusion_matrix, plot_confusion, predict, topk_accuracy
from pipelines.video.stages.common import flow_files, load_index, load_trained_model, make_dataset, split_rows


def run_evaluate(ctx) -> None:
    cfg = ctx.cfg
    ev = cfg.evaluate
    torch.manual_seed(ctx.seed)
    index, classes = load_index(ctx)
    rows = split_rows(index, ev.split)
    flows = flow_files(ctx)
    model = load_trained_model(ctx, len(classes))
    results = {}
    for name, (tv, sv) in {"single_view": (1, 1), "multi_view": (ev.temporal_views, ev.spatial_views)}.items():
        ds = make_dataset(cfg, rows, train=False, flows=flows, temporal_views=tv, spatial_views=sv)
        probs, labels = predict(model, torch.utils.data.DataLoader(ds, batch_size=ev.batch_size), bf16=cfg.train.bf16)
        results[name] = (probs, labels, {**topk_accuracy(probs, labels), "views": tv * sv})
    probs, labels, metrics = results["multi_view"]
    pred = probs.argmax(1)
    cm = confusion_matrix(pred, labels, len(classes))
    plot_confusion(cm, classes, ctx.out.path("confusion.png"),
                   title=f"{cfg.model.name} on {cfg.data.source}/{ev.split} ({metrics['views']} views)")
    ctx.out.write_table("predictions", pd.DataFrame({
        "video_id": rows["video_id"].to_numpy(), "label_id": labels.astype("int32"), "pred": pred.astype("int32"),
        "prob_true": probs[np.arange(len(labels)), labels].astype("float32")}))
    summary = {k: v[2] for k, v in results.items()}
    summary.update(model=cfg.model.name, dataset=cfg.data.source, split=ev.split, clips=int(len(labels)),
                   classes=len(classes), chance=1.0 / len(classes))
    ctx.out.write_json("metrics", summary)
    hist = ctx.input("train").df("history")
    lines = [f"# Video evaluation: {cfg.model.name} on {cfg.data.source}", "",
             f"- split `{ev.split}`: {len(labels)} clips, {len(classes)} classes (chance {1 / len(classes):.3f})",
             f"- clip: {cfg.clip.frames} frames, stride {cfg.clip.stride}, crop {cfg.clip.size} "
             f"(decoded at {cfg.decode.resize}), sampling {cfg.clip.sampling}",
             f"- training: {len(hist)} epochs, bf16={cfg.train.bf16}, seed {ctx.seed}", "",
             "| protocol | views | top-1 | top-5 |", "| --- | --- | --- | --- |"]
    for name, (_, _, m) in results.items():
        lines.append(f"| {name} | {m['views']} | {m['top1']:.3f} | {m['top5']:.3f} |")
    lines += ["", "## Training history", "", hist.round(4).to_markdown(index=False) if _has_tabulate()
              else hist.round(4).to_string(index=False), "", "![confusion matrix](confusion.png)", ""]
    with open(ctx.out.path("report.md"), "w") as f:
        f.write("\n".join(lines))
    ctx.out.stats(**{f"{k}_{m}": v[2][m] for k, v in results.items() for m in ("top1", "top5")})
    ctx.log("top1 %.3f (single view %.3f), top5 %.3f", metrics["top1"], results["single_view"][2]["top1"],
            metrics["top5"])


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
        return True
    except ImportError:
        return False
