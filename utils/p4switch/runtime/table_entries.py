"""Table entries: P4Runtime ``TableEntry`` <-> engine entries, with PI's checks."""

from __future__ import annotations

from typing import Any

from p4runtime_lib.protos import p4runtime_pb2
from p4switch.engine import (
    ActionCall,
    ConstTable,
    DuplicateEntry,
    EntryNotFound,
    InvalidEntry,
    MeterConfig,
    TableFull,
)

from .bytestrings import canonical, to_int
from .config import (
    DEFAULT_ONLY,
    TABLE_ONLY,
    MatchField,
    PipelineConfig,
    TableInfo,
)
from .errors import INVALID_ID, already_exists, denied, exhausted, invalid, not_found

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
            value = int.from_bytes(fm.exact.value, "big")
            if value >> width:
                raise invalid(f"Bytestring provided does not fit within {width} bits")
            values[spec.position] = (1 if value else 0) if match_type == VALID else value
        elif match_type == LPM:
            if kind != "lpm":
                raise invalid("Invalid match type")
            lpm = fm.lpm
            value = int.from_bytes(lpm.value, "big")
            if value >> width:
                raise invalid(f"Bytestring provided does not fit within {width} bits")
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
        value, length = int.from_bytes(lpm.value, "big"), lpm.prefix_len
        if value >> width or not 0 < length <= width or value & ((1 << (width - length)) - 1):
            return None
        return ((value, length),)
    if kind == "exact" and spec.match_type == EXACT:
        value = int.from_bytes(fm.exact.value, "big")
        return None if value >> width else (value,)
    return None


def decode_action(config: PipelineConfig, info: TableInfo,
                  entry: Any) -> tuple[ActionCall | None, int | None, int | None]:
    """(call, member, group) for the engine: a direct action or a profile reference."""
    table_action = entry.action
    kind = table_action.WhichOneof("type")
    if info.profile_id:
        if entry.is_default_action:
            raise invalid(f"Cannot set / reset default action for indirect table {info.id}")
        if kind == "action_profile_member_id":
            return None, table_action.action_profile_member_id, None
        if kind == "action_profile_group_id":
            return None, None, table_action.action_profile_group_id
        if kind == "action":
            raise invalid(f"Cannot provide direct action for indirect table {info.id}")
        raise invalid("One-shot action selector programming is not supported")
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
    specs = allowed.info
    by_id = specs.params
    args: list[int | None] = [None] * len(specs.ordered)
    for param in action.params:
        spec = by_id.get(param.param_id)
        if spec is None:
            raise invalid(f"Unknown parameter id {param.param_id} for action '{specs.name}'")
        position = spec.position
        if args[position] is not None:
            raise invalid(f"Duplicate parameter '{spec.name}' for action '{specs.name}'")
        value = int.from_bytes(param.value, "big")
        if value >> spec.bitwidth:
            raise invalid(f"Bytestring provided does not fit within {spec.bitwidth} bits")
        args[position] = value
    if None in args:
        missing = specs.ordered[args.index(None)]
        raise invalid(f"Missing parameter '{missing.name}' for action '{specs.name}'")
    return ActionCall(allowed.engine, tuple(args)), None, None  # type: ignore[arg-type]


def decode_meter_config(config: Any) -> MeterConfig:
    for name in ("cir", "cburst", "pir", "pburst"):
        if getattr(config, name) < 0:
            raise invalid(f"Negative meter {name.upper() if 'ir' in name else name}")
    return MeterConfig(config.cir, config.cburst, config.pir, config.pburst)


def insert_simple(config: PipelineConfig, entry: Any) -> bool:
    """INSERT of the common shape -- one exact/LPM field, a direct action, nothing
    else set -- done inline; False (nothing changed) sends the update through
    ``write_table_entry`` and its full checks instead."""
    if len(entry.ListFields()) != 3:  # anything besides table_id, match and action
        return False
    info = config.tables.get(entry.table_id)
    if info is None or not info.single or info.profile_id or info.is_const \
            or len(entry.match) != 1:
        return False
    match = _single_field(info.ordered[0], entry.match[0])
    if match is None:
        return False
    action = entry.action.action
    allowed = info.actions.get(action.action_id)
    if allowed is None or allowed.scope:
        return False
    specs = allowed.info.ordered
    params = action.params
    if len(params) != len(specs):
        return False
    args = []
    for param, spec in zip(params, specs):
        value = int.from_bytes(param.value, "big")
        if param.param_id != spec.id or value >> spec.bitwidth:
            return False
        args.append(value)
    try:
        info.table.insert(match, ActionCall(allowed.engine, tuple(args)), 0, trusted=True)
    except (DuplicateEntry, TableFull):
        return False  # nothing changed: the full path reports it in PI's words
    return True


