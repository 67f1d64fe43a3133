"""Do the config keys a user reads resolve? (docs, ``--set`` examples, error hints)

:func:`resolve_key` walks a dotted key (``finetune.train.loss.name``) through the fields of a
pipeline's config model. The collectors find the keys a user is told to use:

* :func:`text_keys`: every ``--set key=value`` (and ``--tune-set key=value``) in a text file
  (Markdown, YAML comments, a Makefile, a crontab); in Markdown also every key path of a fenced
  ```` ```yaml ```` block that is a recgen config (see :func:`yaml_block_refs` for the rule);
* :func:`source_hint_keys`: every dotted config key named in the message of a ``raise`` (the
  ``fix=`` hint included) and in ``--set`` examples of a Python source file;
* :func:`component_config_keys`: the reverse check for ``components/``: dotted names in
  ``raise`` messages that *do* resolve as config keys (components name their own arguments).

:func:`unresolved` checks them and returns ``file:line: ...`` lines for the keys that do not
resolve. ``tests/test_doc_keys.py`` runs it over the repository.
"""
from __future__ import annotations

import ast
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml
from pydantic import BaseModel


# ----------------------------------------------------------------------------- resolution

def _models_of(tp: Any) -> list[Any]:
    """Unwrap ``Optional``/``Union``/``Annotated``: the alternatives of a field type."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(tp) if a is not type(None)]
    if origin is typing.Annotated:
        return _models_of(typing.get_args(tp)[0])
    return [tp]


def _step(tp: Any, seg: str) -> list[Any]:
    """The types reached from ``tp`` by the key segment ``seg`` (empty: does not resolve)."""
    out: list[Any] = []
    for alt in _models_of(tp):
        origin = typing.get_origin(alt)
        if alt is Any:
            out.append(Any)
        elif isinstance(alt, type) and issubclass(alt, BaseModel):
            field = alt.model_fields.get(seg)
            if field is not None:
                out.append(field.annotation)
        elif origin in (dict, typing.Mapping) or alt is dict:
            args = typing.get_args(alt)
            out.append(args[1] if len(args) == 2 else Any)  # any sub-key; then the value type
        elif origin in (list, tuple, set, typing.Sequence):
            # a key path into list elements (YAML ``files: [{path: x}]`` -> ``files.path``)
            args = [a for a in typing.get_args(alt) if a is not Ellipsis]
            for a in args:
                out += _step(a, seg)
    return out


def resolve_key(config_cls: type[BaseModel], dotted: str) -> bool:
    """True when ``dotted`` (``a.b.c``) names a field (or section) of ``config_cls``.

    ``dict``-typed fields accept any sub-key (``resources.train.num_cpus`` descends into the
    value type); list fields are looked through (``data.files[].domain`` or
    ``data.files.domain``); a trailing ``*`` (``kcore.*``) accepts any field of the section.
    """
    segs = [s for s in re.sub(r"\[[^\]]*\]", "", dotted.strip()).split(".")]
    if not segs or any(s == "" for s in segs):
        return False
    current: list[Any] = [config_cls]
    for i, seg in enumerate(segs):
        if seg == "*":
            return i == len(segs) - 1 and any(
                t is Any or typing.get_origin(t) is dict or (isinstance(t, type) and issubclass(t, BaseModel))
                for c in current for t in _models_of(c))
        nxt: list[Any] = []
        for c in current:
            nxt += _step(c, seg)
        if not nxt:
            return False
        current = nxt
    return True


def pipeline_configs() -> dict[str, type[BaseModel]]:
    """Config models users write keys for: the three pipelines, the retrain and tune specs."""
    from pipelines.pcrec.config import PCRecConfig
    from pipelines.retrain.config import RetrainConfig
    from pipelines.video.config import VideoConfig
    from pipelines.vq.config import VQConfig

    out: dict[str, type[BaseModel]] = {"pcrec": PCRecConfig, "video": VideoConfig, "vq": VQConfig,
                                       "retrain": RetrainConfig}
    try:
        from pipelines.pcrec.tune import TuneSpec

        out["tune"] = TuneSpec
    except ImportError:  # pragma: no cover - tune needs ray[tune]
        pass
    return out


# ----------------------------------------------------------------------------- references

@dataclass(frozen=True)
class KeyRef:
    """One key a user reads: where, which key, and the config(s) it must resolve in."""

    path: str
    line: int
    key: str
    pipelines: tuple[str, ...]  # empty: any recgen config
    kind: str  # "--set", "yaml", "hint"


def unresolved(refs: Iterable[KeyRef], configs: dict[str, type[BaseModel]] | None = None) -> list[str]:
    """``file:line: ...`` for every reference whose key resolves in none of its configs."""
    configs = configs or pipeline_configs()
    bad = []
    for r in refs:
        names = [p for p in (r.pipelines or tuple(configs)) if p in configs]
        if not any(resolve_key(configs[p], r.key) for p in names):
            bad.append(f"{r.path}:{r.line}: unknown {r.kind} key '{r.key}' "
                       f"(not in the {' / '.join(names)} config)")
    return bad


# Placeholders of usage lines (`--set key=value`, `--set k=v`, `--set a.b=value`), not keys.
PLACEHOLDERS = {"key", "k", "a.b", "KEY"}
PIPE_NAMES = ("pcrec", "video", "vq")
_SET = re.compile(r"(?:^|[\s`'\"(\[])--(tune-)?set[\s=]+['\"]?([A-Za-z_][\w.\[\]*]*)=")
_CMD = re.compile(r"recgen (?:run|tune|config) (pcrec|video|vq)\b|recgen (retrain)\b|configs/(pcrec|video|vq|retrain)/")
_FILE_DEFAULT = {"video.md": "video", "video-models.md": "video", "vq.md": "vq", "tune.md": "pcrec"}


def _named_pipeline(text: str) -> str | None:
    hits = [next(g for g in m.groups() if g) for m in _CMD.finditer(text)]
    return hits[-1] if hits else None


def _line_contexts(lines: list[str], path: Path) -> list[str | None]:
    """Pipeline each line talks about: a ``recgen run NAME`` / ``configs/NAME/`` on the line or
    earlier in its paragraph or fenced block (Markdown only), else the nearest Markdown heading
    naming one, else the file's default (docs/video.md -> video, docs/vq.md -> vq, docs/tune.md -> pcrec, a file
    under configs/NAME/ -> NAME), else None (any config)."""
    default = _FILE_DEFAULT.get(path.name)
    parts = path.parts
    if "configs" in parts and parts.index("configs") + 1 < len(parts):
        default = parts[parts.index("configs") + 1]
    out: list[str | None] = []
    heading: str | None = None
    block: str | None = None
    fenced = False
    md = path.suffix == ".md"
    for line in lines:
        stripped = line.strip()
        if not md:  # YAML comments, Makefile, crontab: the line itself, else the file default
            out.append(_named_pipeline(line) or default)
            continue
        if stripped.startswith("```"):
            fenced = not fenced
            block = None
        elif not fenced and not stripped:
            block = None
        elif not fenced and stripped.startswith("#"):
            heading = _named_pipeline(stripped)
            block = None
        block = _named_pipeline(line) or block
        out.append(block or heading or default)
    return out


def _yaml_paths(node: Any, prefix: str = "") -> Iterable[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, (dict, list)) and v and not (isinstance(v, list) and not any(isinstance(x, dict) for x in v)):
                yield from _yaml_paths(v, key)
            else:
                yield key
    elif isinstance(node, list):
        for x in node:
            if isinstance(x, dict):
                yield from _yaml_paths(x, prefix)
        if prefix and not any(isinstance(x, dict) for x in node):
            yield prefix


# Top-level keys that mark a YAML block as something else than a recgen config.
FOREIGN_YAML_KEYS = {"apiVersion", "kind", "metadata", "spec",  # Kubernetes / KubeRay
                     "cluster_name", "provider", "available_node_types", "head_node_type",
                     "max_workers", "auth", "setup_commands"}  # Ray cluster launcher


def yaml_block_refs(text: str, first_line: int, path: str, context: str | None,
                    configs: dict[str, type[BaseModel]]) -> list[KeyRef]:
    """Key paths of one fenced YAML block.

    Rule: a block is skipped when its top level has a Kubernetes / Ray-cluster key
    (:data:`FOREIGN_YAML_KEYS`) or no top-level key of any recgen config. Otherwise it belongs
    to the pipeline named by its context (see :func:`_line_contexts`), else to the configs that
    contain the most of its top-level keys. A block that is not valid YAML is reported.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        return [KeyRef(path, first_line, f"<invalid YAML: {str(e).splitlines()[0]}>", ("none",), "yaml")]
    if not isinstance(data, dict) or FOREIGN_YAML_KEYS & set(map(str, data)):
        return []
    tops = set(map(str, data))
    score = {name: len(tops & set(cls.model_fields)) for name, cls in configs.items()}
    if max(score.values(), default=0) == 0:
        return []
    if context and context in configs:
        names: tuple[str, ...] = (context,)
    else:
        best = max(score.values())
        names = tuple(n for n, s in score.items() if s == best)
    # line of each top-level key, for the report
    lines = text.splitlines()
    refs = []
    for key in _yaml_paths(data):
        top = key.split(".")[0]
        off = next((i for i, ln in enumerate(lines) if re.match(rf"{re.escape(top)}\s*:", ln)), 0)
        refs.append(KeyRef(path, first_line + off, key, names, "yaml"))
    return refs


