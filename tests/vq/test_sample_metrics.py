"""Honest sample metrics: FID, CAS, independent scorer, acceptance curve; LR schedule; labels."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from components.errors import InputError
from components.vq.sample_metrics import (acceptance_curve, accuracy, assert_independent,
                                          classification_accuracy_score, fit_classifier,
                                          frechet_distance, split_halves)
from components.vq.schedule import lr_at, no_improvement_for
from pipelines.vq.stages.priors import check_labelled

torch.set_num_threads(1)


def test_fid_of_a_set_against_itself_is_zero_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 8)) @ rng.normal(size=(8, 8))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shift = np.full(8, 0.5)
    # same covariance, shifted mean: FID = ||shift||^2 exactly
    assert frechet_distance(a, a + shift) == pytest.approx(float(shift @ shift), rel=1e-6)
    b = rng.normal(size=(400, 8)) @ rng.normal(size=(8, 8))
    assert frechet_distance(a, b) > 0.5 and frechet_distance(a, 2 * a) > 0.5


def test_fid_matches_the_scipy_sqrtm_formula():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(300, 5)), rng.normal(size=(200, 5)) * 1.5 + 0.3
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    mu = a.mean(0) - b.mean(0)
    ref = mu @ mu + np.trace(sa + sb - 2 * scipy_linalg.sqrtm(sa @ sb).real)
    assert frechet_distance(a, b) == pytest.approx(ref, rel=1e-6)


def _toy(n, seed):
    """Two classes of 8x8 images: a bright left half or a bright right half, plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 1, 8, 8, generator=g) * 0.3
    x[y == 0, :, :, :4] += 1.0
    x[y == 1, :, :, 4:] += 1.0
    return x, y


def test_cas_on_real_data_equals_the_classifiers_accuracy():
    x, y = _toy(64, 0)
    xt, yt = _toy(32, 1)
    kw = dict(width=4, epochs=5, batch_size=16, lr=1e-2, seed=3)
    clf = fit_classifier(x, y, 2, **kw)
    acc = accuracy(clf, xt, yt)
    assert acc > 0.8
    assert classification_accuracy_score(x, y, xt, yt, 2, **kw) == acc
    # unlabelled rows (-1) are ignored on both sides
    y_u, yt_u = y.clone(), yt.clone()
    y_u[:10], yt_u[:10] = -1, -1
    cas = classification_accuracy_score(x, y_u, xt, yt_u, 2, **kw)
    ref = accuracy(fit_classifier(x[10:], y[10:], 2, **kw), xt[10:], yt[10:])
    assert cas == ref
    assert np.isnan(classification_accuracy_score(x, torch.full_like(y, -1), xt, yt, 2, **kw))


def test_cas_steps_give_a_small_set_as_many_updates_as_a_large_one():
    """With ``steps`` a set of 16 runs more epochs (here 4 x 5 = 20 steps at batch 16, one step per
    epoch of 16 images) instead of 5 steps: the same as fitting with epochs=20 by hand."""
    x, y = _toy(16, 0)
    xt, yt = _toy(32, 1)
    kw = dict(width=4, epochs=5, batch_size=16, lr=1e-2, seed=3)
    by_hand = accuracy(fit_classifier(x, y, 2, **{**kw, "epochs": 20}), xt, yt)
    assert classification_accuracy_score(x, y, xt, yt, 2, steps=20, **kw) == by_hand
    # a set that already gets the steps keeps its epochs
    assert classification_accuracy_score(x, y, xt, yt, 2, steps=3, **kw) == \
        classification_accuracy_score(x, y, xt, yt, 2, **kw)


def test_the_scorer_is_never_the_filter():
    x, y = _toy(64, 0)
    a, b = split_halves(len(x), seed=0)
    assert not set(a) & set(b) and len(a) + len(b) == len(x)
    filt = fit_classifier(x[a], y[a], 2, width=4, epochs=1, seed=0)
    scorer = fit_classifier(x[b], y[b], 2, width=4, epochs=1, seed=1)
    assert_independent(filt, scorer)
    with pytest.raises(AssertionError, match="scorer is the filter"):
        assert_independent(filt, filt)
    twin = fit_classifier(x[a], y[a], 2, width=4, epochs=1, seed=0)   # same data, same seed
    with pytest.raises(AssertionError, match="filter's weights"):
        assert_independent(filt, twin)


def test_acceptance_curve_falls_with_the_threshold_and_uses_the_scorer():
    fp = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.45, 0.55]])
    sp = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])      # disagrees on 0 and 3
    intended = torch.tensor([0, 0, 1, 1])
    curve = acceptance_curve(fp, intended, [0.0, 0.58, 0.7, 0.95], sp)
    assert [r["accepted"] for r in curve] == [4, 3, 2, 0]
    assert [r["acceptance_rate"] for r in curve] == [1.0, 0.75, 0.5, 0.0]
    assert curve[0]["scorer_accuracy"] == 0.5             # scorer right on samples 1 and 2
    assert curve[2]["scorer_accuracy"] == 0.5             # kept: 0 (scorer wrong), 2 (right)
    assert np.isnan(curve[3]["scorer_accuracy"])


def test_cosine_schedule_and_early_stopping():
    assert lr_at(1.0, 0, 100, "cosine", 0.1) == pytest.approx(1.0)
    assert lr_at(1.0, 99, 100, "cosine", 0.1) == pytest.approx(0.1)
    assert lr_at(1.0, 50, 100, "constant") == 1.0
    vals = [lr_at(1.0, i, 100, "cosine") for i in range(100)]
    assert all(a >= b for a, b in zip(vals, vals[1:]))
    assert not no_improvement_for([3, 2, 1], 2) and not no_improvement_for([3, 2], None)
    assert no_improvement_for([3, 1, 1.5, 1.2], 2) and not no_improvement_for([3, 1, 1.5, 0.9], 2)


def test_steps_per_epoch_cycles_a_small_set_and_equals_the_cap_on_a_large_one():
    from pipelines.core.train import Session
    from pipelines.vq.stages.common import epoch_batches

    s = Session(0, 1)
    small = epoch_batches(s, 100, 32, epoch=0, steps=10)       # one pass has 4 batches
    assert len(small) == 10
    seen = torch.cat(small[:4])
    assert sorted(seen.tolist()) == list(range(100))           # the first pass covers the set once
    assert not all(torch.equal(a, b) for a, b in zip(small[:4], small[4:8]))   # then reshuffled
    cap = epoch_batches(s, 100, 32, epoch=1, max_steps=3)
    assert all(torch.equal(a, b) for a, b in zip(cap, epoch_batches(s, 100, 32, epoch=1, steps=3)))


def test_unlabelled_maps_are_refused_for_class_priors_naming_the_file():
    codes = pd.DataFrame({"label": [0, 1, -1, 2]})
    check_labelled(codes.iloc[[0, 1, 3]], 3, "/data/x.npz")
    with pytest.raises(InputError, match=r"/data/x\.npz: 1 of 4 images have no class label.*class_conditional=false"):
        check_labelled(codes, 3, "/data/x.npz")
