"""evaluate: single- and multi-view top-1/top-5, per-class and mean-class accuracy, confusion
matrix PNG, predictions, metrics.json and report.md.

The split is ``evaluate.split``, or by default the layout's test split when there is one
(UCF101 / HMDB51 split files, a folder with ``test/``) and else ``val``
(:func:`~pipelines.video.stages.common.eval_split`). TSN models score ``evaluate.tsn_snippets``
snippets one by one in the multi-view protocol when it is set (25 in the TSN paper).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from components.video import models
from components.video.train_loop import (confusion_matrix, per_class_accuracy, plot_confusion, predict,
                                         topk_accuracy)
from pipelines.video.stages.common import (eval_split, flow_files, load_index, load_trained_model, make_dataset,
                                           sampling_of, split_rows)


def protocols(cfg) -> dict[str, dict]:
    """``{name: make_dataset view arguments}`` of the two protocols evaluated."""
    ev = cfg.evaluate
    multi = {"temporal_views": ev.temporal_views, "spatial_views": ev.spatial_views}
    if sampling_of(cfg, models.spec(cfg.model.name)) == "tsn" and ev.tsn_snippets:
        multi = {"temporal_views": 1, "spatial_views": ev.spatial_views, "tsn_snippets": ev.tsn_snippets}
    return {"single_view": {"temporal_views": 1, "spatial_views": 1}, "multi_view": multi}


def _views(args: dict) -> int:
    return (args.get("tsn_snippets") or args["temporal_views"]) * args["spatial_views"]


def run_evaluate(ctx) -> None:
    cfg = ctx.cfg
    ev = cfg.evaluate
    torch.manual_seed(ctx.seed)
    index, classes = load_index(ctx)
    split = eval_split(cfg, index)
    rows = split_rows(index, split)
    flows = flow_files(ctx)
    model = load_trained_model(ctx, len(classes))
    results = {}
    for name, args in protocols(cfg).items():
        ds = make_dataset(cfg, rows, train=False, flows=flows, **args)
        probs, labels = predict(model, torch.utils.data.DataLoader(ds, batch_size=ev.batch_size), bf16=cfg.train.bf16)
        _, _, mean_class = per_class_accuracy(probs.argmax(1), labels, len(classes))
        results[name] = (probs, labels, {**topk_accuracy(probs, labels), "mean_class_acc": mean_class,
                                         "views": _views(args)})
    probs, labels, metrics = results["multi_view"]
    pred = probs.argmax(1)
    cm = confusion_matrix(pred, labels, len(classes))
    acc, count, _ = per_class_accuracy(pred, labels, len(classes))
    per_class = {c: {"clips": int(n), "top1": (None if math.isnan(a) else float(a))}
                 for c, a, n in zip(classes, acc, count)}
    plot_confusion(cm, classes, ctx.out.path("confusion.png"),
                   title=f"{cfg.model.name} on {cfg.data.source}/{split} ({metrics['views']} views)")
    ctx.out.write_table("predictions", pd.DataFrame({
        "video_id": rows["video_id"].to_numpy(), "label_id": labels.astype("int32"), "pred": pred.astype("int32"),
        "prob_true": probs[np.arange(len(labels)), labels].astype("float32")}))
    summary = {k: v[2] for k, v in results.items()}
    summary.update(model=cfg.model.name, dataset=cfg.data.source, split=split, clips=int(len(labels)),
                   classes=len(classes), chance=1.0 / len(classes), per_class=per_class)
    if cfg.data.source == "ucf":
        summary["fold"] = cfg.data.fold
    ctx.out.write_json("metrics", summary)
    hist = ctx.input("train").df("history")
    fold = f" (fold {cfg.data.fold})" if cfg.data.source == "ucf" else ""
    lines = [f"# Video evaluation: {cfg.model.name} on {cfg.data.source}", "",
             f"- split `{split}`{fold}: {len(labels)} clips, {len(classes)} classes (chance {1 / len(classes):.3f})",
             f"- clip: {cfg.clip.frames} frames, stride {cfg.clip.stride}"
             + (f" at {cfg.clip.fps:g} fps" if cfg.clip.fps else "")
             + f", crop {cfg.clip.size} (short side decoded at {cfg.decode.resize}), sampling {cfg.clip.sampling}",
             f"- training: {len(hist)} epochs, bf16={cfg.train.bf16}, seed {ctx.seed}", "",
             "| protocol | views | top-1 | mean-class | top-5 |", "| --- | --- | --- | --- | --- |"]
    for name, (_, _, m) in results.items():
        lines.append(f"| {name} | {m['views']} | {m['top1']:.3f} | {m['mean_class_acc']:.3f} | {m['top5']:.3f} |")
    lines += ["", f"## Per class ({metrics['views']} views)", "", "| class | clips | top-1 |", "| --- | --- | --- |"]
    lines += [f"| {c} | {v['clips']} | " + ("—" if v["top1"] is None else f"{v['top1']:.3f}") + " |"
              for c, v in per_class.items()]
    lines += ["", "## Training history", "", hist.round(4).to_markdown(index=False) if _has_tabulate()
              else hist.round(4).to_string(index=False), "", "![confusion matrix](confusion.png)", ""]
    with open(ctx.out.path("report.md"), "w") as f:
        f.write("\n".join(lines))
    ctx.out.stats(split=split, **{f"{k}_{m}": v[2][m] for k, v in results.items()
                                  for m in ("top1", "top5", "mean_class_acc")})
    ctx.log("%s: top1 %.3f (single view %.3f), mean-class %.3f, top5 %.3f", split, metrics["top1"],
            results["single_view"][2]["top1"], metrics["mean_class_acc"], metrics["top5"])


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
        return True
    except ImportError:
        return False