_KEY = r"[a-z_][a-z0-9_]*(?:(?:\[\])?\.(?:[a-z_][a-z0-9_]*|\*))+"
_FILE_EXT = {"md", "py", "pt", "png", "yaml", "yml", "json", "jsonl", "parquet", "csv", "tsv", "npz",
             "npy", "mp4", "txt", "gz", "inter", "item", "toml", "sh"}


def _span_keys(span: str) -> list[str]:
    """Keys of an inline code span that is nothing but keys: `a.b`, `a.b=v`, `a.b: v`,
    `a.b=v c.d=w`. File names (`report.md`) and code (`model.features(x)`) are not keys."""
    tokens = span.split()
    if len(tokens) > 1 and all(re.fullmatch(rf"{_KEY}=\S*", t) for t in tokens):
        keys = [t.split("=", 1)[0] for t in tokens]
    else:
        m = re.fullmatch(rf"\s*({_KEY})(?:\s*[=:]\s*.*)?", span)
        keys = [m.group(1)] if m else []
    return [k for k in keys if k.rsplit(".", 1)[-1] not in _FILE_EXT]


def _inline_refs(lines: list[str], ctx: list[str | None], shown: str,
                 configs: dict[str, type[BaseModel]]) -> list[KeyRef]:
    """Keys in Markdown inline code spans made only of keys (:func:`_span_keys`: `data.path=FILE`,
    `ingest.max_reject_fraction`, `data.recipe: synthetic`) outside fenced blocks, when their
    first part is a top-level section of the line's config (so `components.losses.get_loss`
    is not a key)."""
    refs = []
    fenced = False
    for i, line in enumerate(lines):
        if line.strip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        names = (ctx[i],) if ctx[i] in configs else tuple(n for n in configs if n != "tune")
        tops = set().union(*(configs[n].model_fields for n in names))
        for span in re.findall(r"`([^`]+)`", line):
            if re.search(r"--(tune-)?set\b", span):
                continue  # counted by the --set scan
            for key in _span_keys(span):
                if key.split(".")[0].split("[")[0] in tops:
                    refs.append(KeyRef(shown, i + 1, key, names if ctx[i] in configs else (), "inline"))
    return refs


