"""s3:// artifact roots against a real S3 server (moto's, on 127.0.0.1; see tests/core/s3_server.py).

The manifest is the commit point: a stage that fails, or a commit killed mid-upload, leaves
no manifest and so no output; stale leftovers are deleted; a second run is all cache hits;
``recgen artifacts ls/show`` read the bucket; in-process training keeps its checkpoints there.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pipelines.core import artifacts
from pipelines.core.artifacts import MANIFEST, Store, local_scratch, push_scratch
from pipelines.core.runner import plan, run_pipeline
from tests.core import toy_pipeline as toy

ROOT = Path(__file__).resolve().parents[2]


def statuses(res):
    return {n: p.status for n, p in res.plans.items()}


def test_endpoint_comes_from_aws_endpoint_url(s3_root):
    uri, srv, prefix = s3_root
    assert os.environ["AWS_ENDPOINT_URL"] == srv.endpoint
    store = Store(uri)
    store.check_writable()
    store.write_json_atomic(store.join("toy", "x.json"), {"a": 1})
    # one PUT, no temp object left ("t-.../" is the folder marker pyarrow keeps after deleting
    # check_writable's probe)
    assert [k for k in srv.keys(prefix) if not k.endswith("/")] == [f"{prefix}/toy/x.json"]
    assert store.read_json(store.join("toy", "x.json")) == {"a": 1}


def test_failed_stage_and_killed_upload_leave_no_output_then_commit(ray_local, s3_root, monkeypatch, capsys):
    uri, srv, prefix = s3_root
    pipe = toy.make("driver")   # stages run in this process (the run's console still uses Ray)
    with pytest.raises(RuntimeError, match="gen failed on purpose"):
        run_pipeline(pipe, toy.ToyConfig(gen=toy.Gen(fail=True)), uri, echo=False)
    keys = srv.keys(f"{prefix}/toy/gen/")
    assert keys == [], keys       # the failed stage wrote nothing to the bucket

    # a commit that dies half-way through the upload: objects under the final prefix, no manifest
    real_upload = artifacts._upload_dir

    def dying_upload(local_dir, dest, fs):   # the first object arrives, then the connection drops
        name = sorted(os.listdir(local_dir))[0]
        artifacts.pafs.copy_files(os.path.join(local_dir, name), f"{dest}/{name}",
                                  source_filesystem=artifacts.pafs.LocalFileSystem(), destination_filesystem=fs)
        raise OSError("connection reset during upload")

    monkeypatch.setattr(artifacts, "_upload_dir", dying_upload)
    cfg = toy.ToyConfig()
    with pytest.raises(OSError, match="connection reset"):
        run_pipeline(pipe, cfg, uri, echo=False)
    monkeypatch.setattr(artifacts, "_upload_dir", real_upload)
    store = Store(uri)
    fp = plan(pipe, cfg, store)["gen"].fingerprint
    partial = srv.keys(f"{prefix}/toy/gen/{fp[:16]}/")
    assert partial and not any(k.endswith(MANIFEST) for k in partial)
    # no manifest = absent: a cache miss, not listed, not readable
    assert plan(pipe, cfg, store)["gen"].status == "run"
    assert store.manifest("toy", "gen", fp) is None and store.list_stage_outputs("toy") == []
    from pipelines.cli import main

    assert main(["artifacts", "ls", "toy", "--artifacts", uri]) == 0
    assert capsys.readouterr().out.strip() == f"no finished stage outputs of toy under {uri}"
    assert main(["artifacts", "show", "toy", "gen", "--artifacts", uri]) == 2

    # the rerun replaces the partial upload and commits; the second rerun is all hits
    r = run_pipeline(pipe, cfg, uri, echo=False)
    assert statuses(r) == {"gen": "run", "scale": "run", "total": "run"}
    assert r.artifact("total").df("total")["sum"].iloc[0] == pytest.approx(2.0 * sum(range(10)))
    assert r.artifact("scale").manifest["files"] == ["note.txt", "scaled.parquet"]
    assert open(r.artifact("scale").path("note.txt")).read() == "ok"
    assert statuses(run_pipeline(pipe, cfg, uri, echo=False)) == {"gen": "hit", "scale": "hit", "total": "hit"}
    assert not [k for k in srv.keys(prefix) if ".tmp-" in k]


def test_stale_leftovers_are_cleaned_committed_and_fresh_ones_kept(ray_local, s3_root, monkeypatch):
    uri, srv, prefix = s3_root
    pipe = toy.make("driver")
    cfg = toy.ToyConfig()
    run_pipeline(pipe, cfg, uri, echo=False)
    store = Store(uri)
    fp = plan(pipe, cfg, store)["gen"].fingerprint
    stage = f"{prefix}/toy/gen"
    leftovers = [f"{stage}/0123456789abcdef.tmp-{'a' * 32}/numbers.parquet",   # staging prefix (old versions)
                 f"{stage}/fedcba9876543210/numbers.parquet",                    # upload killed before the manifest
                 f"{stage}/_manifest.json.tmp-{'b' * 32}"]                       # temp file
    for k in leftovers:
        srv.put(k)
    # fresh leftovers may belong to a writer still at work: kept
    assert store.clean_stale("toy", "gen") == []
    assert set(leftovers) <= set(srv.keys(stage))
    gone = store.clean_stale("toy", "gen", max_age_s=0)
    assert len(gone) == 3
    left = srv.keys(stage + "/")
    assert not set(leftovers) & set(left)
    assert f"{stage}/{fp[:16]}/{MANIFEST}" in left          # the committed output is untouched
    assert store.manifest("toy", "gen", fp) is not None

    # a stage that starts cleans its own stage folder
    srv.put(leftovers[0])
    monkeypatch.setattr(artifacts, "STALE_TEMP_S", 0)
    store.writer("toy", "gen", fp).abort()
    assert leftovers[0] not in srv.keys(stage)
    assert store.manifest("toy", "gen", fp) is not None


def test_local_scratch_mirrors_a_remote_folder(s3_root):
    uri, srv, prefix = s3_root
    remote = Store(uri).scratch_dir("toy", "gen", "0" * 64) + "/train-local"
    assert remote.startswith("s3://")
    d = local_scratch(remote)
    assert os.path.isdir(d) and not d.startswith("s3:")
    os.makedirs(os.path.join(d, "runs"))
    Path(d, "state.pt").write_bytes(b"1")
    Path(d, "runs", "a.pt").write_bytes(b"2")
    push_scratch(d, "state.pt")
    assert srv.keys(f"{prefix}/_scratch/") == [f"{prefix}/_scratch/toy/gen/{'0' * 16}/train-local/state.pt"]
    push_scratch(d)
    d2 = local_scratch(remote)   # a rerun (another process) resumes from what was pushed
    assert d2 != d and Path(d2, "state.pt").read_bytes() == b"1" and Path(d2, "runs", "a.pt").read_bytes() == b"2"
    local = str(ROOT / "nowhere")
    assert local_scratch(local) == local and local_scratch("file://" + local) == local
    push_scratch(local)   # no-op for a local folder


@pytest.mark.slow
def test_tiny_pcrec_on_s3_cached_rerun_and_artifacts_ls_show(ray_local, s3_root, tmp_path, monkeypatch, capsys):
    """`recgen run pcrec --config configs/pcrec/tiny.yaml --artifacts s3://...`, then a rerun
    that is all cache hits, then `recgen artifacts ls` and `show`.

    Training runs in-process (``pretrain.trainer.num_workers=0``, as finetune and baselines in
    the tiny config): its checkpoints and finished-run results go to the bucket through a local
    mirror (artifacts.local_scratch). Starting a Ray Train worker group would double this test's
    time on 2 cores; with workers, Ray Train writes the checkpoints to the s3:// scratch itself.
    """
    import ray

    from pipelines.cli import main

    uri, srv, prefix = s3_root
    # Ray's workers must see the endpoint (conftest sets it before the session's Ray starts)
    assert ray.get(ray.remote(lambda: os.environ.get("AWS_ENDPOINT_URL")).remote()) == srv.endpoint
    monkeypatch.chdir(tmp_path)   # nothing may be written to the working directory
    args = ["run", "pcrec", "--config", str(ROOT / "configs/pcrec/tiny.yaml"),
            "--set", f"data.path={ROOT / 'data/fixtures/tiny.csv'}", "--set", "pretrain.trainer.num_workers=0",
            "--artifacts", uri]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "0 cached, 13 computed" in out, out
    assert list(tmp_path.iterdir()) == []
    keys = srv.keys(prefix + "/")
    assert not [k for k in keys if ".tmp-" in k], [k for k in keys if ".tmp-" in k]
    manifests = [k for k in keys if k.endswith(MANIFEST)]
    assert len(manifests) == 13
    scratch = [k for k in keys if k.startswith(f"{prefix}/_scratch/pcrec/")]
    # in-process training uploaded its checkpoints and finished-run results
    assert any("/pretrain/" in k and k.endswith("/state.pt") for k in scratch), scratch
    assert any("/finetune/" in k and k.endswith("/state.pt") for k in scratch), scratch
    assert any("/finetune/" in k and "/runs/" in k and k.endswith(".pt") for k in scratch), scratch

    assert main(args) == 0
    out = capsys.readouterr().out
    assert "13 cached, 0 computed" in out, out
    assert out.count("cache hit") == 13

    assert main(["artifacts", "ls", "pcrec", "--artifacts", uri]) == 0
    ls = capsys.readouterr().out
    listed = [line.split()[1] for line in ls.splitlines() if line.startswith("pcrec")]
    assert sorted(listed) == sorted(["ingest", "kcore", "split", "graph", "sample", "pretrain", "target_embed",
                                     "finetune", "baselines", "peers", "evaluate", "recommend", "report"]), ls
    assert all("*" in line for line in ls.splitlines() if line.startswith("pcrec"))
    assert main(["artifacts", "show", "pcrec", "evaluate", "--artifacts", uri]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["stage"] == "evaluate" and m["tables"] and m["files"]
