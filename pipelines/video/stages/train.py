"""train: Ray Train TorchTrainer over the clip index; bf16 autocast optional; checkpoint each epoch.

The worker loop resumes from the last checkpoint (``pipelines.core.train.load_checkpoint``):
after a worker failure, or when the stage is re-run after a killed driver (same fingerprint
-> same Ray Train run under ``ctx.scratch_dir``).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from components.video.train_loop import predict, topk_accuracy, train_epoch
from pipelines.core.train import fit, final_state, load_checkpoint, report
from pipelines.video.stages.common import build_model, flow_files, load_index, make_dataset, split_rows


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "module", model)


def train_worker(config: dict) -> None:
    """Per-worker loop (runs inside Ray Train)."""
    import ray.train
    import ray.train.torch as rtt
    from pipelines.video.config import VideoConfig

    cfg = VideoConfig.model_validate(config["cfg"])
    torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.seed)
    index = pd.DataFrame(config["index"])
    classes = config["classes"]
    flows = config["flow_files"]
    train_ds = make_dataset(cfg, split_rows(index, "train"), train=True, flows=flows)
    val_rows = index[index["split"] == cfg.evaluate.split]
    val_ds = make_dataset(cfg, val_rows, train=False, flows=flows) if len(val_rows) else None
    gen = torch.Generator().manual_seed(cfg.seed)
    loader = torch.utils.data.DataLoader(train_ds, batch_size=cfg.train.batch_size, shuffle=True,
                                         generator=gen, num_workers=cfg.train.loader_workers, drop_last=False)
    world = ray.train.get_context().get_world_size()
    model = build_model(cfg, len(classes))
    if world > 1:
        loader = rtt.prepare_data_loader(loader, move_to_device=False)
        model = rtt.prepare_model(model, move_to_device=False)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    steps = cfg.train.epochs * math.ceil(len(train_ds) / cfg.train.batch_size / world)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.train.lr, total_steps=max(steps, 1),
                                                pct_start=0.15)
    start, history = 0, []
    state = load_checkpoint()
    if state is not None:
        _unwrap(model).load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start, history = state["epoch"] + 1, state["history"]
    for epoch in range(start, cfg.train.epochs):
        train_ds.set_epoch(epoch)
        if hasattr(loader, "sampler") and hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        stats = train_epoch(model, loader, opt, bf16=cfg.train.bf16, scheduler=sched)
        row = {"epoch": epoch, "loss": stats["loss"], "train_acc": stats["acc"],
               "clips_per_s": stats["clips_per_s"], "seconds": stats["seconds"], "resumed": state is not None}
        if val_ds is not None:
            vl = torch.utils.data.DataLoader(val_ds, batch_size=cfg.evaluate.batch_size)
            probs, labels = predict(_unwrap(model), vl, bf16=cfg.train.bf16)
            row["val_top1"] = topk_accuracy(probs, labels, (1,))["top1"]
        history.append(row)
        report(row, state={"model": _unwrap(model).state_dict(), "optimizer": opt.state_dict(),
                           "scheduler": sched.state_dict(), "epoch": epoch, "history": history})


def run_train(ctx) -> None:
    cfg = ctx.cfg
    index, classes = load_index(ctx)
    flows = flow_files(ctx)
    make_dataset(cfg, split_rows(index, "train").head(1), train=True, flows=flows)[0]  # fail fast, in the driver
    model = build_model(cfg, len(classes))
    n_params = sum(p.numel() for p in model.parameters())
    ctx.log("training %s (%.2fM params) on %d clips, %d classes", cfg.model.name, n_params / 1e6,
            int((index["split"] == "train").sum()), len(classes))
    loop_config = {"cfg": cfg.model_dump(mode="json"), "index": index.to_dict("list"),
                   "classes": classes, "flow_files": flows}
    result = fit(ctx, train_worker, loop_config, cfg.train.trainer, name=cfg.model.name)
    state = final_state(result)
    if state is None:
        raise RuntimeError("training finished without a checkpoint")
    torch.save(state["model"], ctx.out.path("model.pt"))
    hist = pd.DataFrame(state["history"])
    ctx.out.write_table("history", hist)
    last = hist.iloc[-1]
    ctx.out.stats(params=n_params, epochs=len(hist), final_loss=float(last["loss"]),
                  val_top1=float(last.get("val_top1", np.nan)),
                  mean_clips_per_s=float(hist["clips_per_s"].mean()), bf16=cfg.train.bf16,
                  resumed=bool(hist["resumed"].any()))
    ctx.log("done: loss %.3f, val top1 %.3f", float(last["loss"]), float(last.get("val_top1", np.nan)))
