"""Component error messages name the component's own arguments, never pipeline config keys.

``components/`` has no idea which config key fed an argument (the same reader serves the pcrec
and vq pipelines, ``kcore`` is called by scripts too), so a message there that says
``set data.item_column`` is wrong for some caller. Components raise with ``param=`` naming the
argument and a hint in terms of it; the stage wraps the call in
:func:`pipelines.core.hints.config_hints`, which swaps in a hint naming the config key.

The scan: every string in a ``raise`` of ``components/**/*.py`` (message, ``fix=``, ``field=``),
every dotted name in it that resolves as a key of any pipeline config
(:func:`pipelines.core.keys.component_config_keys`). A hit fails with ``file:line``, unless it
is in :data:`ALLOWED` (with the reason).
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from components.errors import ConfigError, InputError
from pipelines.core.hints import config_hints
from pipelines.core.keys import component_config_keys, pipeline_configs

ROOT = Path(__file__).resolve().parents[1]

# (file, key) -> why it may stay. Keep this short: each entry is a message a user of the
# component (not of the pipeline) cannot act on.
ALLOWED: dict[tuple[str, str], str] = {
}


@pytest.fixture(scope="module")
def configs():
    return pipeline_configs()


def _hits(configs):
    return [r for f in sorted((ROOT / "components").rglob("*.py"))
            for r in component_config_keys(f, ROOT, configs)]


def test_component_messages_name_no_config_key(configs):
    bad = [f"{r.path}:{r.line}: '{r.key}' is a {'/'.join(r.pipelines)} config key; name the "
           f"function's argument (param=...) and map it in the stage with config_hints"
           for r in _hits(configs) if (r.path, r.key) not in ALLOWED]
    assert not bad, "component messages that name pipeline config keys:\n" + "\n".join(bad)


def test_allow_list_is_current(configs):
    found = {(r.path, r.key) for r in _hits(configs)}
    stale = sorted(set(ALLOWED) - found)
    assert not stale, f"allow-list entries that no longer occur (remove them): {stale}"


def test_scan_catches_a_config_key_in_a_component(tmp_path, configs):
    src = tmp_path / "components" / "data" / "x.py"
    src.parent.mkdir(parents=True)
    src.write_text(
        "from components.errors import InputError\n"
        "def f(item_column, path):\n"
        "    if not item_column:\n"
        "        raise InputError('no item column', fix='set data.item_column')\n"
        "    raise InputError(f'{path} bad', field='kcore.k_target', fix='see rule.values, os.path.join, "
        "data.not_a_key')\n")
    refs = component_config_keys(src, tmp_path, configs)
    assert [(r.path, r.line, r.key) for r in refs] == [
        ("components/data/x.py", 4, "data.item_column"), ("components/data/x.py", 5, "kcore.k_target")]
    assert "pcrec" in refs[0].pipelines


def test_config_hints_translates_config_errors_too():
    from components.pcrec.sampler import RWRConfig
    from pipelines.pcrec.stages.sample import rwr_config

    with pytest.raises(ConfigError) as e:
        RWRConfig(r=4)
    assert e.value.param == "r" and "sample." not in str(e.value)
    bad = SimpleNamespace(r=4, restart_prob=0.5, max_nodes=64, num_walkers=32, walk_length=8,
                          degree_budget=False, min_steps=1)
    with pytest.raises(ConfigError, match=r"r must be 1, 2 or 3, got 4 — set sample\.r to 1, 2 or 3"):
        rwr_config(bad)
    with pytest.raises(ConfigError, match="unrelated"):  # no param: passes through unchanged
        with config_hints(r="x"):
            raise ConfigError("unrelated")


def test_config_hints_takes_dotted_params_as_a_mapping():
    with pytest.raises(InputError, match="— use data.domain.values") as e:
        with config_hints({"rule.values": "use data.domain.values"}):
            raise InputError("bad value", param="rule.values", fix="use rule.values")
    assert e.value.param == "rule.values" and e.value.fix == "use data.domain.values"


def test_component_and_stage_messages_for_negatives_and_factors():
    import numpy as np
    import torch

    from components.pcrec.mf import init_factors
    from components.pcrec.negatives import PositiveSet, sample_candidates

    pos = PositiveSet(np.array([0, 0]), np.array([0, 1]), 3)
    with pytest.raises(InputError) as e:
        sample_candidates(np.array([0]), pos, 2, np.random.default_rng(0))
    assert e.value.param == "n" and "evaluate." not in str(e.value)
    with pytest.raises(ConfigError) as e:
        init_factors(2, 4, 0.1, torch.Generator(), pretrained=np.zeros((2, 3)))
    assert e.value.param == "dim" and "finetune." not in str(e.value)


def test_video_index_errors_name_the_argument_and_the_stage_the_key(tmp_path):
    from components.video.index import read_kinetics_csv, read_split_files, scan_folder
    from pipelines.video.stages.ingest import INDEX_HINTS

    for call, param, key in [(lambda: scan_folder(str(tmp_path / "no")), "root", "data.root"),
                             (lambda: read_split_files(str(tmp_path), str(tmp_path / "no")), "split_dir",
                              "data.split_dir"),
                             (lambda: read_kinetics_csv(str(tmp_path / "no.csv"), str(tmp_path)), "csv_path",
                              "data.csv")]:
        with pytest.raises(InputError) as e:
            call()
        assert e.value.param == param and "data." not in str(e.value)
        with pytest.raises(InputError, match=key.replace(".", r"\.")):
            with config_hints(INDEX_HINTS):
                call()
