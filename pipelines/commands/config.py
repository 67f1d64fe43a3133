"""`recgen config PIPELINE [--config FILE] [--set key=value ...]`: the resolved config as YAML.

Defaults < ``--config FILE`` < ``--set``, exactly as ``recgen run`` resolves them. Every key is
printed with its description and default as a YAML comment, so the output lists every key a
config file or ``--set`` accepts and is itself a valid config file.
"""
from __future__ import annotations

import types
import typing
from typing import Any

import yaml
from pydantic import BaseModel


def _flow(value: Any) -> str:
    """One-line YAML of a JSON-able value."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9, sort_keys=False).strip()
    return text[:-4].rstrip() if text.endswith("\n...") else text.removesuffix("...").strip()


def _describe(field, model_type: type | None) -> str:
    desc = field.description
    if not desc and model_type is not None and model_type.__doc__:
        desc = model_type.__doc__.strip().split("\n\n")[0]
    return " ".join((desc or "").split())


def _section_type(field) -> type[BaseModel] | None:
    tp = field.annotation
    alts = list(typing.get_args(tp)) if typing.get_origin(tp) in (typing.Union, types.UnionType) else [tp]
    for a in alts:
        if isinstance(a, type) and issubclass(a, BaseModel):
            return a
    return None


def _dump(model: BaseModel, name: str) -> Any:
    return type(model).__pydantic_serializer__.to_python(model, mode="json", include={name})[name]


def render(cfg: BaseModel, default: BaseModel | None = None, indent: int = 0) -> list[str]:
    """YAML lines of ``cfg``: a section gets its description as a comment line above it, a leaf
    ``key: value  # description; default: X``. ``default``: the same section with default values
    (a section's default can differ from its class's defaults, e.g. ``train.trainer`` of video)."""
    if default is None:
        try:
            default = type(cfg)()
        except ValueError:  # required fields: no default instance
            default = None
    pad = "  " * indent
    lines: list[str] = []
    for name, field in type(cfg).model_fields.items():
        value = getattr(cfg, name)
        desc = _describe(field, _section_type(field))
        dflt = getattr(default, name) if default is not None else None
        if isinstance(value, BaseModel):
            if desc:
                lines.append(f"{pad}# {desc}")
            sub = render(value, dflt if isinstance(dflt, type(value)) else None, indent + 1)
            lines += [f"{pad}{name}:", *sub] if sub else [f"{pad}{name}: {{}}"]
            continue
        note = f"default: {_flow(_dump(default, name))}" if default is not None else "required"
        lines.append(f"{pad}{name}: {_flow(_dump(cfg, name))}  # {desc + '; ' if desc else ''}{note}")
    return lines


def config_text(cfg: BaseModel, header: str = "") -> str:
    out = [f"# {header}"] if header else []
    return "\n".join(out + render(cfg)) + "\n"


def cmd_config(args) -> int:
    from pipelines.cli import load_pipeline_config

    pipe, cfg = load_pipeline_config(args.pipeline, args)
    source = " < ".join(["defaults"] + ([f"--config {args.config}"] if args.config else [])
                        + (["--set"] if args.sets else []))
    print(config_text(cfg, f"recgen {pipe.name} config ({source}); each comment: description; default"),
          end="")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("config", help="print a pipeline's resolved config with every key's "
                                             "description and default")
    p.add_argument("pipeline", help="pcrec | video | vq")
    p.add_argument("--config", help="YAML config file")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set kcore.k_target=5 (repeatable)")
    p.set_defaults(func=cmd_config)
