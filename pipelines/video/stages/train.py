"""train: Ray Train TorchTrainer over the clip index; bf16 autocast optional; checkpoint each epoch.

The worker loop resumes from the last checkpoint (``pipelines.core.train.load_checkpoint``):
after a worker failure, or when the stage is re-run after a killed driver (same fingerprint
-> same Ray Train run under ``ctx.scratch_dir``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from components.video.train_loop import make_optimizer, make_schedule, predict, topk_accuracy, train_epoch
from pipelines.core.hints import config_hints
from pipelines.core.train import Session, fit, final_state, unwrap
from pipelines.video.stages.common import (build_model, flow_files, load_index, make_dataset, monitor_split,
                                          split_rows)
from pipelines.video.stages.pretrain import load_pretrained, pretrained_init


def train_worker(config: dict) -> None:
    """Per-worker loop (runs inside Ray Train): the engine's session, shards, DDP and checkpoints."""
    from pipelines.video.config import VideoConfig

    cfg = VideoConfig.model_validate(config["cfg"])
    s = Session(cfg.seed, cfg.train.threads, use_gpu=cfg.train.trainer.use_gpu, bf16=cfg.train.bf16)
    index = pd.DataFrame(config["index"])
    classes = config["classes"]
    flows = config["flow_files"]
    train_ds = make_dataset(cfg, split_rows(index, "train"), train=True, flows=flows)
    monitor = monitor_split(cfg, index)        # never the test split
    val_ds = make_dataset(cfg, split_rows(index, monitor), train=False, flows=flows) if monitor else None
    loader = s.loader(train_ds, cfg.train.batch_size, num_workers=cfg.train.loader_workers)
    model = build_model(cfg, len(classes), weights=cfg.model.weights)
    if config.get("init"):           # the pretrain stage's MotionNet / 2D->3D transfer weights
        load_pretrained(model, config["init"]["kind"], config["init"]["path"])
    t = cfg.train
    opt = make_optimizer(model.parameters(), t.optimizer, t.lr, t.weight_decay, t.momentum)
    sched = make_schedule(opt, t.schedule, t.epochs * len(loader.batch_sampler), warmup=t.warmup,
                          milestones=tuple(t.milestones), gamma=t.gamma)
    start, history = s.restore(model=model, optimizer=opt, scheduler=sched)
    model = s.prepare(model)          # forward_train (hidden two-stream) stays synchronised under DDP
    core = unwrap(model)
    for epoch in range(start, cfg.train.epochs):
        train_ds.set_epoch(epoch)
        loader.batch_sampler.set_epoch(epoch)
        stats = train_epoch(model, loader, opt, bf16=s.bf16, scheduler=sched, device=s.device)
        row = {"epoch": epoch, "loss": s.all_mean(stats["loss"]), "train_acc": s.all_mean(stats["acc"]),
               "clips_per_s": stats["clips_per_s"] * s.world, "seconds": stats["seconds"],
               "resumed": start > 0}
        if val_ds is not None:
            vl = torch.utils.data.DataLoader(val_ds, batch_size=cfg.evaluate.batch_size, pin_memory=s.pin_memory)
            probs, labels = predict(core, vl, bf16=s.bf16, device=s.device)
            row["val_top1"] = topk_accuracy(probs, labels, (1,))["top1"]
        history.append(row)
        s.report(row, s.state(epoch, history, model=core, optimizer=opt, scheduler=sched),
                 progress=f"{cfg.model.name} epoch {epoch + 1}/{cfg.train.epochs}: loss {row['loss']:.3f}"
                          + (f", val top1 {row['val_top1']:.3f}" if "val_top1" in row else ""))


def run_train(ctx) -> None:
    cfg = ctx.cfg
    index, classes = load_index(ctx)
    flows = flow_files(ctx)
    make_dataset(cfg, split_rows(index, "train").head(1), train=True, flows=flows)[0]  # fail fast, in the driver
    with config_hints(weights="set model.weights to a local state dict of this model (docs/video-models.md, "
                              "'Weights from files'), or unset it to start from scratch"):
        model = build_model(cfg, len(classes), weights=cfg.model.weights)   # a bad weights file fails here
    if cfg.model.weights:
        rep = model.weights_report
        ctx.log("weights %s (%s naming): %d tensors loaded%s", cfg.model.weights, rep.naming, rep.loaded,
                f", fresh {rep.reinitialised}" if rep.reinitialised else "")
    n_params = sum(p.numel() for p in model.parameters())
    ctx.log("training %s (%.2fM params) on %d clips, %d classes", cfg.model.name, n_params / 1e6,
            int((index["split"] == "train").sum()), len(classes))
    init = pretrained_init(ctx)
    if init:
        ctx.log("starting from the pretrain stage (%s): %s", init["kind"], init["path"])
    loop_config = {"cfg": cfg.model_dump(mode="json"), "index": index.to_dict("list"),
                   "classes": classes, "flow_files": flows, "init": init}
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
