"""User-facing errors: each carries one line saying what is wrong and how to fix it."""

from __future__ import annotations


class MeshstreamError(Exception):
    """An error caused by the user's input, files or settings.

    The CLI prints ``str(error)`` as a single line on stderr (no traceback) and exits
    with :attr:`exit_code`. Everything computed before the error stays in the store.
    """

    exit_code: int = 2


class InputError(MeshstreamError):
    """The input path, video or image folder cannot be used."""


class ConfigError(MeshstreamError):
    """A configuration key or value is invalid."""


class OutputError(MeshstreamError):
    """The output location cannot be written."""


class ModelFileError(MeshstreamError):
    """A model file is missing or unreadable."""


class MissingExtraError(MeshstreamError):
    """An optional dependency is not installed; the message holds the pip line."""


class NothingToResume(MeshstreamError):
    """``--resume`` found the store already complete: not a failure (exit 0)."""

    exit_code = 0
