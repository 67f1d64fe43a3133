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
    """Per-worker loop: shards the training images by rank, reports per-epoch metrics."""
    import ray.train
    from components.vq.quantizer import all_reduce_mean_grads, usage_stats
    from components.vq.vqvae import HierarchicalVQVAE, VQVAESpec

    rank, world = rt.worker_setup(config["seed"], config["threads"])
    df = pd.read_parquet(config["images_path"])
    x, _, _ = images_of(df, config["image_size"], "train")
    n_per_rank = len(x) // world          # same step count on every rank (collectives must match)
    x = x[rank::world]
    model = HierarchicalVQVAE(VQVAESpec(**config["spec"]))
    opt = torch.optim.Adam(model.parameters(), lr=config["lr"])
    start, history = 0, []
    state = rt.load_checkpoint()
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start, history = state["epoch"] + 1, state["history"]
    device = ray.train.torch.get_device()
    model.to(device)
    bs, var = config["batch_size"], config["data_variance"]
    g = torch.Generator().manual_seed(config["seed"] * 1000 + rank)
    for epoch in range(start, config["epochs"]):
        model.train()
        perm = torch.randperm(len(x), generator=g)
        steps = n_per_rank // bs
        if config["max_steps"]:
            steps = min(steps, config["max_steps"])
        sums = {"loss": 0.0, "recon": 0.0}
        counts = None
        t0 = time.perf_counter()
        for s in range(steps):
            xb = x[perm[s * bs:(s + 1) * bs]].to(device)
            out = model(xb)
            opt.zero_grad()
            out.loss.backward()
            all_reduce_mean_grads(model.parameters())     # EMA statistics are all-reduced inside
            opt.step()
            sums["loss"] += float(out.loss.detach())
            sums["recon"] += float(out.recon_loss.detach())
            c = [cc.detach() for cc in out.counts]
            counts = c if counts is None else [a + b for a, b in zip(counts, c)]
        dt = time.perf_counter() - t0
        m = {"epoch": epoch, "steps": steps, "loss": sums["loss"] / max(steps, 1),
             "recon_mse": sums["recon"] / max(steps, 1),
             "nmse": sums["recon"] / max(steps, 1) / var,
             "images_per_s": steps * bs * world / dt if dt > 0 else 0.0, "seconds": dt}
        for l, c in enumerate(counts or []):
            st = usage_stats(c)          # counts are already summed over ranks by the quantiser
            m[f"perplexity_l{l}"], m[f"codes_used_l{l}"] = st["perplexity"], st["codes_used"]
        history.append(m)
        rt.report(m, {"model": {k: v.cpu() for k, v in model.state_dict().items()}, "opt": opt.state_dict(), "epoch": epoch,
                      "history": history})


def run_train_vq(ctx) -> None:
    cfg = ctx.cfg
    ing = ctx.input("ingest")
    df = ing.df("images")
    x, _, _ = images_of(df, cfg.data.image_size, "train")
    spec = vq_spec(cfg, in_channels=int(x.shape[1]))
    loop_cfg = {"images_path": ing.path("images.parquet"), "image_size": cfg.data.image_size,
                "spec": dataclasses.asdict(spec), "seed": ctx.seed, "threads": cfg.train.threads, "lr": cfg.train.lr,
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
