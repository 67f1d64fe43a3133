"""Issue 12: input paths are independent of the working directory, and bad inputs fail fast —
in-process `recgen run` / `recgen tune`, exit 2, before Ray starts."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from components.errors import InputError
from pipelines.core.config import load_config, resolve_config_paths, validate_config
from pipelines.pcrec.config import PCRecConfig
from pipelines.pcrec.stages.ingest import data_files

ROOT = Path(__file__).resolve().parents[2]
TINY_CSV = ROOT / "data" / "fixtures" / "tiny.csv"


@pytest.fixture
def no_ray(monkeypatch):
    """Fail the test if the CLI tries to start Ray; afterwards Ray must not be running."""
    import ray

    import pipelines.core.ray_env as ray_env

    was_up = ray.is_initialized()

    def boom(*a, **k):
        raise AssertionError("Ray was started before the input checks failed")

    monkeypatch.setattr(ray_env, "init_ray", boom)
    yield
    if not was_up:
        assert not ray.is_initialized()


def _recgen(capsys, *argv) -> tuple[int, str]:
    from pipelines.cli import main

    rc = main(list(argv))
    return rc, capsys.readouterr().err


# ---------------------------------------------------------------- C: working-directory independence
def test_relative_data_path_resolves_against_the_cli_cwd(tmp_path, monkeypatch):
    (tmp_path / "proj" / "data").mkdir(parents=True)
    shutil.copy(TINY_CSV, tmp_path / "proj" / "data" / "x.csv")
    monkeypatch.chdir(tmp_path / "proj")
    cfg = load_config(PCRecConfig, None, ["data.path=data/x.csv"], base_dir=os.getcwd())
    assert cfg.data.path == str(tmp_path / "proj" / "data" / "x.csv")
    # a Tune trial runs in another working directory: the path still names the file
    (tmp_path / "trial").mkdir()
    monkeypatch.chdir(tmp_path / "trial")
    assert data_files(cfg) == {str(tmp_path / "proj" / "data" / "x.csv"): "data.path"}


def test_resolve_config_paths_covers_files_lists_and_keeps_absolute_and_uris(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tree = {"data": {"files": [{"path": "a.csv", "domain": "source"}, {"path": "/abs/b.csv", "domain": "target"}],
                     "item_path": "items/x.item"}, "kcore": {"k_source": 3}}
    out = resolve_config_paths(PCRecConfig, tree)
    assert out["data"]["files"][0]["path"] == str(tmp_path / "a.csv")
    assert out["data"]["files"][1]["path"] == "/abs/b.csv"
    assert out["data"]["item_path"] == str(tmp_path / "items" / "x.item")
    assert out["kcore"] == {"k_source": 3} and tree["data"]["files"][0]["path"] == "a.csv"  # a copy
    from pipelines.vq.config import VQConfig

    assert resolve_config_paths(VQConfig, {"data": {"path": "s3://b/imgs"}})["data"]["path"] == "s3://b/imgs"
    assert resolve_config_paths(VQConfig, {"data": {"path": "imgs"}})["data"]["path"] == str(tmp_path / "imgs")


def test_tune_search_resolves_a_relative_base_path_before_trials(tmp_path, monkeypatch):
    """run_search makes the base config's paths absolute first (checked through the same
    helper it calls; the search itself needs Ray and is covered by test_tune)."""
    import inspect

    from pipelines.pcrec import tune

    assert "resolve_config_paths(pipe.config_cls, base_tree" in inspect.getsource(tune.run_search)
    monkeypatch.chdir(ROOT)
    tree = resolve_config_paths(PCRecConfig, {"data": {"path": "data/fixtures/tiny.csv"}})
    monkeypatch.chdir(tmp_path)
    cfg = validate_config(PCRecConfig, tree)
    assert list(data_files(cfg)) == [str(TINY_CSV)]


def test_missing_external_input_is_a_fingerprint_error_naming_file_and_key(tmp_path):
    from pipelines.core.runner import stage_fingerprint
    from pipelines.registry import get_pipeline

    pipe = get_pipeline("pcrec")
    cfg = load_config(PCRecConfig, None, [f"data.files=[{{path: {tmp_path}/gone.csv, domain: source}}]"])
    with pytest.raises(InputError, match=r"gone\.csv, field 'data\.files\[0\]\.path': input file does not exist"):
        stage_fingerprint(pipe, pipe.stage("ingest"), cfg, {})
    vq = get_pipeline("vq")
    vcfg = validate_config(vq.config_cls, {"data": {"path": str(tmp_path / "no-images")}})
    with pytest.raises(InputError, match=r"no-images, field 'data\.path': input file does not exist"):
        stage_fingerprint(vq, vq.stage("ingest"), vcfg, {})


# ---------------------------------------------------------------- D: fail fast, before Ray
def test_run_missing_relative_data_file_fails_before_ray(tmp_path, monkeypatch, capsys, no_ray):
    monkeypatch.chdir(tmp_path)
    rc, err = _recgen(capsys, "run", "pcrec", "--set", "data.path=data/nope.csv",
                      "--artifacts", str(tmp_path / "art"))
    assert rc == 2
    assert f"{tmp_path}/data/nope.csv, field 'data.path': input file does not exist" in err


def test_run_directory_as_data_path_says_it_is_a_directory(tmp_path, capsys, no_ray):
    (tmp_path / "d").mkdir()
    rc, err = _recgen(capsys, "run", "pcrec", "--set", f"data.path={tmp_path / 'd'}",
                      "--artifacts", str(tmp_path / "art"))
    assert rc == 2
    assert "field 'data.path': is a directory, not a file" in err
    assert "data.files" in err                                    # says what to pass instead


def test_run_unknown_extension_fails_before_ray(tmp_path, capsys, no_ray):
    f = tmp_path / "interactions.dat"
    f.write_text("user,item,rating,ts,domain\n")
    rc, err = _recgen(capsys, "run", "pcrec", "--set", f"data.path={f}", "--artifacts", str(tmp_path / "art"))
    assert rc == 2
    assert "cannot tell the format from the extension '.dat'" in err and "data.format" in err


def test_run_unwritable_artifact_root_fails_before_ray(tmp_path, capsys, no_ray):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")                          # a root below a file cannot be created (even as root)
    rc, err = _recgen(capsys, "run", "pcrec", "--set", f"data.path={TINY_CSV}",
                      "--artifacts", str(blocker / "art"))
    assert rc == 2
    assert "artifact root is not writable" in err and str(blocker / "art") in err


def test_tune_missing_data_file_fails_before_ray(tmp_path, monkeypatch, capsys, no_ray):
    monkeypatch.chdir(tmp_path)
    rc, err = _recgen(capsys, "tune", "pcrec", "--set", "data.path=rel/missing.csv",
                      "--artifacts", str(tmp_path / "art"))
    assert rc == 2
    assert f"{tmp_path}/rel/missing.csv, field 'data.path': input file does not exist" in err


def test_tune_directory_as_data_path_fails_before_ray(tmp_path, capsys, no_ray):
    rc, err = _recgen(capsys, "tune", "pcrec", "--set", f"data.path={tmp_path}",
                      "--artifacts", str(tmp_path / "art"))
    assert rc == 2 and "is a directory, not a file" in err


def test_video_class_folders_are_accepted_as_directories(tmp_path):
    from pipelines.core.runner import preflight
    from pipelines.registry import get_pipeline

    video = get_pipeline("video")
    (tmp_path / "videos" / "walk").mkdir(parents=True)
    cfg = validate_config(video.config_cls, {"data": {"source": "folder", "root": str(tmp_path / "videos")}})
    preflight(video, cfg, str(tmp_path / "art"))                  # no error: a folder is the input
    cfg = validate_config(video.config_cls, {"data": {"source": "folder", "root": str(tmp_path / "none")}})
    with pytest.raises(InputError, match=r"none, field 'data\.root': input file does not exist"):
        preflight(video, cfg, str(tmp_path / "art"))
