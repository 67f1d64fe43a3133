"""Every config key a user reads resolves in the config model it belongs to.

Collected (``pipelines/core/keys.py`` does the work):

* every ``--set key=value`` (and ``--tune-set key=value``, checked against the tune spec) in
  README.md, docs/*.md, data/README.md, the YAML files under configs/ (comments), the Makefile
  and deploy/;
* in those Markdown files, inline code spans that consist only of keys (`data.path=FILE`,
  `ingest.max_reject_fraction`, `data.recipe: synthetic`) and every key path of a fenced
  ```` ```yaml ```` block;
* every dotted config key named in a ``raise`` message (``fix=`` hints, ``field=``) and every
  ``--set`` example in pipelines/ and components/.

Which config a key must resolve in: a ``recgen run|tune|config NAME`` or ``configs/NAME/`` on the
same line or earlier in the same paragraph / fenced block, else the nearest Markdown heading
naming one, else the file (docs/video*.md -> video, docs/vq.md -> vq, docs/tune.md -> pcrec,
configs/NAME/ -> NAME; source files: pipelines/NAME/ and components/NAME/ -> NAME,
components/data and components/graph -> pcrec), else any pipeline config.

Fenced YAML blocks: a block is skipped when it is clearly not a recgen config, i.e. its top
level has a Kubernetes / KubeRay key (apiVersion, kind, metadata, spec) or a Ray cluster
launcher key (cluster_name, provider, available_node_types, head_node_type, ...), or none of
its top-level keys is a section of any recgen config. Otherwise it belongs to the pipeline its
context names, else to the config(s) containing most of its top-level keys; a block that is
not valid YAML fails.

Placeholders of usage lines (``--set key=value``, ``--set k=v``, ``--set a.b=value``) are not keys.
An unknown key fails the test with ``file:line``.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.core.keys import (KeyRef, pipeline_configs, resolve_key, source_hint_keys, text_keys,
                                 unresolved)
from pipelines.pcrec.config import PCRecConfig

ROOT = Path(__file__).resolve().parents[1]


def doc_files() -> list[Path]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "data" / "README.md",
             *sorted((ROOT / "configs").rglob("*.yaml")), ROOT / "Makefile",
             *sorted(p for p in (ROOT / "deploy").rglob("*") if p.is_file())]
    return [f for f in files if f.is_file()]


def source_files() -> list[Path]:
    return sorted((ROOT / "pipelines").rglob("*.py")) + sorted((ROOT / "components").rglob("*.py"))


@pytest.fixture(scope="module")
def configs():
    return pipeline_configs()


def test_resolve_key_walks_the_model():
    assert resolve_key(PCRecConfig, "data.recipe")
    assert resolve_key(PCRecConfig, "finetune.train.loss.name")
    assert resolve_key(PCRecConfig, "finetune.train.loss.params.m")  # dict field: any sub-key
    assert resolve_key(PCRecConfig, "resources.finetune.num_cpus")  # dict of models: value fields
    assert resolve_key(PCRecConfig, "data.files[].domain") and resolve_key(PCRecConfig, "data.files.domain")
    assert resolve_key(PCRecConfig, "kcore.*") and resolve_key(PCRecConfig, "data")
    assert resolve_key(PCRecConfig, "baselines.joint_mf.train.epochs")  # Optional[model]
    assert not resolve_key(PCRecConfig, "data.source")
    assert not resolve_key(PCRecConfig, "data.domain.item_column")
    assert not resolve_key(PCRecConfig, "resources.finetune.num_tpus")
    assert not resolve_key(PCRecConfig, "seed.value")  # below a leaf
    assert not resolve_key(PCRecConfig, "kcore..k_target")


def test_doc_keys_resolve(configs):
    refs = [r for f in doc_files() for r in text_keys(f, ROOT, configs)]
    assert len(refs) > 30, "the collector found too few keys; is it still reading the docs?"
    bad = unresolved(refs, configs)
    assert not bad, "keys in the docs that do not exist:\n" + "\n".join(bad)


def test_error_hint_keys_resolve(configs):
    refs = [r for f in source_files() for r in source_hint_keys(f, ROOT, configs)]
    assert sum(r.kind == "hint" for r in refs) > 20
    bad = unresolved(refs, configs)
    assert not bad, "keys named in error hints / --set examples that do not exist:\n" + "\n".join(bad)


def test_checker_fails_on_a_wrong_key(tmp_path, configs):
    doc = tmp_path / "guide.md"
    doc.write_text(
        "# Guide (`recgen run pcrec`)\n"
        "\n"
        "Run `recgen run pcrec --set kcore.k_target=5 --set data.sourse=x`.\n"
        "Synthetic data: `data.source: synthetic`.\n"
        "\n"
        "```yaml\n"
        "data:\n"
        "  recipe: synthetic\n"
        "finetune:\n"
        "  train: {epochs: 3, lr_typo: 0.1}\n"
        "```\n"
        "\n"
        "```yaml\n"
        "cluster_name: recgen\n"
        "provider: {type: local}\n"
        "```\n")
    refs = text_keys(doc, tmp_path, configs)
    keys = {r.key for r in refs}
    assert {"kcore.k_target", "data.sourse", "data.source", "data.recipe", "finetune.train.epochs",
            "finetune.train.lr_typo"} <= keys
    assert "cluster_name" not in keys  # a Ray cluster YAML block is skipped
    bad = unresolved(refs, configs)
    assert bad == [
        "guide.md:3: unknown --set key 'data.sourse' (not in the pcrec config)",
        "guide.md:4: unknown inline key 'data.source' (not in the pcrec config)",
        "guide.md:9: unknown yaml key 'finetune.train.lr_typo' (not in the pcrec config)",
    ], bad


def test_checker_fails_on_a_wrong_hint(tmp_path, configs):
    src = tmp_path / "pipelines" / "pcrec" / "stages" / "x.py"
    src.parent.mkdir(parents=True)
    src.write_text(
        "from components.errors import InputError\n"
        "def f():\n"
        "    raise InputError('no rows', fix='check data.target and kcore.k_target')\n")
    bad = unresolved(source_hint_keys(src, tmp_path, configs), configs)
    assert bad == ["pipelines/pcrec/stages/x.py:3: unknown hint key 'data.target' (not in the pcrec config)"]


def test_unresolved_names_any_config_when_no_context(configs):
    assert unresolved([KeyRef("x.md", 1, "vq.ema", (), "--set")], configs) == []
    assert unresolved([KeyRef("x.md", 2, "nope.key", (), "--set")], configs)[0].startswith("x.md:2:")


def test_component_names_its_argument_and_the_stage_names_the_key():
    import pandas as pd

    from components.errors import InputError
    from components.pcrec.split import leave_one_out
    from pipelines.core.hints import config_hints

    rows = pd.DataFrame({"user": ["a"], "item": ["x"], "ts": [1], "domain": ["source"], "uid": [0], "iid": [0]})
    with pytest.raises(InputError) as e:
        leave_one_out(rows, domain="target")
    assert e.value.param == "domain" and "data." not in str(e.value)  # the component: its own argument
    with pytest.raises(InputError, match="check data.domain") as e:
        with config_hints(domain="check data.domain"):
            leave_one_out(rows, domain="target")
    assert "no rows with domain == 'target'" in str(e.value)  # the message is kept, the hint replaced
