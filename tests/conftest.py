"""Shared test fixtures.

`ray_local` starts one embedded Ray for the whole session, bound to 127.0.0.1.
"""
from __future__ import annotations

import os

os.environ.setdefault("DGLBACKEND", "pytorch")
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
os.environ.setdefault("TQDM_DISABLE", "1")
# no implicit argument-less ray.init (it binds to the machine's address): Ray only via the fixtures
os.environ["RAY_ENABLE_AUTO_CONNECT"] = "0"

# Tests never write into the user's home: the whole session (and every Ray process, job and
# worker it starts) gets a fresh HOME under the temp dir. Recorded first, checked at the end.
import shutil  # noqa: E402
import tempfile  # noqa: E402

REAL_HOME = os.environ.get("RECGEN_TEST_REAL_HOME") or os.path.expanduser("~")
os.environ["RECGEN_TEST_REAL_HOME"] = REAL_HOME
_HOME_BEFORE = sorted(os.listdir(REAL_HOME)) if os.path.isdir(REAL_HOME) else []
TEST_HOME = tempfile.mkdtemp(prefix="recgen-test-home-")
os.environ["HOME"] = TEST_HOME
os.environ.pop("RECGEN_USER_HOME", None)
os.environ["MPLCONFIGDIR"] = os.path.join(TEST_HOME, ".config", "matplotlib")
# Written into the home by tools we run when HOME is not redirected (checked at the end).
HOME_OFFENDERS = (".ray", "ray_bootstrap_config.yaml", ".dgl", ".cache/matplotlib", ".config/matplotlib",
                  ".cache/torch")
_OFFENDERS_BEFORE = {p for p in HOME_OFFENDERS if os.path.exists(os.path.join(REAL_HOME, p))}

import pytest  # noqa: E402


def pytest_sessionfinish(session, exitstatus):
    """Fail the session when it left anything new in the user's real home directory."""
    shutil.rmtree(TEST_HOME, ignore_errors=True)
    after = sorted(os.listdir(REAL_HOME)) if os.path.isdir(REAL_HOME) else []
    new = sorted(set(after) - set(_HOME_BEFORE))
    new += sorted(p for p in HOME_OFFENDERS
                  if p not in _OFFENDERS_BEFORE and os.path.exists(os.path.join(REAL_HOME, p)) and p not in new)
    if new:
        print(f"\nerror: the tests left new files in {REAL_HOME}: {new}")
        session.exitstatus = 1


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
