"""Classifier-based rejection sampling (Razavi et al. 2019, section 3.3) and k-NN precision/recall.

A small CNN classifier is trained on real images; a generated sample for intended class y is kept
when the classifier's p(y | sample) passes a threshold. Quality/diversity is measured with the
improved precision and recall of Kynkäänniemi et al. 2019 on the classifier's penultimate
features: each real (generated) feature defines a ball reaching its k-th nearest real (generated)
neighbour; precision = share of generated samples inside the real manifold, recall = share of
real samples inside the generated manifold.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class SmallClassifier(nn.Module):
    """Two conv blocks + MLP; ``features`` gives the penultimate embedding."""

    def __init__(self, in_channels: int, n_classes: int, width: int = 32, feat_dim: int = 64):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
            nn.Flatten(), nn.Linear(8 * w, feat_dim), nn.ReLU())
        self.fc = nn.Linear(feat_dim, n_classes)

    def features(self, x):
        return self.body(x)

    def forward(self, x):
        return self.fc(self.body(x))


def train_classifier(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, epochs: int = 2,
                     batch_size: int = 128, lr: float = 2e-3, seed: int = 0) -> list[float]:
    """Plain Adam training on (images, labels); returns the mean loss per epoch."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    hist = []
    for _ in range(epochs):
        perm = torch.randperm(len(images), generator=g)
        tot, nb = 0.0, 0
        for s in range(0, len(images), batch_size):
            idx = perm[s:s + batch_size]
            loss = F.cross_entropy(model(images[idx]), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot, nb = tot + float(loss.detach()), nb + 1
        hist.append(tot / max(nb, 1))
    model.eval()
    return hist


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 512):
    """(class probabilities, penultimate features) for a batch of images."""
    model.eval()
    probs, feats = [], []
    for s in range(0, len(images), batch_size):
        f = model.features(images[s:s + batch_size])
        feats.append(f)
        probs.append(torch.softmax(model.fc(f), -1))
    return torch.cat(probs), torch.cat(feats)


@dataclass
class RejectionResult:
    keep: torch.Tensor            # bool mask over samples
    acceptance_rate: float
    accuracy_before: float        # classifier argmax == intended class, all samples
    accuracy_after: float         # same, kept samples only (nan if none kept)


def reject(probs: torch.Tensor, intended: torch.Tensor, threshold: float) -> RejectionResult:
    """Keep samples whose probability of the intended class is >= ``threshold``."""
    p_int = probs.gather(1, intended[:, None]).squeeze(1)
    keep = p_int >= threshold
    correct = probs.argmax(1) == intended
    after = float(correct[keep].float().mean()) if keep.any() else float("nan")
    return RejectionResult(keep, float(keep.float().mean()), float(correct.float().mean()), after)


def _dists(a: np.ndarray, b: np.ndarray, chunk: int = 1024):
    """Euclidean distances of ``a`` to ``b`` in row chunks (memory O(chunk x len(b)))."""
    tb = torch.from_numpy(b)
    for s in range(0, len(a), chunk):
        yield s, torch.cdist(torch.from_numpy(a[s:s + chunk]), tb).numpy()


def _kth_radius(x: np.ndarray, k: int) -> np.ndarray:
    kk = min(k, len(x) - 1)                         # column 0 is the point itself
    out = np.empty(len(x))
    for s, d in _dists(x, x):
        out[s:s + len(d)] = np.partition(d, kk, axis=1)[:, kk]
    return out


def _inside(query: np.ndarray, ref: np.ndarray, radii: np.ndarray) -> np.ndarray:
    out = np.zeros(len(query), bool)
    for s, d in _dists(query, ref):
        out[s:s + len(d)] = (d <= radii[None, :]).any(1)
    return out


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Kynkäänniemi et al. 2019 improved precision and recall with k-NN balls (float features)."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if len(real) < 2 or len(fake) < 2:
        return float("nan"), float("nan")
    precision = _inside(fake, real, _kth_radius(real, k)).mean()
    recall = _inside(real, fake, _kth_radius(fake, k)).mean()
    return float(precision), float(recall)
