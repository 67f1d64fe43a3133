"""Clip index: turn a dataset layout into one table of decodable clips plus a rejects table.

Three layouts are read into *candidate* rows (``video_id, path, label, split, start_sec,
end_sec``):

* :func:`scan_folder` — ``root/<class>/<video>`` or ``root/<split>/<class>/<video>``;
* :func:`read_split_files` — UCF101 (``classInd.txt``, ``trainlistNN.txt``, ``testlistNN.txt``)
  and HMDB51 (``<class>_test_splitN.txt`` with 1 = train, 2 = test, 0 = unused);
* :func:`read_kinetics_csv` — ``label, youtube_id, time_start, time_end, split`` rows, with
  files named ``<youtube_id>_<start:06d>_<end:06d>.<ext>`` (trimmed, the Kinetics convention)
  or ``<youtube_id>.<ext>`` (untrimmed; the time window is then applied when sampling).

:func:`build_index` (= :func:`probe_candidates` + :func:`assemble_index`) probes every candidate with PyAV (:func:`components.video.decode.probe`)
and returns ``(index, rejects)`` DataFrames. A file that is missing, unreadable, truncated or
undecodable goes to ``rejects`` with its reason; it never stops the ingest.

Index columns (:data:`INDEX_COLUMNS`): ``video_id, path, label, label_id, split, fps,
num_frames, frame_start, width, height, duration``. ``frame_start`` / ``num_frames`` delimit
the usable frames (the Kinetics time window), so samplers add ``frame_start`` to their indices.
"""
from __future__ import annotations

import hashlib
import os
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from components.errors import InputError
from components.video.decode import probe

__all__ = ["VIDEO_EXTENSIONS", "INDEX_COLUMNS", "REJECT_COLUMNS", "scan_folder", "read_split_files",
           "read_kinetics_csv", "build_index", "check_unique_ids", "probe_candidates", "assemble_index",
           "hash_split"]

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v")
INDEX_COLUMNS = ["video_id", "path", "label", "label_id", "split", "fps", "num_frames", "frame_start",
                 "width", "height", "duration"]
REJECT_COLUMNS = ["video_id", "path", "label", "split", "reason"]
_SPLIT_DIRS = {"train", "val", "valid", "validation", "test"}
_CANDIDATE_COLUMNS = ["video_id", "path", "label", "split", "start_sec", "end_sec"]


def _norm_split(name: str) -> str:
    name = name.strip().lower()
    return {"valid": "val", "validation": "val", "training": "train", "testing": "test"}.get(name, name)


