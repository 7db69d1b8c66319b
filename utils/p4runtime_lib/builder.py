"""Table entries by name, compiled once per table: ``TableBuilder``.

``TableBuilder(info, "MyIngress.ecmp_group")`` resolves the table, its match
fields and (on first use) each action and parameter once, keeps their ids,
widths and kinds, and then encodes every entry straight to P4Runtime's wire
format, parsed into the message at the end (upb parses a whole batch in C; a
message built field by field costs a Python call per field).  It runs the same
checks as before -- names with "did you mean", exact fields present, values
that fit their width ("value too wide"), prefix bits, priorities, action scopes --
and writes canonical bytestrings (the shortest big-endian form, zero as one
zero byte: P4Runtime spec, "Bytestrings").  ``entries.table_entry`` uses it.

    table = TableBuilder(info, "MyIngress.ecmp_group")
    rows = [({"hdr.ipv4.dstAddr": (prefix, 24)}, "MyIngress.set_ecmp_select",
             {"ecmp_base": 0, "ecmp_count": 2}) for prefix in prefixes]
    updates = table.inserts(rows)           # p4.v1.Update messages, to mix with others
    request = table.write_request(rows)     # one WriteRequest, parsed in one go
    connection.write(request)               # SwitchConnection sends it as it is

An entry is encoded by hand, so the field numbers below are P4Runtime's
(p4/v1/p4runtime.proto); ``tests/test_builder.py`` checks them against the
descriptors and every encoding against messages built with protobuf.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NoReturn

from p4protos import p4info_pb2, p4runtime_pb2
from p4protos.wire import ONE_BYTE, varint

from .codec import encode, encode_lpm, encode_range, encode_ternary
from .errors import EntryError, P4InfoError
from .p4info import P4Info

MatchType = p4info_pb2.MatchField
Scope = p4info_pb2.ActionRef
Update = p4runtime_pb2.Update
PRIORITY_KINDS = (MatchType.TERNARY, MatchType.RANGE, MatchType.OPTIONAL)
MISSING = object()  # a field not given (None is a value: "don't care")

# Wire tags (field number << 3 | wire type; 0 = varint, 2 = length-delimited).
WRITE_DEVICE_ID, WRITE_ELECTION_ID, WRITE_UPDATES = b"\x08", b"\x1a", b"\x22"
UINT128_HIGH, UINT128_LOW = b"\x08", b"\x10"
UPDATE_TYPE, UPDATE_ENTITY = b"\x08", b"\x12"
ENTITY_TABLE_ENTRY = b"\x12"
ENTRY_TABLE_ID, ENTRY_MATCH, ENTRY_ACTION, ENTRY_PRIORITY = b"\x08", b"\x12", b"\x1a", b"\x20"
ENTRY_IDLE_TIMEOUT = b"\x48"
MATCH_FIELD_ID = b"\x08"
MATCH_EXACT, MATCH_TERNARY, MATCH_LPM, MATCH_RANGE, MATCH_OPTIONAL = (
    b"\x12", b"\x1a", b"\x22", b"\x32", b"\x3a")
FIRST, SECOND = b"\x0a", b"\x10"  # value / prefix_len of LPM (bytes 1, varint 2)
SECOND_BYTES = b"\x12"  # mask of Ternary, high of Range
TABLE_ACTION, TABLE_MEMBER, TABLE_GROUP = b"\x0a", b"\x10", b"\x18"
ACTION_ID, ACTION_PARAM = b"\x08", b"\x22"
PARAM_ID, PARAM_VALUE = b"\x10", b"\x1a"
LENGTHS = ONE_BYTE  # one-byte varints


def delimited(tag: bytes, body: bytes) -> bytes:
    """A length-delimited field: tag, length, body."""
    size = len(body)
    return tag + (LENGTHS[size] if size < 128 else varint(size)) + body


class FieldPlan:
    """One match field of a table, ready to encode values."""

    __slots__ = ("id", "index", "name", "width", "kind", "what", "head", "low_bits", "short")

    def __init__(self, spec: p4info_pb2.MatchField, index: int, table: str) -> None:
        self.id, self.index, self.name = spec.id, index, spec.name
        self.width, self.kind = spec.bitwidth, spec.match_type
        self.what = f"'{spec.name}' of table '{table}'"
        self.head = MATCH_FIELD_ID + varint(spec.id)
        # low_bits[length]: the bits a /length prefix must leave clear
        self.low_bits = tuple((1 << (self.width - n)) - 1 for n in range(self.width + 1))
        self.short = self.width < 128  # every length and prefix length is one byte

    def encode(self, value: Any) -> bytes | None:
        """The FieldMatch's bytes (without its own tag), or None for a don't-care."""
        kind, width = self.kind, self.width
        if value is None:
            if kind == MatchType.EXACT:
                raise EntryError(f"exact field {self.what} needs a value")
            return None
        if kind == MatchType.LPM:
            if type(value) is tuple and len(value) == 2:
                number, length = value
                if (type(number) is int and type(length) is int and 0 < length <= width
                        and number >= 0 and not number >> width
                        and not number & self.low_bits[length]):
                    data = number.to_bytes((number.bit_length() + 7) >> 3 or 1, "big")
                    if self.short:
                        body = FIRST + LENGTHS[len(data)] + data + SECOND + LENGTHS[length]
                        return self.head + MATCH_LPM + LENGTHS[len(body)] + body
                    return self.head + delimited(MATCH_LPM, delimited(FIRST, data)
                                                 + SECOND + varint(length))
            data, length = encode_lpm(value, width, self.what)
            if length == 0:
                return None
            return self.head + delimited(MATCH_LPM, delimited(FIRST, data) + SECOND
                                         + varint(length))
        if kind == MatchType.EXACT or kind == MatchType.OPTIONAL:
            if type(value) is int and value >= 0 and not value >> width:
                data = value.to_bytes((value.bit_length() + 7) >> 3 or 1, "big")
            else:
                data = encode(value, width, self.what)
            tag = MATCH_EXACT if kind == MatchType.EXACT else MATCH_OPTIONAL
            if self.short:
                return self.head + tag + LENGTHS[len(data) + 2] + FIRST + LENGTHS[len(data)] \
                    + data
            return self.head + delimited(tag, delimited(FIRST, data))
        if kind == MatchType.TERNARY:
            data, mask = encode_ternary(value, width, self.what)
            if mask == b"\x00":
                return None
            return self.head + delimited(MATCH_TERNARY, delimited(FIRST, data)
                                         + delimited(SECOND_BYTES, mask))
        if kind == MatchType.RANGE:
            low, high = encode_range(value, width, self.what)
            if low == b"\x00" and int.from_bytes(high, "big") == (1 << width) - 1:
                return None
            return self.head + delimited(MATCH_RANGE, delimited(FIRST, low)
                                         + delimited(SECOND_BYTES, high))
        raise EntryError(f"{self.what}: match type {MatchType.MatchType.Name(kind)} is not "
                         "supported by this library")


class ActionPlan:
    """One action: its id and parameters, ready to encode p4.v1.Action bodies."""

    __slots__ = ("info", "spec", "name", "head", "params", "names", "count")

    def __init__(self, info: P4Info, spec: p4info_pb2.Action) -> None:
        self.info, self.spec, self.name = info, spec, spec.preamble.name
        self.head = ACTION_ID + varint(spec.preamble.id)
        # (name, width, what, bytes before the value's length)
        self.params = tuple((p.name, p.bitwidth, f"parameter '{p.name}' of '{self.name}'",
                             PARAM_ID + varint(p.id) + PARAM_VALUE) for p in spec.params)
        self.names = frozenset(p.name for p in spec.params)
        self.count = len(self.params)

    def encode(self, given: Mapping[str, Any] | None) -> bytes:
        """The Action's bytes (without its own tag): every parameter exactly once."""
        given = given or {}
        if len(given) != self.count or not given.keys() >= self.names:
            self._missing(given)
        out = self.head
        small = LENGTHS
        for name, width, what, head in self.params:
            value = given[name]
            if type(value) is int and value >= 0 and not value >> width:
                data = value.to_bytes((value.bit_length() + 7) >> 3 or 1, "big")
            else:
                data = encode(value, width, what)
            size = len(data)
            if size < 120:  # the param's body (id, tag, length, value) stays under 128
                body = head + small[size] + data
                out += ACTION_PARAM + small[len(body)] + body
            else:
                out += delimited(ACTION_PARAM, head + varint(size) + data)
        return out

    def _missing(self, given: Mapping[str, Any]) -> NoReturn:
        names = [p.name for p in self.spec.params]
        for name in given:  # a misspelt name explains a missing one best
            self.info.param(self.spec, name)  # raises with "did you mean ...?"
        missing = next(p for p in self.spec.params if p.name not in given)
        raise EntryError(f"action '{self.name}' needs parameter '{missing.name}' "
                         f"({missing.bitwidth} bits)", "its parameters: " + ", ".join(names))