def text_keys(path: str | Path, root: str | Path | None = None,
              configs: dict[str, type[BaseModel]] | None = None) -> list[KeyRef]:
    """``--set`` keys of any text file, plus fenced YAML block keys of a Markdown file."""
    configs = configs or pipeline_configs()
    p = Path(path)
    shown = str(p.relative_to(root)) if root else str(p)
    lines = p.read_text(encoding="utf-8", errors="replace").splitlines()
    ctx = _line_contexts(lines, p.relative_to(root) if root else p)
    refs: list[KeyRef] = []
    for i, line in enumerate(lines):
        for m in _SET.finditer(line):
            key = m.group(2)
            if key in PLACEHOLDERS:
                continue
            pipes = ("tune",) if m.group(1) else ((ctx[i],) if ctx[i] else ())
            refs.append(KeyRef(shown, i + 1, key, pipes, "--set"))
    if p.suffix == ".md":
        refs += _inline_refs(lines, ctx, shown, configs)
        i = 0
        while i < len(lines):
            m = re.match(r"\s*```\s*(ya?ml)\b", lines[i])
            if m:
                j = i + 1
                while j < len(lines) and not lines[j].strip().startswith("```"):
                    j += 1
                refs += yaml_block_refs("\n".join(lines[i + 1:j]), i + 2, shown, ctx[i], configs)
                i = j
            i += 1
    return refs


