"""Errors raised by the pipeline engine."""

from __future__ import annotations


class ConfigError(ValueError):
    """The BMv2 JSON cannot be loaded: one line saying what and where."""


class ParserError(Exception):
    """Raised inside the parser: the P4 error code and the bytes parsed so far."""

    def __init__(self, code: int, offset: int) -> None:
        super().__init__(code, offset)
        self.code = code
        self.offset = offset


class TableError(Exception):
    """Base class of control-plane errors on a match table."""


class TableFull(TableError):
    """The table already holds ``max_size`` entries."""


class DuplicateEntry(TableError):
    """An entry with the same match key (and priority) exists."""


class EntryNotFound(TableError):
    """No entry with that match key (and priority)."""


class InvalidEntry(TableError):
    """The entry is malformed for this table (wrong action, arity, width...)."""


class ConstTable(TableError):
    """The table or its default entry is const and cannot be changed."""
