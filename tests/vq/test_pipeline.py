"""The vq pipeline end to end on embedded Ray (tiny sizes, an npz of sklearn digits)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from components.errors import InputError
from pipelines.core.config import validate_config
from pipelines.core.runner import run_pipeline
from pipelines.vq.config import VQConfig
from pipelines.vq.dag import PIPELINE


def _digits_npz(path, labels=True, unlabelled=0):
    from sklearn.datasets import load_digits

    d = load_digits()
    imgs = (d.images[:300] / 16.0 * 255).astype(np.uint8)
    y = d.target[:300].copy()
    y[:unlabelled] = -1
    np.savez(path, images=imgs, **({"labels": y} if labels else {}))


def _cfg(data_path, model):
    return validate_config(VQConfig, {
        "model": model,
        "data": {"path": str(data_path), "image_size": 16, "test_fraction": 0.2},
        "vq": {"hidden": 16, "res_channels": 8, "n_res": 1, "num_codes": 16, "code_dim": 4,
               "restart_threshold": 0.03},
        "train": {"epochs": 2, "batch_size": 32, "trainer": {"num_workers": 0, "max_failures": 0}},
        "prior": {"channels": 8, "layers": 2, "top_layers": 2, "heads": 2, "cond_res": 1, "epochs": 2,
                  "batch_size": 32, "val_maps": 40, "patience": 1, "trainer": {"num_workers": 0, "max_failures": 0}},
        "classifier": {"width": 8, "epochs": 1},
        "sample": {"per_class": 2},
        "evaluate": {"threshold": 0.2},
    })


def test_vqvae2_pipeline_end_to_end(ray_local, tmp_path):
    _digits_npz(tmp_path / "digits.npz")
    res = run_pipeline(PIPELINE, _cfg(tmp_path / "digits.npz", "vqvae2"), str(tmp_path / "art"), echo=False)
    codes = res.artifact("extract_codes").df("codes")
    assert {"image_id", "top", "bottom"} <= set(codes.columns) and len(codes) == 300
    assert len(codes.bottom.iloc[0]) == 16 and len(codes.top.iloc[0]) == 4      # 4x4 and 2x2 maps
    hist = res.artifact("train_vq").df("history")
    assert hist.epoch.tolist() == [0, 1] and (hist.images_per_s > 0).all()
    # the priors decide on held-out training maps; the test codes only give a reported curve
    pr = res.artifact("train_priors")
    ph = pr.df("history")
    assert {"val_bits_l0", "val_bits_l1"} <= set(ph.columns) and "test_bits_l0" not in ph.columns
    st = pr.manifest["stats"]
    assert st["val_maps"] == 40 and st["train_maps"] + 40 == (codes.split == "train").sum()
    m = res.artifact("evaluate").json("metrics")
    assert m["levels"] == 2 and 0 < m["test_nmse"] < 10 and m["test_codes_used_l0"] >= 1
    assert m["prior_bits_per_code_l0"] > 0 and m["prior_bits_per_code_l1"] > 0
    assert 0 <= m["acceptance_rate"] <= 1 and m["sample_count"] == 20
    # honest sample metrics: a scorer that did not filter, FID / CAS / PR before and after
    assert m["filter_train_images"] + m["scorer_train_images"] == len(codes[codes.split == "train"])
    for k in ("fid_before", "cas_before", "precision_before", "recall_before", "scorer_test_accuracy",
              "fid_real_reference", "cas_real_reference", "precision_real_reference"):
        assert m[k] is not None and m[k] >= 0, k
    assert m["real_reference_count"] == m["sample_count"] and m["control_count"] == m["accepted_count"]
    from pipelines.vq.stages.classifier import load_classifier
    from components.vq.sample_metrics import assert_independent

    cls = res.artifact("train_classifier")
    assert_independent(load_classifier(cls, "classifier"), load_classifier(cls, "scorer"))
    curve = res.artifact("evaluate").json("acceptance_curve")
    assert len(curve) == 12 and curve[0]["acceptance_rate"] == 1.0
    assert [r["accepted"] for r in curve] == sorted((r["accepted"] for r in curve), reverse=True)
    samples = res.artifact("sample").df("samples")
    assert sorted(samples.intended_label.unique().tolist()) == list(range(10))
    report = open(res.artifact("report").path("report.md")).read()
    assert "![samples](samples.png)" in report and "test_nmse" in report
    assert "judged independently" in report and "| threshold | accepted |" in report
    assert "real images (reference)" in report
    assert "![curves](curves.png)" in report
    with open(res.artifact("report").path("samples.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    # rerun: everything is a cache hit
    again = run_pipeline(PIPELINE, _cfg(tmp_path / "digits.npz", "vqvae2"), str(tmp_path / "art"), echo=False)
    assert {p.status for p in again.plans.values()} == {"hit"}


def test_ingest_of_a_truncated_idx_file_fails_clearly(ray_local, tmp_path):
    raw = bytes([0, 0, 8, 3]) + b"".join(int(d).to_bytes(4, "big") for d in (10, 8, 8)) + bytes(100)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(raw)
    with pytest.raises(InputError, match="train-images-idx3-ubyte: truncated data"):
        run_pipeline(PIPELINE, _cfg(tmp_path, "vqvae"), str(tmp_path / "art"), until="ingest", echo=False)
    assert not list((tmp_path / "art" / "vq" / "ingest").glob("*/_manifest.json"))


def test_unlabelled_images(ray_local, tmp_path):
    """Partly unlabelled: a clear error before the priors train. Unlabelled: unconditional priors."""
    _digits_npz(tmp_path / "mixed.npz", unlabelled=5)
    with pytest.raises(InputError, match=r"mixed\.npz: 5 of 300 images have no class label.*class_conditional=false"):
        run_pipeline(PIPELINE, _cfg(tmp_path / "mixed.npz", "vqvae"), str(tmp_path / "art"),
                     until="train_priors", echo=False)
    assert not list((tmp_path / "art" / "vq" / "train_priors").glob("*/_manifest.json"))
    _digits_npz(tmp_path / "none.npz", labels=False)
    res = run_pipeline(PIPELINE, _cfg(tmp_path / "none.npz", "vqvae"), str(tmp_path / "art2"), echo=False)
    m = res.artifact("evaluate").json("metrics")
    assert m["sample_count"] == 200 and m.get("acceptance_rate") is None     # sample.n, no classes
    assert (res.artifact("sample").df("samples").intended_label == -1).all()
    assert "no labels" in open(res.artifact("report").path("report.md")).read()


def test_prior_patience_needs_validation_maps_and_they_leave_training_maps():
    from pipelines.vq.stages.priors import split_maps
    import pandas as pd

    with pytest.raises(Exception, match="prior.patience needs prior.val_maps"):
        validate_config(VQConfig, {"prior": {"patience": 1}}, "base")
    assert validate_config(VQConfig, {"prior": {"patience": 1, "val_maps": 10}}, "base").prior.val_maps == 10
    df = pd.DataFrame({"image_id": range(50)})
    tr, va = split_maps(df, 10, seed=0)
    assert len(tr) == 40 and len(va) == 10 and not set(tr.image_id) & set(va.image_id)
    assert split_maps(df, 10, seed=0)[1].image_id.tolist() == va.image_id.tolist()     # seeded
    with pytest.raises(ValueError, match="prior.val_maps=50 leaves no training code maps"):
        split_maps(df, 50, seed=0)
