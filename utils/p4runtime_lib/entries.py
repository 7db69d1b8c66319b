"""Build and read P4Runtime entities by name: table entries, PRE entries, updates.

``table_entry`` and ``decode_table_entry`` are symmetric: what one builds from
names and Python values, the other turns back into names and formatted values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .codec import CodecError, decode, encode, format_value, parse_int, parse_prefix
from .p4info import P4Info, P4InfoError
from .protos import p4info_pb2, p4runtime_pb2

MatchType = p4info_pb2.MatchField
Update = p4runtime_pb2.Update
PRIORITY_KINDS = (MatchType.TERNARY, MatchType.RANGE, MatchType.OPTIONAL)


class EntryError(ValueError):
    """An entry that cannot be built (one line naming the table/field/param)."""


def _field_match(info: P4Info, table: Any, name: str, value: Any) -> p4runtime_pb2.FieldMatch:
    spec = info.match_field(table, name)
    what = f"'{spec.name}' of table '{table.preamble.name}'"
    width = spec.bitwidth
    match = p4runtime_pb2.FieldMatch(field_id=spec.id)
    try:
        if spec.match_type == MatchType.EXACT:
            match.exact.value = encode(value, width, what)
        elif spec.match_type == MatchType.LPM:
            number, length = parse_prefix(value, width, what)
            match.lpm.value = encode(number, width, what)
            match.lpm.prefix_len = length
        elif spec.match_type == MatchType.TERNARY:
            if isinstance(value, str) and "&&&" in value:
                value = tuple(part.strip() for part in value.split("&&&"))
            number, mask = (value if isinstance(value, tuple | list)
                            else (value, (1 << width) - 1))
            number, mask = parse_int(number, width, what), parse_int(mask, width, what)
            if number & ~mask:
                raise EntryError(f"{what}: value has bits outside the mask")
            match.ternary.value = encode(number, width, what)
            match.ternary.mask = encode(mask, width, what)
        elif spec.match_type == MatchType.RANGE:
            low, high = value
            match.range.low = encode(low, width, what)
            match.range.high = encode(high, width, what)
        elif spec.match_type == MatchType.OPTIONAL:
            match.optional.value = encode(value, width, what)
        else:
            raise EntryError(f"{what}: unsupported match type {spec.match_type}")
    except CodecError as exc:
        raise EntryError(str(exc)) from None
    return match


def _action(info: P4Info, action: Any, params: dict[str, Any] | None) -> p4runtime_pb2.Action:
    message = p4runtime_pb2.Action(action_id=action.preamble.id)
    given = dict(params or {})
    for spec in action.params:
        if spec.name not in given:
            raise EntryError(f"action '{action.preamble.name}' needs parameter '{spec.name}'"
                             f" ({spec.bitwidth} bits)")
        what = f"parameter '{spec.name}' of '{action.preamble.name}'"
        try:
            message.params.add(param_id=spec.id, value=encode(given.pop(spec.name),
                                                              spec.bitwidth, what))
        except CodecError as exc:
            raise EntryError(str(exc)) from None
    for extra in given:
        info.param(action, extra)  # raises with a suggestion
    return message


def table_entry(info: P4Info, table: str, match: dict[str, Any] | None = None,
                action: str | None = None, params: dict[str, Any] | None = None,
                priority: int = 0) -> p4runtime_pb2.TableEntry:
    """A match entry: ``match`` maps field names to values (see the codec)."""
    try:
        table_info = info.table(table)
        entry = p4runtime_pb2.TableEntry(table_id=table_info.preamble.id)
        for name, value in (match or {}).items():
            entry.match.append(_field_match(info, table_info, name, value))
        needs_priority = any(f.match_type in PRIORITY_KINDS for f in table_info.match_fields)
        if needs_priority and priority <= 0:
            raise EntryError(f"table '{table_info.preamble.name}' has ternary/range/optional "
                             "fields: give the entry a priority > 0")
        if priority and not needs_priority:
            raise EntryError(f"table '{table_info.preamble.name}' takes no priority")
        entry.priority = priority
        if action is not None:
            action_info, ref = info.table_action(table_info, action)
            if ref.scope == p4info_pb2.ActionRef.DEFAULT_ONLY:
                raise EntryError(f"action '{action_info.preamble.name}' can only be the "
                                 f"default action of '{table_info.preamble.name}'")
            entry.action.action.CopyFrom(_action(info, action_info, params))
        return entry
    except P4InfoError as exc:
        raise EntryError(str(exc)) from None


def default_entry(info: P4Info, table: str, action: str | None = None,
                  params: dict[str, Any] | None = None) -> p4runtime_pb2.TableEntry:
    """The default entry (write it with MODIFY; no action resets it)."""
    try:
        table_info = info.table(table)
        entry = p4runtime_pb2.TableEntry(table_id=table_info.preamble.id,
                                         is_default_action=True)
        if action is not None:
            action_info, ref = info.table_action(table_info, action)
            if ref.scope == p4info_pb2.ActionRef.TABLE_ONLY:
                raise EntryError(f"action '{action_info.preamble.name}' cannot be the default "
                                 f"action of '{table_info.preamble.name}'")
            entry.action.action.CopyFrom(_action(info, action_info, params))
        return entry
    except P4InfoError as exc:
        raise EntryError(str(exc)) from None


def multicast_group_entry(group_id: int, replicas: list[int | tuple[int, int]]
                          ) -> p4runtime_pb2.PacketReplicationEngineEntry:
    """A multicast group; replicas are ports or (port, instance) pairs."""
    entry = p4runtime_pb2.PacketReplicationEngineEntry()
    group = entry.multicast_group_entry
    group.multicast_group_id = group_id
    for replica in replicas:
        port, instance = replica if isinstance(replica, tuple) else (replica, 0)
        group.replicas.add(egress_port=port, instance=instance)
    return entry


def clone_session_entry(session_id: int, replicas: list[int | tuple[int, int]],
                        class_of_service: int = 0, packet_length_bytes: int = 0
                        ) -> p4runtime_pb2.PacketReplicationEngineEntry:
    entry = p4runtime_pb2.PacketReplicationEngineEntry()
    session = entry.clone_session_entry
    session.session_id = session_id
    session.class_of_service = class_of_service
    session.packet_length_bytes = packet_length_bytes
    for replica in replicas:
        port, instance = replica if isinstance(replica, tuple) else (replica, 0)
        session.replicas.add(egress_port=port, instance=instance)
    return entry


def _entity(message: Any) -> p4runtime_pb2.Entity:
    if isinstance(message, p4runtime_pb2.Entity):
        return message
    if isinstance(message, p4runtime_pb2.TableEntry):
        return p4runtime_pb2.Entity(table_entry=message)
    if isinstance(message, p4runtime_pb2.PacketReplicationEngineEntry):
        return p4runtime_pb2.Entity(packet_replication_engine_entry=message)
    if isinstance(message, p4runtime_pb2.CounterEntry):
        return p4runtime_pb2.Entity(counter_entry=message)
    raise TypeError(f"cannot wrap {type(message).__name__} in an Entity")


def insert(message: Any) -> p4runtime_pb2.Update:
    return p4runtime_pb2.Update(type=Update.INSERT, entity=_entity(message))


def modify(message: Any) -> p4runtime_pb2.Update:
    return p4runtime_pb2.Update(type=Update.MODIFY, entity=_entity(message))


def delete(message: Any) -> p4runtime_pb2.Update:
    return p4runtime_pb2.Update(type=Update.DELETE, entity=_entity(message))


# -- decoding ------------------------------------------------------------------------

@dataclass
class DecodedEntry:
    """A table entry with names and formatted values."""

    table: str
    match: dict[str, str] = field(default_factory=dict)
    action: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    priority: int = 0
    is_default: bool = False

    def __str__(self) -> str:
        if self.is_default:
            key = "(default action)"
        else:
            key = ", ".join(f"{k}={v}" for k, v in self.match.items()) or "(any)"
        if self.priority:
            key += f" priority={self.priority}"
        action = self.action or "(no action)"
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.table}: {key} => {action}({args})"


def _format_match(spec: Any, match: p4runtime_pb2.FieldMatch) -> str:
    width, name = spec.bitwidth, spec.name
    kind = match.WhichOneof("field_match_type")
    if kind == "exact":
        return format_value(decode(match.exact.value), width, name)
    if kind == "lpm":
        return f"{format_value(decode(match.lpm.value), width, name)}/{match.lpm.prefix_len}"
    if kind == "ternary":
        return (f"{format_value(decode(match.ternary.value), width, name)} &&& "
                f"{format_value(decode(match.ternary.mask), width, name)}")
    if kind == "range":
        return (f"{format_value(decode(match.range.low), width, name)}.."
                f"{format_value(decode(match.range.high), width, name)}")
    if kind == "optional":
        return format_value(decode(match.optional.value), width, name)
    return "?"


def decode_table_entry(info: P4Info, entry: p4runtime_pb2.TableEntry) -> DecodedEntry:
    """Names and formatted values of a table entry (reads return canonical bytes)."""
    table = info.table(entry.table_id)
    decoded = DecodedEntry(table.preamble.name, priority=entry.priority,
                           is_default=entry.is_default_action)
    for match in entry.match:
        spec = info.match_field(table, match.field_id)
        decoded.match[spec.name] = _format_match(spec, match)
    kind = entry.action.WhichOneof("type")
    if kind == "action":
        action = info.action(entry.action.action.action_id)
        decoded.action = action.preamble.name
        for param in entry.action.action.params:
            spec = info.param(action, param.param_id)
            decoded.params[spec.name] = format_value(decode(param.value), spec.bitwidth,
                                                     spec.name)
    elif kind == "action_profile_member_id":
        decoded.action = f"member {entry.action.action_profile_member_id}"
    elif kind == "action_profile_group_id":
        decoded.action = f"group {entry.action.action_profile_group_id}"
    return decoded


def format_update(info: P4Info | None, update: p4runtime_pb2.Update) -> str:
    """One readable line for an update (used in error reports)."""
    kind = Update.Type.Name(update.type)
    entity = update.entity
    which = entity.WhichOneof("entity")
    if which == "table_entry" and info is not None:
        try:
            return f"{kind} {decode_table_entry(info, entity.table_entry)}"
        except (P4InfoError, ValueError):
            pass
    text = " ".join(str(getattr(entity, which or "table_entry")).split()) if which else "?"
    return f"{kind} {which}: {text}"
