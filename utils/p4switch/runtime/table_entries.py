"""Table entries: P4Runtime ``TableEntry`` <-> engine entries, with PI's checks."""

from __future__ import annotations

from typing import Any

from p4protos import p4runtime_pb2
from p4protos.bytestrings import bytes_to_int
from p4protos.wire import read_varint
from p4switch.engine import (
    ActionCall,
    ConstTable,
    DuplicateEntry,
    EntryNotFound,
    InvalidEntry,
    MeterConfig,
    TableFull,
)

from .bytestrings import to_int
from .config import (
    DEFAULT_ONLY,
    TABLE_ONLY,
    MatchField,
    PipelineConfig,
    TableInfo,
)
from .errors import (
    INVALID_ID,
    already_exists,
    denied,
    exhausted,
    invalid,
    not_found,
    unimplemented,
)

Update = p4runtime_pb2.Update
EXACT, LPM, TERNARY, RANGE, OPTIONAL = (MatchField.EXACT, MatchField.LPM, MatchField.TERNARY,
                                        MatchField.RANGE, MatchField.OPTIONAL)
WRITE_TYPES = frozenset((Update.INSERT, Update.MODIFY, Update.DELETE))
VALID = 1  # the P4_14 "valid" match type, gone from current P4Info protos


def table_info(config: PipelineConfig, table_id: int) -> TableInfo:
    info = config.tables.get(table_id)
    if info is None:
        raise invalid(INVALID_ID)
    return info


def decode_match(info: TableInfo, entry: Any) -> tuple[tuple[Any, ...], int]:
    """(normalised match, priority) of a non-default entry."""
    if info.single and not entry.priority and len(entry.match) == 1:
        fast = _single_field(info.ordered[0], entry.match[0])
        if fast is not None:
            return fast, 0
    fields = info.ordered
    values: list[Any] = [None] * len(fields)
    if len(entry.match) > len(fields):
        raise invalid("Too many fields in match key")
    for fm in entry.match:
        spec = info.fields.get(fm.field_id)
        if spec is None:
            raise invalid("Unknown field in match key")
        if values[spec.position] is not None:
            raise invalid(f"Duplicate field '{spec.name}' in match key")
        kind = fm.WhichOneof("field_match_type")
        width = spec.bitwidth
        match_type = spec.match_type
        if match_type in (EXACT, VALID):
            if kind != "exact":
                raise invalid("Invalid match type")
            value = to_int(fm.exact.value, width)
            values[spec.position] = (1 if value else 0) if match_type == VALID else value
        elif match_type == LPM:
            if kind != "lpm":
                raise invalid("Invalid match type")
            lpm = fm.lpm
            value = to_int(lpm.value, width)
            length = lpm.prefix_len
            if length < 0:
                raise invalid("Prefix length cannot be < 0")
            if length > width:
                raise invalid("Prefix length cannot be > bitwidth")
            if length == 0:
                raise invalid("Invalid reprsentation of 'don't care' LPM match, omit match "
                              "field instead of using a prefix length of 0")
            if value & ((1 << (width - length)) - 1):
                raise invalid("Invalid LPM value, incorrect number of trailing zeros")
            values[spec.position] = (value, length)
        elif match_type == TERNARY:
            if kind != "ternary":
                raise invalid("Invalid match type")
            value = to_int(fm.ternary.value, width)
            mask = to_int(fm.ternary.mask, width)
            if mask == 0:
                raise invalid("Invalid representation of 'don't care' ternary match, omit "
                              "match field instead of using 0 mask")
            if value & ~mask:
                raise invalid("Invalid ternary value, make sure value & mask == value")
            values[spec.position] = (value, mask)
        elif match_type == RANGE:
            if kind != "range":
                raise invalid("Invalid match type")
            low, high = to_int(fm.range.low, width), to_int(fm.range.high, width)
            if low == 0 and high == spec.mask:
                raise invalid("Invalid representation of 'don't care' range match, omit "
                              "match field instead of using low=0 and high=2**bitwidth-1")
            if low > high:
                raise invalid("Invalid range value, make sure low <= high")
            values[spec.position] = (low, high)
        elif match_type == OPTIONAL:
            if kind != "optional":
                raise invalid("Invalid match type")
            values[spec.position] = (to_int(fm.optional.value, width), spec.mask)
        else:
            raise invalid("Invalid match type")
    for spec in fields:
        if values[spec.position] is None:
            if spec.match_type in (LPM, TERNARY, OPTIONAL):
                values[spec.position] = (0, 0)
            elif spec.match_type == RANGE:
                values[spec.position] = (0, spec.mask)
            else:
                raise invalid(f"Missing non-ternary field '{spec.name}' in match key")
    priority = entry.priority
    if info.needs_priority:
        if priority <= 0:
            raise invalid("Zero priority for ternary match" if priority == 0
                          else "Negative priority")
    elif priority:
        raise invalid("Non-zero priority for non-ternary match")
    return tuple(values), priority


