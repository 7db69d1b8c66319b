"""The fuzz test's model of P4Runtime table writes.

``TableModel`` decides, from the P4Runtime spec and PI's checks (proto/frontend's
DeviceMgr: table_write, construct_match_key, validate_action, ...), which status each
table update must get, and keeps the entries a read must return, in canonical form.
It is written against the P4Info only, never against the server under test.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from p4runtime_lib.protos import code_pb2, p4info_pb2, p4runtime_pb2

OK, INVALID, NOT_FOUND, EXISTS = (code_pb2.OK, code_pb2.INVALID_ARGUMENT, code_pb2.NOT_FOUND,
                                  code_pb2.ALREADY_EXISTS)
DENIED, EXHAUSTED, UNIMPLEMENTED = (code_pb2.PERMISSION_DENIED, code_pb2.RESOURCE_EXHAUSTED,
                                    code_pb2.UNIMPLEMENTED)
ABORTED = code_pb2.ABORTED
INSERT, MODIFY, DELETE = (p4runtime_pb2.Update.INSERT, p4runtime_pb2.Update.MODIFY,
                          p4runtime_pb2.Update.DELETE)
MF = p4info_pb2.MatchField
KIND = {MF.EXACT: "exact", MF.LPM: "lpm", MF.TERNARY: "ternary", MF.RANGE: "range",
        MF.OPTIONAL: "optional"}
TABLE_ONLY, DEFAULT_ONLY = p4info_pb2.ActionRef.TABLE_ONLY, p4info_pb2.ActionRef.DEFAULT_ONLY
MAX_BURST = 2**32 - 1
TableEntry, FieldMatch, TableAction = (p4runtime_pb2.TableEntry, p4runtime_pb2.FieldMatch,
                                       p4runtime_pb2.TableAction)
Key = tuple[int, bytes, int]


def canonical(value: int) -> bytes:
    """P4Runtime's canonical bytestring: no leading zero bytes, at least one byte."""
    return value.to_bytes(max(1, -(-value.bit_length() // 8)), "big")


class Reject(Exception):
    """The update must fail with one of ``codes``."""

    def __init__(self, *codes: int) -> None:
        super().__init__(codes)
        self.codes = set(codes)


def fits(data: bytes, width: int) -> int:
    """The value of a bytestring (any length; PI pads or strips zeros) that fits ``width``."""
    value = int.from_bytes(data, "big")
    if value.bit_length() > width:
        raise Reject(INVALID)
    return value


@dataclass
class TableSpec:
    id: int
    fields: list[tuple[int, int, int]]  # (field id, bitwidth, match type), P4Info order
    actions: dict[int, int]  # action id -> scope
    size: int
    const: bool
    const_default: bool
    indirect: bool
    counters: bool
    meters: bool
    idle: bool

    @property
    def needs_priority(self) -> bool:
        return any(kind in (MF.TERNARY, MF.RANGE, MF.OPTIONAL) for _, _, kind in self.fields)


class Schema:
    """What the model needs from a P4Info."""

    def __init__(self, p4info: p4info_pb2.P4Info) -> None:
        self.ids = {kind: [item.preamble.id for item in getattr(p4info, kind)]
                    for kind in ("counters", "meters", "registers", "digests", "value_sets")}
        self.actions = {a.preamble.id: [(p.id, p.bitwidth) for p in a.params]
                        for a in p4info.actions}
        counters = {c.preamble.id for c in p4info.direct_counters}
        meters = {m.preamble.id for m in p4info.direct_meters}
        self.tables = {t.preamble.id: TableSpec(
            id=t.preamble.id,
            fields=[(f.id, f.bitwidth, f.match_type) for f in t.match_fields],
            actions={ref.id: ref.scope for ref in t.action_refs}, size=t.size,
            const=t.is_const_table, const_default=bool(t.const_default_action_id),
            indirect=bool(t.implementation_id),
            counters=any(i in counters for i in t.direct_resource_ids),
            meters=any(i in meters for i in t.direct_resource_ids),
            idle=t.idle_timeout_behavior != p4info_pb2.Table.NO_TIMEOUT)
            for t in p4info.tables}


def key_of(entry: Any) -> Key:
    """Identity of a (canonical) entry: table, match fields, priority."""
    return (entry.table_id, b"".join(m.SerializeToString(deterministic=True)
                                     for m in entry.match), entry.priority)


def refusal_of(request: Any, primary: tuple[int, int]) -> int | None:
    """The code refusing a whole Write: unknown device, not primary, unknown atomicity
    mode; else None."""
    if request.device_id != 0:
        return NOT_FOUND
    if (request.election_id.high, request.election_id.low) != primary:
        return DENIED
    if request.atomicity not in p4runtime_pb2.WriteRequest.Atomicity.values():
        return INVALID
    return None


@dataclass
class Prediction:
    codes: set[int]
    effect: Callable[[], None] | None = None  # what an accepted update does to the model


class TableModel:
    """Accepted entries and default actions, as a read must show them."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.entries: dict[Key, Any] = {}
        self.sizes: Counter[int] = Counter()
        self.defaults: dict[int, Any] = {}
        self.initial: dict[int, Any] = {}

    def seed(self, entries: list[Any], defaults: list[Any]) -> None:
        """The state before any write: the program's const entries and default actions."""
        for entry in entries:
            assert self.schema.tables[entry.table_id].const, entry
            self._store(key_of(entry), entry)
        for entry in defaults:
            self.defaults[entry.table_id] = self.initial[entry.table_id] = entry

    def find(self, entry: Any) -> Any | None:
        """The model's entry with ``entry``'s table, match and priority; Reject if malformed."""
        table = self.schema.tables.get(entry.table_id)
        if table is None:
            raise Reject(INVALID)
        match, priority = self._match(table, entry)
        return self.entries.get(key_of(TableEntry(table_id=table.id, match=match,
                                                  priority=priority)))

    def _store(self, key: Key, entry: Any) -> None:
        if key not in self.entries:
            self.sizes[key[0]] += 1
        self.entries[key] = entry

    def _remove(self, key: Key) -> None:
        del self.entries[key]
        self.sizes[key[0]] -= 1

    def settle(self, update_type: int, entry: Any, code: int) -> str | None:
        """Check the server's ``code`` for one update and apply it; a complaint or None."""
        prediction = self.predict(update_type, entry)
        if code not in prediction.codes:
            return f"got code {code}, model expects {sorted(prediction.codes)}"
        if code == OK and prediction.effect is not None:
            prediction.effect()
        return None

    def settle_batch(self, updates: Any, codes: list[int]) -> str | None:
        """``settle`` each update of a Write in order; other entities may get any code
        but INTERNAL (a server bug), and an update without an entity is UNKNOWN."""
        if len(codes) != len(updates):
            return f"{len(codes)} statuses for {len(updates)} updates"
        for index, (update, code) in enumerate(zip(updates, codes)):
            kind = update.entity.WhichOneof("entity")
            if kind == "table_entry":
                problem = self.settle(update.type, update.entity.table_entry, code)
            elif kind is None:
                problem = None if code == code_pb2.UNKNOWN else f"code {code}, not UNKNOWN"
            else:
                problem = "INTERNAL" if code == code_pb2.INTERNAL else None
            if problem is not None:
                return f"update {index} {update}: {problem}"
        return None

    def settle_all_or_none(self, updates: Any, codes: list[int]) -> str | None:
        """A ROLLBACK_ON_ERROR / DATAPLANE_ATOMIC batch: all OK and applied, or one
        update failed as the model predicts, every other one ABORTED, and nothing
        applied."""
        if len(codes) != len(updates):
            return f"{len(codes)} statuses for {len(updates)} updates"
        failed = [index for index, code in enumerate(codes) if code not in (OK, ABORTED)]
        if not failed:
            return (self.settle_batch(updates, codes) if set(codes) == {OK}
                    else f"codes {codes} without a failure")
        if len(failed) > 1 or set(codes[:failed[0]] + codes[failed[0] + 1:]) - {ABORTED}:
            return f"codes {codes}: expected one failure and ABORTED for the others"
        before = (dict(self.entries), Counter(self.sizes), dict(self.defaults))
        problem = self.settle_batch(updates[:failed[0] + 1],
                                    [OK] * failed[0] + [codes[failed[0]]])
        self.entries, self.sizes, self.defaults = before
        return problem

    def expected_read(self, entry: Any) -> list[Any] | None:
        """What a read of ``entry``'s table, match and priority returns (sorted by
        ``key_of``); None if malformed.  No match reads the whole table (by priority)."""
        if not entry.match:
            return sorted((e for e in self.entries.values() if e.table_id == entry.table_id
                           and entry.priority in (0, e.priority)), key=key_of)
        try:
            found = self.find(entry)
        except Reject:
            return None
        return [] if found is None else [found]

    def predict(self, update_type: int, entry: Any) -> Prediction:
        also: set[int] = set()
        try:
            effect = self._check(update_type, entry, also)
        except Reject as rejected:
            return Prediction(rejected.codes | also)
        return Prediction({OK} | also, effect)

    # -- PI's checks, in PI's order ----------------------------------------------------
    def _check(self, update_type: int, entry: Any, also: set[int]) -> Callable[[], None]:
        table = self.schema.tables.get(entry.table_id)
        if table is None or entry.HasField("time_since_last_hit") or \
                update_type not in (INSERT, MODIFY, DELETE):
            raise Reject(INVALID)
        if entry.HasField("meter_counter_data"):
            also.add(INVALID)  # P4Runtime 1.4's field: newer PI checks it, ours ignores it
        if entry.is_default_action:
            return self._default(update_type, table, entry, also)
        if update_type == INSERT and not entry.HasField("action"):
            raise Reject(INVALID)
        match, priority = self._match(table, entry)
        canon = TableEntry(table_id=table.id, match=match, priority=priority)
        key = key_of(canon)
        present = key in self.entries
        if update_type == DELETE:
            if not present:
                raise Reject(NOT_FOUND)
            if table.const:
                raise Reject(DENIED)
            return lambda: self._remove(key)
        if not entry.HasField("action"):
            raise Reject(INVALID)
        canon.action.CopyFrom(self._action(table, entry.action, default=False))
        self._resources(table, entry)
        if entry.idle_timeout_ns < 0 or (entry.idle_timeout_ns and not table.idle):
            raise Reject(INVALID)
        if update_type == INSERT:
            if table.const:
                raise Reject(DENIED, EXISTS) if present else Reject(DENIED)
            if present:
                raise Reject(EXISTS)
            if self.sizes[table.id] >= table.size:
                raise Reject(EXHAUSTED)
        elif not present:
            raise Reject(NOT_FOUND)
        elif table.const:
            raise Reject(DENIED)
        canon.controller_metadata = entry.controller_metadata
        canon.metadata = entry.metadata
        canon.idle_timeout_ns = entry.idle_timeout_ns
        return lambda: self._store(key, canon)

    def _match(self, table: TableSpec, entry: Any) -> tuple[list[Any], int]:
        if len(entry.match) > len(table.fields):
            raise Reject(INVALID)
        given: dict[int, Any] = {}
        known = {field_id for field_id, _, _ in table.fields}
        for field in entry.match:
            if field.field_id in given or field.field_id not in known:
                raise Reject(INVALID)
            given[field.field_id] = field
        out = []
        for field_id, width, kind in table.fields:
            field = given.get(field_id)
            if field is None:
                if kind == MF.EXACT:
                    raise Reject(INVALID)
                continue  # don't care
            if field.WhichOneof("field_match_type") != KIND.get(kind):
                raise Reject(INVALID)
            out.append(self._field(field_id, width, kind, field))
        priority = entry.priority
        if (priority <= 0) if table.needs_priority else (priority != 0):
            raise Reject(INVALID)
        return out, priority

    @staticmethod
    def _field(field_id: int, width: int, kind: int, field: Any) -> Any:
        out = FieldMatch(field_id=field_id)
        if kind == MF.EXACT:
            out.exact.value = canonical(fits(field.exact.value, width))
        elif kind == MF.LPM:
            value, length = fits(field.lpm.value, width), field.lpm.prefix_len
            if not 0 < length <= width or value & ((1 << (width - length)) - 1):
                raise Reject(INVALID)
            out.lpm.value, out.lpm.prefix_len = canonical(value), length
        elif kind == MF.TERNARY:
            value, mask = fits(field.ternary.value, width), fits(field.ternary.mask, width)
            if mask == 0 or value & ~mask:
                raise Reject(INVALID)
            out.ternary.value, out.ternary.mask = canonical(value), canonical(mask)
        elif kind == MF.RANGE:
            low, high = fits(field.range.low, width), fits(field.range.high, width)
            if (low == 0 and high == (1 << width) - 1) or low > high:
                raise Reject(INVALID)
            out.range.low, out.range.high = canonical(low), canonical(high)
        else:
            out.optional.value = canonical(fits(field.optional.value, width))
        return out

    def _action(self, table: TableSpec, table_action: Any, default: bool) -> Any:
        kind = table_action.WhichOneof("type")
        if table.indirect:
            if kind == "action_profile_action_set":
                raise Reject(UNIMPLEMENTED, INVALID)  # one-shot: not supported by our switch
            raise Reject(INVALID)  # a direct action, no action, or a member / group that
            # does not exist (the fuzz never creates action profile members)
        if kind != "action":
            raise Reject(INVALID)
        action = table_action.action
        if action.action_id not in table.actions:
            raise Reject(INVALID)
        if table.actions[action.action_id] == (TABLE_ONLY if default else DEFAULT_ONLY):
            raise Reject(DENIED)
        specs = self.schema.actions[action.action_id]
        if len(action.params) != len(specs):
            raise Reject(INVALID)
        widths, values = dict(specs), {}
        for param in action.params:
            if param.param_id not in widths or param.param_id in values:
                raise Reject(INVALID)
            values[param.param_id] = fits(param.value, widths[param.param_id])
        out = TableAction()
        out.action.action_id = action.action_id
        for param_id, _ in specs:
            out.action.params.add(param_id=param_id, value=canonical(values[param_id]))
        return out

    @staticmethod
    def _resources(table: TableSpec, entry: Any) -> None:
        if entry.HasField("meter_config"):
            config = entry.meter_config
            if not table.meters or min(config.cir, config.cburst, config.pir,
                                       config.pburst) < -1:
                raise Reject(INVALID)
            if max(config.cburst, config.pburst) > MAX_BURST:
                raise Reject(UNIMPLEMENTED)
        if entry.HasField("counter_data") and not table.counters:
            raise Reject(INVALID)

    def _default(self, update_type: int, table: TableSpec, entry: Any,
                 also: set[int]) -> Callable[[], None]:
        if update_type != MODIFY or entry.match or entry.priority or table.indirect:
            raise Reject(INVALID)
        if table.const_default:
            raise Reject(DENIED)
        if entry.HasField("meter_config") or entry.HasField("counter_data") or \
                entry.idle_timeout_ns:
            also.add(INVALID)  # PI checks these for default entries too; ours ignores them
        if not entry.HasField("action"):
            expected = self.initial[table.id]
        else:
            expected = TableEntry(table_id=table.id, is_default_action=True)
            expected.action.CopyFrom(self._action(table, entry.action, default=True))
        return lambda: self.defaults.__setitem__(table.id, expected)

    def differences(self, entries: list[Any], defaults: list[Any]) -> list[str]:
        """How a read-back (entries of table 0, default entries) differs from the model."""
        seen: dict[Key, Any] = {}
        problems = []
        for entry in entries:
            key = key_of(entry)
            if key in seen:
                problems.append(f"read twice: {entry}")
            seen[key] = entry
        for key in seen.keys() - self.entries.keys():
            problems.append(f"on the switch, not in the model: {seen[key]}")
        for key in self.entries.keys() - seen.keys():
            problems.append(f"in the model, not on the switch: {self.entries[key]}")
        for key in seen.keys() & self.entries.keys():
            if seen[key] != self.entries[key]:
                problems.append(f"read {seen[key]} expected {self.entries[key]}")
        read_defaults = {entry.table_id: entry for entry in defaults}
        if read_defaults != self.defaults:
            problems.append(f"defaults {list(read_defaults.values())} expected "
                            f"{list(self.defaults.values())}")
        return problems
