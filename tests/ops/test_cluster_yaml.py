"""ray_cluster.yaml / ray_cluster.local.yaml against the schema Ray ships, plus what recgen needs."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())


def _load(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


@pytest.mark.parametrize("name", ["ray_cluster.yaml", "ray_cluster.local.yaml"])
def test_valid_against_ray_schema_and_after_ray_fills_defaults(name):
    from ray.autoscaler._private.util import prepare_config, validate_config

    cfg = _load(name)
    jsonschema.validate(cfg, SCHEMA)           # the raw file
    filled = prepare_config(copy.deepcopy(cfg))  # what `ray up` validates
    validate_config(filled)
    # The project is installed on every node and the repo is mounted where setup expects it.
    setup = "\n".join(cfg["setup_commands"])
    assert "pip install" in setup and "-e ~/recgen" in setup
    assert any(remote.endswith("/recgen") and local == "." for remote, local in cfg["file_mounts"].items())
    # Dashboard / job server bound to the head's loopback (reached through `ray dashboard`).
    head = " ".join(cfg["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head


def test_schema_check_is_not_vacuous():
    cfg = _load("ray_cluster.yaml")
    cfg["available_node_types"]["gpu_worker"]["resources"] = {"GPU": 0.5}  # must be an integer
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(cfg, SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**_load("ray_cluster.yaml"), "not_a_field": 1}, SCHEMA)


def test_aws_node_types_and_shared_storage():
    cfg = _load("ray_cluster.yaml")
    types = cfg["available_node_types"]
    assert cfg["head_node_type"] in types
    assert types["gpu_worker"]["resources"].get("GPU", 0) >= 1
    assert "g5" in types["gpu_worker"]["node_config"]["InstanceType"]
    assert types["cpu_worker"]["max_workers"] >= 1
    init = "\n".join(cfg["initialization_commands"])
    assert "mount -t nfs4" in init and "/mnt/recgen" in init  # shared artifacts + checkpoints
    assert "RECGEN_ARTIFACTS=/mnt/recgen/artifacts" in "\n".join(cfg["setup_commands"])


def test_local_provider_lists_hosts():
    cfg = _load("ray_cluster.local.yaml")
    assert cfg["provider"]["type"] == "local"
    assert cfg["provider"]["head_ip"] and len(cfg["provider"]["worker_ips"]) == cfg["max_workers"]


def test_deploy_schedules_submit_the_same_entrypoint():
    entry = "recgen retrain --config configs/retrain/ml1m.yaml --artifacts /mnt/recgen/artifacts"
    cron = (ROOT / "deploy" / "crontab.example").read_text()
    assert f"-- {entry}" in cron and "ray job submit" in cron
    rcj = yaml.safe_load((ROOT / "deploy" / "kuberay-raycronjob.yaml").read_text())
    assert rcj["kind"] == "RayCronJob" and rcj["spec"]["jobTemplate"]["entrypoint"] == entry
    docs = list(yaml.safe_load_all((ROOT / "deploy" / "kuberay-cronjob-rayjob.yaml").read_text()))
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"ConfigMap", "CronJob"}
    rayjob = yaml.safe_load(kinds["ConfigMap"]["data"]["rayjob.yaml"])
    assert rayjob["kind"] == "RayJob" and rayjob["spec"]["entrypoint"] == entry
    assert kinds["CronJob"]["spec"]["schedule"] == rcj["spec"]["schedule"]
    from pipelines.core.config import load_config
    from pipelines.retrain.config import RetrainConfig

    load_config(RetrainConfig, ROOT / "configs" / "retrain" / "ml1m.yaml")  # the config they name is valid