def write_table_entry(config: PipelineConfig, update_type: int, entry: Any) -> None:
    """Apply one table-entry update, raising P4RuntimeError as PI would."""
    info = config.tables.get(entry.table_id)
    if info is None:
        raise invalid(INVALID_ID)
    table = info.table
    if update_type not in WRITE_TYPES:
        raise invalid("Update type is not set" if update_type == Update.UNSPECIFIED
                      else "Invalid update type")
    if entry.idle_timeout_ns and not info.supports_timeout:
        raise invalid(f"Table {info.name} does not support idle timeout")
    if entry.HasField("time_since_last_hit"):
        raise invalid("has_time_since_last_hit must not be set in WriteRequest")
    if entry.is_default_action:
        _write_default(config, info, update_type, entry)
        return
    if info.is_const:
        raise denied(f"Table '{info.name}' is const: its entries are fixed by the P4 program")
    match, priority = decode_match(info, entry)
    try:
        if update_type == Update.INSERT:
            if not entry.HasField("action"):
                raise invalid("'action' field must be set")
            call, member, group = decode_action(config, info, entry)
            created = table.insert(match, call, priority, member=member, group=group,
                                   trusted=True)
            _set_entry_data(created, entry)
        elif update_type == Update.MODIFY:
            if not entry.HasField("action"):
                raise invalid("'action' field must be set for non-default entries")
            call, member, group = decode_action(config, info, entry)
            existing = table.find(match, priority)
            if existing is None:
                raise not_found("Cannot find match entry")
            table.modify(existing, call, member=member, group=group)
            _set_entry_data(existing, entry)
        else:
            existing = table.find(match, priority)
            if existing is None:
                raise not_found("Cannot find match entry")
            table.delete(existing)
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


def _set_entry_data(created: Any, entry: Any) -> None:
    if entry.controller_metadata or entry.metadata or entry.idle_timeout_ns:
        created.controller_metadata = entry.controller_metadata
        created.metadata = entry.metadata
        created.idle_timeout_ns = entry.idle_timeout_ns
    if entry.HasField("meter_config"):
        created.meter_config = decode_meter_config(entry.meter_config)
        created.meter_state = None
    if entry.HasField("counter_data"):
        created.packets = entry.counter_data.packet_count
        created.bytes = entry.counter_data.byte_count


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


# -- reading ---------------------------------------------------------------------------

def encode_match(info: TableInfo, entry: Any, out: Any) -> None:
    for spec, value in zip(info.ordered, entry.match):
        match_type = spec.match_type
        if match_type in (EXACT, VALID):
            out.match.add(field_id=spec.id).exact.value = canonical(value)
        elif match_type == LPM:
            if value[1]:
                lpm = out.match.add(field_id=spec.id).lpm
                lpm.value = canonical(value[0])
                lpm.prefix_len = value[1]
        elif match_type == TERNARY:
            if value[1]:
                ternary = out.match.add(field_id=spec.id).ternary
                ternary.value = canonical(value[0])
                ternary.mask = canonical(value[1])
        elif match_type == RANGE:
            if value != (0, spec.mask):
                rng = out.match.add(field_id=spec.id).range
                rng.low = canonical(value[0])
                rng.high = canonical(value[1])
        elif match_type == OPTIONAL and value[1]:
            out.match.add(field_id=spec.id).optional.value = canonical(value[0])


def encode_call(config: PipelineConfig, info: TableInfo, call: ActionCall, out: Any) -> None:
    action_id = info.action_ids.get(call.action.name, 0)
    action = out.action.action
    action.action_id = action_id
    specs = info.actions[action_id].info.ordered if action_id else []
    for spec, value in zip(specs, call.args):
        action.params.add(param_id=spec.id, value=canonical(value))


def encode_entry(config: PipelineConfig, info: TableInfo, entry: Any,
                 request: Any) -> p4runtime_pb2.TableEntry:
    out = p4runtime_pb2.TableEntry(table_id=info.id)
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
        meter = entry.meter_config
        out.meter_config.cir, out.meter_config.cburst = meter.cir, meter.cburst
        out.meter_config.pir, out.meter_config.pburst = meter.pir, meter.pburst
    return out


def read_table_entries(config: PipelineConfig, request: Any) -> list[p4runtime_pb2.TableEntry]:
    """Entries matching a read request's TableEntry (table_id 0 = every table)."""
    if request.table_id == 0:
        infos = list(config.tables.values())
    else:
        infos = [table_info(config, request.table_id)]
    results = []
    for info in infos:
        if request.is_default_action:
            default = info.table.default
            out = p4runtime_pb2.TableEntry(table_id=info.id, is_default_action=True)
            if default is not None:
                encode_call(config, info, default, out)
            results.append(out)
            continue
        if request.match:
            match, priority = decode_match(info, request)
            entry = info.table.find(match, priority)
            if entry is None:
                raise not_found("Cannot find match entry")
            results.append(encode_entry(config, info, entry, request))
            continue
        for entry in info.table.entries():
            results.append(encode_entry(config, info, entry, request))
    return results
