"""Every training loop with 2 Ray Train workers (gloo, CPU), through the real stages.

What they share comes from the engine (pipelines/core/train.py): equal-step shards (a rank
with one step more would hang DDP's all-reduce, and these tests would time out), DDP with the
model's own methods reachable, finite metrics. Shares being disjoint and covering is checked on
the sharding function and on BPRRun's own batches; resume with 2 workers on the MoCo loop in
tests/pcrec/test_pretrain_stage.py.

`make test` runs the PCRec one (three training loops: MoCo, BPR fine-tuning, LightGCN); the
video and VQ loops with 2 workers run under `make test-long` (marked long: together they took
about 140 s of the 2-core CI budget, for the same engine path).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from pipelines.core.config import load_config
from pipelines.core.runner import run_pipeline

pytestmark = pytest.mark.slow


def _run(name: str, config: str, sets: list[str], root, until: str | None = None):
    from pipelines.registry import get_pipeline

    pipe = get_pipeline(name)
    cfg = load_config(pipe.config_cls, config, sets)
    return run_pipeline(pipe, cfg, str(root), until=until)


def test_pcrec_pretrain_finetune_baselines_with_two_workers(ray_local, tmp_root):
    res = _run("pcrec", "configs/pcrec/tiny.yaml", [
        "pretrain.trainer.num_workers=2", "finetune.trainer.num_workers=2", "finetune.train.optimizer=adam",
        "finetune.train.lr=0.01", "finetune.seeds=[0]", "finetune.modes=[bpr_mf,pretrain_init]",
        "baselines.trainer.num_workers=2", "baselines.methods=[lightgcn]"], tmp_root, until="evaluate")
    curve = res.artifact("pretrain").df("curve")
    assert set(curve.workers) == {2} and np.isfinite(curve.loss).all()
    # 2 ranks x equal shares of the 45 view pairs of an epoch (batch 16): 2 x 22 pairs in 2 equal steps
    assert set(curve.pairs) == {44}
    for stage in ("finetune", "baselines"):
        runs = res.artifact(stage).df("runs")
        assert not runs.diverged.any() and np.isfinite(runs.best_valid_ndcg10).all(), runs
        assert (runs.epochs_run >= 1).all()
    metrics = res.artifact("evaluate").df("metrics")
    assert np.isfinite(metrics.select_dtypes("number").to_numpy()).all()


@pytest.mark.long
def test_video_hidden_two_stream_with_two_workers(ray_local, tmp_root):
    res = _run("video", "configs/video/tiny.yaml", [
        "train.trainer.num_workers=2", "train.epochs=2", "model.name=hidden_two_stream",
        "model.kwargs={frames: 4, motion_width: 8, width: 8}", "clip.size=32", "decode.resize=36"],
        tmp_root, until="train")
    hist = res.artifact("train").df("history")
    assert len(hist) == 2 and np.isfinite(hist.loss).all() and np.isfinite(hist.val_top1).all()


@pytest.mark.long
def test_vq_model_and_priors_with_two_workers(ray_local, tmp_root):
    res = _run("vq", "configs/vq/tiny.yaml", [
        "train.trainer.num_workers=2", "prior.trainer.num_workers=2"], tmp_root, until="train_priors")
    vq = res.artifact("train_vq").df("history")
    assert np.isfinite(vq.nmse).all() and (vq.steps > 0).all()
    pri = res.artifact("train_priors").df("history")
    bits = pri[[c for c in pri.columns if c.startswith("test_bits")]].to_numpy()
    assert np.isfinite(bits).all() and not math.isnan(float(bits.mean()))


def test_bpr_rank_shares_are_disjoint_equal_and_cover():
    import torch

    from components.pcrec.bpr import BPRConfig, BPRRun
    from components.pcrec.mf import MF, init_factors
    from components.pcrec.negatives import PositiveSet

    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 30, 203), rng.integers(0, 20, 203)
    pos = PositiveSet(users, items, 20)
    shares = []
    for rank in range(2):
        g = torch.Generator().manual_seed(0)
        model = MF(init_factors(30, 4, 0.1, g), init_factors(20, 4, 0.1, g))
        run = BPRRun(model, users, items, pos, BPRConfig(epochs=1, batch_size=16, optimizer="adam"), seed=7,
                     rank=rank, world=2)
        shares.append(run.epoch_batches())
    assert len(shares[0]) == len(shares[1])
    flat = np.concatenate([b for s in shares for b in s])
    assert sorted(flat.tolist()) == list(range(203))
