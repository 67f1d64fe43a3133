"""pretrain: the model-specific stage before supervised training.

* ``hidden_two_stream``: MotionNet alone on its unsupervised losses (photometric, SSIM,
  smoothness; :func:`components.video.models.motionnet.unsupervised_flow_losses` with the
  reference's pre-training weights) for ``motionnet.epochs`` epochs over the training clips
  (Zhu et al. 2017 pre-train MotionNet, then train end to end).
* ``t3d``: 2D -> 3D supervision transfer for ``transfer.epochs`` epochs: a frozen 2D teacher
  (``transfer.teacher`` from ``transfer.teacher_weights``) and the image-clip correspondence task
  (:mod:`components.video.models.transfer`); no labels are used (Diba et al. 2017).
* every other model, or 0 epochs: nothing to do; the artifact records that.

Output: ``init.pt`` (the state dict the train stage starts from: MotionNet's for hidden
two-stream, the whole T3D for the transfer), ``history`` and stats ``kind``.
"""
from __future__ import annotations

import pandas as pd
import torch

from components.video.models.motionnet import unsupervised_flow_losses
from components.video.models.transfer import CorrespondenceModel, correspondence_loss
from components.video.train_loop import model_input
from pipelines.core.hints import config_hints
from pipelines.core.train import Session, fit, final_state, unwrap
from pipelines.video.stages.common import build_model, flow_files, load_index, make_dataset, split_rows


def pretrain_kind(cfg) -> str:
    """``motionnet``, ``transfer`` or ``none`` for this config."""
    if cfg.model.name == "hidden_two_stream" and cfg.motionnet.epochs > 0:
        return "motionnet"
    if cfg.model.name == "t3d" and cfg.transfer.epochs > 0:
        return "transfer"
    return "none"


def _teacher(cfg):
    from components.video.models.backbones2d import backbone2d
    from components.video.models.weights import load_trunk

    trunk = backbone2d(cfg.transfer.teacher, 3)
    with config_hints(weights=f"set transfer.teacher_weights to a 2D {cfg.transfer.teacher} checkpoint"):
        load_trunk(trunk, cfg.transfer.teacher_weights)
    for p in trunk.parameters():
        p.requires_grad_(False)
    return trunk.eval()


def pretrain_worker(config: dict) -> None:
    """Per-worker loop (Ray Train) of either pre-training; the engine's session and checkpoints."""
    from pipelines.video.config import VideoConfig

    cfg = VideoConfig.model_validate(config["cfg"])
    kind = config["kind"]
    s = Session(cfg.seed, cfg.train.threads, use_gpu=cfg.train.trainer.use_gpu, bf16=cfg.train.bf16)
    index = pd.DataFrame(config["index"])
    ds = make_dataset(cfg, split_rows(index, "train"), train=True, flows=config["flow_files"])
    sec = cfg.motionnet if kind == "motionnet" else cfg.transfer
    loader = s.loader(ds, sec.batch_size)
    model = build_model(cfg, len(config["classes"]))
    if kind == "motionnet":
        net = model.motionnet
        objects = {"model": net}
    else:
        net = CorrespondenceModel(model, _teacher(cfg))
        objects = {"model": model, "head": net.head}
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=sec.lr)
    start, history = s.restore(optimizer=opt, **objects)
    net = s.prepare(net)
    for epoch in range(start, sec.epochs):
        ds.set_epoch(epoch)
        loader.batch_sampler.set_epoch(epoch)
        net.train()
        total, n, acc_sum = 0.0, 0, 0.0
        for batch, _labels in loader:      # labels unused: both objectives are unsupervised
            x = s.to_device(model_input(batch))
            with s.autocast():
                if kind == "motionnet":
                    losses = unsupervised_flow_losses(model.unit_frames(x), net(x))   # on [0, 1] frames
                    loss = sum(v.float() for v in losses.values())
                    acc = 0.0
                else:
                    if x.shape[0] < 2:
                        continue      # a last batch of one clip has no negative pair
                    loss, acc = correspondence_loss(net, x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            b = x.shape[0]
            total, n, acc_sum = total + float(loss.detach()) * b, n + b, acc_sum + acc * b
        row = {"epoch": epoch, "loss": s.all_mean(total / max(n, 1))}
        if kind == "transfer":
            row["pair_acc"] = s.all_mean(acc_sum / max(n, 1))
        history.append(row)
        core = unwrap(net)
        parts = {"model": core} if kind == "motionnet" else {"model": core.student, "head": core.head}
        state = s.state(epoch, history, optimizer=opt, **parts)
        s.report(row, state, progress=f"pretrain {kind} epoch {epoch + 1}/{sec.epochs}: loss {row['loss']:.3f}"
                 + (f", pair acc {row['pair_acc']:.3f}" if "pair_acc" in row else ""))


def run_pretrain(ctx) -> None:
    cfg = ctx.cfg
    kind = pretrain_kind(cfg)
    if kind == "none":
        ctx.out.write_table("history", pd.DataFrame({"epoch": pd.Series([], dtype="int64"),
                                                     "loss": pd.Series([], dtype="float64")}))
        ctx.out.stats(kind="none", epochs=0)
        ctx.log("nothing to pre-train for %s", cfg.model.name)
        return
    index, classes = load_index(ctx)
    flows = flow_files(ctx)
    if kind == "transfer":
        _teacher(cfg)        # a bad teacher checkpoint fails here, in the driver
    loop_config = {"cfg": cfg.model_dump(mode="json"), "index": index.to_dict("list"), "classes": classes,
                   "flow_files": flows, "kind": kind}
    result = fit(ctx, pretrain_worker, loop_config, cfg.train.trainer, name=f"pretrain-{kind}")
    state = final_state(result)
    if state is None:
        raise RuntimeError("pre-training finished without a checkpoint")
    torch.save(state["model"], ctx.out.path("init.pt"))
    hist = pd.DataFrame(state["history"])
    ctx.out.write_table("history", hist)
    last = hist.iloc[-1]
    ctx.out.stats(kind=kind, epochs=len(hist), first_loss=float(hist["loss"].iloc[0]), final_loss=float(last["loss"]),
                  **({"pair_acc": float(last["pair_acc"])} if "pair_acc" in hist else {}))
    ctx.log("pretrain %s done: loss %.3f -> %.3f", kind, float(hist["loss"].iloc[0]), float(last["loss"]))


def load_pretrained(model: torch.nn.Module, kind: str, path: str) -> None:
    """Start ``model`` (built by the train stage) from the pretrain stage's ``init.pt``."""
    from pipelines.core.train import load_state

    state = load_state(path)
    if kind == "motionnet":
        model.motionnet.load_state_dict(state, strict=True)
    elif kind == "transfer":
        # the transfer never trains the classifier: keep the train stage's fresh one (class count may differ)
        body = {k: v for k, v in state.items() if not k.startswith("head.")}
        missing, unexpected = model.load_state_dict(body, strict=False)
        if unexpected or any(not k.startswith("head.") for k in missing):
            raise RuntimeError(f"pretrain init.pt does not fit {type(model).__name__}: missing {missing}, "
                               f"unexpected {unexpected}")


def pretrained_init(ctx) -> dict | None:
    """``{"kind", "path"}`` of the pretrain stage's ``init.pt`` for the train stage (None: nothing)."""
    kind = pretrain_kind(ctx.cfg)
    if kind == "none":
        return None
    return {"kind": kind, "path": ctx.input("pretrain").path("init.pt")}
