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


def _tiny(tmp_path, model: dict) -> str:
    """tiny.yaml with another ``model`` section (``--set`` merges kwargs dicts, it cannot drop a key)."""
    import yaml
    tree = yaml.safe_load(open(TINY))
    tree["model"] = model
    path = tmp_path / f"tiny_{model['name']}.yaml"
    path.write_text(yaml.safe_dump(tree))
    return str(path)


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
    assert hist["loss"].notna().all() and (hist["loss"] > 0).all()   # 6 steps: no claim it drops here
    # (that MotionNet learns from these losses alone: test_motionnet.py::test_motionnet_learns_a_shift...)
    init = torch.load(f"{d}/init.pt", weights_only=True)
    assert all(k.startswith(("enc", "up", "flow")) for k in init)          # MotionNet's own state dict
    assert res.plans["train"].status == "run"

    # T3D: the correspondence task with a frozen 2D teacher read from a file
    teacher = tmp_path / "teacher.pt"
    torch.save(FrameResNet(18, 3, 10, width=8).state_dict(), teacher)
    t3d = _tiny(tmp_path, {"name": "t3d", "kwargs": {"block_config": [1, 1, 1, 1], "growth": 8,
                                                    "init_features": 16, "ttl_width": 8}})
    cfg = load_config(PIPELINE.config_cls, t3d, [
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


class _Loader:
    """The parts of the engine's loader the worker uses (batches + batch_sampler.set_epoch)."""

    def __init__(self, ds, batch_size):
        self.dl = torch.utils.data.DataLoader(ds, batch_size=batch_size)
        self.batch_sampler = type("BS", (), {"set_epoch": lambda self, e: None})()

    def __iter__(self):
        return iter(self.dl)


class _Session:
    """A single-process stand-in for pipelines.core.train.Session (no Ray): same calls, CPU."""
    reports: list = []

    def __init__(self, seed, threads=1, use_gpu=False, bf16=False):
        from pipelines.core.train import Session
        torch.manual_seed(seed)
        self.device, self.state = torch.device("cpu"), Session.state

    def loader(self, ds, batch_size, num_workers=0):
        return _Loader(ds, batch_size)

    def restore(self, **objects):
        return 0, []

    def prepare(self, model):
        return model

    def to_device(self, x):
        return x

    def autocast(self):
        import contextlib
        return contextlib.nullcontext()

    def all_mean(self, v):
        return v

    def report(self, row, state, progress=None):
        _Session.reports.append((row, state))


class _Clips(torch.utils.data.Dataset):
    def __init__(self, n, frames, size):
        g = torch.Generator().manual_seed(0)
        self.x = torch.rand(n, 3, frames, size, size, generator=g)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"rgb": self.x[i]}, 0

    def set_epoch(self, epoch):
        pass


@pytest.mark.slow
def test_pretrain_worker_loops_without_ray(monkeypatch, tmp_path):
    """The worker body of both pre-trainings with the engine swapped for an in-process stand-in
    (the Ray path is test_pretrain_stage_feeds_the_train_stage, marked slow)."""
    import pipelines.video.stages.pretrain as pre
    from components.video.models.resnet3d import FrameResNet

    monkeypatch.setattr(pre, "Session", _Session)
    monkeypatch.setattr(pre, "split_rows", lambda index, split: index)
    cfg = load_config(PIPELINE.config_cls, TINY, [
        "model.name=hidden_two_stream", "model.kwargs={frames: 3, motion_width: 8, width: 8}",
        "motionnet.epochs=2", "motionnet.batch_size=4"])
    monkeypatch.setattr(pre, "make_dataset", lambda *a, **k: _Clips(8, 3, 16))
    _Session.reports = []
    base = {"index": {"video_id": list("abcdefgh")}, "classes": ["x", "y"], "flow_files": {}}
    pre.pretrain_worker(base | {"cfg": cfg.model_dump(mode="json"), "kind": "motionnet"})
    rows = [r for r, _ in _Session.reports]
    assert [r["epoch"] for r in rows] == [0, 1] and all(r["loss"] > 0 for r in rows)
    state = _Session.reports[-1][1]
    assert set(state) >= {"model", "optimizer", "epoch", "history"}
    assert all(k.startswith(("enc", "up", "flow")) for k in state["model"])      # MotionNet only

    torch.save(FrameResNet(18, 3, 10, width=8).state_dict(), tmp_path / "teacher.pt")
    t3d = _tiny(tmp_path, {"name": "t3d", "kwargs": {"block_config": [1, 1, 1, 1], "growth": 8,
                                                    "init_features": 16, "ttl_width": 8}})
    cfg = load_config(PIPELINE.config_cls, t3d, [
        "transfer.epochs=2", f"transfer.teacher_weights={tmp_path / 'teacher.pt'}", "transfer.batch_size=4"])
    with pytest.raises(Exception, match="teacher|weights|missing|another shape"):   # width 64 teacher vs a width-8 file
        pre._teacher(cfg)
    torch.save(FrameResNet(18, 3, 10).state_dict(), tmp_path / "teacher.pt")
    monkeypatch.setattr(pre, "make_dataset", lambda *a, **k: _Clips(8, 4, 32))
    _Session.reports = []
    pre.pretrain_worker(base | {"cfg": cfg.model_dump(mode="json"), "kind": "transfer"})
    rows = [r for r, _ in _Session.reports]
    assert [r["epoch"] for r in rows] == [0, 1] and all(0 <= r["pair_acc"] <= 1 for r in rows)
    state = _Session.reports[-1][1]
    assert {"model", "head"} <= set(state) and any(k.startswith("head.") for k in state["model"])
    assert set(state["head"]) == {f"net.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")}
