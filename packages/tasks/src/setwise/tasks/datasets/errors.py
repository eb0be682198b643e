"""Errors raised by the dataset loaders: each names the path and what was expected there."""

from __future__ import annotations

from pathlib import Path


class DataError(Exception):
    """Base class of every dataset error."""


class MissingDataError(DataError, FileNotFoundError):
    """A required file or folder is absent.

    The message names the path, what was expected there, and how to get it.
    """

    def __init__(self, path, expected: str, hint: str = ""):
        self.path = Path(path)
        self.expected = expected
        message = f"{self.path}: missing; expected {expected}"
        super().__init__(message + (f". {hint}" if hint else ""))


class CorruptDataError(DataError, ValueError):
    """A file exists but its content is not what was expected (checksum, header, shape)."""

    def __init__(self, path, expected: str, found: str):
        self.path = Path(path)
        self.expected = expected
        self.found = found
        super().__init__(f"{self.path}: corrupt; expected {expected}, found {found}")
