"""Build and read P4Runtime entities by name: table entries, PRE entries, updates.

``table_entry`` and ``decode_table_entry`` are symmetric: what one builds from
names and Python values, the other turns back into names and text values
(``DecodedEntry``) that ``DecodedEntry.to_entry`` encodes into the same message.
Values go through the codec, so every bytestring is canonical.

Match values by kind (``None`` omits a field, i.e. "don't care"):

* exact / optional: ``5``, ``"10.0.0.1"``, ``"08:00:00:00:01:01"``, ``b"\\x05"``
* lpm: ``"10.0.0.0/8"`` or ``("10.0.0.0", 8)``; a bare value is a full-length prefix
* ternary: ``"10.0.0.0 &&& 255.0.0.0"``, ``(value, mask)`` or ``"10.0.0.0/8"``
* range: ``"1000..2000"`` or ``(1000, 2000)``

Don't-care matches (``/0`` prefixes, zero masks, full ranges) are omitted, as
P4Runtime requires.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from p4protos import p4info_pb2, p4runtime_pb2

from .builder import action_plan, table_builder
from .codec import decode, format_value, guess_hint
from .errors import CodecError, EntryError, P4InfoError
from .p4info import P4Info

Scope = p4info_pb2.ActionRef
Update = p4runtime_pb2.Update
Replicas = Iterable[int | tuple[int, int]]
ElectionId = int | tuple[int, int]


# -- building ------------------------------------------------------------------------

def field_match(info: P4Info, table: Any, name: str | int, value: Any
                ) -> p4runtime_pb2.FieldMatch | None:
    """The FieldMatch for one field, or None when the value is a don't-care."""
    body = table_builder(info, table).field(name).encode(value)
    return None if body is None else p4runtime_pb2.FieldMatch.FromString(body)


def action_message(info: P4Info, action: Any, params: Mapping[str, Any] | None = None
                   ) -> p4runtime_pb2.Action:
    """A p4.v1.Action with every parameter given exactly once."""
    action = info.action(action) if isinstance(action, str | int) else action
    return p4runtime_pb2.Action.FromString(action_plan(info, action).encode(params))


def table_entry(info: P4Info, table: str | int, match: Mapping[str, Any] | None = None,
                action: str | int | None = None, params: Mapping[str, Any] | None = None,
                priority: int | None = None, *, member: int | None = None,
                group: int | None = None, idle_timeout_ns: int = 0
                ) -> p4runtime_pb2.TableEntry:
    """A match entry of ``table``; ``match`` maps field names to values.

    ``action`` + ``params`` set a direct action; ``member`` / ``group`` an
    action-profile member or group instead.  Tables with ternary, range or
    optional fields need ``priority`` > 0.  Raises EntryError for names and
    structure, CodecError / ValueTooWide for values.  The table is resolved
    once per P4Info (``builder.TableBuilder``; use one directly for many rows).
    """
    return table_builder(info, table).entry(match, action, params, priority, member=member,
                                            group=group, idle_timeout_ns=idle_timeout_ns)


def default_entry(info: P4Info, table: str | int, action: str | int | None = None,
                  params: Mapping[str, Any] | None = None) -> p4runtime_pb2.TableEntry:
    """The default entry of ``table`` (write it with MODIFY; no action resets it)."""
    try:
        spec = info.table(table)
        name = spec.preamble.name
        entry = p4runtime_pb2.TableEntry(table_id=spec.preamble.id, is_default_action=True)
        if action is None:
            if params:
                raise EntryError(f"parameters given without a default action for '{name}'")
            return entry
        action_spec, ref = info.table_action(spec, action)
        if ref.scope == Scope.TABLE_ONLY:
            raise EntryError(f"action '{action_spec.preamble.name}' cannot be the default "
                             f"action of '{name}' (@tableonly)")
        const = spec.const_default_action_id
        if const and const != action_spec.preamble.id:
            raise EntryError(f"table '{name}' has a const default action "
                             f"'{info.action(const).preamble.name}': it cannot be changed")
        entry.action.action.CopyFrom(action_message(info, action_spec, params))
        return entry
    except P4InfoError as exc:
        raise EntryError(exc.message, exc.hint) from None