def _single_field(spec: Any, fm: Any) -> tuple[Any, ...] | None:
    """The common case -- one well-formed exact or LPM field -- without the general
    checks; None sends anything unusual through ``decode_match``'s full path."""
    if fm.field_id != spec.id:
        return None
    kind = fm.WhichOneof("field_match_type")
    width = spec.bitwidth
    if kind == "lpm" and spec.match_type == LPM:
        lpm = fm.lpm
        value, length = bytes_to_int(lpm.value, width), lpm.prefix_len
        if value is None or not 0 < length <= width or value & ((1 << (width - length)) - 1):
            return None
        return ((value, length),)
    if kind == "exact" and spec.match_type == EXACT:
        value = bytes_to_int(fm.exact.value, width)
        return None if value is None else (value,)
    return None


def decode_action(config: PipelineConfig, info: TableInfo,
                  entry: Any) -> tuple[ActionCall | None, int | None, int | None]:
    """(call, member, group) for the engine: a direct action or a profile reference."""
    table_action = entry.action
    kind = table_action.WhichOneof("type")
    if info.profile_id:
        if entry.is_default_action:
            raise invalid(f"Cannot set / reset default action for indirect table {info.id}")
        profile = config.profiles[info.profile_id].profile
        if kind == "action_profile_member_id":
            member = table_action.action_profile_member_id
            if member not in profile.members:
                raise invalid(f"Invalid member / group id (no member {member} in "
                              f"'{profile.name}')")
            return None, member, None
        if kind == "action_profile_group_id":
            group = table_action.action_profile_group_id
            if group not in profile.groups:
                raise invalid(f"Invalid member / group id (no group {group} in "
                              f"'{profile.name}')")
            return None, None, group
        if kind == "action":
            raise invalid(f"Cannot provide direct action for indirect table {info.id}")
        if kind is None:  # an empty TableAction, as PI answers it
            raise invalid("Invalid table action type")
        raise unimplemented("One-shot action selector programming is not supported")
    if kind != "action":
        raise invalid(f"Cannot provide indirect action for direct table {info.id}")
    action = table_action.action
    allowed = info.actions.get(action.action_id)
    if allowed is None:
        raise invalid("Invalid action for table" if action.action_id in config.actions
                      else INVALID_ID)
    scope = allowed.scope
    if scope:
        if scope == TABLE_ONLY and entry.is_default_action:
            raise denied("Cannot use TABLE_ONLY action as default action")
        if scope == DEFAULT_ONLY and not entry.is_default_action:
            raise denied("Cannot use DEFAULT_ONLY action in table entry")
    return decode_params(allowed, action), None, None


