"""One exception root for every error a user can cause.

The CLI turns any :class:`VaeSearchError` into one line on stderr and exit code 2; anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations


class VaeSearchError(Exception):
    """Root of the errors vae-search reports to users as one line."""


class ConfigError(VaeSearchError):
    """A run config or study spec is malformed; the message names every offending key."""


class DataError(VaeSearchError):
    """A dataset is missing, unreadable or of an unsupported shape."""


class TrainingError(VaeSearchError):
    """Training could not go on (a non-finite loss, for example)."""

    def __init__(self, message: str, *, epoch: int | None = None, step: int | None = None) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.step = step


class StorageError(VaeSearchError):
    """The study database cannot be reached or used; never carries a password."""
