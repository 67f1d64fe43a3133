"""Sample metrics that do not grade their own filter.

* `frechet_distance`: the Fréchet distance between Gaussians fitted to two feature sets (FID when
  the features come from a classifier trained on real images; here the small classifier of
  `components.vq.rejection`, not Inception, so values are comparable only within this pipeline).
* `classification_accuracy_score` (CAS, Ravuri & Vinyals 2019): train a classifier on generated
  samples only (labels = intended class), report its accuracy on real test images.
* `acceptance_curve`: for each threshold, the share of samples the *filter* classifier keeps and
  the accuracy of an *independent scorer* on the kept ones.
* `split_halves` / `assert_independent`: the filter and the scorer are trained on disjoint halves
  of the labelled training images with different seeds, and the evaluation refuses to run when
  they are the same object or carry the same weights.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from components.vq.rejection import SmallClassifier, predict, train_classifier


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + tr(S_a) + tr(S_b) - 2 tr((S_a^1/2 S_b S_a^1/2)^1/2), in float64.

    The matrix square root uses symmetric eigendecompositions (no scipy), so it is exact for the
    PSD covariances involved; negative round-off eigenvalues are clipped to 0.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sets must be (N, d) with the same d, got {a.shape} and {b.shape}")
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    mu = a.mean(0) - b.mean(0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(sa)
    sa_half = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = sa_half @ sb @ sa_half
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    return float(max(mu @ mu + np.trace(sa) + np.trace(sb) - 2 * tr_sqrt, 0.0))


def fit_classifier(x: torch.Tensor, y: torch.Tensor, n_classes: int, width: int = 32, epochs: int = 2,
                   batch_size: int = 128, lr: float = 2e-3, seed: int = 0) -> SmallClassifier:
    """A `SmallClassifier` trained from a seeded initialisation (same inputs -> same weights)."""
    torch.manual_seed(seed)
    model = SmallClassifier(int(x.shape[1]), n_classes, width=width)
    train_classifier(model, x, y, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    return model.eval()


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    keep = y >= 0                                  # unlabelled images do not count
    if not keep.any():
        return float("nan")
    probs, _ = predict(model, x[keep])
    return float((probs.argmax(1) == y[keep]).float().mean())


def classification_accuracy_score(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
                                  test_y: torch.Tensor, n_classes: int, steps: int | None = None,
                                  **fit_kwargs) -> float:
    """CAS: accuracy on (test_x, test_y) of a classifier trained on (train_x, train_y) only.

    With generated samples as the training set this measures whether the samples carry their
    class's information; with real images it is the classifier's ordinary test accuracy.
    ``steps``: train for at least this many optimizer steps (the epochs are raised for a small
    set). Without it a set of 70 images gets one step per epoch against 4 for 500 images, and
    its CAS is low for want of training, not for what the images carry.
    """
    keep = train_y >= 0
    if keep.sum() < 2:
        return float("nan")
    if steps is not None:
        per_epoch = math.ceil(int(keep.sum()) / int(fit_kwargs.get("batch_size", 128)))
        fit_kwargs["epochs"] = max(int(fit_kwargs.get("epochs", 2)), math.ceil(steps / per_epoch))
    model = fit_classifier(train_x[keep], train_y[keep], n_classes, **fit_kwargs)
    return accuracy(model, test_x, test_y)


def split_halves(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint random halves of ``range(n)`` (sorted), for the filter and the scorer."""
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[: n // 2]), np.sort(perm[n // 2:])


def assert_independent(filt: torch.nn.Module, scorer: torch.nn.Module) -> None:
    """Raise unless the scorer is a different object with different weights from the filter."""
    if filt is scorer:
        raise AssertionError("the scorer is the filter: sample accuracy after rejection would be "
                             "true by construction")
    fa, fb = filt.state_dict(), scorer.state_dict()
    if fa.keys() == fb.keys() and all(torch.equal(fa[k], fb[k]) for k in fa):
        raise AssertionError("the scorer has the filter's weights: it cannot judge the filter")


def acceptance_curve(filter_probs: torch.Tensor, intended: torch.Tensor, thresholds,
                     scorer_probs: torch.Tensor | None = None) -> list[dict]:
    """Per threshold: acceptance rate and count under the filter, and the scorer's accuracy on
    the accepted samples (nan when none is kept)."""
    p_int = filter_probs.gather(1, intended[:, None]).squeeze(1)
    correct = None if scorer_probs is None else scorer_probs.argmax(1) == intended
    rows = []
    for t in thresholds:
        keep = p_int >= float(t)
        row = {"threshold": float(t), "accepted": int(keep.sum()), "acceptance_rate": float(keep.float().mean())}
        if correct is not None:
            row["scorer_accuracy"] = float(correct[keep].float().mean()) if keep.any() else float("nan")
        rows.append(row)
    return rows
