"""Per-class / mean-class accuracy, the evaluated split per layout, the TSN snippet protocol."""
import numpy as np
import pandas as pd
import pytest

from components.errors import ConfigError
from components.video.clips import ClipDataset, plan_inputs
from components.video.index import build_index, scan_folder
from components.video.models.registry import InputSpec
from components.video.train_loop import per_class_accuracy, topk_accuracy
from pipelines.core.config import load_config
from pipelines.video.config import VideoConfig
from pipelines.video.stages.common import eval_split, monitor_split
from pipelines.video.stages.evaluate import protocols


def test_per_class_and_mean_class_accuracy_by_hand():
    # class 0: 4 clips, 3 right; class 1: 1 clip, wrong; class 2: 1 clip, right; class 3: absent
    labels = np.array([0, 0, 0, 0, 1, 2])
    pred = np.array([0, 0, 0, 2, 0, 2])
    acc, count, mean = per_class_accuracy(pred, labels, 4)
    assert count.tolist() == [4, 1, 1, 0]
    assert acc[:3].tolist() == [0.75, 0.0, 1.0] and np.isnan(acc[3])
    assert mean == pytest.approx((0.75 + 0.0 + 1.0) / 3)          # absent classes do not count
    probs = np.eye(4)[pred]
    assert topk_accuracy(probs, labels, (1,))["top1"] == pytest.approx(4 / 6)   # top-1 weighs clips


def _index(splits):
    return pd.DataFrame({"split": splits})


def test_evaluated_split_per_layout():
    cfg = VideoConfig()
    assert cfg.evaluate.split is None
    assert eval_split(cfg, _index(["train", "test"])) == "test"              # UCF101 / HMDB51 split files
    assert eval_split(cfg, _index(["train", "val"])) == "val"                # motion, folder with a hash split
    assert eval_split(cfg, _index(["train", "val", "test"])) == "test"       # folder train/val/test
    # per-epoch validation never scores the test split
    assert monitor_split(cfg, _index(["train", "test"])) is None
    assert monitor_split(cfg, _index(["train", "val", "test"])) == "val"
    explicit = VideoConfig.model_validate({"evaluate": {"split": "val"}})
    assert eval_split(explicit, _index(["train", "val", "test"])) == "val"
    with pytest.raises(ConfigError, match="evaluate.split"):
        eval_split(cfg, _index(["train"]))


def test_ucf_command_evaluates_the_test_split():
    cfg = load_config(VideoConfig, None, ["data.source=ucf", "data.root=/tmp", "data.split_dir=/tmp"])
    assert eval_split(cfg, _index(["train", "test"])) == "test"


def test_tsn_25_snippet_protocol(motion_root):
    idx, _ = build_index(scan_folder(motion_root))
    plans = plan_inputs({"rgb": InputSpec(3, 3, 112)}, segments=3)
    ds = ClipDataset(idx.iloc[:1], plans, train=False, size=24, resize=28, sampling="tsn", tsn_snippets=25)
    views = ds.clip_views(ds.rows[0])
    starts = [int(v["rgb"][0]) for v in views]
    assert len(views) == 25 and all((v["rgb"] == v["rgb"][0]).all() for v in views)   # one snippet per view
    assert starts == sorted(starts) and starts[0] == 0 and starts[-1] == int(ds.rows[0]["num_frames"]) - 1
    x, _ = ds[0]
    assert x["rgb"].shape == (25, 3, 3, 24, 24)
    cfg = VideoConfig.model_validate({"model": {"name": "tsn_rgb"}, "evaluate": {"tsn_snippets": 25, "spatial_views": 1}})
    assert protocols(cfg)["multi_view"] == {"temporal_views": 1, "spatial_views": 1, "tsn_snippets": 25}
