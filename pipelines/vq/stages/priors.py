"""train_priors: all levels' priors on the extracted codes, under Ray Train, with held-out bits/dim."""
from __future__ import annotations

import math
import time

import pandas as pd
import torch

from pipelines.core import train as rt
from pipelines.vq.stages.common import codes_of, prior_kwargs


def prior_train_loop(config: dict) -> None:
    """Per-worker loop: one Adam over the priors of every level (their losses are independent)."""
    import ray.train
    from components.vq.build import build_priors, prior_losses
    from components.vq.quantizer import all_reduce_mean_grads

    rank, world = rt.worker_setup(config["seed"], config["threads"])
    df = pd.read_parquet(config["codes_path"])
    L, shapes = config["kwargs"]["levels"], config["shapes"]
    tr, te = df[df.split == "train"], df[df.split == "test"]
    n_per_rank = len(tr) // world         # same step count on every rank (collectives must match)
    codes_tr = [c[rank::world] for c in codes_of(tr, L, shapes)]
    lab_tr = torch.from_numpy(tr.label.to_numpy(copy=True))[rank::world].clamp_min(0)
    codes_te = codes_of(te, L, shapes)
    lab_te = torch.from_numpy(te.label.to_numpy(copy=True)).clamp_min(0)
    priors = torch.nn.ModuleList(build_priors(**config["kwargs"]))
    opt = torch.optim.Adam(priors.parameters(), lr=config["lr"])
    start, history = 0, []
    state = rt.load_checkpoint()
    if state is not None:
        priors.load_state_dict(state["priors"])
        opt.load_state_dict(state["opt"])
        start, history = state["epoch"] + 1, state["history"]
    device = ray.train.torch.get_device()
    core = priors.to(device)
    codes_tr = [c.to(device) for c in codes_tr]
    codes_te = [c.to(device) for c in codes_te]
    lab_tr, lab_te = lab_tr.to(device), lab_te.to(device)
    bs, n = config["batch_size"], len(codes_tr[0])
    g = torch.Generator().manual_seed(config["seed"] * 1000 + rank + 1)
    for epoch in range(start, config["epochs"]):
        core.train()
        perm = torch.randperm(n, generator=g)
        steps, tot = n_per_rank // bs, [0.0] * L
        t0 = time.perf_counter()
        for s in range(steps):
            idx = perm[s * bs:(s + 1) * bs]
            losses = prior_losses(list(core), [c[idx] for c in codes_tr], lab_tr[idx])
            loss = sum(losses)
            opt.zero_grad()
            loss.backward()
            all_reduce_mean_grads(core.parameters())
            opt.step()
            tot = [a + float(b.detach()) for a, b in zip(tot, losses)]
        dt = time.perf_counter() - t0
        core.eval()
        with torch.no_grad():
            held = [0.0] * L
            for s in range(0, len(codes_te[0]), 256):
                sl = slice(s, s + 256)
                ls = prior_losses(list(core), [c[sl] for c in codes_te], lab_te[sl])
                held = [a + float(b) * len(codes_te[0][sl]) for a, b in zip(held, ls)]
        m = {"epoch": epoch, "steps": steps, "seconds": dt}
        for l in range(L):
            m[f"train_bits_l{l}"] = tot[l] / max(steps, 1) / math.log(2)
            m[f"test_bits_l{l}"] = held[l] / max(len(codes_te[0]), 1) / math.log(2)
        history.append(m)
        rt.report(m, {"priors": {k: v.cpu() for k, v in core.state_dict().items()}, "opt": opt.state_dict(), "epoch": epoch,
                      "history": history})


def run_train_priors(ctx) -> None:
    cfg = ctx.cfg
    art = ctx.input("extract_codes")
    levels = art.json("levels")
    n_classes = ctx.input("ingest").json("classes")["n_classes"]
    kwargs = prior_kwargs(cfg, n_classes)
    loop_cfg = {"codes_path": art.path("codes.parquet"), "kwargs": kwargs,
                "shapes": [tuple(s) for s in levels["shapes"]], "seed": ctx.seed, "threads": cfg.prior.threads,
                "lr": cfg.prior.lr, "epochs": cfg.prior.epochs, "batch_size": cfg.prior.batch_size}
    result = rt.fit(ctx, prior_train_loop, loop_cfg, cfg.prior.trainer, name="priors")
    state = rt.final_state(result)
    sd = state["priors"]
    per_level = [{k.split(".", 1)[1]: v for k, v in sd.items() if k.split(".", 1)[0] == str(l)}
                 for l in range(kwargs["levels"])]
    torch.save({"kwargs": kwargs, "priors": per_level}, ctx.out.path("priors.pt"))
    hist = pd.DataFrame(state["history"])
    ctx.out.write_table("history", hist)
    last = hist.iloc[-1].to_dict()
    ctx.out.stats(**{k: float(v) for k, v in last.items()})
    ctx.log("held-out bits/code: %s", ", ".join(f"l{l}={last[f'test_bits_l{l}']:.3f}"
                                                 for l in range(kwargs["levels"])))
