"""The pretrain stage in the pipeline: MotionNet-only pre-training before hidden two-stream's
end-to-end training, 2D -> 3D supervision transfer before T3D's fine-tuning, nothing otherwise."""
import os

import pyarrow.parquet as pq
import pytest
import torch

from pipelines.core.config import load_config
from pipelines.core.runner import run_pipeline
from pipelines.video.dag import PIPELINE

TINY = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "video", "tiny.yaml")


def _stats(res, name):
    import json
    d = res.record["stages"][name]["dir"]
    return json.load(open(os.path.join(d, "_manifest.json"))).get("stats", {}), d


@pytest.mark.slow
def test_pretrain_stage_feeds_the_train_stage(ray_local, tmp_root, tmp_path):
    from components.video.models.resnet3d import FrameResNet

    # hidden two-stream: MotionNet alone first, then end to end from its weights
    cfg = load_config(PIPELINE.config_cls, TINY, [
        "model.name=hidden_two_stream", "model.kwargs={frames: 4, motion_width: 8, width: 8}",
        "motionnet.epochs=2", "motionnet.batch_size=12"])
    res = run_pipeline(PIPELINE, cfg, str(tmp_root), until="train", echo=False)
    stats, d = _stats(res, "pretrain")
    assert stats["kind"] == "motionnet" and stats["epochs"] == 2
    hist = pq.read_table(f"{d}/history.parquet").to_pandas()
    assert hist["loss"].notna().all() and hist["loss"].iloc[-1] < hist["loss"].iloc[0]
    init = torch.load(f"{d}/init.pt", weights_only=True)
    assert all(k.startswith(("enc", "up", "flow")) for k in init)          # MotionNet's own state dict
    assert res.plans["train"].status == "run"

    # T3D: the correspondence task with a frozen 2D teacher read from a file
    teacher = tmp_path / "teacher.pt"
    torch.save(FrameResNet(18, 3, 10, width=8).state_dict(), teacher)
    cfg = load_config(PIPELINE.config_cls, TINY, [
        "model.name=t3d", "model.kwargs={block_config: [1, 1, 1, 1], growth: 8, init_features: 16, ttl_width: 8}",
        "transfer.epochs=2", f"transfer.teacher_weights={teacher}", "transfer.batch_size=6"])
    with pytest.raises(Exception, match="weights"):       # the teacher's width must match its checkpoint
        run_pipeline(PIPELINE, cfg, str(tmp_root), until="pretrain", echo=False)
    torch.save(FrameResNet(18, 3, 10).state_dict(), teacher)
    res = run_pipeline(PIPELINE, cfg, str(tmp_root), until="train", echo=False)
    stats, d = _stats(res, "pretrain")
    assert stats["kind"] == "transfer" and 0 <= stats["pair_acc"] <= 1
    assert res.plans["ingest"].status == "hit" and res.plans["train"].status == "run"

    # any other model: nothing to pre-train
    cfg = load_config(PIPELINE.config_cls, TINY, [])
    res = run_pipeline(PIPELINE, cfg, str(tmp_root), until="pretrain", echo=False)
    assert _stats(res, "pretrain")[0]["kind"] == "none"
