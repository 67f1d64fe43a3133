"""train_priors: all levels' priors on the extracted codes, under Ray Train, with held-out bits/dim."""
from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import torch

from components.errors import ConfigError, InputError

from pipelines.core import train as rt
from pipelines.vq.stages.common import codes_of, prior_kwargs


def prior_train_loop(config: dict) -> None:
    """Per-worker loop: one Adam over the priors of every level (their losses are independent)."""
    from components.vq.build import build_priors, prior_losses
    from components.vq.quantizer import all_reduce_mean_grads
    from components.vq.schedule import lr_at, no_improvement_for, set_lr
    from pipelines.vq.stages.common import epoch_batches

    s = rt.Session(config["seed"], config["threads"], use_gpu=config["use_gpu"])
    df = pd.read_parquet(config["codes_path"])
    L, shapes = config["kwargs"]["levels"], config["shapes"]
    tr, te = df[df.split == "train"], df[df.split == "test"]
    tr, va = split_maps(tr, config["val_maps"], config["seed"])
    codes_tr = [s.to_device(c) for c in codes_of(tr, L, shapes)]
    # labels are only read by class-conditional priors; run_train_priors refused -1 for those
    lab_tr = s.to_device(torch.from_numpy(tr.label.to_numpy(copy=True)))
    held_sets = {}
    for name, part in (("val", va), ("test", te if not len(va) else te.iloc[:0])):
        if len(part):
            held_sets[name] = ([s.to_device(c) for c in codes_of(part, L, shapes)],
                               s.to_device(torch.from_numpy(part.label.to_numpy(copy=True))))
    priors = PriorStack(build_priors(**config["kwargs"]))
    opt = torch.optim.Adam(priors.parameters(), lr=config["lr"])
    start, history = s.restore(priors=priors, opt=opt)
    model = core = s.prepare(priors, ddp=False)   # gradients all-reduced by hand, as in train_vq
    batches_of = lambda e: epoch_batches(s, len(codes_tr[0]), config["batch_size"], e,
                                         config["max_steps"], config.get("steps"))
    per_epoch = len(batches_of(0))
    total = per_epoch * config["epochs"]

    def val_sum(h):
        return sum(h[f"val_bits_l{lvl}"] for lvl in range(L))

    def stop():            # patience on the held-out training maps only (the config requires them)
        return "val" in held_sets and no_improvement_for([val_sum(h) for h in history], config["patience"])

    for epoch in range(start, config["epochs"]):
        if stop():
            break                                          # a resumed run that had already stopped
        model.train()
        batches = batches_of(epoch)
        tot = [0.0] * L
        t0, c0 = time.perf_counter(), time.process_time()
        for i, idx in enumerate(batches):
            set_lr(opt, lr_at(config["lr"], epoch * per_epoch + i, total, config["lr_schedule"],
                              config["lr_min_factor"]))
            idx = s.to_device(idx)
            losses = model.forward_losses([c[idx] for c in codes_tr], lab_tr[idx])
            loss = sum(losses)
            opt.zero_grad()
            loss.backward()
            all_reduce_mean_grads(core.parameters())
            opt.step()
            tot = [a + float(b.detach()) for a, b in zip(tot, losses)]
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        core.eval()
        m = {"epoch": epoch, "steps": len(batches), "seconds": dt,
             "cpu_seconds": s.all_mean(cpu) * s.world, "lr": opt.param_groups[0]["lr"]}
        for lvl in range(L):
            m[f"train_bits_l{lvl}"] = s.all_mean(tot[lvl] / max(len(batches), 1)) / math.log(2)
        if "val" in held_sets:
            m.update({f"val_bits_l{lvl}": b for lvl, b in enumerate(bits_per_code(core, *held_sets["val"]))})
        history.append(m)
        # the test codes never decide: with validation maps the evaluate stage scores them once (a pass
        # over 2,000 maps costs about 100 training steps of 16); without, they give the reported curve
        if "test" in held_sets and "val" not in held_sets:
            m.update({f"test_bits_l{lvl}": b for lvl, b in enumerate(bits_per_code(core, *held_sets["test"]))})
        shown = "val" if "val" in held_sets else "test"
        s.report(m, s.state(epoch, history, priors=core, opt=opt),
                 progress=f"priors epoch {epoch + 1}/{config['epochs']}: {shown} bits/code "
                          + ", ".join(f"l{lvl} {m.get(f'{shown}_bits_l{lvl}', float('nan')):.3f}" for lvl in range(L)))
        if stop():
            break                                          # validation bits stopped improving


