"""The `cluster` fixture: a real head + worker Ray cluster on 127.0.0.1 for this session.

Run these tests in their own pytest process (`pytest -m cluster`, as `make test` does), so
no embedded Ray of other tests is alive in the same process.
"""
from __future__ import annotations

import pytest

from tests.cluster.local_cluster import LoopbackCluster


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/cluster/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def cluster():
    c = LoopbackCluster(head_cpus=2, worker_cpus=1)
    try:
        c.start()
        yield c
    finally:
        c.stop()