def decode_params(allowed: Any, action: Any) -> ActionCall:
    """The engine call for ``action`` (p4.v1.Action) with PI's parameter checks."""
    specs = allowed.info
    if len(action.params) != len(specs.ordered):
        raise invalid(f"Unexpected number of action parameters ('{specs.name}' takes "
                      f"{len(specs.ordered)}, got {len(action.params)})")
    by_id = specs.params
    args: list[int | None] = [None] * len(specs.ordered)
    for param in action.params:
        spec = by_id.get(param.param_id)
        if spec is None:
            raise invalid(f"Unknown action parameter (id {param.param_id} of "
                          f"'{specs.name}')")
        position = spec.position
        if args[position] is not None:
            raise invalid(f"Duplicate parameter '{spec.name}' for action '{specs.name}'")
        args[position] = to_int(param.value, spec.bitwidth)
    return ActionCall(allowed.engine, tuple(args))  # type: ignore[arg-type]


MAX_BURST = 0xFFFFFFFF  # PI keeps bursts in 32 bits
UNLIMITED = 1 << 62  # what PI's -1 ("no limit": always green) becomes in the engine


def decode_meter_config(config: Any) -> MeterConfig:
    """The engine's meter parameters, checked as PI does; -1 means no limit."""
    for name, label in (("cir", "CIR"), ("cburst", "CBurst"), ("pir", "PIR"),
                        ("pburst", "PBurst")):
        if getattr(config, name) < -1:
            raise invalid(f"Negative meter {label}")
    if config.cburst > MAX_BURST:
        raise unimplemented("CBurst too large")
    if config.pburst > MAX_BURST:
        raise unimplemented("Pburst too large")
    return MeterConfig(*(UNLIMITED if value == -1 else value
                         for value in (config.cir, config.cburst, config.pir, config.pburst)))


def encode_meter_config(meter: MeterConfig, out: Any) -> None:
    """Fill a MeterConfig message from the engine's (-1 where the write said -1)."""
    out.cir, out.cburst, out.pir, out.pburst = (
        -1 if value >= UNLIMITED else value
        for value in (meter.cir, meter.cburst, meter.pir, meter.pburst))


CALL_CACHE_LIMIT = 4096  # distinct actions remembered per table (then forgotten at once)


LPM_BODY, EXACT_BODY, VALUE, PREFIX_LEN = 0x22, 0x12, 0x0A, 0x10  # FieldMatch tags
INSERT_ENTITY = b"\x08\x01\x12"  # Update.type = INSERT, then Update.entity
TABLE_ENTRY, TABLE_ID, ENTRY_MATCH, ENTRY_ACTION = 0x12, 0x08, 0x12, 0x1A


