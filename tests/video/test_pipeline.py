"""End-to-end `video` pipeline on embedded Ray with real decoding, flow, training and evaluation."""
import json
import os
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from pipelines.core.config import load_config
from pipelines.core.runner import run_pipeline
from pipelines.video.dag import PIPELINE

TINY = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "video", "tiny.yaml")


def _stage_dir(res, name):
    return res.record["stages"][name]["dir"]


def test_tiny_video_pipeline_runs_and_resumes(ray_local, tmp_root):
    cfg = load_config(PIPELINE.config_cls, TINY, ["train.epochs=2"])
    res = run_pipeline(PIPELINE, cfg, str(tmp_root), echo=False)
    assert {n: p.status for n, p in res.plans.items()} == dict.fromkeys(
        ["ingest", "flow", "pretrain", "train", "evaluate", "embed"], "run")
    ingest = _stage_dir(res, "ingest")
    assert pq.read_table(f"{ingest}/index.parquet").num_rows == 48
    assert pq.read_table(f"{ingest}/rejects.parquet").num_rows == 0
    flow = res.artifact("flow").df("flow_index")   # parts written by the flow shards
    q = np.load(os.path.join(_stage_dir(res, "flow"), flow["file"].iloc[0]))
    assert q.dtype == np.uint8 and q.shape == (11, 20, 20, 2)
    ev = _stage_dir(res, "evaluate")
    metrics = json.load(open(f"{ev}/metrics.json"))
    assert metrics["multi_view"]["views"] == 6 and metrics["clips"] == 12
    assert 0 <= metrics["multi_view"]["top1"] <= metrics["multi_view"]["top5"] <= 1
    assert metrics["split"] == "val" and 0 <= metrics["multi_view"]["mean_class_acc"] <= 1
    assert len(metrics["per_class"]) == 12 and all(v["clips"] == 1 for v in metrics["per_class"].values())
    assert os.path.getsize(f"{ev}/confusion.png") > 1000
    report = open(f"{ev}/report.md").read()
    assert "| multi_view | 6 |" in report and "## Per class" in report
    emb = pq.read_table(f"{_stage_dir(res, 'embed')}/embeddings.parquet").to_pandas()
    assert len(emb) == 48 and len(emb["embedding"].iloc[0]) == 64 and emb["video_id"].is_unique
    hist = pq.read_table(f"{_stage_dir(res, 'train')}/history.parquet").to_pandas()
    assert hist["epoch"].tolist() == [0, 1] and not hist["resumed"].any()

    # simulate a driver killed after epoch 0: roll the in-process checkpoint back one epoch,
    # drop the train artifact and run again -> the stage resumes at epoch 1 from the scratch dir
    tr = res.plans["train"]
    scratch = res.store.scratch_dir("video", "train", tr.fingerprint)
    ckpt = os.path.join(scratch, "train-r3d_18-local", "state.pt")
    state = torch.load(ckpt, weights_only=False)
    state["epoch"], state["history"] = 0, state["history"][:1]
    steps_per_epoch = 3                                   # 36 training clips / batch 12
    state["scheduler"]["last_epoch"] -= steps_per_epoch
    state["scheduler"]["_step_count"] -= steps_per_epoch
    torch.save(state, ckpt)
    for stage in ("train", "evaluate", "embed"):
        shutil.rmtree(_stage_dir(res, stage))
    res2 = run_pipeline(PIPELINE, cfg, str(tmp_root), until="train", echo=False)
    assert res2.plans["ingest"].status == "hit" and res2.plans["train"].status == "run"
    hist2 = pq.read_table(f"{_stage_dir(res2, 'train')}/history.parquet").to_pandas()
    assert hist2["epoch"].tolist() == [0, 1]
    assert hist2["resumed"].tolist() == [False, True]
