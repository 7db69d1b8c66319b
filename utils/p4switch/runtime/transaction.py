"""All-or-none Write batches: ``ROLLBACK_ON_ERROR`` and ``DATAPLANE_ATOMIC``.

PI answers both modes UNIMPLEMENTED; this switch implements them with an undo
log at the P4Runtime level, independent of how the engine stores its state.
Before each update is applied, what it changes is read back and the update that
restores it is recorded:

* INSERT  -> DELETE of the same key;
* MODIFY  -> MODIFY to the values read (for a table entry: its action, direct
  counters, meter config and controller data; for a counter, meter or register
  cell: its value);
* DELETE  -> INSERT of the entry read, with its direct counters and meter config.

At the first failing update the recorded updates are applied newest first, so
the switch is back in the state it had before the batch. Every update is then
reported, as a failed CONTINUE_ON_ERROR batch is: the failing one with its
error, the others ABORTED (rolled back, or not attempted).

``DATAPLANE_ATOMIC`` needs nothing more: the server applies a whole batch under
the switch's lock, and the data plane takes that lock for each chunk of frames,
so no packet is processed between two updates of one batch (or between a
failed batch and its rollback).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from p4protos import code_pb2, p4runtime_pb2

from .config import PipelineConfig
from .errors import BatchErrors, P4RuntimeError
from .readsink import ReadSink

Update = p4runtime_pb2.Update
INSERT, MODIFY, DELETE = Update.INSERT, Update.MODIFY, Update.DELETE
# Entities that only MODIFY changes (PI's DELETE of a counter resets it): undone by
# writing back the values read.
CELLS = frozenset({"counter_entry", "direct_counter_entry", "meter_entry",
                   "direct_meter_entry", "register_entry", "value_set_entry"})

ApplyOne = Callable[[PipelineConfig, Any], None]  # raises P4RuntimeError
Reader = Callable[[PipelineConfig, Any, ReadSink], None]


def _read_request(kind: str, message: Any) -> Any:
    """What to read to see everything ``message``'s update may change."""
    request = message.__class__()
    request.CopyFrom(message)
    if kind == "table_entry":
        request.ClearField("action")
        request.ClearField("controller_metadata")
        request.ClearField("metadata")
        request.idle_timeout_ns = 0
        request.counter_data.SetInParent()  # read back only where the table has them
        request.meter_config.SetInParent()
    return request


def _current(config: PipelineConfig, readers: Mapping[str, Reader], kind: str,
             message: Any) -> list[Any]:
    """The entities of ``kind`` that ``message`` names, as they are now."""
    sink = ReadSink()
    readers[kind](config, _read_request(kind, message), sink)
    found = [getattr(e, kind) for e in sink.entities()]
    if kind == "table_entry" and not message.is_default_action and not message.match:
        found = [e for e in found if not e.match]  # an empty key reads as a wildcard
    return found


def _entity_update(update_type: int, kind: str, message: Any) -> Update:
    update = Update(type=update_type)
    getattr(update.entity, kind).CopyFrom(message)
    return update


def undo_for(config: PipelineConfig, readers: Mapping[str, Reader],
             update: Any) -> list[Update]:
    """The updates that restore what ``update`` is about to change (read now)."""
    kind = update.entity.WhichOneof("entity")
    if kind is None or kind not in readers:
        return []  # the update fails: nothing to undo
    message = getattr(update.entity, kind)
    if kind == "table_entry" and message.is_default_action:
        return [_entity_update(MODIFY, kind, e)
                for e in _current(config, readers, kind, message)]
    if kind in CELLS:
        return [_entity_update(MODIFY, kind, e)
                for e in _current(config, readers, kind, message)]
    if update.type == INSERT:
        return [_entity_update(DELETE, kind, message)]
    if update.type == MODIFY:
        return [_entity_update(MODIFY, kind, e)
                for e in _current(config, readers, kind, message)]
    if update.type == DELETE:
        return [_entity_update(INSERT, kind, e)
                for e in _current(config, readers, kind, message)]
    return []


def apply_all_or_none(config: PipelineConfig, updates: Iterable[Any], apply_one: ApplyOne,
                      readers: Mapping[str, Reader]) -> BatchErrors:
    """Apply ``updates`` in order; at the first failure undo the applied ones.

    Callers hold the switch's lock for the whole call.
    """
    updates = list(updates)
    undo_log: list[list[Update]] = []
    for position, update in enumerate(updates):
        try:
            undo = undo_for(config, readers, update)
            apply_one(config, update)
        except P4RuntimeError as error:
            _roll_back(config, undo_log, apply_one)
            return _report(len(updates), position, error)
        undo_log.append(undo)
    return _report(len(updates), None, None)


def _roll_back(config: PipelineConfig, undo_log: list[list[Update]],
               apply_one: ApplyOne) -> None:
    for undo in reversed(undo_log):
        for update in undo:
            apply_one(config, update)  # restores a state that existed: cannot fail


def _report(count: int, failed_at: int | None, error: P4RuntimeError | None) -> BatchErrors:
    batch = BatchErrors()
    for position in range(count):
        if failed_at is None:
            batch.ok()
        elif position == failed_at and error is not None:
            batch.error(error)
        else:
            state = "rolled back" if position < failed_at else "not attempted"
            batch.error(P4RuntimeError(
                code_pb2.ABORTED, f"{state}: update {failed_at + 1} of the "
                                  f"all-or-none batch failed"))
    return batch
