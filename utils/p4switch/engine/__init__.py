"""Sans-I/O BMv2 JSON pipeline engine with v1model (simple_switch) semantics."""

from .actions import DROP_PORT
from .errors import (
    ConfigError,
    ConstTable,
    DuplicateEntry,
    EntryNotFound,
    InvalidEntry,
    TableError,
    TableFull,
)
from .externs import CounterArray, MeterArray, MeterConfig, RegisterArray
from .pipeline import CloneSession, Pipeline, ReplicationEngine, Result
from .profiles import ActionProfile
from .tables import ActionCall, ActionDef, KeyField, MatchTable, TableEntry

__all__ = [
    "DROP_PORT", "ActionCall", "ActionDef", "ActionProfile", "CloneSession", "ConfigError",
    "ConstTable", "CounterArray", "DuplicateEntry", "EntryNotFound", "InvalidEntry", "KeyField",
    "MatchTable", "MeterArray", "MeterConfig", "Pipeline", "RegisterArray",
    "ReplicationEngine", "Result", "TableEntry", "TableError", "TableFull",
]
