"""Counters, meters (indirect and direct), registers and parser value sets.

Messages and codes follow PI (``device_mgr.cpp``) where BMv2's server supports
the entity; where it does not (registers, value sets, wildcard writes) the
P4Runtime spec decides.
"""

from __future__ import annotations

from typing import Any

from p4protos import p4info_pb2, p4runtime_pb2
from p4protos.bytestrings import int_to_bytes

from .bytestrings import to_int
from .config import ExternInfo, PipelineConfig, TableInfo
from .errors import INVALID_ID, exhausted, invalid, out_of_range, unimplemented
from .readsink import ReadSink
from .table_entries import (
    decode_match,
    decode_meter_config,
    encode_meter_config,
    table_info,
)
from .table_read import encode_match

Update = p4runtime_pb2.Update
CounterUnit = p4info_pb2.CounterSpec


def _extern(registry: dict[int, ExternInfo], extern_id: int) -> ExternInfo:
    info = registry.get(extern_id)
    if info is None:
        raise invalid(INVALID_ID)
    return info


def _index(entity: Any, size: int) -> int:
    index = entity.index.index
    if index < 0:
        raise invalid("A negative number is not a valid index value")
    if index >= size:
        raise out_of_range(f"Index {index} is out of range (size {size})")
    return index


def _indices(entity: Any, size: int) -> range | list[int]:
    """The index given, or every index when it is unset (a wildcard)."""
    return [_index(entity, size)] if entity.HasField("index") else range(size)


def _write_type(update_type: int, what: str) -> None:
    """Only MODIFY (and PI's DELETE = reset for counters) changes these entities."""
    if update_type == Update.UNSPECIFIED:
        raise invalid("Update type is not set")
    if update_type == Update.INSERT:
        raise invalid(f"INSERT update type not supported for {what}")
    if update_type not in (Update.MODIFY, Update.DELETE):
        raise invalid("Invalid update type")


# -- counters ---------------------------------------------------------------------

def _counter_values(unit: int, data: Any, old: tuple[int, int]) -> tuple[int, int]:
    """(packets, bytes) after writing ``data``; a unit the counter lacks is kept."""
    packets, nbytes = old
    if unit in (CounterUnit.PACKETS, CounterUnit.BOTH, CounterUnit.UNSPECIFIED):
        packets = data.packet_count
    if unit in (CounterUnit.BYTES, CounterUnit.BOTH, CounterUnit.UNSPECIFIED):
        nbytes = data.byte_count
    return packets, nbytes


def write_counter(config: PipelineConfig, update_type: int, entry: Any) -> None:
    """MODIFY sets the given (or every) index; DELETE resets it to zero, as PI."""
    info = _extern(config.counters, entry.counter_id)
    _write_type(update_type, "counters")
    counter = info.obj
    indices = _indices(entry, counter.size)
    if update_type == Update.MODIFY and not entry.HasField("data"):
        return  # the spec: nothing to change
    zero = p4runtime_pb2.CounterData()
    data = entry.data if update_type == Update.MODIFY else zero
    unit = info.unit if update_type == Update.MODIFY else CounterUnit.BOTH
    for index in indices:
        counter.packets[index], counter.bytes[index] = _counter_values(
            unit, data, (counter.packets[index], counter.bytes[index]))


def read_counters(config: PipelineConfig, request: Any, sink: ReadSink) -> None:
    infos = [_extern(config.counters, request.counter_id)] if request.counter_id \
        else list(config.counters.values())
    for info in infos:
        counter = info.obj
        for index in _indices(request, counter.size):
            entry = sink.add().counter_entry
            entry.counter_id = info.id
            entry.index.index = index
            entry.data.packet_count = counter.packets[index]
            entry.data.byte_count = counter.bytes[index]


def _direct_entry(config: PipelineConfig, table_entry: Any,
                  resource: str) -> tuple[TableInfo, Any]:
    """(table, engine entry) a DirectCounterEntry / DirectMeterEntry refers to."""
    info = table_info(config, table_entry.table_id)
    if not getattr(info, f"direct_{resource}_id"):
        raise invalid(f"Table has no direct {resource}s")
    if table_entry.is_default_action:
        raise unimplemented(f"Direct {resource}s of the default entry are not supported "
                            "(BMv2 has none)")
    match, priority = decode_match(info, table_entry)
    entry = info.table.find(match, priority)
    if entry is None:
        raise invalid(f"Cannot map table entry to handle (no such entry in '{info.name}')")
    return info, entry


def write_direct_counter(config: PipelineConfig, update_type: int, entry: Any) -> None:
    if not entry.HasField("table_entry"):
        raise invalid("Missing table_entry field in DirectCounterEntry")
    info, found = _direct_entry(config, entry.table_entry, "counter")
    _write_type(update_type, "counters")
    unit = config.direct_counters[info.direct_counter_id].unit
    if update_type == Update.DELETE:
        data, unit = p4runtime_pb2.CounterData(), CounterUnit.BOTH
    else:
        data = entry.data
    found.packets, found.bytes = _counter_values(unit, data, (found.packets, found.bytes))


def _direct_tables(config: PipelineConfig, table_entry: Any, resource: str) -> list[TableInfo]:
    if table_entry.table_id == 0:
        return [t for t in config.tables.values() if getattr(t, f"direct_{resource}_id")]
    info = table_info(config, table_entry.table_id)
    if not getattr(info, f"direct_{resource}_id"):
        raise invalid(f"Table has no direct {resource}s")
    return [info]