def insert_wire(config: PipelineConfig, raw: bytes) -> bool:
    """INSERT of the common shape -- one exact/LPM field, a direct action, nothing
    else set -- done inline from the serialized p4.v1.Update (``SerializeToString``
    of the parsed update: fields in number order, defaults left out), without a
    Python object per field.  Only the exact layout of an INSERT whose TableEntry has
    table_id, one FieldMatch and a TableAction -- nothing else, not even an unknown
    field -- is taken; the field is checked as ``_single_field`` does and the action
    through the same call cache.  False (nothing changed) means: take the full path.
    Lengths and ids below 128 (one-byte varints) are read inline.  Batches repeat few
    distinct actions (all ECMP groups of one size, say), so the validated call is
    cached under the TableAction's wire bytes, sliced from the update's.
    """
    try:
        if raw[:3] != INSERT_ENTITY:
            return False
        size = raw[3]
        if size < 0x80:
            pos = 4
        else:
            size, pos = read_varint(raw, 3)
        end = len(raw)
        if pos + size != end or raw[pos] != TABLE_ENTRY:
            return False
        size = raw[pos + 1]
        if size < 0x80:
            pos += 2
        else:
            size, pos = read_varint(raw, pos + 1)
        if pos + size != end or raw[pos] != TABLE_ID:
            return False
        table_id = raw[pos + 1]
        if table_id < 0x80:
            pos += 2
        else:
            table_id, pos = read_varint(raw, pos + 1)
        info = config.tables.get(table_id)
        if info is None or not info.fast_insert or raw[pos] != ENTRY_MATCH:
            return False
        size = raw[pos + 1]
        if size < 0x80:
            pos += 2
        else:
            size, pos = read_varint(raw, pos + 1)
        match_end = pos + size
        head = info.field_head
        if raw[pos:pos + len(head)] != head:
            return False
        pos += len(head)
        spec = info.ordered[0]
        kind = raw[pos]
        size = raw[pos + 1]
        if size < 0x80:
            pos += 2
        else:
            size, pos = read_varint(raw, pos + 1)
        if pos + size != match_end or raw[pos] != VALUE:
            return False
        size = raw[pos + 1]
        if size < 0x80:
            pos += 2
        else:
            size, pos = read_varint(raw, pos + 1)
        value = int.from_bytes(raw[pos:pos + size], "big")
        pos += size
        width = spec.bitwidth
        if value >> width:
            return False
        if kind == LPM_BODY and spec.match_type == LPM:
            if raw[pos] != PREFIX_LEN:
                return False
            length = raw[pos + 1]
            if length < 0x80:
                pos += 2
            else:
                length, pos = read_varint(raw, pos + 1)
            if not 0 < length <= width or value & ((1 << (width - length)) - 1):
                return False
            key: tuple[Any, ...] = ((value, length),)
        elif kind == EXACT_BODY and spec.match_type == EXACT:
            key = (value,)
        else:
            return False
        if pos != match_end or raw[pos] != ENTRY_ACTION:
            return False
        size = raw[pos + 1]
        if size < 0x80:
            pos += 2
        else:
            size, pos = read_varint(raw, pos + 1)
        if pos + size != end:
            return False
        action = raw[pos:]
    except (IndexError, ValueError):
        return False
    cache = info.call_cache
    call = cache.get(action)
    if call is None:
        call = _simple_call(info, p4runtime_pb2.TableAction.FromString(action))
        if call is None:
            return False
        if len(cache) >= CALL_CACHE_LIMIT:
            cache.clear()
        cache[action] = call
    try:
        info.table.insert(key, call, 0, trusted=True)
    except (DuplicateEntry, TableFull):
        return False  # nothing changed: the full path reports it in PI's words
    return True


def _simple_call(info: TableInfo, table_action: Any) -> ActionCall | None:
    """The call of a well-formed direct action allowed in table entries, else None."""
    if table_action.WhichOneof("type") != "action":
        return None
    action = table_action.action
    allowed = info.actions.get(action.action_id)
    if allowed is None or allowed.scope:
        return None
    specs = allowed.info.ordered
    params = action.params
    if len(params) != len(specs):
        return None
    args = []
    for param, spec in zip(params, specs):
        value = bytes_to_int(param.value, spec.bitwidth)
        if param.param_id != spec.id or value is None:
            return None
        args.append(value)
    return ActionCall(allowed.engine, tuple(args))


