"""The fan-out stages on a real two-node cluster on 127.0.0.1 (`ray start` head + worker).

``recgen run --address <head>`` runs the video pipeline's ``flow`` and the pcrec pipeline's
``sample``; their shards must have run on both nodes (the node ids in the manifest's
``fanout`` record are the cluster's two node ids), and the outputs must equal those of a run on
one node (a head-only `ray start` cluster with the same 2 CPUs as the 2-node head) bit for bit:
the same tables, the same flow files.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster.local_cluster import LoopbackCluster

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

CASES = {
    # pipeline, config, until, stage, fan-out name, --set (more shards than nodes)
    "video": ("configs/video/tiny.yaml", "flow", "flow", ["flow.fanout.shard_size=8"]),
    "pcrec": ("configs/pcrec/tiny.yaml", "sample", "sample", ["sample.batch_size=16"]),
}


def recgen(env: dict, pipeline: str, root: Path, address: str | None) -> subprocess.CompletedProcess:
    config, until, _stage, sets = CASES[pipeline]
    argv = [str(BIN / "recgen"), "run", pipeline, "--config", config, "--until", until,
            "--artifacts", str(root)]
    for s in sets:
        argv += ["--set", s]
    if address:
        argv += ["--address", address]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def manifest(root: Path, pipeline: str, stage: str) -> tuple[Path, dict]:
    [m] = (root / pipeline / stage).glob(f"*/_manifest.json")
    return m.parent, json.loads(m.read_text())


@pytest.fixture(scope="module")
def one_node():
    c = LoopbackCluster(head_cpus=2, worker_cpus=0)
    try:
        c.start()
        yield c
    finally:
        c.stop()


def cluster_node_ids(cluster) -> set[str]:
    code = ("import json, ray; from pipelines.core.ray_env import init_ray; "
            f"init_ray(address='{cluster.gcs_address}'); "
            "print(json.dumps([n['NodeID'] for n in ray.nodes() if n['Alive']]))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=cluster.env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return set(json.loads(r.stdout.strip().splitlines()[-1]))


# pcrec's sample in `make test`; video's flow (the same engine) under `make test-long`
@pytest.mark.parametrize("pipeline", [pytest.param("video", marks=pytest.mark.long), "pcrec"])
def test_fanout_runs_on_both_nodes_and_equals_a_one_node_run(cluster, one_node, tmp_path, pipeline):
    _config, _until, stage, _sets = CASES[pipeline]
    on_cluster = recgen(cluster.env, pipeline, tmp_path / "two", cluster.gcs_address)
    assert on_cluster.returncode == 0, on_cluster.stdout[-3000:] + on_cluster.stderr[-3000:]
    single = recgen(one_node.env, pipeline, tmp_path / "one", one_node.gcs_address)
    assert single.returncode == 0, single.stdout[-3000:] + single.stderr[-3000:]

    d2, m2 = manifest(tmp_path / "two", pipeline, stage)
    d1, m1 = manifest(tmp_path / "one", pipeline, stage)
    fan2, fan1 = m2["fanout"][stage], m1["fanout"][stage]
    assert fan2["num_shards"] >= 2
    nodes = cluster_node_ids(cluster)
    assert len(nodes) == 2
    assert set(fan2["nodes"]) == nodes, (fan2["nodes"], nodes)           # shards on both nodes
    assert {s["node_id"] for s in fan2["shards"]} == nodes
    assert fan1["nodes"] == sorted(cluster_node_ids(one_node))          # the one node

    assert m1["fingerprint"] == m2["fingerprint"]
    assert m1["tables"].keys() == m2["tables"].keys()
    for name, meta in m2["tables"].items():                             # same rows, same bytes
        assert meta["rows"] == m1["tables"][name]["rows"]
        assert meta["parts"] == m1["tables"][name]["parts"]
        for part in meta["parts"]:
            assert (d2 / part).read_bytes() == (d1 / part).read_bytes(), part
    assert m1["files"] == m2["files"]
    for f in m2["files"]:
        if f.endswith(".npy"):
            assert (d2 / f).read_bytes() == (d1 / f).read_bytes(), f
