"""Fixtures of tests/core: a real S3 server (moto) on 127.0.0.1 for the s3:// artifact roots.

The ``AWS_*`` variables are set here, at collection time, so that they are in the environment
before any test starts the session's Ray (``ray_local``): Ray's task and Train workers inherit
it (see :mod:`tests.core.s3_server`). The server starts only for tests that use ``s3_server``.
"""
from __future__ import annotations

import uuid

import pytest

from tests.core import s3_server

s3_server.set_env()


@pytest.fixture(scope="session")
def s3_server_proc(tmp_path_factory):
    import os

    srv = s3_server.S3Server(int(os.environ[s3_server._PORT_ENV]),
                             str(tmp_path_factory.mktemp("moto") / "moto.log"))
    yield srv
    srv.stop()


@pytest.fixture
def s3_root(s3_server_proc):
    """A fresh ``s3://`` artifact root on the test server: ``(uri, server, key prefix)``."""
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    return f"s3://{s3_server.BUCKET}/{prefix}", s3_server_proc, prefix