def action_plan(info: P4Info, action: p4info_pb2.Action) -> ActionPlan:
    """The P4Info's ActionPlan for ``action`` (compiled once per P4Info)."""
    plans = info.compiled.setdefault("actions", {})
    plan = plans.get(action.preamble.id)
    if plan is None:
        plan = plans[action.preamble.id] = ActionPlan(info, action)
    return plan


def table_builder(info: P4Info, table: str | int) -> TableBuilder:
    """The P4Info's TableBuilder for ``table`` (compiled once per P4Info and table)."""
    builders = info.compiled.setdefault("tables", {})
    if type(table) is str or type(table) is int:
        key: str | int | None = table
    else:  # a p4info Table message
        key = getattr(getattr(table, "preamble", None), "id", None)
        table = key if key is not None else table
    builder = builders.get(key) if key is not None else None
    if builder is None:
        builder = TableBuilder(info, table)
        if key is not None:
            builders[key] = builders[builder.id] = builder
    return builder


Row = tuple[Mapping[str, Any] | None, str | int | None, Mapping[str, Any] | None] | \
    tuple[Mapping[str, Any] | None, str | int | None, Mapping[str, Any] | None, int | None]


class TableBuilder:
    """Entries of one table from names and Python values, resolved once.

    ``entry`` / ``insert`` / ``modify`` / ``delete`` build one entry or update
    (``table_entry``'s arguments); ``updates`` / ``inserts`` / ``write_request``
    take rows of ``(match, action, params)`` or ``(match, action, params,
    priority)``.  Raises EntryError for names and structure, CodecError /
    ValueTooWide for values, as ``table_entry`` does.
    """

    def __init__(self, info: P4Info, table: str | int) -> None:
        try:
            spec = info.table(table)
        except P4InfoError as exc:
            raise EntryError(exc.message, exc.hint) from None
        self.info, self.spec = info, spec
        self.name, self.id = spec.preamble.name, spec.preamble.id
        self.head = ENTRY_TABLE_ID + varint(self.id)
        self.fields = tuple(FieldPlan(f, i, self.name) for i, f in enumerate(spec.match_fields))
        self.exact = tuple(f for f in self.fields if f.kind == MatchType.EXACT)
        self.needs_priority = any(f.kind in PRIORITY_KINDS for f in self.fields)
        self.single = len(self.fields) == 1
        self.indirect = bool(spec.implementation_id)
        self._field_keys: dict[str | int, FieldPlan] = {}
        self._action_keys: dict[str | int, ActionPlan] = {}

    # -- names -------------------------------------------------------------------------
    def field(self, key: str | int) -> FieldPlan:
        """The plan of a match field by name, unique suffix or id (P4InfoError)."""
        if type(key) is str or type(key) is int:
            plan = self._field_keys.get(key)
            if plan is not None:
                return plan
        spec = self.info.match_field(self.spec, key)
        plan = next(f for f in self.fields if f.id == spec.id)
        if type(key) is str or type(key) is int:
            self._field_keys[key] = plan
        return plan

    def action(self, key: str | int) -> ActionPlan:
        """The plan of an action allowed in this table, not default-only (EntryError)."""
        if type(key) is str or type(key) is int:
            plan = self._action_keys.get(key)
            if plan is not None:
                return plan
        try:
            spec, ref = self.info.table_action(self.spec, key)
        except P4InfoError as exc:
            raise EntryError(exc.message, exc.hint) from None
        if ref.scope == Scope.DEFAULT_ONLY:
            raise EntryError(f"action '{spec.preamble.name}' can only be the default "
                             f"action of '{self.name}'", "use it with default_entry(), or "
                             "pick one of: " + ", ".join(
                                 a.preamble.name for a, scope in self.info.table_actions(
                                     self.spec) if scope != Scope.DEFAULT_ONLY))
        plan = action_plan(self.info, spec)
        if type(key) is str or type(key) is int:
            self._action_keys[key] = plan
        return plan

    # -- encoding ----------------------------------------------------------------------
    def encode(self, match: Mapping[str, Any] | None = None,
               action: str | int | None = None, params: Mapping[str, Any] | None = None,
               priority: int | None = None, member: int | None = None,
               group: int | None = None, idle_timeout_ns: int = 0) -> bytes:
        """The serialized p4.v1.TableEntry (``table_entry``'s arguments and checks)."""
        try:
            return self._encode(match, action, params, priority, member, group,
                                idle_timeout_ns)
        except P4InfoError as exc:
            raise EntryError(exc.message, exc.hint) from None

    def _encode(self, match: Mapping[str, Any] | None, action: str | int | None = None,
                params: Mapping[str, Any] | None = None, priority: int | None = None,
                member: int | None = None, group: int | None = None,
                idle_timeout_ns: int = 0) -> bytes:
        """``encode`` without turning P4InfoError into EntryError (callers do, once)."""
        out = self.head
        small = LENGTHS
        if match and self.single and len(match) == 1:  # the common case, one field
            for key, value in match.items():
                plan = self._field_keys.get(key) if type(key) is str else None
                if plan is None:
                    plan = self.field(key)
                if value is None and plan.kind == MatchType.EXACT:
                    self._exact_missing(plan)
                body = plan.encode(value)
                if body is not None:
                    size = len(body)
                    out += ENTRY_MATCH + (small[size] if size < 128 else varint(size)) + body
        elif match or self.exact:
            out += self._matches(match)
        if priority is not None or self.needs_priority:
            priority = self._priority(priority)
        if member is None and group is None:
            if action is not None:
                if self.indirect:
                    raise EntryError(f"table '{self.name}' uses an action profile: give "
                                     "member= or group=")
                plan = self._action_keys.get(action) if type(action) is str else None
                if plan is None:
                    plan = self.action(action)
                body = plan.encode(params)
                size = len(body)
                if size < 126:  # TableAction's body (tag, length, Action) stays under 128
                    out += ENTRY_ACTION + small[size + 2] + TABLE_ACTION + small[size] + body
                else:
                    out += delimited(ENTRY_ACTION, delimited(TABLE_ACTION, body))
            elif params:
                raise EntryError(f"parameters given without an action for '{self.name}'")
        else:
            out += delimited(ENTRY_ACTION, self._table_action(action, member, group))
        if priority:
            out += ENTRY_PRIORITY + varint(priority)
        if idle_timeout_ns:
            if type(idle_timeout_ns) is not int or not -1 << 63 <= idle_timeout_ns < 1 << 63:
                raise EntryError(f"idle_timeout_ns {idle_timeout_ns!r} of an entry of "
                                 f"'{self.name}' is not a 64-bit int")
            out += ENTRY_IDLE_TIMEOUT + varint(idle_timeout_ns)
        return out

    def _matches(self, match: Mapping[str, Any] | None) -> bytes:
        """The match fields' bytes, in P4Info order whatever the dict's."""
        values: list[Any] = [MISSING] * len(self.fields)
        for key, value in (match or {}).items():
            plan = self.field(key)
            if values[plan.index] is not MISSING:
                raise EntryError(f"match field '{plan.name}' of '{self.name}' given twice")
            values[plan.index] = value
        for plan in self.exact:
            if values[plan.index] is MISSING or values[plan.index] is None:
                self._exact_missing(plan)
        out = b""
        for plan, value in zip(self.fields, values):
            if value is not MISSING:
                body = plan.encode(value)
                if body is not None:
                    out += delimited(ENTRY_MATCH, body)
        return out

    def _exact_missing(self, plan: FieldPlan) -> NoReturn:
        raise EntryError(f"table '{self.name}' needs a value for its exact field "
                         f"'{plan.name}'", "fields: " + ", ".join(f.name for f in self.fields))

    def _priority(self, priority: int | None) -> int:
        if self.needs_priority and not priority:
            raise EntryError(f"table '{self.name}' has ternary, range or optional fields: "
                             "its entries need a priority",
                             "pass priority=1 or higher (higher wins)")
        if priority and not self.needs_priority:
            raise EntryError(f"table '{self.name}' has no ternary, range or optional field: "
                             f"its entries take no priority (got {priority})")
        if priority is not None and not 0 <= priority < 1 << 31:
            raise EntryError(f"priority {priority} of an entry of '{self.name}' is not within "
                             f"1..{(1 << 31) - 1}")
        return priority or 0

    def _table_action(self, action: str | int | None, member: int | None,
                      group: int | None) -> bytes:
        """The TableAction's bytes (without its tag) for a member or group."""
        if sum(x is not None for x in (action, member, group)) > 1:
            raise EntryError(f"an entry of '{self.name}' takes one of action, member or group")
        if not self.indirect:
            raise EntryError(f"table '{self.name}' has no action profile: give it an action")
        kind, number = ("member", member) if member is not None else ("group", group)
        if type(number) is not int or not 0 <= number < 1 << 32:
            raise EntryError(f"action profile {kind} id {number!r} of an entry of "
                             f"'{self.name}' is not a 32-bit unsigned int")
        tag = TABLE_MEMBER if member is not None else TABLE_GROUP
        return tag + varint(number) if number else b""

    # -- messages ----------------------------------------------------------------------
    def entry(self, match: Mapping[str, Any] | None = None, action: str | int | None = None,
              params: Mapping[str, Any] | None = None, priority: int | None = None, *,
              member: int | None = None, group: int | None = None,
              idle_timeout_ns: int = 0) -> p4runtime_pb2.TableEntry:
        """One p4.v1.TableEntry (``table_entry`` for this table)."""
        return p4runtime_pb2.TableEntry.FromString(
            self.encode(match, action, params, priority, member, group, idle_timeout_ns))

    def insert(self, match: Mapping[str, Any] | None = None, action: str | int | None = None,
               params: Mapping[str, Any] | None = None, priority: int | None = None, *,
               member: int | None = None, group: int | None = None,
               idle_timeout_ns: int = 0) -> p4runtime_pb2.Update:
        """One INSERT update (``insert(table_entry(...))`` for this table)."""
        return self._one(Update.INSERT, match, action, params, priority, member, group,
                         idle_timeout_ns)

    def modify(self, match: Mapping[str, Any] | None = None, action: str | int | None = None,
               params: Mapping[str, Any] | None = None, priority: int | None = None, *,
               member: int | None = None, group: int | None = None,
               idle_timeout_ns: int = 0) -> p4runtime_pb2.Update:
        """One MODIFY update of a match entry."""
        return self._one(Update.MODIFY, match, action, params, priority, member, group,
                         idle_timeout_ns)

    def delete(self, match: Mapping[str, Any] | None = None, action: str | int | None = None,
               params: Mapping[str, Any] | None = None, priority: int | None = None
               ) -> p4runtime_pb2.Update:
        """One DELETE update (the key matters; an action, if given, is checked too)."""
        return self._one(Update.DELETE, match, action, params, priority, None, None, 0)

    def _one(self, kind: int, *args: Any) -> p4runtime_pb2.Update:
        entry = delimited(ENTITY_TABLE_ENTRY, self.encode(*args))
        return p4runtime_pb2.Update.FromString(UPDATE_TYPE + LENGTHS[kind]
                                               + delimited(UPDATE_ENTITY, entry))

    def update_bytes(self, rows: Iterable[Sequence[Any]], kind: int = Update.INSERT
                     ) -> list[bytes]:
        """Each row's serialized p4.v1.Update (for callers that batch bytes)."""
        if kind not in (Update.INSERT, Update.MODIFY, Update.DELETE):
            raise EntryError(f"update type {kind!r} is not INSERT, MODIFY or DELETE")
        encode, head, small = self._encode, UPDATE_TYPE + LENGTHS[kind], LENGTHS
        out = []
        append = out.append
        try:
            for row in rows:
                entry = encode(*row)
                size = len(entry)
                if size < 125:  # Entity's body (tag, length, entry) stays under 128
                    append(head + UPDATE_ENTITY + small[size + 2] + ENTITY_TABLE_ENTRY
                           + small[size] + entry)
                else:
                    append(head + delimited(UPDATE_ENTITY,
                                            delimited(ENTITY_TABLE_ENTRY, entry)))
        except P4InfoError as exc:
            raise EntryError(exc.message, exc.hint) from None
        return out

    def updates(self, rows: Iterable[Sequence[Any]], kind: int = Update.INSERT
                ) -> list[p4runtime_pb2.Update]:
        """One p4.v1.Update of type ``kind`` per row: ``(match, action, params[, priority])``."""
        parse = p4runtime_pb2.Update.FromString
        return [parse(data) for data in self.update_bytes(rows, kind)]

    def inserts(self, rows: Iterable[Sequence[Any]]) -> list[p4runtime_pb2.Update]:
        """``updates(rows, INSERT)``."""
        return self.updates(rows, Update.INSERT)

    def write_request(self, rows: Iterable[Sequence[Any]], kind: int = Update.INSERT,
                      device_id: int = 0, election: int | tuple[int, int] = (0, 1)
                      ) -> p4runtime_pb2.WriteRequest:
        """ONE WriteRequest with an update per row, parsed in one go (no per-update copy).

        ``SwitchConnection.write`` takes it as is (it sets its own device and election id).
        """
        return write_request_from(self.update_bytes(rows, kind), device_id, election)


