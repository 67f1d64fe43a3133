"""train_classifier: a small CNN on the real training images (for rejection sampling and features)."""
from __future__ import annotations

import torch

from components.vq.rejection import SmallClassifier, predict, train_classifier
from pipelines.vq.stages.common import images_of
from pipelines.core.train import load_state


def run_train_classifier(ctx) -> None:
    cfg = ctx.cfg
    df = ctx.input("ingest").df("images")
    n_classes = ctx.input("ingest").json("classes")["n_classes"]
    x, y, _ = images_of(df, cfg.data.image_size, "train")
    xt, yt, _ = images_of(df, cfg.data.image_size, "test")
    keep = y >= 0
    if n_classes < 2 or keep.sum() == 0:
        ctx.log("no labels: the classifier is skipped")
        ctx.out.write_json("classifier", {"trained": False})
        return
    torch.manual_seed(ctx.seed)
    c = cfg.classifier
    model = SmallClassifier(int(x.shape[1]), n_classes, width=c.width)
    hist = train_classifier(model, x[keep], y[keep], epochs=c.epochs, batch_size=c.batch_size,
                            lr=c.lr, seed=ctx.seed)
    probs, _ = predict(model, xt)
    acc = float((probs.argmax(1) == yt).float().mean()) if len(yt) else float("nan")
    torch.save({"in_channels": int(x.shape[1]), "n_classes": n_classes, "width": c.width,
                "model": model.state_dict()}, ctx.out.path("classifier.pt"))
    ctx.out.write_json("classifier", {"trained": True, "test_accuracy": acc, "loss_per_epoch": hist})
    ctx.out.stats(test_accuracy=acc)
    ctx.log("classifier test accuracy %.3f", acc)


def load_classifier(art):
    blob = load_state(art.path("classifier.pt"))
    m = SmallClassifier(blob["in_channels"], blob["n_classes"], width=blob["width"])
    m.load_state_dict(blob["model"])
    return m.eval()
