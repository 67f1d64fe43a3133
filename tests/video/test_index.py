import os
import shutil

import numpy as np
import pandas as pd
import pytest

from components.errors import InputError
from components.video.decode import write_video
from components.video.index import INDEX_COLUMNS, build_index, read_kinetics_csv, read_split_files, scan_folder


def _clip(path, n=8, seed=0):
    frames = np.random.default_rng(seed).integers(0, 255, (n, 32, 32, 3), dtype=np.uint8)
    return write_video(str(path), frames, fps=8)


def test_folder_layout_with_a_corrupt_file(tmp_path):
    for cls in ("jump", "run"):
        for i in range(3):
            _clip(tmp_path / cls / f"{cls}{i}.mp4", seed=i)
    (tmp_path / "run" / "broken.mp4").write_bytes(b"garbage" * 50)
    (tmp_path / "run" / "notes.txt").write_text("ignored")
    cand = scan_folder(str(tmp_path), val_fraction=0.5)
    assert len(cand) == 7 and set(cand["split"]) <= {"train", "val"}
    index, rejects = build_index(cand)
    assert list(index.columns) == INDEX_COLUMNS and len(index) == 6
    assert index["num_frames"].eq(8).all() and index["fps"].eq(8.0).all() and index["width"].eq(32).all()
    assert dict(zip(index["label"], index["label_id"])) == {"jump": 0, "run": 1}
    assert rejects["video_id"].tolist() == ["run/broken"]
    assert "unreadable container" in rejects["reason"].iloc[0]


def test_folder_layout_with_split_dirs(motion_root):
    cand = scan_folder(motion_root)
    assert set(cand["split"]) == {"train", "val"}
    assert (cand["split"] == "train").sum() == 2 * (cand["split"] == "val").sum()


def test_ucf101_split_files(tmp_path):
    vids = tmp_path / "UCF-101"
    for cls in ("ApplyEyeMakeup", "Archery"):
        for g in (1, 8):
            _clip(vids / cls / f"v_{cls}_g{g:02d}_c01.avi".replace(".avi", ".mp4"), seed=g)
    splits = tmp_path / "ucfTrainTestlist"
    splits.mkdir()
    (splits / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 Archery\n")
    (splits / "trainlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.mp4 1\nArchery/v_Archery_g08_c01.mp4 2\n"
        "Archery/v_Archery_g09_c01.mp4 2\n")                       # listed but missing on disk
    (splits / "testlist01.txt").write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.mp4\n"
                                           "Archery/v_Archery_g01_c01.mp4\n")
    cand, classes = read_split_files(str(vids), str(splits), fold=1)
    assert classes == ["ApplyEyeMakeup", "Archery"]
    index, rejects = build_index(cand, classes)
    assert sorted(index.groupby("split").size().items()) == [("test", 2), ("train", 2)]
    assert index.set_index("video_id").loc["v_Archery_g01_c01", "label_id"] == 1
    assert rejects["reason"].tolist() == ["missing file"]


def test_hmdb51_split_files(tmp_path):
    _clip(tmp_path / "v" / "wave" / "a.mp4")
    _clip(tmp_path / "v" / "wave" / "b.mp4")
    _clip(tmp_path / "v" / "wave" / "c.mp4")
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "wave_test_split1.txt").write_text("a.mp4 1\nb.mp4 2\nc.mp4 0\n")
    cand, classes = read_split_files(str(tmp_path / "v"), str(tmp_path / "s"))
    assert classes == ["wave"] and dict(zip(cand["video_id"], cand["split"])) == {"a": "train", "b": "test"}


def test_kinetics_csv_trimmed_and_untrimmed(tmp_path):
    root = tmp_path / "k"
    _clip(root / "train" / "abseiling" / "abc_000010_000020.mp4", n=8)   # trimmed clip
    _clip(root / "xyz.mp4", n=40)                                         # untrimmed: 5 s at 8 fps
    csv = tmp_path / "k.csv"
    pd.DataFrame({"label": ["abseiling", "air drumming", "air drumming"],
                  "youtube_id": ["abc", "xyz", "gone"], "time_start": [10, 1, 0],
                  "time_end": [20, 3, 10], "split": ["train", "val", "train"]}).to_csv(csv, index=False)
    cand = read_kinetics_csv(str(csv), str(root))
    index, rejects = build_index(cand)
    assert set(index["video_id"]) == {"abc_000010_000020", "xyz_000001_000003"}
    untrimmed = index.set_index("video_id").loc["xyz_000001_000003"]
    assert (untrimmed["frame_start"], untrimmed["num_frames"]) == (8, 16)      # 1 s .. 3 s at 8 fps
    assert rejects["video_id"].tolist() == ["gone_000000_000010"] and rejects["reason"].iloc[0] == "missing file"
    bad = tmp_path / "bad.csv"
    bad.write_text("label,youtube_id,start\nx,y,1\n")
    with pytest.raises(InputError, match="missing columns"):
        read_kinetics_csv(str(bad), str(root))