def _replicas(replicas: Replicas) -> list[tuple[int, int]]:
    out = []
    for replica in replicas:
        port, instance = replica if isinstance(replica, tuple) else (replica, 0)
        if not (0 <= port < 1 << 32 and 0 <= instance < 1 << 32):
            raise EntryError(f"replica {replica!r}: port and instance must be 32-bit "
                             "unsigned")
        out.append((port, instance))
    return out


def multicast_group_entry(group_id: int, replicas: Replicas
                          ) -> p4runtime_pb2.PacketReplicationEngineEntry:
    """A multicast group; replicas are egress ports or (port, instance) pairs."""
    if group_id <= 0:
        raise EntryError(f"multicast group id {group_id} must be > 0")
    entry = p4runtime_pb2.PacketReplicationEngineEntry()
    group = entry.multicast_group_entry
    group.multicast_group_id = group_id
    for port, instance in _replicas(replicas):
        group.replicas.add(egress_port=port, instance=instance)
    return entry


def clone_session_entry(session_id: int, replicas: Replicas, class_of_service: int = 0,
                        packet_length_bytes: int = 0
                        ) -> p4runtime_pb2.PacketReplicationEngineEntry:
    """A clone session; ``packet_length_bytes`` > 0 truncates the clones."""
    if session_id <= 0:
        raise EntryError(f"clone session id {session_id} must be > 0")
    entry = p4runtime_pb2.PacketReplicationEngineEntry()
    session = entry.clone_session_entry
    session.session_id = session_id
    session.class_of_service = class_of_service
    session.packet_length_bytes = packet_length_bytes
    for port, instance in _replicas(replicas):
        session.replicas.add(egress_port=port, instance=instance)
    return entry


ENTITY_FIELDS = MappingProxyType({descriptor.message_type.full_name: descriptor.name
                                  for descriptor in p4runtime_pb2.Entity.DESCRIPTOR.fields})


def entity(message: Any) -> p4runtime_pb2.Entity:
    """Wrap a TableEntry, PRE entry, CounterEntry, ... in a p4.v1.Entity."""
    if isinstance(message, p4runtime_pb2.Entity):
        return message
    descriptor = getattr(message, "DESCRIPTOR", None)
    name = ENTITY_FIELDS.get(descriptor.full_name) if descriptor is not None else None
    if name is None:
        raise TypeError(f"cannot wrap {type(message).__name__} in a p4.v1.Entity")
    wrapped = p4runtime_pb2.Entity()
    getattr(wrapped, name).CopyFrom(message)
    return wrapped


def _update(kind: int, message: Any) -> p4runtime_pb2.Update:
    """An update of ``kind``; the message is copied once, into its place in the entity."""
    update = p4runtime_pb2.Update(type=kind)
    if isinstance(message, p4runtime_pb2.Entity):
        update.entity.CopyFrom(message)
        return update
    descriptor = getattr(message, "DESCRIPTOR", None)
    name = ENTITY_FIELDS.get(descriptor.full_name) if descriptor is not None else None
    if name is None:
        raise TypeError(f"cannot wrap {type(message).__name__} in a p4.v1.Entity")
    getattr(update.entity, name).CopyFrom(message)
    return update


def insert(message: Any) -> p4runtime_pb2.Update:
    """An INSERT update of an entity."""
    return _update(Update.INSERT, message)


def modify(message: Any) -> p4runtime_pb2.Update:
    """A MODIFY update (the only way to write a default entry)."""
    return _update(Update.MODIFY, message)


def delete(message: Any) -> p4runtime_pb2.Update:
    """A DELETE update of an entity."""
    return _update(Update.DELETE, message)


def election_id(value: ElectionId) -> tuple[int, int]:
    """(high, low) from an int or a (high, low) pair; both 64-bit unsigned."""
    high, low = (value >> 64, value & (1 << 64) - 1) if isinstance(value, int) else value
    if not (0 <= high < 1 << 64 and 0 <= low < 1 << 64):
        raise EntryError(f"election id {value!r} is not a 128-bit unsigned number")
    return high, low


def write_request(updates: Iterable[p4runtime_pb2.Update], device_id: int = 0,
                  election: ElectionId = (0, 1)) -> p4runtime_pb2.WriteRequest:
    """ONE WriteRequest carrying every update, the device id and the election id."""
    request = p4runtime_pb2.WriteRequest(device_id=device_id, updates=list(updates))
    request.election_id.high, request.election_id.low = election_id(election)
    return request


# -- decoding ------------------------------------------------------------------------