def hash_split(key: str, val_fraction: float, seed: int = 0) -> str:
    """Deterministic ``"train"`` / ``"val"`` assignment of ``key`` (stable across runs and machines)."""
    h = int(hashlib.sha1(f"{seed}:{key}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "val" if h < val_fraction else "train"


def _candidates(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=_CANDIDATE_COLUMNS)
    return df.astype({"start_sec": "float64", "end_sec": "float64"})


def scan_folder(root: str, val_fraction: float = 0.2, seed: int = 0) -> pd.DataFrame:
    """Candidates from a folder-per-class layout.

    ``root/<class>/<video>``: the split is drawn per file by :func:`hash_split`.
    ``root/<split>/<class>/<video>`` (split in train/val/test): the split comes from the folder.
    """
    if not os.path.isdir(root):
        raise InputError("dataset folder does not exist", path=root, param="root",
                         fix="pass root= a folder of class folders")
    tops = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    if not tops:
        raise InputError("no class folders found", path=root, fix="expected root/<class>/<video files>")
    has_splits = all(t.lower() in _SPLIT_DIRS for t in tops)
    roots = [(os.path.join(root, t), _norm_split(t)) for t in tops] if has_splits else [(root, None)]
    rows = []
    for base, split in roots:
        for cls in sorted(os.listdir(base)):
            cdir = os.path.join(base, cls)
            if not os.path.isdir(cdir):
                continue
            for fname in sorted(os.listdir(cdir)):
                if not fname.lower().endswith(VIDEO_EXTENSIONS):
                    continue
                rel = os.path.relpath(os.path.join(cdir, fname), root)
                vid = os.path.splitext(rel)[0].replace(os.sep, "/")
                rows.append(dict(video_id=vid, path=os.path.abspath(os.path.join(cdir, fname)), label=cls,
                                 split=split or hash_split(vid, val_fraction, seed), start_sec=np.nan,
                                 end_sec=np.nan))
    if not rows:
        raise InputError(f"no video files ({', '.join(VIDEO_EXTENSIONS)}) under the class folders", path=root)
    return _candidates(rows)


def _read_lines(path: str) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        return [ln.strip() for ln in fh if ln.strip()]


def read_split_files(video_root: str, split_dir: str, fold: int = 1) -> tuple[pd.DataFrame, list[str]]:
    """Candidates and the class list from UCF101- or HMDB51-style split files.

    UCF101: ``classInd.txt`` (``<id> <class>``), ``trainlist0N.txt`` (``<class>/<file> <id>``) and
    ``testlist0N.txt`` (``<class>/<file>``). HMDB51: ``<class>_test_splitN.txt`` with lines
    ``<file> <flag>`` (1 train, 2 test, 0 unused), videos under ``video_root/<class>/``.
    """
    if not os.path.isdir(split_dir):
        raise InputError("split folder does not exist", path=split_dir, param="split_dir",
                         fix="pass split_dir= the folder of the split files")
    class_ind = os.path.join(split_dir, "classInd.txt")
    rows = []
    if os.path.exists(class_ind):
        classes = {}
        for n, line in enumerate(_read_lines(class_ind), 1):
            parts = line.split()
            if len(parts) != 2 or not parts[0].isdigit():
                raise InputError(f"expected '<id> <class>', got {line!r}", path=class_ind, row=n)
            classes[int(parts[0])] = parts[1]
        class_list = [classes[k] for k in sorted(classes)]
        for split, fname in (("train", f"trainlist{fold:02d}.txt"), ("test", f"testlist{fold:02d}.txt")):
            lpath = os.path.join(split_dir, fname)
            if not os.path.exists(lpath):
                raise InputError("split list missing", path=lpath, fix=f"fold {fold} needs {fname}")
            for n, line in enumerate(_read_lines(lpath), 1):
                rel = line.split()[0]
                cls = rel.split("/")[0]
                if cls not in class_list:
                    raise InputError(f"class {cls!r} is not in classInd.txt", path=lpath, row=n)
                rows.append(dict(video_id=os.path.splitext(os.path.basename(rel))[0],
                                 path=os.path.abspath(os.path.join(video_root, rel)), label=cls, split=split,
                                 start_sec=np.nan, end_sec=np.nan))
        return _candidates(rows), class_list
    pattern = re.compile(rf"^(.+)_test_split{fold}\.txt$")
    files = sorted(f for f in os.listdir(split_dir) if pattern.match(f))
    if not files:
        raise InputError(f"neither classInd.txt (UCF101) nor *_test_split{fold}.txt (HMDB51) found",
                         path=split_dir, param="split_dir", fix="point split_dir at the official split files")
    class_list = [pattern.match(f).group(1) for f in files]
    for cls, fname in zip(class_list, files):
        lpath = os.path.join(split_dir, fname)
        for n, line in enumerate(_read_lines(lpath), 1):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in {"0", "1", "2"}:
                raise InputError(f"expected '<file> <0|1|2>', got {line!r}", path=lpath, row=n)
            if parts[1] == "0":
                continue
            rows.append(dict(video_id=os.path.splitext(parts[0])[0],
                             path=os.path.abspath(os.path.join(video_root, cls, parts[0])), label=cls,
                             split="train" if parts[1] == "1" else "test", start_sec=np.nan, end_sec=np.nan))
    return _candidates(rows), class_list


def _kinetics_path(root: str, label: str, yid: str, start: int, end: int, split: str) -> tuple[str | None, bool]:
    trimmed = f"{yid}_{start:06d}_{end:06d}"
    dirs = [os.path.join(root, split, label), os.path.join(root, split), os.path.join(root, label), root]
    for d in dirs:
        for stem, is_trimmed in ((trimmed, True), (yid, False)):
            for ext in VIDEO_EXTENSIONS:
                p = os.path.join(d, stem + ext)
                if os.path.exists(p):
                    return p, is_trimmed
    return None, True


def read_kinetics_csv(csv_path: str, video_root: str) -> pd.DataFrame:
    """Candidates from a Kinetics-style CSV (``label, youtube_id, time_start, time_end, split``).

    Rows whose file cannot be found keep ``path`` = the expected trimmed name and are rejected
    by :func:`build_index` with reason ``missing file``.
    """
    if not os.path.exists(csv_path):
        raise InputError("CSV does not exist", path=csv_path, param="csv_path", fix="pass csv_path= the annotations CSV")
    df = pd.read_csv(csv_path)
    need = ["label", "youtube_id", "time_start", "time_end", "split"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise InputError(f"missing columns {missing}; found {list(df.columns)}", path=csv_path,
                         fix="the header must be label,youtube_id,time_start,time_end,split")
    rows = []
    for n, r in enumerate(df.itertuples(index=False), 2):
        try:
            start, end = int(r.time_start), int(r.time_end)
        except (TypeError, ValueError) as exc:
            raise InputError("time_start/time_end must be integers (seconds)", path=csv_path, row=n) from exc
        if end <= start:
            raise InputError(f"time_end {end} <= time_start {start}", path=csv_path, row=n)
        label, split = str(r.label), _norm_split(str(r.split))
        path, trimmed = _kinetics_path(video_root, label, str(r.youtube_id), start, end, split)
        vid = f"{r.youtube_id}_{start:06d}_{end:06d}"
        rows.append(dict(video_id=vid,
                         path=os.path.abspath(path) if path else os.path.join(video_root, split, label, vid + ".mp4"),
                         label=label, split=split,
                         start_sec=np.nan if trimmed else float(start), end_sec=np.nan if trimmed else float(end)))
    return _candidates(rows)


def _probe_row(row: dict, verify: bool) -> dict:
    if not os.path.exists(row["path"]):
        return {**row, "reason": "missing file"}
    try:
        info = probe(row["path"], verify=verify)
    except InputError as exc:
        reason = str(exc)
        prefix = f"{row['path']}: "
        return {**row, "reason": reason[len(prefix):] if reason.startswith(prefix) else reason}
    start = 0
    n = info.num_frames
    if not np.isnan(row["start_sec"]):
        start = int(round(row["start_sec"] * info.fps))
        end = min(n, int(round(row["end_sec"] * info.fps)))
        if end - start <= 0:
            return {**row, "reason": f"time window {row['start_sec']}-{row['end_sec']}s is outside the "
                                     f"{info.duration:.2f}s video"}
        n = end - start
    return {**row, "fps": info.fps, "num_frames": n, "frame_start": start, "width": info.width,
            "height": info.height, "duration": n / info.fps, "reason": None}


def check_unique_ids(candidates: pd.DataFrame) -> None:
    """Duplicated ``video_id`` values raise :class:`InputError` (they would collide in embeddings/flow)."""
    dup = candidates["video_id"][candidates["video_id"].duplicated()]
    if len(dup):
        raise InputError(f"duplicate video_id {dup.iloc[0]!r} ({len(dup)} duplicates)",
                         fix="video ids must be unique; rename the files or use one layout")


def probe_candidates(candidates: pd.DataFrame, *, verify: bool = True, workers: int = 1,
                     progress: Callable[[Iterable], Iterable] | None = None) -> list[dict]:
    """Probe every candidate row (in order); each result row carries ``reason`` (None = usable)."""
    rows = candidates.to_dict("records")
    with ThreadPoolExecutor(max(1, workers)) as pool:
        mapped = pool.map(lambda r: _probe_row(r, verify), rows)
        return list(progress(mapped) if progress else mapped)


def assemble_index(results: list[dict], classes: Sequence[str] | None = None, *,
                   min_frames: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(index, rejects)`` from :func:`probe_candidates` rows (see :func:`build_index`)."""
    ok = [r for r in results if r["reason"] is None and r["num_frames"] >= min_frames]
    bad = [r if r["reason"] is not None else {**r, "reason": f"too short: {r['num_frames']} < {min_frames} frames"}
           for r in results if r["reason"] is not None or r["num_frames"] < min_frames]
    class_list = list(classes) if classes is not None else sorted({r["label"] for r in results})
    lookup = {c: i for i, c in enumerate(class_list)}
    unknown = sorted({r["label"] for r in ok} - set(lookup))
    if unknown:
        raise InputError(f"labels {unknown[:5]} are not in the class list", fix="fix the class list or the labels")
    index = pd.DataFrame(ok, columns=INDEX_COLUMNS[:2] + ["label"] + INDEX_COLUMNS[4:])
    index.insert(3, "label_id", [lookup[lbl] for lbl in index["label"]])
    index = index.astype({"label_id": "int32", "fps": "float64", "num_frames": "int64", "frame_start": "int64",
                          "width": "int32", "height": "int32", "duration": "float64"})
    rejects = pd.DataFrame(bad, columns=REJECT_COLUMNS).astype({"reason": "string"})
    return index[INDEX_COLUMNS].reset_index(drop=True), rejects.reset_index(drop=True)


def build_index(candidates: pd.DataFrame, classes: Sequence[str] | None = None, *, verify: bool = True,
                workers: int = 1, min_frames: int = 1,
                progress: Callable[[Iterable], Iterable] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Probe every candidate; return ``(index, rejects)``.

    ``classes`` fixes the label order (``label_id`` = position); by default sorted labels.
    Files with fewer than ``min_frames`` usable frames are rejected too. Duplicated
    ``video_id`` values raise :class:`InputError` (they would collide in embeddings/flow).
    The same as :func:`check_unique_ids` + :func:`probe_candidates` + :func:`assemble_index`
    (the ingest stage runs the probing as shards over the cluster instead of ``workers`` threads).
    """
    check_unique_ids(candidates)
    results = probe_candidates(candidates, verify=verify, workers=workers, progress=progress)
    return assemble_index(results, classes, min_frames=min_frames)
