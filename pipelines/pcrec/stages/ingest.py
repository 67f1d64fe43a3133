"""ingest: read the configured data into canonical, indexed interactions.

Outputs: ``interactions`` (user, item, rating, ts, domain, uid, iid), ``users`` (domain, user,
uid), ``items`` (domain, item, iid), ``rejects`` (file, line, reason, raw).
"""
from __future__ import annotations

import os

from components.data.ingest import DomainRule, format_stats, ingest
from components.data.recipes import DataSource, FileInput, load_source, ml1m_source, synthetic_read
from components.data.readers import FORMATS, detect_format
from components.errors import ConfigError, InputError
from pipelines.core.hints import config_hints

# Component argument -> hint naming the config key that fed it (see pipelines.core.hints).
_ITEM_TABLE = "set data.item_column / data.category_column to the item table's columns"
READ_HINTS = {
    "item": _ITEM_TABLE,
    "category": _ITEM_TABLE,
    "fmt": f"set data.format (data.files[].format for data.files) to one of {', '.join(FORMATS)}",
    "path": "check data.path / data.files[].path / data.item_path (relative paths are resolved against "
            "the directory recgen runs in)",
    "columns": "fix the input's header or map its columns with data.columns",
    "src": "set data.path, data.files or data.recipe",
}
INGEST_HINTS = {
    "max_reject_fraction": "fix the input or raise ingest.max_reject_fraction",
    "file_domain": "set data.files[].domain to 'source' or 'target' for every file",
    "rule.by": "set data.columns.domain to the input's domain column (or choose another data.domain.by)",
    "rule.values": "map the values with data.domain.values, e.g. {books: source, movies: target}",
    "rule.source": "set data.domain.source and data.domain.target (category lists)",
    "item_categories": "data.domain.by=category needs an item table (data.item_path) or a category "
                       "column (data.columns.category)",
    "rule": "check data.domain (column / file / categories)",
    "implicit_threshold": "lower ingest.implicit_threshold",
}


def domain_rule(cfg) -> DomainRule:
    """The :class:`DomainRule` of ``cfg.data`` (resolving ``by: auto``)."""
    d = cfg.data.domain
    by = d.by
    if by == "auto":
        if cfg.data.files and any(f.domain for f in cfg.data.files):
            by = "file"
        elif d.source or d.target:
            by = "category"
        else:
            by = "column"
    return DomainRule(by=by, values=d.values, sep=d.category_sep, source=tuple(d.source),
                      target=tuple(d.target), overlap=d.overlap)


def data_source(cfg) -> DataSource | None:
    """The :class:`DataSource` described by ``cfg.data``; ``None`` for the synthetic recipe."""
    data = cfg.data
    if data.path and data.files:
        raise ConfigError("set either data.path or data.files, not both")
    if data.path or data.files:
        files = ([FileInput(data.path, data.format)] if data.path
                 else [FileInput(f.path, f.format, f.domain) for f in data.files])
        return DataSource(files=files, rule=domain_rule(cfg), columns=data.columns, delimiter=data.delimiter,
                          item_path=data.item_path, item_column=data.item_column,
                          category_column=data.category_column)
    if data.recipe == "ml1m":
        return ml1m_source(data.ml1m.source, data.ml1m.target, data.ml1m.overlap)
    return None


def data_files(cfg) -> dict[str, str]:
    """Raw input files whose content is part of the ingest fingerprint: ``{path: config key}``.

    Checked here, so before Ray starts (:func:`pipelines.core.runner.preflight`) and at every
    fingerprint: a missing file, a directory, or (``format: auto``) an extension that names no
    known format is an InputError naming the file and its key.
    """
    data = cfg.data
    if data.path and data.files:
        raise ConfigError("set either data.path or data.files, not both")
    named = []  # (path, key, format or None)
    if data.path:
        named.append((data.path, "data.path", data.format))
    for i, f in enumerate(data.files):
        named.append((f.path, f"data.files[{i}].path", f.format))
    if data.item_path:
        named.append((data.item_path, "data.item_path", None))
    if not named:
        try:
            src = data_source(cfg)   # a recipe (ml1m): its files come with a package
        except Exception:  # noqa: BLE001 — reported by the stage itself, with its message
            return {}
        if src is None:
            return {}
        named = [(f.path, "data.recipe", None) for f in src.files]
        named += [(src.item_path, "data.recipe", None)] if src.item_path else []
    out = {}
    for path, key, fmt in named:
        if not os.path.exists(path):
            raise InputError("input file does not exist", path=path, field=key,
                             fix=f"check {key} (relative paths are resolved against the directory "
                                 "recgen runs in)")
        if os.path.isdir(path):
            raise InputError("is a directory, not a file", path=path, field=key,
                             fix="pass one interactions file (.csv, .tsv, .jsonl, .parquet or RecBole "
                                 ".inter) as data.path, or list a folder's files under data.files "
                                 "(one entry per file, with its domain)")
        if fmt == "auto":
            try:
                detect_format(path)
            except InputError:
                ext = os.path.splitext(os.path.basename(path))[1]
                raise InputError(f"cannot tell the format from the extension '{ext}'", path=path, field=key,
                                 fix=f"rename the file or set its format ({key.rsplit('.', 1)[0]}"
                                     f".format, one of {', '.join(FORMATS)})") from None
        out[path] = key
    return out
def run_ingest(ctx) -> None:
    cfg = ctx.cfg
    src = data_source(cfg)
    if src is None:
        s = cfg.data.synthetic
        reads = [synthetic_read(s.n_interactions, n_users=s.n_users, n_items_source=s.n_items_source,
                                n_items_target=s.n_items_target, n_topics=s.n_topics,
                                shared_fraction=s.shared_fraction, target_share=s.target_share, seed=ctx.seed)]
        rule, file_domains, cats = DomainRule(by="column"), None, None
        ctx.log("synthetic data: %d interactions (seed %d)", s.n_interactions, ctx.seed)
    else:
        ctx.log("reading %s", ", ".join(f.path for f in src.files))
        with config_hints(READ_HINTS):
            reads, file_domains, cats = load_source(src)
        rule = src.rule
    ing = cfg.ingest
    with config_hints(INGEST_HINTS):
        res = ingest(reads, rule, file_domains=file_domains, item_categories=cats, duplicates=ing.duplicates,
                     implicit_threshold=ing.implicit_threshold, max_reject_fraction=ing.max_reject_fraction)
    ctx.out.write_table("interactions", res.interactions)
    ctx.out.write_table("users", res.users)
    ctx.out.write_table("items", res.items)
    ctx.out.write_table("rejects", res.rejects)
    ctx.out.stats(**res.stats)
    st = res.stats
    ctx.log("read %d rows: %d rejected, %d without a domain, %d duplicates removed, %d below threshold",
            st["rows_read"], st["rejected"], st["no_domain"], st["duplicates_removed"], st["below_threshold"])
    ctx.log("%s", format_stats(st, "after ingest:"))