@dataclass
class DecodedEntry:
    """A table entry with names and text values; ``str()`` is one readable line."""

    table: str
    match: dict[str, str] = field(default_factory=dict)
    action: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    priority: int = 0
    is_default: bool = False
    member: int | None = None
    group: int | None = None

    def __str__(self) -> str:
        if self.is_default:
            key = "(default action)"
        else:
            key = ", ".join(f"{k}={v}" for k, v in self.match.items()) or "(any)"
        if self.priority:
            key += f" priority={self.priority}"
        if self.member is not None:
            target = f"member {self.member}"
        elif self.group is not None:
            target = f"group {self.group}"
        else:
            args = ", ".join(f"{k}={v}" for k, v in self.params.items())
            target = f"{self.action}({args})" if self.action else "(no action)"
        return f"{self.table}: {key} => {target}"

    def to_entry(self, info: P4Info) -> p4runtime_pb2.TableEntry:
        """Encode back into the TableEntry this was decoded from."""
        if self.is_default:
            return default_entry(info, self.table, self.action, self.params)
        return table_entry(info, self.table, self.match, self.action, self.params,
                           self.priority or None, member=self.member, group=self.group)


def _text(data: bytes, width: int, hint: str | None) -> str:
    try:
        return format_value(decode(data, width), width, hint)
    except CodecError:
        return "0x" + data.hex()  # wider than the field: show it as it came


def _format_match(spec: Any, match: p4runtime_pb2.FieldMatch) -> str:
    width, hint = spec.bitwidth, guess_hint(spec.name, spec.bitwidth)
    kind = match.WhichOneof("field_match_type")
    if kind == "exact":
        return _text(match.exact.value, width, hint)
    if kind == "lpm":
        return f"{_text(match.lpm.value, width, hint)}/{match.lpm.prefix_len}"
    if kind == "ternary":
        return (f"{_text(match.ternary.value, width, hint)} &&& "
                f"{_text(match.ternary.mask, width, hint)}")
    if kind == "range":
        return f"{_text(match.range.low, width, None)}..{_text(match.range.high, width, None)}"
    if kind == "optional":
        return _text(match.optional.value, width, hint)
    return f"<{kind or 'unset'}>"


def decode_table_entry(info: P4Info, entry: p4runtime_pb2.TableEntry) -> DecodedEntry:
    """Names and text values of a TableEntry (canonical or padded bytestrings)."""
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
            decoded.params[spec.name] = _text(param.value, spec.bitwidth,
                                              guess_hint(spec.name, spec.bitwidth))
    elif kind == "action_profile_member_id":
        decoded.member = entry.action.action_profile_member_id
    elif kind == "action_profile_group_id":
        decoded.group = entry.action.action_profile_group_id
    return decoded


def format_table_entry(info: P4Info, entry: p4runtime_pb2.TableEntry) -> str:
    """One line: ``table: field=value, ... => action(param=value, ...)``."""
    return str(decode_table_entry(info, entry))


def _format_replicas(replicas: Sequence[Any]) -> str:
    return ", ".join(f"{r.egress_port}" + (f"#{r.instance}" if r.instance else "")
                     for r in replicas) or "none"


def format_entity(info: P4Info | None, message: p4runtime_pb2.Entity) -> str:
    """One readable line for any entity (names when ``info`` is given)."""
    which = message.WhichOneof("entity")
    if which == "table_entry" and info is not None:
        try:
            return format_table_entry(info, message.table_entry)
        except (P4InfoError, CodecError):
            pass
    if which == "packet_replication_engine_entry":
        pre = message.packet_replication_engine_entry
        if pre.WhichOneof("type") == "multicast_group_entry":
            group = pre.multicast_group_entry
            return (f"multicast group {group.multicast_group_id}: replicas "
                    f"{_format_replicas(group.replicas)}")
        session = pre.clone_session_entry
        return (f"clone session {session.session_id}: replicas "
                f"{_format_replicas(session.replicas)}, class of service "
                f"{session.class_of_service}, truncate to {session.packet_length_bytes}")
    body = getattr(message, which) if which else message
    return f"{which or 'entity'} " + " ".join(str(body).split())


def format_update(info: P4Info | None, update: p4runtime_pb2.Update) -> str:
    """``"INSERT MyIngress.ecmp_group: ... => ..."`` (used in error reports)."""
    return f"{Update.Type.Name(update.type)} {format_entity(info, update.entity)}"