def write_table_entry(config: PipelineConfig, update_type: int, entry: Any) -> None:
    """Apply one table-entry update, raising P4RuntimeError as PI would (same checks,
    same order: update type, key, action, direct resources, ageing, existence)."""
    info = config.tables.get(entry.table_id)
    if info is None:
        raise invalid(INVALID_ID)
    if entry.HasField("time_since_last_hit"):
        raise invalid("has_time_since_last_hit must not be set in WriteRequest")
    if update_type not in WRITE_TYPES:
        raise invalid("Update type is not set" if update_type == Update.UNSPECIFIED
                      else "Invalid update type")
    if entry.is_default_action:
        _write_default(config, info, update_type, entry)
        return
    if update_type == Update.INSERT and not entry.HasField("action"):
        raise invalid("'action' field must be set")
    match, priority = decode_match(info, entry)
    table = info.table
    try:
        if update_type == Update.DELETE:
            existing = table.find(match, priority)
            if existing is None:
                raise not_found("Cannot find match entry")
            _check_mutable(info)
            table.delete(existing)
            return
        if not entry.HasField("action"):
            raise invalid("'action' field must be set for non-default entries")
        call, member, group = decode_action(config, info, entry)
        resources = _direct_resources(info, entry)
        _check_timeout(info, entry)
        if update_type == Update.INSERT:
            _check_mutable(info)
            created = table.insert(match, call, priority, member=member, group=group,
                                   trusted=True)
            _set_entry_data(created, entry, resources)
        else:
            existing = table.find(match, priority)
            if existing is None:
                raise not_found("Cannot find match entry")
            _check_mutable(info)
            table.modify(existing, call, member=member, group=group)
            _set_entry_data(existing, entry, resources)
    except TableFull as exc:
        raise exhausted(f"Table '{info.name}' is full ({table.max_size} entries)") from exc
    except DuplicateEntry as exc:
        raise already_exists("Match entry exists, use MODIFY if you wish to change "
                             "action") from exc
    except EntryNotFound as exc:
        raise not_found(str(exc)) from exc
    except ConstTable as exc:
        raise denied(str(exc)) from exc
    except InvalidEntry as exc:
        raise invalid(str(exc)) from exc


def _check_mutable(info: TableInfo) -> None:
    if info.is_const or info.table.immutable:
        raise denied(f"Table '{info.name}' is const: its entries are fixed by the P4 program")


def _check_timeout(info: TableInfo, entry: Any) -> None:
    if entry.idle_timeout_ns < 0:
        raise invalid("idle_timeout_ns must be a positive value")
    if entry.idle_timeout_ns and not info.supports_timeout:
        raise invalid("idle_timeout_ns must be set to 0 for tables which do not support "
                      "idle timeout")


def _direct_resources(info: TableInfo, entry: Any) -> tuple[Any, Any]:
    """(meter config or None, counter data or None) given with the entry, checked."""
    meter = counters = None
    if entry.HasField("meter_config"):
        if not info.direct_meter_id:
            raise invalid("Table has no direct meters")
        meter = decode_meter_config(entry.meter_config)
    if entry.HasField("counter_data"):
        if not info.direct_counter_id:
            raise invalid("Table has no direct counters")
        counters = entry.counter_data
    return meter, counters


def _set_entry_data(target: Any, entry: Any, resources: tuple[Any, Any]) -> None:
    """Controller data and direct resources of an inserted or modified entry."""
    target.controller_metadata = entry.controller_metadata
    target.metadata = entry.metadata
    target.idle_timeout_ns = entry.idle_timeout_ns
    meter, counters = resources
    if meter is not None:
        target.meter_config = meter
        target.meter_state = None
    if counters is not None:
        target.packets = counters.packet_count
        target.bytes = counters.byte_count


def _write_default(config: PipelineConfig, info: TableInfo, update_type: int,
                   entry: Any) -> None:
    if update_type == Update.INSERT:
        raise invalid("Cannot use INSERT for default entry")
    if update_type == Update.DELETE:
        raise invalid("Cannot use DELETE for default entry")
    if entry.match:
        raise invalid("Non-empty key for default entry")
    if entry.priority:
        raise invalid("Non-zero priority for default entry")
    if info.profile_id:
        raise invalid(f"Cannot set / reset default action for indirect table {info.id}")
    if info.const_default:
        raise denied(f"Cannot set / reset default action for table {info.id} which has a "
                     "const default action")
    try:
        if not entry.HasField("action"):
            info.table.reset_default()
            return
        call = decode_action(config, info, entry)[0]
        info.table.set_default(call)  # type: ignore[arg-type]
    except ConstTable as exc:
        raise denied(str(exc)) from exc
    except InvalidEntry as exc:
        raise invalid(str(exc)) from exc