def bits_per_code(priors, codes: list[torch.Tensor], labels: torch.Tensor, batch: int = 256) -> list[float]:
    """Mean negative log-likelihood per code, in bits, of each level's prior on a held-out set."""
    from components.vq.build import prior_losses

    priors.eval()
    n, held = len(codes[0]), [0.0] * len(codes)
    with torch.no_grad():
        for lo in range(0, n, batch):
            sl = slice(lo, lo + batch)
            ls = prior_losses(list(priors), [c[sl] for c in codes], labels[sl])
            held = [a + float(b) * len(codes[0][sl]) for a, b in zip(held, ls)]
    return [h / max(n, 1) / math.log(2) for h in held]


def split_maps(train: pd.DataFrame, n_val: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training maps, validation maps): ``n_val`` training code maps held out by a seeded permutation."""
    if n_val <= 0:
        return train, train.iloc[:0]
    if n_val >= len(train):
        raise ValueError(f"prior.val_maps={n_val} leaves no training code maps (of {len(train)})")
    perm = np.random.default_rng(seed + 2).permutation(len(train))
    return train.iloc[perm[n_val:]], train.iloc[perm[:n_val]]


def check_labelled(codes: pd.DataFrame, n_classes: int, data_path: str) -> None:
    """Class-conditional priors need a class for every code map: refuse unlabelled (-1) or
    out-of-range labels before training, instead of silently folding them into class 0."""
    lab = codes.label.to_numpy()
    bad = (lab < 0) | (lab >= n_classes)
    if bad.any():
        raise InputError(
            f"{int(bad.sum())} of {len(lab)} images have no class label (-1) or a label outside "
            f"0..{n_classes - 1}, but the priors are class-conditional", path=data_path,
            fix="label every image (or drop the unlabelled ones), or train unconditional priors "
                "with --set prior.class_conditional=false")


class PriorStack(torch.nn.ModuleList):
    """The priors of all levels as one module (state dict keys ``<level>.<param>``)."""

    def forward_losses(self, codes: list[torch.Tensor], labels: torch.Tensor) -> list[torch.Tensor]:
        from components.vq.build import prior_losses

        return prior_losses(list(self), codes, labels)


def run_train_priors(ctx) -> None:
    cfg = ctx.cfg
    art = ctx.input("extract_codes")
    levels = art.json("levels")
    n_classes = ctx.input("ingest").json("classes")["n_classes"]
    kwargs = prior_kwargs(cfg, n_classes)
    if kwargs["n_classes"]:
        check_labelled(art.df("codes"), n_classes, cfg.data.path)
    n_train = int((pd.read_parquet(art.path("codes.parquet"), columns=["split"]).split == "train").sum())
    if cfg.prior.val_maps >= n_train:
        raise ConfigError(f"prior.val_maps={cfg.prior.val_maps} would hold out all {n_train} training code maps",
                          fix="set prior.val_maps below the number of training images (or 0 for none)")
    loop_cfg = {"codes_path": art.path("codes.parquet"), "kwargs": kwargs,
                "shapes": [tuple(s) for s in levels["shapes"]], "seed": ctx.seed, "threads": cfg.prior.threads,
                "lr": cfg.prior.lr, "epochs": cfg.prior.epochs, "batch_size": cfg.prior.batch_size,
                "max_steps": cfg.prior.max_steps_per_epoch, "steps": cfg.prior.steps_per_epoch,
                "use_gpu": cfg.prior.trainer.use_gpu, "lr_schedule": cfg.prior.lr_schedule,
                "lr_min_factor": cfg.prior.lr_min_factor, "patience": cfg.prior.patience,
                "val_maps": cfg.prior.val_maps}
    result = rt.fit(ctx, prior_train_loop, loop_cfg, cfg.prior.trainer, name="priors")
    state = rt.final_state(result)
    sd = state["priors"]
    per_level = [{k.split(".", 1)[1]: v for k, v in sd.items() if k.split(".", 1)[0] == str(l)}
                 for l in range(kwargs["levels"])]
    torch.save({"kwargs": kwargs, "priors": per_level}, ctx.out.path("priors.pt"))
    hist = pd.DataFrame(state["history"])
    ctx.out.write_table("history", hist)
    last = hist.iloc[-1].to_dict()
    ctx.out.stats(train_maps=n_train - cfg.prior.val_maps, val_maps=cfg.prior.val_maps, **{k: float(v) for k, v in last.items()})
    part = "val" if cfg.prior.val_maps else "test"
    ctx.log("%s bits/code: %s", part, ", ".join(f"l{l}={last.get(f'{part}_bits_l{l}', float('nan')):.3f}"
                                                for l in range(kwargs["levels"])))
