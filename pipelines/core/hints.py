"""Stage-side translation of component errors into hints that name config keys.

Components raise :class:`components.errors.InputError` with ``param`` set to the function
argument the error is about and a hint naming that argument. A stage knows which config key
fed the argument, so it wraps the call::

    with config_hints(min_interactions="set split.min_interactions to 3 or more"):
        leave_one_out(inter, min_interactions=cfg.split.min_interactions)

and an error about ``min_interactions`` is re-raised with that hint instead.
"""
from __future__ import annotations

from contextlib import contextmanager

from components.errors import InputError


@contextmanager
def config_hints(**hints: str):
    """Replace the hint of an :class:`InputError` whose ``param`` is a keyword of ``hints``."""
    try:
        yield
    except InputError as e:
        hint = hints.get(e.param or "")
        if hint is None:
            raise
        raise InputError(e.message, path=e.path, row=e.row, field=e.field, fix=hint,
                         param=e.param) from e
