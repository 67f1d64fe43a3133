"""Stage-side translation of component errors into hints that name config keys.

Components raise :class:`components.errors.InputError` with ``param`` set to the function
argument the error is about and a hint naming that argument. A stage knows which config key
fed the argument, so it wraps the call::

    with config_hints(min_interactions="set split.min_interactions to 3 or more"):
        leave_one_out(inter, min_interactions=cfg.split.min_interactions)

and an error about ``min_interactions`` is re-raised with that hint instead. A ``param`` that
is an attribute of an argument (``rule.values`` of a ``DomainRule``) is not a Python keyword;
pass such hints as a mapping: ``config_hints({"rule.values": "..."}, path="...")``.
:class:`~components.errors.ConfigError` (raised by a component about an argument, with
``param``) is translated the same way.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Mapping

from components.errors import ConfigError, InputError


@contextmanager
def config_hints(mapping: Mapping[str, str] | None = None, /, **hints: str):
    """Replace the hint of an :class:`InputError` / :class:`ConfigError` whose ``param`` is a
    key of ``mapping`` or a keyword of ``hints``."""
    table = {**(mapping or {}), **hints}
    try:
        yield
    except InputError as e:
        hint = table.get(e.param or "")
        if hint is None:
            raise
        raise InputError(e.message, path=e.path, row=e.row, field=e.field, fix=hint,
                         param=e.param) from e
    except ConfigError as e:
        hint = table.get(getattr(e, "param", None) or "")
        if hint is None:
            raise
        raise ConfigError(getattr(e, "message", str(e)), fix=hint, param=e.param) from e
