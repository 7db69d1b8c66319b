"""Reading table entries: engine entries -> P4Runtime ``TableEntry``, canonical bytestrings.

Filtering follows the spec's wildcard reads: ``table_id`` 0 is every table; a
``match`` selects at most one entry (none if it does not exist, as PI answers);
a non-zero ``priority`` or ``controller_metadata``, a non-empty ``metadata``
and an ``action`` id narrow the result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from p4protos.bytestrings import int_to_bytes
from p4switch.engine import ActionCall

from .config import PipelineConfig, TableInfo
from .errors import invalid
from .readsink import ReadSink
from .table_entries import (
    EXACT,
    LPM,
    OPTIONAL,
    RANGE,
    TERNARY,
    VALID,
    decode_match,
    encode_meter_config,
    table_info,
)

ENCODED_CALLS_LIMIT = 4096


def encode_match(info: TableInfo, entry: Any, out: Any) -> None:
    """Append ``entry``'s match to ``out.match``; don't-care fields are omitted."""
    for spec, value in zip(info.ordered, entry.match):
        match_type = spec.match_type
        if match_type in (EXACT, VALID):
            out.match.add(field_id=spec.id).exact.value = int_to_bytes(value)
        elif match_type == LPM:
            if value[1]:
                lpm = out.match.add(field_id=spec.id).lpm
                lpm.value = int_to_bytes(value[0])
                lpm.prefix_len = value[1]
        elif match_type == TERNARY:
            if value[1]:
                ternary = out.match.add(field_id=spec.id).ternary
                ternary.value = int_to_bytes(value[0])
                ternary.mask = int_to_bytes(value[1])
        elif match_type == RANGE:
            if value != (0, spec.mask):
                rng = out.match.add(field_id=spec.id).range
                rng.low = int_to_bytes(value[0])
                rng.high = int_to_bytes(value[1])
        elif match_type == OPTIONAL and value[1]:
            out.match.add(field_id=spec.id).optional.value = int_to_bytes(value[0])


def encode_call(config: PipelineConfig, info: TableInfo, call: ActionCall, out: Any) -> None:
    """Set ``out.action`` (a TableAction) to the direct action ``call``.

    Entries share few distinct calls, so each one's wire form is kept per table
    and merged in, instead of building the parameters again.
    """
    key = (call.action.name, call.args)
    cache = info.encoded_calls
    raw = cache.get(key)
    if raw is None:
        action_id = info.action_ids.get(call.action.name, 0)
        holder = out.__class__()
        action = holder.action.action
        action.action_id = action_id
        specs = info.actions[action_id].info.ordered if action_id else []
        for spec, value in zip(specs, call.args):
            action.params.add(param_id=spec.id, value=int_to_bytes(value))
        raw = holder.action.SerializeToString()
        if len(cache) >= ENCODED_CALLS_LIMIT:
            cache.clear()
        cache[key] = raw
    out.action.MergeFromString(raw)


def encode_entry(config: PipelineConfig, info: TableInfo, entry: Any, request: Any,
                 out: Any) -> None:
    """Fill ``out`` (an empty TableEntry) from the engine's ``entry``."""
    out.table_id = info.id
    encode_match(info, entry, out)
    if info.needs_priority:
        out.priority = entry.priority
    if entry.call is not None:
        encode_call(config, info, entry.call, out)
    elif entry.member is not None:
        out.action.action_profile_member_id = entry.member
    elif entry.group is not None:
        out.action.action_profile_group_id = entry.group
    if entry.controller_metadata:
        out.controller_metadata = entry.controller_metadata
    if entry.metadata:
        out.metadata = entry.metadata
    if entry.idle_timeout_ns:
        out.idle_timeout_ns = entry.idle_timeout_ns
    if request.HasField("counter_data") and info.direct_counter_id:
        out.counter_data.packet_count = entry.packets
        out.counter_data.byte_count = entry.bytes
    if request.HasField("meter_config") and entry.meter_config is not None:
        encode_meter_config(entry.meter_config, out.meter_config)  # -1 for "no limit"
    if request.HasField("time_since_last_hit"):
        out.time_since_last_hit.elapsed_ns = 0  # the engine keeps no hit times (as PI
        # reports for entries without ageing)


def _entry_filter(info: TableInfo, request: Any) -> Callable[[Any], bool] | None:
    """A predicate for the spec's optional read filters, None when none is set."""
    priority = request.priority
    controller_metadata = request.controller_metadata
    metadata = request.metadata
    action_id = 0
    if request.HasField("action") and request.action.WhichOneof("type") == "action":
        action_id = request.action.action.action_id
    if not (priority or controller_metadata or metadata or action_id):
        return None
    action_ids = info.action_ids

    def wanted(entry: Any) -> bool:
        if priority and entry.priority != priority:
            return False
        if controller_metadata and entry.controller_metadata != controller_metadata:
            return False
        if metadata and entry.metadata != metadata:
            return False
        return not action_id or (entry.call is not None and
                                 action_ids.get(entry.call.action.name) == action_id)
    return wanted


def read_default_entry(config: PipelineConfig, info: TableInfo, request: Any,
                       sink: ReadSink) -> None:
    if request.HasField("time_since_last_hit"):
        raise invalid("Default table entries do not support entry ageing, do not set "
                      "'time_since_last_hit' in your ReadRequest")
    out = sink.add().table_entry
    out.table_id = info.id
    out.is_default_action = True
    default = info.table.default
    if default is not None:
        encode_call(config, info, default, out)


def read_table_entries(config: PipelineConfig, request: Any, sink: ReadSink) -> None:
    """Entries selected by a read request's TableEntry, added to ``sink``."""
    if request.table_id == 0:
        infos = list(config.tables.values())
    else:
        infos = [table_info(config, request.table_id)]
    for info in infos:
        if request.is_default_action:
            read_default_entry(config, info, request, sink)
            continue
        if request.HasField("time_since_last_hit") and not info.supports_timeout:
            raise invalid("Do not set time_since_last_hit for a ReadRequest if the table "
                          "does not support idle timeout; yes, that includes wildcard reads")
        if request.match:
            match, priority = decode_match(info, request)
            found = info.table.find(match, priority)
            entries = [] if found is None else [found]
        else:
            entries = info.table.entries()
        wanted = _entry_filter(info, request)
        add = sink.add
        for entry in entries:
            if wanted is None or wanted(entry):
                encode_entry(config, info, entry, request, add().table_entry)
