"""Framework-free training and evaluation steps for video classifiers (no Ray here).

* :func:`model_input` — hand a batch (``dict`` of tensors) to a model: the bare tensor for
  single-input models, the dict for multi-input ones (the registry's call contract).
* :func:`make_optimizer` / :func:`make_schedule` — the training recipe: AdamW + one-cycle (ours)
  or SGD + linear warm-up + step decay (torchvision's ``references/video_classification``).
* :func:`train_epoch` — one epoch with optional bf16 autocast; adds auxiliary losses of models
  exposing ``forward_train`` (hidden two-stream).
* :func:`predict` — class probabilities averaged over the views of multi-view batches
  (``[B, V, ...]`` inputs), plus labels; :func:`embed` — ``model.features`` averaged over views.
* :func:`topk_accuracy`, :func:`per_class_accuracy` (with the mean-class accuracy of UCF101 /
  HMDB51 papers), :func:`confusion_matrix`, :func:`plot_confusion`.
"""
from __future__ import annotations

import contextlib
import time
from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["model_input", "autocast", "make_optimizer", "make_schedule", "train_epoch", "predict", "embed", "topk_accuracy",
           "per_class_accuracy", "confusion_matrix", "plot_confusion"]


def model_input(batch: dict[str, torch.Tensor]):
    """The object a registry model's ``forward`` takes for this batch."""
    return next(iter(batch.values())) if len(batch) == 1 else batch


def autocast(bf16: bool, device: torch.device | str = "cpu"):
    """``torch.autocast`` in bfloat16 on ``device``'s type when ``bf16``, else a no-op context."""
    kind = torch.device(device).type
    return torch.autocast(kind, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def _to(x, device: torch.device | None):
    if device is None:
        return x
    if isinstance(x, dict):
        return {k: v.to(device, non_blocking=True) for k, v in x.items()}
    return x.to(device, non_blocking=True)


def make_optimizer(params, kind: str, lr: float, weight_decay: float,
                   momentum: float = 0.9) -> torch.optim.Optimizer:
    """``adamw`` (decoupled weight decay) or ``sgd`` (heavy-ball ``momentum``, L2 weight decay as in
    torchvision's video reference)."""
    if kind == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {kind!r}; choose adamw or sgd")


def make_schedule(optimizer: torch.optim.Optimizer, kind: str, total_steps: int, *, warmup: float = 0.15,
                  milestones: tuple[float, ...] = (20 / 45, 30 / 45, 40 / 45), gamma: float = 0.1,
                  warmup_start: float = 1e-3) -> torch.optim.lr_scheduler.LRScheduler:
    """A per-step learning-rate schedule over ``total_steps`` optimizer steps.

    * ``onecycle``: rise over the first ``warmup`` fraction of the steps to the optimizer's LR, then
      cosine annealing (``OneCycleLR``).
    * ``warmup_step``: torchvision's video recipe: linear warm-up from ``warmup_start`` x LR over the
      first ``warmup`` fraction, then the LR times ``gamma`` at each of ``milestones`` (fractions of
      ``total_steps``; the reference's 10 warm-up epochs and milestones 20 / 30 / 40 of 45 epochs
      are the fractions 0.22 and 0.44 / 0.67 / 0.89).
    """
    total = max(int(total_steps), 1)
    if kind == "onecycle":
        lr = optimizer.param_groups[0]["lr"]
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total, pct_start=warmup)
    if kind == "warmup_step":
        w = int(round(warmup * total))
        marks = sorted(int(round(m * total)) for m in milestones)

        def factor(step: int) -> float:
            f = warmup_start + (1 - warmup_start) * step / w if step < w else 1.0
            return f * gamma ** sum(step >= m for m in marks)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    raise ValueError(f"unknown schedule {kind!r}; choose onecycle or warmup_step")


