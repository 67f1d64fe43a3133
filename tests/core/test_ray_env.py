"""The environment recgen gives Ray's own processes (see pipelines/core/ray_env.py)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from pipelines.core import ray_env

ROOT = Path(__file__).resolve().parents[2]


def test_ray_process_env_turns_telemetry_off_and_keeps_home_clean(tmp_path, monkeypatch):
    monkeypatch.setenv(ray_env.RAY_HOME_ENV, str(tmp_path / "rayhome"))
    home = tmp_path / "user"
    home.mkdir()
    env = ray_env.ray_process_env({"HOME": str(home), "PATH": "/bin"})
    assert env["RAY_USAGE_STATS_ENABLED"] == "0"
    assert env["RAY_USAGE_STATS_REPORT_URL"].startswith("file:")
    assert env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"
    # Ray's processes get a private HOME holding the bootstrap config; the real one is kept aside
    assert env["HOME"] == str(tmp_path / "rayhome") and env[ray_env.USER_HOME_ENV] == str(home)
    boot = yaml.safe_load((tmp_path / "rayhome" / ray_env.BOOTSTRAP_FILE).read_text())
    assert boot["provider"]["type"] == "local"
    # an ephemeral token in the environment, nothing written into the user's home
    assert len(env["RAY_AUTH_TOKEN"]) == 64 and "RAY_AUTH_TOKEN_PATH" not in env
    assert list(home.iterdir()) == []
    # each instance its own token
    assert ray_env.ray_process_env({"HOME": str(home)})["RAY_AUTH_TOKEN"] != env["RAY_AUTH_TOKEN"]


def test_existing_token_or_disabled_auth_is_respected(tmp_path, monkeypatch):
    monkeypatch.setenv(ray_env.RAY_HOME_ENV, str(tmp_path / "rayhome"))
    home = tmp_path / "user"
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text("x" * 64)
    env = ray_env.ray_process_env({"HOME": str(home)})
    assert env["RAY_AUTH_TOKEN_PATH"] == str(home / ".ray" / "auth_token") and "RAY_AUTH_TOKEN" not in env
    env = ray_env.ray_process_env({"HOME": str(home), "RAY_AUTH_TOKEN": "given"})
    assert env["RAY_AUTH_TOKEN"] == "given"
    env = ray_env.ray_process_env({"HOME": str(home / "none"), "RAY_AUTH_MODE": "disabled"})
    assert "RAY_AUTH_TOKEN" not in env and "RAY_AUTH_TOKEN_PATH" not in env
    # not a loopback node: the address rewrite stays Ray's default
    assert "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER" not in ray_env.ray_process_env({"HOME": str(home)}, loopback=False)


def test_bootstrap_dir_cli_writes_the_file(tmp_path):
    assert ray_env.main(["--bootstrap-dir", str(tmp_path / "img")]) == 0
    assert (tmp_path / "img" / ray_env.BOOTSTRAP_FILE).read_text() == ray_env.BOOTSTRAP_TEXT


def test_cluster_configs_and_manifests_turn_telemetry_off():
    for name in ("ray_cluster.yaml", "ray_cluster.local.yaml"):
        cfg = yaml.safe_load((ROOT / name).read_text())
        for cmd in cfg["head_start_ray_commands"] + cfg["worker_start_ray_commands"]:
            if "ray start" in cmd:
                assert "RAY_USAGE_STATS_ENABLED=0" in cmd and "RAY_USAGE_STATS_REPORT_URL=file:" in cmd, (name, cmd)
    for name in ("deploy/kuberay-raycronjob.yaml", "deploy/kuberay-cronjob-rayjob.yaml"):
        text = (ROOT / name).read_text()
        images = text.count("image: ghcr.io/example/recgen")
        assert images >= 2 and text.count("RAY_USAGE_STATS_REPORT_URL") == images, name


def test_recgen_ray_start_refuses_a_token_only_the_head_would_know(tmp_path, monkeypatch):
    from pipelines.cli import main

    monkeypatch.setenv(ray_env.RAY_HOME_ENV, str(tmp_path / "rayhome"))
    monkeypatch.setenv("HOME", str(tmp_path))
    for k in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE", ray_env.USER_HOME_ENV):
        monkeypatch.delenv(k, raising=False)
    assert main(["ray", "start", "--head", "--node-ip-address", "127.0.0.1"]) == 2
    assert not os.path.exists(tmp_path / ".ray")


def test_a_ray_call_without_init_ray_does_not_start_a_bare_ray(tmp_path):
    """Ray's auto-init (an argument-less ``ray.init`` on the first ``ray.put``) would bind to the
    machine's address; importing pipelines turns it off, so the call fails instead."""
    import subprocess
    import sys

    code = ("import pipelines, ray\n"
            "try:\n    ray.put(1)\nexcept Exception as e:\n    print('refused', type(e).__name__)\n"
            "print('initialized', ray.is_initialized())\n")
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ENABLE_AUTO_CONNECT", "RAY_ADDRESS")}
    r = subprocess.run([sys.executable, "-c", code], env=env, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))), capture_output=True,
                       text=True, timeout=120)
    assert "initialized False" in r.stdout, r.stdout + r.stderr[-2000:]
    assert "refused" in r.stdout


def test_tune_does_not_start_a_bare_ray_either(tmp_path):
    """Tune's own implicit start (``Tuner.fit`` with nothing initialised) is off too."""
    import subprocess
    import sys

    code = ("import pipelines, ray.tune\n"
            "def f(config):\n    return {'x': 1}\n"
            f"t = ray.tune.Tuner(f, run_config=ray.tune.RunConfig(storage_path={str(tmp_path)!r}, verbose=0))\n"
            "try:\n    t.fit()\nexcept Exception as e:\n    print('refused', type(e).__name__)\n"
            "print('initialized', ray.is_initialized())\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_ENABLE_AUTO_CONNECT", "TUNE_DISABLE_AUTO_INIT", "RAY_ADDRESS")}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180,
                       cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert "initialized False" in r.stdout, r.stdout + r.stderr[-2000:]
    assert "refused" in r.stdout


def test_the_engines_start_ray_through_init_ray(monkeypatch, tmp_path):
    """run_pipeline and the Tune engine call init_ray (loopback) before any Ray work."""
    from pipelines.core import runner, tune
    from pipelines.pcrec.dag import PIPELINE

    calls = []

    class Sentinel(Exception):
        pass

    def fake(*a, **k):
        calls.append(a)
        raise Sentinel

    monkeypatch.setattr(ray_env, "init_ray", fake)
    with pytest.raises(Sentinel):
        runner.run_pipeline(PIPELINE, None, str(tmp_path))
    with pytest.raises(Sentinel):
        tune.run_search("pcrec", {}, None, str(tmp_path))
    assert len(calls) == 2
