"""Results must not depend on where the data lives: the same files copied to another directory
give the same index, the same split, the same sample order, clip indices and crops, and the
same training losses and predictions (issue 17: R3D-18 scores changed with the data's directory)."""
import os
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from components.sharding import shard_batches
from components.video import models
from components.video.clips import ClipDataset, plan_inputs
from components.video.index import build_index, scan_folder
from components.video.train_loop import predict


@pytest.fixture(scope="module")
def two_copies(motion_root, tmp_path_factory):
    """A class-folder dataset (root/<class>/*.mp4, split by hash) and a copy of it elsewhere."""
    base = tmp_path_factory.mktemp("where")
    a = base / "a" / "ds"
    for split in sorted(os.listdir(motion_root)):
        for cls in sorted(os.listdir(os.path.join(motion_root, split)))[:4]:
            for f in sorted(os.listdir(os.path.join(motion_root, split, cls))):
                os.makedirs(a / cls, exist_ok=True)
                shutil.copy(os.path.join(motion_root, split, cls, f), a / cls / f"{split}_{f}")
    b = base / "somewhere" / "much" / "deeper" / "copy"
    shutil.copytree(a, b)
    out = []
    for root in (a, b):
        idx, rej = build_index(scan_folder(str(root), val_fraction=0.34, seed=5))
        assert rej.empty
        out.append(idx)
    return out


def _datasets(idx, train=True, views=(2, 3)):
    plans = plan_inputs({"rgb": models.spec("r3d_18").inputs["rgb"]}, frames=4)
    rows = idx[idx["split"] == ("train" if train else "val")]
    return ClipDataset(rows, plans, train=train, stride=2, size=16, resize=20, seed=3, scale=(16, 24),
                       temporal_views=1 if train else views[0], spatial_views=1 if train else views[1])


def test_index_and_split_do_not_depend_on_the_directory(two_copies):
    a, b = two_copies
    assert not set(a["path"]) & set(b["path"])
    assert a.drop(columns="path").equals(b.drop(columns="path"))
    assert set(a["split"]) == {"train", "val"}


def test_samples_and_order_do_not_depend_on_the_directory(two_copies):
    da, db = (_datasets(i) for i in two_copies)
    for epoch in (0, 1):
        da.set_epoch(epoch)
        db.set_epoch(epoch)
        for i in range(len(da)):
            ra, rb = da.item_rng(i), db.item_rng(i)
            va, vb = da.clip_views(da.rows[i], ra), db.clip_views(db.rows[i], rb)
            assert all(np.array_equal(x["rgb"], y["rgb"]) for x, y in zip(va, vb))
            assert da.crop_boxes(da.rows[i], ra) == db.crop_boxes(db.rows[i], rb)
        assert all(torch.equal(da[i][0]["rgb"], db[i][0]["rgb"]) for i in range(len(da)))
    # the batch order depends on the number of clips, the seed and the epoch only
    assert all(np.array_equal(x, y) for x, y in zip(shard_batches(len(da), 1, 0, 4, 3, 1),
                                                      shard_batches(len(db), 1, 0, 4, 3, 1)))


def test_item_randomness_follows_the_video_id_not_the_row_position(two_copies):
    idx = two_copies[0]
    rows = idx[idx["split"] == "train"]
    ds = _datasets(idx)
    shuffled = ClipDataset(rows.iloc[::-1], ds.plans, train=True, stride=2, size=16, resize=20, seed=3,
                           scale=(16, 24))
    n = len(ds)
    assert torch.equal(ds[0][0]["rgb"], shuffled[n - 1][0]["rgb"])


def test_training_and_metrics_do_not_depend_on_the_directory(two_copies):
    """Tiny end to end: a few R3D-18 steps on each copy give bitwise equal losses and scores."""
    outs = []
    for idx in two_copies:
        torch.manual_seed(0)
        ds, ev = _datasets(idx), _datasets(idx, train=False, views=(1, 1))
        model = models.build("r3d_18", 4, width=4)
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
        losses = []
        for epoch in range(1):
            ds.set_epoch(epoch)
            for batch in shard_batches(len(ds), 1, 0, 4, 3, epoch):
                items = [ds[int(i)] for i in batch]
                x = torch.stack([it[0]["rgb"] for it in items])
                y = torch.tensor([it[1] for it in items])
                loss = F.cross_entropy(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
        probs, labels = predict(model, torch.utils.data.DataLoader(ev, batch_size=8))
        outs.append((losses, probs, labels))
    (la, pa, ya), (lb, pb, yb) = outs
    assert la == lb
    assert np.array_equal(pa, pb) and np.array_equal(ya, yb)