def write_request_from(updates: Iterable[bytes], device_id: int = 0,
                       election: int | tuple[int, int] = (0, 1)
                       ) -> p4runtime_pb2.WriteRequest:
    """A WriteRequest from serialized Updates (``TableBuilder.update_bytes``); the
    election id is an int or (high, low), as ``entries.write_request`` takes it."""
    high, low = (election >> 64, election & (1 << 64) - 1) if isinstance(election, int) \
        else election
    if not (0 <= high < 1 << 64 and 0 <= low < 1 << 64):
        raise EntryError(f"election id {election!r} is not a 128-bit unsigned number")
    if not 0 <= device_id < 1 << 64:
        raise EntryError(f"device id {device_id!r} is not a 64-bit unsigned number")
    election_body = (UINT128_HIGH + varint(high) if high else b"") + \
        (UINT128_LOW + varint(low) if low else b"")
    head = (WRITE_DEVICE_ID + varint(device_id) if device_id else b"") + \
        delimited(WRITE_ELECTION_ID, election_body)
    small = LENGTHS
    body = b"".join([head] + [WRITE_UPDATES + small[len(u)] + u if len(u) < 128 else
                              WRITE_UPDATES + varint(len(u)) + u for u in updates])
    return p4runtime_pb2.WriteRequest.FromString(body)


__all__ = ["ActionPlan", "FieldPlan", "TableBuilder", "action_plan",
           "delimited", "table_builder", "varint", "write_request_from"]
