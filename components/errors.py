"""Error types with actionable messages.

Every error raised because of a user's input names the offending file / row / field and
says what to do. The CLI prints the message and exits with status 2.

Layering: a component (``components/``) knows its own function arguments, not the pipeline
config, so its hints name those arguments and it sets ``param`` to the argument the error is
about. The stage that called it (``pipelines/``) knows which config key fed that argument and
replaces the hint with one naming the key (``pipelines.core.hints.config_hints``).
"""
from __future__ import annotations


class RecgenError(Exception):
    """Base class of errors the CLI reports without a traceback."""


class InputError(RecgenError, ValueError):
    """Bad input data: a file, a row or a field that cannot be used as given."""

    def __init__(self, message: str, *, path: str | None = None, row: int | None = None,
                 field: str | None = None, fix: str | None = None, param: str | None = None):
        parts = []
        if path is not None:
            parts.append(str(path))
        if row is not None:
            parts.append(f"row {row}")
        if field is not None:
            parts.append(f"field '{field}'")
        where = ", ".join(parts)
        text = f"{where}: {message}" if where else message
        if fix:
            text += f" — {fix}"
        super().__init__(text)
        self.message = message
        self.path, self.row, self.field, self.fix = path, row, field, fix
        self.param = param  # the raising function's argument the error is about (see module doc)


class ConfigError(RecgenError, ValueError):
    """An invalid configuration: unknown key, wrong type, or an inconsistent combination.

    Raised by a component about one of its own arguments, it sets ``param`` (and may give a
    ``fix``) like :class:`InputError`, so the stage can replace the hint with a config key.
    """

    def __init__(self, message: str, *, fix: str | None = None, param: str | None = None):
        super().__init__(f"{message} — {fix}" if fix else message)
        self.message = message
        self.fix = fix
        self.param = param
