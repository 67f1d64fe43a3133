"""A real S3 server for tests: moto's server (``python -m moto.server``) on 127.0.0.1.

Ray task and Train workers inherit the environment of the process that starts Ray, so the
``AWS_*`` variables must be in ``os.environ`` before the session's Ray starts. :func:`set_env`
does that: ``tests/core/conftest.py`` calls it while pytest collects (before any test, hence
before the ``ray_local`` fixture can start Ray); the server itself starts only when a test
asks for the ``s3_server`` fixture. The endpoint reaches pyarrow (and boto3) the standard way,
``AWS_ENDPOINT_URL``; ``AWS_EC2_METADATA_DISABLED`` keeps the AWS SDK from probing the cloud
metadata service.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

BUCKET = "recgen-test"
_PORT_ENV = "RECGEN_TEST_S3_PORT"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def set_env() -> dict[str, str]:
    """Point every AWS client of this session (and of the Ray it starts) at the test server."""
    port = os.environ.get(_PORT_ENV) or str(_free_port())
    env = {_PORT_ENV: port,
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
    for k in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL_S3"):
        os.environ.pop(k, None)
    os.environ.update(env)
    return env


class S3Server:
    def __init__(self, port: int, log_path: str):
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                     stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto server exited with {self.proc.returncode} (log: {log_path})")
            try:
                urllib.request.urlopen(f"{self.endpoint}/", timeout=1).read()
                break
            except OSError:
                if time.time() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto server did not answer on {self.endpoint} (log: {log_path})")
                time.sleep(0.2)
        self.client().create_bucket(Bucket=BUCKET)

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint)

    def keys(self, prefix: str) -> list[str]:
        """Every object key under ``prefix`` (``root/...``, without the bucket)."""
        out, token = [], None
        c = self.client()
        while True:
            kw = {"Bucket": BUCKET, "Prefix": prefix, **({"ContinuationToken": token} if token else {})}
            r = c.list_objects_v2(**kw)
            out += [o["Key"] for o in r.get("Contents", [])]
            if not r.get("IsTruncated"):
                return out
            token = r["NextContinuationToken"]

    def put(self, key: str, body: bytes = b"x") -> None:
        self.client().put_object(Bucket=BUCKET, Key=key, Body=body)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
