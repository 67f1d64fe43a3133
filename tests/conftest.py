"""Shared test fixtures.

`ray_local` starts one embedded Ray for the whole session, bound to 127.0.0.1.
"""
from __future__ import annotations

import os

os.environ.setdefault("DGLBACKEND", "pytorch")
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
os.environ.setdefault("TQDM_DISABLE", "1")

import pytest


@pytest.fixture(scope="session")
def ray_local():
    """An embedded local Ray (loopback only) shared by the tests of the session."""
    from pipelines.core.ray_env import init_ray, shutdown_ray

    ctx = init_ray(address=None, num_cpus=2)
    yield ctx
    shutdown_ray()


@pytest.fixture
def tmp_root(tmp_path):
    """A fresh artifact root."""
    root = tmp_path / "artifacts"
    root.mkdir()
    return root
