"""Typed, validated configs.

A pipeline's config is a tree of :class:`StrictModel` (pydantic, unknown keys are errors).
It is loaded as: class defaults < ``--config FILE`` (YAML) < ``--set a.b=value`` (each value
parsed as YAML, so ``--set sample.r=3`` is an int and ``--set finetune.modes=[a,d]`` a list).
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Iterable, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from components.errors import ConfigError

M = TypeVar("M", bound="StrictModel")


class StrictModel(BaseModel):
    """Base of every config section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


class StageResources(StrictModel):
    """Ray resources of one stage (a Ray task, or the per-worker resources of a trainer)."""

    num_cpus: float = Field(1.0, ge=0, description="CPUs reserved by the stage's Ray task")
    num_gpus: float = Field(0.0, ge=0, description="GPUs reserved by the stage's Ray task")
    memory_gb: float | None = Field(None, ge=0, description="memory reserved (GiB), optional")


def _set_dotted(tree: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for k in keys[:-1]:
        nxt = node.get(k)
        if nxt is None:
            nxt = node[k] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"--set {dotted}: '{k}' is a value, not a section")
        node = nxt
    node[keys[-1]] = value


def parse_sets(sets: Iterable[str]) -> dict:
    """Turn ``["a.b=1", "c=x"]`` into a nested dict, values parsed as YAML."""
    tree: dict = {}
    for item in sets or ():
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set kcore.k_target=5")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"--set {item!r}: empty key")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        _set_dotted(tree, key, value)
    return tree


def deep_merge(base: dict, override: dict) -> dict:
    """Recursively merge ``override`` into a copy of ``base``."""
    out = copy.deepcopy(base)
    for k, v in (override or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def read_yaml(path: str | Path, _seen: tuple = ()) -> dict:
    """The YAML mapping of ``path``. A top-level ``extends: other.yaml`` (relative to this file)
    reads that file first and deep-merges this one over it (lists are replaced, not appended)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist — pass an existing YAML file to --config")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {p} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must contain a mapping at the top level")
    base = data.pop("extends", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ConfigError(f"config file {p}: extends must be one file name, got {base!r}")
    base_path = (p.parent / base).resolve()
    if base_path in _seen or base_path == p.resolve():
        raise ConfigError(f"config file {p}: extends {base} forms a cycle — remove one of the extends")
    return deep_merge(read_yaml(base_path, _seen + (p.resolve(),)), data)


def format_validation_error(cls: type[BaseModel], err: ValidationError, source: str) -> str:
    lines = [f"invalid {cls.__name__} config ({source}):"]
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"])
        if e["type"] == "extra_forbidden":
            parent = _section_model(cls, e["loc"][:-1])
            valid = sorted(parent.model_fields) if parent is not None else []
            lines.append(f"  unknown key '{loc}' — valid keys here: {', '.join(valid)}")
        else:
            lines.append(f"  {loc}: {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


def _section_model(cls: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    model: Any = cls
    for key in loc:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(str(key))
        if field is None:
            return None
        model = field.annotation
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def validate_config(cls: type[M], tree: dict, source: str = "config") -> M:
    try:
        return cls.model_validate(tree)
    except ValidationError as e:
        raise ConfigError(format_validation_error(cls, e, source)) from None


def load_config(cls: type[M], path: str | Path | None = None, sets: Iterable[str] = (),
                base_dir: str | Path | None = None) -> M:
    """Defaults < YAML file < ``--set`` overrides, validated against ``cls``.

    With ``base_dir``, relative paths in path fields (:func:`path_field`) are made absolute
    against it (the CLI passes the current directory; see :func:`resolve_config_paths`).
    """
    tree: dict = {}
    source = []
    if path:
        tree = read_yaml(path)
        source.append(str(path))
    overrides = parse_sets(sets)
    if overrides:
        tree = deep_merge(tree, overrides)
        source.append("--set")
    where = " + ".join(source) or "defaults"
    if base_dir is not None:
        tree = resolve_config_paths(cls, tree, base_dir, source=where)
    return validate_config(cls, tree, where)


# ---------------------------------------------------------------------------- path fields
def path_field(default: Any = None, *, kind: str = "file", description: str = "") -> Any:
    """A config field holding a local input path. ``kind``: ``file``, ``dir`` or ``any``
    (a file or a folder). Relative values are resolved against the working directory when
    the CLI loads the config (Ray Tune runs each trial in its own working directory)."""
    return Field(default, description=description, json_schema_extra={"path": kind})


def config_paths(cfg: BaseModel) -> list[tuple[tuple, str, str]]:
    """Every set path field of ``cfg``: ``(loc, value, kind)``; ``loc`` is the key tuple, with
    list indices as ints (format it with :func:`path_key`)."""
    out: list[tuple[tuple, str, str]] = []

    def walk(model: BaseModel, loc: tuple) -> None:
        for name, info in type(model).model_fields.items():
            value = getattr(model, name)
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            if extra.get("path") and isinstance(value, str) and value:
                out.append(((*loc, name), value, str(extra["path"])))
            elif isinstance(value, BaseModel):
                walk(value, (*loc, name))
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, BaseModel):
                        walk(item, (*loc, name, i))

    walk(cfg, ())
    return out


def path_key(loc: tuple) -> str:
    """``("data", "files", 0, "path")`` -> ``"data.files[0].path"``."""
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return key


def _absolute(value: str, base: str | Path) -> str:
    if "://" in value:  # a URI (s3://, gs://): not a local path
        return value
    v = os.path.expanduser(value)
    return v if os.path.isabs(v) else os.path.normpath(os.path.join(os.path.abspath(base), v))


def resolve_config_paths(cls: type[BaseModel], tree: dict, base_dir: str | Path | None = None,
                         source: str = "config") -> dict:
    """A copy of the raw config ``tree`` whose relative path fields are absolute (against
    ``base_dir``, default the current directory). Fields left at their defaults are written
    only when the default is relative. Raises ConfigError if ``tree`` is invalid."""
    base = os.getcwd() if base_dir is None else base_dir
    cfg = validate_config(cls, tree, source)
    out = copy.deepcopy(tree)
    for loc, value, _kind in config_paths(cfg):
        new = _absolute(value, base)
        if new == value:
            continue
        node: Any = out
        for part in loc[:-1]:
            if isinstance(part, int):
                node = node[part]
            else:
                if not isinstance(node.get(part), (dict, list)):
                    node[part] = {}
                node = node[part]
        node[loc[-1]] = new
    return out


def config_dump(cfg: BaseModel) -> dict:
    """A JSON-able dict of a config (what manifests and run records store)."""
    return cfg.model_dump(mode="json")


def config_yaml(cfg: BaseModel) -> str:
    return yaml.safe_dump(config_dump(cfg), sort_keys=False)