# ----------------------------------------------------------------------------- hints in code

_DOTTED = re.compile(r"(?<![\w.-])([a-z_][a-z0-9_]*(?:(?:\[\])?\.(?:[a-z_][a-z0-9_]*|\*))+)(?![\w(-])")


def _strings(node: ast.AST) -> Iterable[tuple[int, str]]:
    for n in ast.walk(node):
        if isinstance(n, ast.Constant) and isinstance(n.value, str):
            yield n.lineno, n.value


def source_pipeline(rel: Path) -> str | None:
    """Config a source file's hints refer to: pipelines/NAME/ or components/NAME/ -> NAME
    (components/data, graph, pcrec -> pcrec), else None (any)."""
    parts = rel.parts
    if len(parts) > 2 and parts[0] in ("pipelines", "components"):
        sub = parts[1]
        if sub in ("pcrec", "video", "vq", "retrain"):
            return sub
        if sub in ("data", "graph"):
            return "pcrec"
        if sub == "modelreg":
            return "retrain"
    return None


def _raised_dotted(tree: ast.AST):
    """``(line, dotted word)`` once each, from the string literals of every ``raise`` in ``tree``."""
    seen: set[tuple[int, str]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            for line, s in _strings(node.exc):
                for m in _DOTTED.finditer(s):
                    if (line, m.group(1)) not in seen:
                        seen.add((line, m.group(1)))
                        yield line, m.group(1)


def source_hint_keys(path: str | Path, root: str | Path | None = None,
                     configs: dict[str, type[BaseModel]] | None = None) -> list[KeyRef]:
    """Config keys named in ``raise`` messages (``fix=`` hints included) and ``--set`` examples
    of a Python file. In a raise, a dotted word counts as a key when its first part is a
    top-level section of the file's config (``data.item_column``, ``kcore.*``); code names such
    as ``components.video.models.names()`` or ``spec.inputs`` are not."""
    configs = configs or pipeline_configs()
    p = Path(path)
    rel = p.relative_to(root) if root else p
    shown = str(rel)
    pipe = source_pipeline(rel)
    names = (pipe,) if pipe else tuple(n for n in configs if n != "tune")
    tops = set().union(*(configs[n].model_fields for n in names if n in configs))
    tree = ast.parse(p.read_text(encoding="utf-8"))
    refs: list[KeyRef] = []
    seen: set[tuple[int, str]] = set()
    for line, key in _raised_dotted(tree):
        if key.split(".")[0].split("[")[0] in tops:
            seen.add((line, key))
            refs.append(KeyRef(shown, line, key, names if pipe else (), "hint"))
    for line, s in _strings(tree):
        for m in _SET.finditer(s):
            key = m.group(2)
            if key not in PLACEHOLDERS and (line, key) not in seen:
                seen.add((line, key))
                sub = ("tune",) if m.group(1) else (names if pipe else ())
                refs.append(KeyRef(shown, line, key, sub, "--set"))
    return refs


def component_config_keys(path: str | Path, root: str | Path | None = None,
                          configs: dict[str, type[BaseModel]] | None = None) -> list[KeyRef]:
    """Dotted names in the ``raise`` messages (``fix=`` / ``field=`` included) of a component
    source file that resolve as a key of any pipeline config (``data.item_column``,
    ``kcore.*``). A component names its own arguments; the stage maps them to config keys
    (:mod:`pipelines.core.hints`), so in ``components/`` every hit is a layering slip.
    ``KeyRef.pipelines`` lists the configs the key resolves in."""
    configs = configs or pipeline_configs()
    p = Path(path)
    shown = str(p.relative_to(root)) if root else str(p)
    refs: list[KeyRef] = []
    for line, key in _raised_dotted(ast.parse(p.read_text(encoding="utf-8"))):
        hits = tuple(n for n, cls in configs.items() if resolve_key(cls, key))
        if hits:
            refs.append(KeyRef(shown, line, key, hits, "component"))
    return sorted(refs, key=lambda r: r.line)
