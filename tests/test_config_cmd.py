"""`recgen config PIPELINE`: the resolved config as YAML, every key with description and default."""
from __future__ import annotations

import re

import pytest
import yaml
from pydantic import BaseModel

from pipelines.cli import main
from pipelines.commands.config import _section_type
from pipelines.core.config import config_dump
from pipelines.core.train import TrainerConfig
from pipelines.pcrec.config import PCRecConfig
from pipelines.video.config import VideoConfig
from pipelines.vq.config import VQConfig

CONFIGS = {"pcrec": PCRecConfig, "video": VideoConfig, "vq": VQConfig}


def leaf_fields(cls: type[BaseModel], prefix: str = "") -> dict[str, tuple[type, object]]:
    """``{dotted leaf key: (model class, field info)}`` of a config model."""
    out = {}
    for name, field in cls.model_fields.items():
        sub = _section_type(field)
        if sub is not None and field.default is not None:
            out.update(leaf_fields(sub, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = (cls, field)
    return out


def comments_by_key(text: str) -> dict[str, str]:
    """``{dotted key: trailing comment}`` of the leaf lines of the printed YAML."""
    stack: list[str] = []
    out = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = re.match(r"( *)([A-Za-z_]\w*):(.*)$", line)
        assert m, f"unexpected line {line!r}"
        depth = len(m.group(1)) // 2
        stack = stack[:depth] + [m.group(2)]
        rest = m.group(3)
        if rest.strip() and rest.strip() != "{}":  # "graph: {}" is a section without keys
            out[".".join(stack)] = rest.split("  # ", 1)[1] if "  # " in rest else ""
    return out


def run_config(capsys, *argv) -> str:
    assert main(["config", *argv]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_prints_every_key_with_description_and_default(capsys, name):
    cls = CONFIGS[name]
    out = run_config(capsys, name)
    assert yaml.safe_load(out) == config_dump(cls())  # valid YAML, the resolved (default) config
    printed = comments_by_key(out)
    leaves = leaf_fields(cls)
    assert set(printed) == set(leaves)
    for key, (_, field) in leaves.items():
        assert "default: " in printed[key], key
        if field.description:
            assert " ".join(field.description.split()) in printed[key], key


def test_every_pcrec_key_has_a_description(capsys):
    """TrainerConfig lives in pipelines/core/train.py; its cpus_per_worker has none yet."""
    printed = comments_by_key(run_config(capsys, "pcrec"))
    missing = [k for k, (owner, f) in leaf_fields(PCRecConfig).items()
               if not f.description and owner is not TrainerConfig]
    assert not missing, missing
    assert printed["kcore.k_target"].startswith("min interactions per user and item in the target domain")
    assert printed["data.recipe"] == "used when neither data.path nor data.files is set; default: ml1m"


def test_config_file_and_set_override_defaults(capsys, tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("kcore: {k_target: 7}\nsample: {r: 1}\n")
    out = run_config(capsys, "pcrec", "--config", str(f), "--set", "sample.r=3",
                     "--set", "finetune.train.loss.params.m=1")
    cfg = yaml.safe_load(out)
    assert cfg["kcore"]["k_target"] == 7 and cfg["sample"]["r"] == 3
    assert cfg["finetune"]["train"]["loss"]["params"] == {"m": 1.0}
    printed = comments_by_key(out)
    assert printed["kcore.k_target"].endswith("default: 5")
    assert printed["sample.r"].endswith("default: 2")


def test_section_defaults_come_from_the_parent(capsys):
    # video's train.trainer defaults to cpus_per_worker=2.0, not TrainerConfig's 1.0
    printed = comments_by_key(run_config(capsys, "video"))
    assert printed["train.trainer.cpus_per_worker"].endswith("default: 2.0")


def test_unknown_key_is_an_error(capsys):
    assert main(["config", "pcrec", "--set", "data.source=synthetic"]) == 2
    assert "unknown key 'data.source'" in capsys.readouterr().err


def test_extends_merges_over_the_base_file_and_refuses_a_cycle(tmp_path):
    from pipelines.core.config import ConfigError, load_config, read_yaml

    (tmp_path / "base.yaml").write_text("seed: 3\nfinetune: {seeds: [0, 1], factors: 64}\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "child.yaml").write_text("extends: ../base.yaml\nfinetune: {seeds: [0, 1, 2]}\n")
    cfg = load_config(PCRecConfig, tmp_path / "sub" / "child.yaml")
    assert cfg.seed == 3 and cfg.finetune.seeds == [0, 1, 2] and cfg.finetune.factors == 64
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        read_yaml(tmp_path / "a.yaml")


def test_shipped_full_pcrec_config_is_the_demo_with_three_seeds_and_the_full_grids():
    from pipelines.core.config import load_config

    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "configs" / "pcrec"
    demo, full = (load_config(PCRecConfig, root / f"{n}.yaml") for n in ("default", "full"))
    assert full.finetune.seeds == [0, 1, 2] and len(full.finetune.grid) == 2
    assert set(demo.peers.als_reg) < set(full.peers.als_reg)     # the demo cuts the ALS grid
    assert full.pretrain == demo.pretrain and full.finetune.train == demo.finetune.train
    for n in ("sparse", "cold"):   # the scenarios: the demo + their split, 3 seeds, the full peer grids
        sc = load_config(PCRecConfig, root / f"{n}.yaml")
        assert sc.split.scenario == n and sc.finetune.seeds == [0, 1, 2] and sc.peers.als_reg == full.peers.als_reg
        assert sc.pretrain == demo.pretrain and sc.finetune.train == demo.finetune.train
