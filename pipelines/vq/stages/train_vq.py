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
    from components.vq.quantizer import all_reduce_mean_grads, reset_restarted_state, usage_stats

    s = rt.Session(config["seed"], config["threads"], use_gpu=config["use_gpu"])
    x, _, _ = images_of(pd.read_parquet(config["images_path"]), config["image_size"], "train")
    model = HierarchicalVQVAE(config["spec"])
    opt = torch.optim.Adam(model.parameters(), lr=config["lr"])
    start, history = s.restore(model=model, opt=opt)
    model = s.prepare(model, ddp=False)
    var = config["data_variance"]
    for epoch in range(start, config["epochs"]):
        model.train()
        batches = s.shard(len(x), config["batch_size"], epoch)[: config["max_steps"] or None]
        sums, seen, counts = {"loss": 0.0, "recon": 0.0}, 0, None
        t0 = time.perf_counter()
        for idx in batches:
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
        dt = time.perf_counter() - t0
        steps = len(batches)
        m = {"epoch": epoch, "steps": steps, "loss": s.all_mean(sums["loss"] / max(steps, 1)),
             "recon_mse": s.all_mean(sums["recon"] / max(steps, 1)),
             "images_per_s": seen * s.world / dt if dt > 0 else 0.0, "seconds": dt}
        m["nmse"] = m["recon_mse"] / var
        for lvl, c in enumerate(counts or []):
            st = usage_stats(c)          # counts are already summed over ranks by the quantiser
            m[f"perplexity_l{lvl}"], m[f"codes_used_l{lvl}"] = st["perplexity"], st["codes_used"]
        history.append(m)
        s.report(m, s.state(epoch, history, model=model, opt=opt),
                 progress=f"vq epoch {epoch + 1}/{config['epochs']}: nmse {m['nmse']:.4f}, "
                          f"perplexity {m.get('perplexity_l0', float('nan')):.0f}")


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
                "max_steps": cfg.train.max_steps_per_epoch, "data_variance": float(x.var())}
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
