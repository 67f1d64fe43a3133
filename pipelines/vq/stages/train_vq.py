"""train_vq: the VQ-VAE / VQ-VAE-2 under Ray Train (TorchTrainer), checkpointed every epoch."""
from __future__ import annotations

import dataclasses
import time

import pandas as pd
import torch

from components.vq.metrics import reconstruction_metrics
from components.vq.vqvae import HierarchicalVQVAE
from pipelines.core import train as rt
from pipelines.vq.stages.common import images_of, vq_spec


def vq_train_loop(config: dict) -> None:
    """Per-worker loop: equal-step shards of the training images, per-epoch metrics and checkpoint.

    No DDP: gradients are all-reduced by hand because the quantisers all-reduce their EMA
    statistics inside forward (replicas apply the same codebook update).
    """
    from components.vq.metrics import reconstruction_metrics
    from components.vq.quantizer import all_reduce_mean_grads, reset_restarted_state, usage_stats
    from components.vq.schedule import lr_at, no_improvement_for, set_lr
    from pipelines.vq.stages.common import epoch_batches

    s = rt.Session(config["seed"], config["threads"], use_gpu=config["use_gpu"])
    x, _, _ = images_of(pd.read_parquet(config["images_path"]), config["image_size"], "train")
    x, xv = split_validation(x, config["val_images"], config["seed"])
    model = HierarchicalVQVAE(config["spec"])
    opt = torch.optim.Adam(model.parameters(), lr=config["lr"])
    start, history = s.restore(model=model, opt=opt)
    model = s.prepare(model, ddp=False)
    var = config["data_variance"]
    batches_of = lambda e: epoch_batches(s, len(x), config["batch_size"], e, config["max_steps"],
                                         config.get("steps"))
    per_epoch = len(batches_of(0))
    total = per_epoch * config["epochs"]
    for epoch in range(start, config["epochs"]):
        if no_improvement_for([h["val_nmse"] for h in history if "val_nmse" in h], config["patience"]):
            break                                          # a resumed run that had already stopped
        model.train()
        batches = batches_of(epoch)
        sums, seen, counts = {"loss": 0.0, "recon": 0.0}, 0, None
        t0, c0 = time.perf_counter(), time.process_time()
        for i, idx in enumerate(batches):
            set_lr(opt, lr_at(config["lr"], epoch * per_epoch + i, total, config["lr_schedule"],
                              config["lr_min_factor"]))
            out = model(s.to_device(x[idx]))
            opt.zero_grad()
            out.loss.backward()
            all_reduce_mean_grads(model.parameters())     # EMA statistics are all-reduced inside
            reset_restarted_state(model, opt)             # restarted codes start without stale moments
            opt.step()
            sums["loss"] += float(out.loss.detach())
            sums["recon"] += float(out.recon_loss.detach())
            seen += len(idx)
            c = [cc.detach().cpu() for cc in out.counts]
            counts = c if counts is None else [a + b for a, b in zip(counts, c)]
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        steps = len(batches)
        m = {"epoch": epoch, "steps": steps, "loss": s.all_mean(sums["loss"] / max(steps, 1)),
             "recon_mse": s.all_mean(sums["recon"] / max(steps, 1)),
             "images_per_s": seen * s.world / dt if dt > 0 else 0.0, "seconds": dt,
             "cpu_seconds": s.all_mean(cpu) * s.world,     # all workers' CPU time (load independent)
             "lr": opt.param_groups[0]["lr"]}
        m["nmse"] = m["recon_mse"] / var
        if len(xv):                     # the same model on every rank: no all-reduce needed
            val = reconstruction_metrics(model, s.to_device(xv), var)
            m["val_nmse"] = val["nmse"]
            m.update({f"val_{k}": v for k, v in val.items() if k.startswith(("perplexity", "codes_used"))})
        for lvl, c in enumerate(counts or []):
            st = usage_stats(c)          # counts are already summed over ranks by the quantiser
            m[f"perplexity_l{lvl}"], m[f"codes_used_l{lvl}"] = st["perplexity"], st["codes_used"]
        history.append(m)
        s.report(m, s.state(epoch, history, model=model, opt=opt),
                 progress=f"vq epoch {epoch + 1}/{config['epochs']}: nmse {m['nmse']:.4f}"
                          + (f", val nmse {m['val_nmse']:.4f}" if "val_nmse" in m else "")
                          + f", perplexity {m.get('perplexity_l0', float('nan')):.0f}")
        if no_improvement_for([h["val_nmse"] for h in history if "val_nmse" in h], config["patience"]):
            break                                          # validation stopped improving


def split_validation(x: torch.Tensor, n_val: int, seed: int):
    """(training images, validation images): ``n_val`` images held out by a seeded permutation."""
    if n_val <= 0:
        return x, x[:0]
    if n_val >= len(x):
        raise ValueError(f"train.val_images={n_val} leaves no training images (of {len(x)})")
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed + 1))
    return x[perm[n_val:]], x[perm[:n_val]]


def run_train_vq(ctx) -> None:
    cfg = ctx.cfg
    ing = ctx.input("ingest")
    df = ing.df("images")
    x, _, _ = images_of(df, cfg.data.image_size, "train")
    spec = vq_spec(cfg, in_channels=int(x.shape[1]))
    loop_cfg = {"images_path": ing.path("images.parquet"), "image_size": cfg.data.image_size,
                "spec": spec, "seed": ctx.seed, "threads": cfg.train.threads, "lr": cfg.train.lr,
                "use_gpu": cfg.train.trainer.use_gpu,
                "epochs": cfg.train.epochs, "batch_size": cfg.train.batch_size,
                "max_steps": cfg.train.max_steps_per_epoch, "steps": cfg.train.steps_per_epoch, "data_variance": float(x.var()),
                "lr_schedule": cfg.train.lr_schedule, "lr_min_factor": cfg.train.lr_min_factor,
                "val_images": cfg.train.val_images, "patience": cfg.train.patience}
    result = rt.fit(ctx, vq_train_loop, loop_cfg, cfg.train.trainer, name="vq")
    state = rt.final_state(result)
    torch.save({"spec": dataclasses.asdict(spec), "model": state["model"],
                "data_variance": float(x.var())}, ctx.out.path("model.pt"))
    hist = pd.DataFrame(state["history"])
    ctx.out.write_table("history", hist)
    last = hist.iloc[-1].to_dict()
    model = HierarchicalVQVAE(spec)
    model.load_state_dict(state["model"])
    xt, _, _ = images_of(df, cfg.data.image_size, "test")
    held = reconstruction_metrics(model, xt, float(x.var())) if len(xt) else {}
    ctx.out.write_json("test_metrics", held)
    ctx.out.stats(**{k: float(v) for k, v in last.items()}, **{f"test_{k}": v for k, v in held.items()})
    ctx.log("model=%s levels=%d: epoch %d nmse %.4f perplexity_l0 %.1f, %.0f images/s",
            cfg.model, spec.levels, int(last["epoch"]), last["nmse"], last["perplexity_l0"],
            last["images_per_s"])
