"""UCF101/HMDB51 3-fold protocol: one run per official split, averaged (recgen video-folds)."""
import json
import os
import shutil
from types import SimpleNamespace

import pytest

from components.errors import ConfigError
from pipelines.core.artifacts import Store
from pipelines.core.config import load_config
from pipelines.video.config import VideoConfig
from pipelines.video.folds import fold_configs, run_folds

TINY = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "video", "tiny.yaml")


def _ucf_layout(motion_root, root):
    """UCF101-style: videos/<class>/<file>.mp4, classInd.txt, trainlist0N / testlist0N (3 folds)."""
    videos, splits = root / "videos", root / "splits"
    splits.mkdir(parents=True)
    classes = sorted(os.listdir(os.path.join(motion_root, "train")))[:3]
    files = {}
    for c in classes:
        (videos / c).mkdir(parents=True)
        for split in ("train", "val"):
            for f in sorted(os.listdir(os.path.join(motion_root, split, c))):
                shutil.copy(os.path.join(motion_root, split, c, f), videos / c / f"{split}_{f}")
        files[c] = sorted(os.listdir(videos / c))
    (splits / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(classes)))
    for k in (1, 2, 3):   # fold k tests on the k-th file of each class (3 files per class)
        test = [f"{c}/{fs[k - 1]}" for c, fs in files.items()]
        train = [f"{c}/{f} {i + 1}" for i, (c, fs) in enumerate(files.items()) for f in fs if f"{c}/{f}" not in test]
        (splits / f"trainlist{k:02d}.txt").write_text("\n".join(train) + "\n")
        (splits / f"testlist{k:02d}.txt").write_text("\n".join(test) + "\n")
    return str(videos), str(splits)


def test_fold_configs_and_summary(tmp_path):
    cfg = load_config(VideoConfig, TINY, ["data.source=ucf", f"data.root={tmp_path}", f"data.split_dir={tmp_path}"])
    runs = fold_configs(cfg, [1, 2, 3], [0, 1])
    assert [(f, s, c.data.fold, c.seed) for f, s, c in runs][:3] == [(1, 0, 1, 0), (1, 1, 1, 1), (2, 0, 2, 0)]
    assert len(runs) == 6
    with pytest.raises(ConfigError, match="data.source=ucf"):
        fold_configs(load_config(VideoConfig, TINY, []), [1], [0])
    with pytest.raises(ConfigError, match="folds"):
        fold_configs(cfg, [4], [0])

    top1 = {1: 0.5, 2: 0.7, 3: 0.9}

    def fake_run(c):       # what run_pipeline returns, reduced to the evaluate artifact's metrics
        m = {"split": "test", "clips": 3,
             "multi_view": {"top1": top1[c.data.fold], "top5": 1.0, "mean_class_acc": top1[c.data.fold] - 0.1},
             "single_view": {"top1": 0.4, "top5": 1.0, "mean_class_acc": 0.3}}
        return SimpleNamespace(artifact=lambda stage: SimpleNamespace(json=lambda name: m))

    store = Store(str(tmp_path / "art"))
    s = run_folds(cfg, store, [1, 2, 3], [0], run=fake_run)
    assert s["mean"]["multi_view_top1"] == pytest.approx(0.7) and s["std"]["multi_view_top1"] == pytest.approx(0.2)
    assert s["mean"]["multi_view_mean_class_acc"] == pytest.approx(0.6)
    saved = json.load(open(tmp_path / "art" / "video" / "folds" / f"{s['name']}.json"))
    assert [r["fold"] for r in saved["runs"]] == [1, 2, 3]
    assert "0.700 ± 0.200" in open(tmp_path / "art" / "video" / "folds" / f"{s['name']}.md").read()


@pytest.mark.long
def test_ucf_layout_runs_three_folds_end_to_end(ray_local, tmp_root, motion_root, tmp_path):
    """The documented UCF command: evaluate picks the test split (no val in split files)."""
    videos, splits = _ucf_layout(motion_root, tmp_path)
    cfg = load_config(VideoConfig, TINY, ["data.source=ucf", f"data.root={videos}", f"data.split_dir={splits}",
                                          "flow.enabled=false", "model.kwargs={width: 4}"])
    s = run_folds(cfg, Store(str(tmp_root)), [1, 2, 3], [0], echo=False)
    assert [r["split"] for r in s["runs"]] == ["test"] * 3 and all(r["clips"] == 3 for r in s["runs"])
    assert 0 <= s["mean"]["multi_view_top1"] <= 1
