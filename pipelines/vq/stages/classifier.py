"""train_classifier: two small CNNs on the real training images.

* ``classifier.pt`` (the **filter**): used by rejection sampling only.
* ``scorer.pt`` (the **scorer**): trained on the other half of the labelled training images with
  a different seed; it grades the samples (accuracy before / after rejection, acceptance curve)
  and gives the feature space of FID and precision / recall. It never filters.
"""
from __future__ import annotations

import numpy as np
import torch

from components.vq.rejection import SmallClassifier
from components.vq.sample_metrics import accuracy, fit_classifier, split_halves
from pipelines.vq.stages.common import images_of
from pipelines.core.train import load_state

SCORER_SEED_OFFSET = 7919


def run_train_classifier(ctx) -> None:
    cfg = ctx.cfg
    df = ctx.input("ingest").df("images")
    n_classes = ctx.input("ingest").json("classes")["n_classes"]
    x, y, _ = images_of(df, cfg.data.image_size, "train")
    xt, yt, _ = images_of(df, cfg.data.image_size, "test")
    labelled = np.flatnonzero(y.numpy() >= 0)
    if n_classes < 2 or len(labelled) < 4:
        ctx.log("no labels: the classifiers are skipped")
        ctx.out.write_json("classifier", {"trained": False})
        return
    c = cfg.classifier
    kw = dict(width=c.width, epochs=c.epochs, batch_size=c.batch_size, lr=c.lr)
    a, b = split_halves(len(labelled), ctx.seed)
    info = {"trained": True}
    for name, half, seed in (("classifier", labelled[a], ctx.seed), ("scorer", labelled[b], ctx.seed + SCORER_SEED_OFFSET)):
        model = fit_classifier(x[half], y[half], n_classes, seed=seed, **kw)
        acc = accuracy(model, xt, yt) if len(yt) else float("nan")
        torch.save({"in_channels": int(x.shape[1]), "n_classes": n_classes, "width": c.width,
                    "model": model.state_dict()}, ctx.out.path(f"{name}.pt"))
        info[name] = {"test_accuracy": acc, "train_images": int(len(half)), "seed": seed}
        ctx.log("%s (%d images, seed %d): test accuracy %.3f", name, len(half), seed, acc)
    info["test_accuracy"] = info["classifier"]["test_accuracy"]
    ctx.out.write_json("classifier", info)
    ctx.out.stats(filter_test_accuracy=info["classifier"]["test_accuracy"],
                  scorer_test_accuracy=info["scorer"]["test_accuracy"])


def load_classifier(art, name: str = "classifier"):
    """The rejection filter (``classifier``) or the independent scorer (``scorer``)."""
    blob = load_state(art.path(f"{name}.pt"))
    m = SmallClassifier(blob["in_channels"], blob["n_classes"], width=blob["width"])
    m.load_state_dict(blob["model"])
    return m.eval()