def _direct_read(config: PipelineConfig, request: Any, sink: ReadSink, resource: str,
                 fill: Any) -> None:
    table_entry = request.table_entry
    for info in _direct_tables(config, table_entry, resource):
        if table_entry.match or table_entry.is_default_action:
            entries = [_direct_entry(config, table_entry, resource)[1]]
        else:
            entries = list(info.table.entries())
        for found in entries:
            entity = sink.add()
            out = getattr(entity, f"direct_{resource}_entry")
            out.table_entry.table_id = info.id
            encode_match(info, found, out.table_entry)
            if info.needs_priority:
                out.table_entry.priority = found.priority
            fill(out, found)


def read_direct_counters(config: PipelineConfig, request: Any, sink: ReadSink) -> None:
    def fill(out: Any, found: Any) -> None:
        out.data.packet_count = found.packets
        out.data.byte_count = found.bytes
    _direct_read(config, request, sink, "counter", fill)


# -- meters -------------------------------------------------------------------------

def _meter_write_type(update_type: int) -> None:
    if update_type == Update.DELETE:
        raise invalid("DELETE update type not supported for meters")
    _write_type(update_type, "meters")


def write_meter(config: PipelineConfig, update_type: int, entry: Any) -> None:
    """MODIFY sets the config of one (or, without an index, every) meter; no config
    returns it to the unconfigured state (every packet green)."""
    info = _extern(config.meters, entry.meter_id)
    _meter_write_type(update_type)
    meter = info.obj
    indices = _indices(entry, meter.size)
    meter_config = decode_meter_config(entry.config) if entry.HasField("config") else None
    for index in indices:
        meter.configure(index, meter_config)
    config.pipeline.program.generation.bump()


def read_meters(config: PipelineConfig, request: Any, sink: ReadSink) -> None:
    infos = [_extern(config.meters, request.meter_id)] if request.meter_id \
        else list(config.meters.values())
    for info in infos:
        meter = info.obj
        for index in _indices(request, meter.size):
            entry = sink.add().meter_entry
            entry.meter_id = info.id
            entry.index.index = index
            current = meter.configs.get(index)
            if current is not None:
                encode_meter_config(current, entry.config)


def write_direct_meter(config: PipelineConfig, update_type: int, entry: Any) -> None:
    if not entry.HasField("table_entry"):
        raise invalid("Missing table_entry field in DirectMeterEntry")
    _info, found = _direct_entry(config, entry.table_entry, "meter")
    _meter_write_type(update_type)
    found.meter_config = decode_meter_config(entry.config) if entry.HasField("config") \
        else None
    found.meter_state = None
    config.pipeline.program.generation.bump()


def read_direct_meters(config: PipelineConfig, request: Any, sink: ReadSink) -> None:
    def fill(out: Any, found: Any) -> None:
        if found.meter_config is not None:
            encode_meter_config(found.meter_config, out.config)
    _direct_read(config, request, sink, "meter", fill)


# -- registers ----------------------------------------------------------------------

def write_register(config: PipelineConfig, update_type: int, entry: Any) -> None:
    """MODIFY of one cell, or of every cell without an index (PI has no registers;
    this is the spec's behaviour)."""
    info = _extern(config.registers, entry.register_id)
    if update_type != Update.MODIFY:
        _write_type(update_type, "registers")
        raise invalid("DELETE update type not supported for registers")
    register = info.obj
    if entry.data.WhichOneof("data") != "bitstring":
        raise invalid("Register data must be a bitstring")
    value = to_int(entry.data.bitstring, register.bitwidth)
    for index in _indices(entry, register.size):
        register.values[index] = value


def read_registers(config: PipelineConfig, request: Any, sink: ReadSink) -> None:
    infos = [_extern(config.registers, request.register_id)] if request.register_id \
        else list(config.registers.values())
    for info in infos:
        register = info.obj
        for index in _indices(request, register.size):
            entry = sink.add().register_entry
            entry.register_id = info.id
            entry.index.index = index
            entry.data.bitstring = int_to_bytes(register.values[index])


# -- parser value sets ----------------------------------------------------------------

def write_value_set(config: PipelineConfig, update_type: int, entry: Any) -> None:
    """MODIFY replaces the members of a value set (the spec; PI has none)."""
    found = config.value_sets.get(entry.value_set_id)
    if found is None:
        raise invalid(INVALID_ID)
    if update_type != Update.MODIFY:
        _write_type(update_type, "value sets")
        raise invalid("DELETE update type not supported for value sets")
    value_set, specs, size = found
    values = []
    for member in entry.members:
        value = 0
        by_id = {fm.field_id: fm for fm in member.match}
        for spec in specs:
            fm = by_id.get(spec.id)
            if fm is None or fm.WhichOneof("field_match_type") != "exact":
                raise invalid(f"Value set member needs an exact value for '{spec.name}'")
            value = (value << spec.bitwidth) | to_int(fm.exact.value, spec.bitwidth)
        values.append(value)
    if size and len(set(values)) > size:
        raise exhausted(f"Value set holds at most {size} members, got {len(set(values))}")
    value_set.clear()
    for value in values:
        value_set.add(value)


def read_value_sets(config: PipelineConfig, request: Any, sink: ReadSink) -> None:
    ids = [request.value_set_id] if request.value_set_id else list(config.value_sets)
    for value_set_id in ids:
        found = config.value_sets.get(value_set_id)
        if found is None:
            raise invalid(INVALID_ID)
        value_set, specs, _size = found
        entry = sink.add().value_set_entry
        entry.value_set_id = value_set_id
        for padded in sorted(value_set.values):  # the engine keeps byte-padded keys
            member = entry.members.add()
            shift = sum(8 * ((spec.bitwidth + 7) // 8) for spec in specs)
            for spec in specs:
                shift -= 8 * ((spec.bitwidth + 7) // 8)
                part = (padded >> shift) & ((1 << spec.bitwidth) - 1)
                member.match.add(field_id=spec.id).exact.value = int_to_bytes(part)