def train_epoch(model: torch.nn.Module, loader: Iterable, optimizer: torch.optim.Optimizer, *,
                bf16: bool = False, max_steps: int | None = None,
                scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                device: torch.device | None = None) -> dict:
    """Train for one pass over ``loader``; returns ``{loss, acc, clips, seconds, clips_per_s}``.

    ``device``: where batches go (the model is expected there already); None keeps them as loaded.
    Models exposing ``forward_train`` (hidden two-stream) add its auxiliary losses; a wrapper
    that forwards it (e.g. the training engine's DDP) works the same.
    """
    model.train()
    total, correct, loss_sum, t0 = 0, 0, 0.0, time.perf_counter()
    has_aux = hasattr(model, "forward_train")
    for step, (batch, labels) in enumerate(loader):
        if max_steps is not None and step >= max_steps:
            break
        batch, labels = _to(batch, device), _to(labels, device)
        with autocast(bf16, device or "cpu"):
            if has_aux:
                logits, aux = model.forward_train(model_input(batch))
                loss = F.cross_entropy(logits.float(), labels) + sum(v.float() for v in aux.values())
            else:
                logits = model(model_input(batch))
                loss = F.cross_entropy(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        n = len(labels)
        total += n
        loss_sum += float(loss.detach()) * n
        correct += int((logits.detach().argmax(1) == labels).sum().item())
    secs = time.perf_counter() - t0
    return {"loss": loss_sum / max(total, 1), "acc": correct / max(total, 1), "clips": total,
            "seconds": secs, "clips_per_s": total / secs if secs > 0 else 0.0}


def _flatten_views(batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], int, int]:
    b, v = next(iter(batch.values())).shape[:2]
    return {k: x.reshape(b * v, *x.shape[2:]) for k, x in batch.items()}, b, v


@torch.no_grad()
def predict(model: torch.nn.Module, loader: Iterable, *, bf16: bool = False,
            device: torch.device | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(probs [N, C], labels [N])``; softmax scores averaged over each item's views."""
    model.eval()
    probs, labels = [], []
    for batch, y in loader:
        flat, b, v = _flatten_views(_to(batch, device))
        with autocast(bf16, device or "cpu"):
            logits = model(model_input(flat)).float()
        probs.append(logits.softmax(-1).view(b, v, -1).mean(1).cpu().numpy())
        labels.append(np.asarray(y))
    return np.concatenate(probs), np.concatenate(labels)


@torch.no_grad()
def embed(model: torch.nn.Module, loader: Iterable, *, bf16: bool = False) -> np.ndarray:
    """``float32 [N, D]`` clip embeddings (``model.features``) averaged over views."""
    model.eval()
    out = []
    for batch, _ in loader:
        flat, b, v = _flatten_views(batch)
        with autocast(bf16):
            f = model.features(model_input(flat)).float()
        out.append(f.view(b, v, -1).mean(1).numpy())
    return np.concatenate(out).astype(np.float32)


def topk_accuracy(probs: np.ndarray, labels: np.ndarray, ks: tuple[int, ...] = (1, 5)) -> dict[str, float]:
    """``{"top1": ..., "top5": ...}``; k larger than the class count counts as the class count."""
    order = np.argsort(-probs, axis=1)
    out = {}
    for k in ks:
        kk = min(k, probs.shape[1])
        out[f"top{k}"] = float((order[:, :kk] == labels[:, None]).any(1).mean()) if len(labels) else 0.0
    return out


def per_class_accuracy(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray, float]:
    """``(accuracy [C], count [C], mean-class accuracy)``.

    ``accuracy[c]`` is the top-1 recall of class ``c`` (NaN when the split has no clip of it);
    the mean-class accuracy averages it over the classes present, so every class weighs the
    same however many clips it has (top-1 weighs clips).
    """
    pred, labels = np.asarray(pred).astype(int), np.asarray(labels).astype(int)
    count = np.bincount(labels, minlength=num_classes)[:num_classes]
    hits = np.bincount(labels[pred == labels], minlength=num_classes)[:num_classes]
    acc = np.full(num_classes, np.nan)
    present = count > 0
    acc[present] = hits[present] / count[present]
    return acc, count, float(acc[present].mean()) if present.any() else 0.0


def confusion_matrix(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """``int64 [C, C]``: rows = true class, columns = predicted class."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (labels.astype(int), pred.astype(int)), 1)
    return cm


def plot_confusion(cm: np.ndarray, classes: list[str], path: str, title: str = "") -> str:
    """Save a row-normalised confusion-matrix heat map (PNG) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    side = max(4.0, 0.45 * len(classes) + 2)
    fig, ax = plt.subplots(figsize=(side, side))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=90, fontsize=7)
    ax.set_yticks(range(len(classes)), classes, fontsize=7)
    for i in range(len(classes)):
        for j in range(len(classes)):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion matrix")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
