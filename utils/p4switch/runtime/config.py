"""A forwarding pipeline config: the P4Info, the BMv2 JSON, and the map between them.

P4Runtime names objects by P4Info id; the engine by the JSON's names, which
p4c makes equal to the P4Info names.  ``PipelineConfig`` checks that the two
describe the same program and precomputes, per id, everything a write or read
needs, so requests do no name lookups.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from p4protos import p4info_pb2
from p4protos.wire import varint
from p4switch.engine import ActionDef, ConfigError, MatchTable, Pipeline

from .digests import DigestManager

MatchField = p4info_pb2.MatchField
ENGINE_KINDS = {
    MatchField.EXACT: "exact", MatchField.LPM: "lpm", MatchField.TERNARY: "ternary",
    MatchField.RANGE: "range", MatchField.OPTIONAL: "optional",
}
KIND_NAMES = {value: name.lower() for name, value in MatchField.MatchType.items()}
TABLE_AND_DEFAULT = p4info_pb2.ActionRef.TABLE_AND_DEFAULT
TABLE_ONLY = p4info_pb2.ActionRef.TABLE_ONLY
DEFAULT_ONLY = p4info_pb2.ActionRef.DEFAULT_ONLY


class MismatchError(ConfigError):
    """The P4Info and the BMv2 JSON do not describe the same program."""


@dataclass
class FieldSpec:
    id: int
    name: str
    bitwidth: int
    match_type: int
    position: int

    @property
    def mask(self) -> int:
        return (1 << self.bitwidth) - 1


@dataclass
class ParamSpec:
    id: int
    name: str
    bitwidth: int
    position: int


@dataclass
class ActionInfo:
    id: int
    name: str
    params: dict[int, ParamSpec]
    ordered: list[ParamSpec]


@dataclass
class TableAction:
    info: ActionInfo
    engine: ActionDef
    scope: int


@dataclass
class TableInfo:
    id: int
    name: str
    table: MatchTable
    fields: dict[int, FieldSpec]
    ordered: list[FieldSpec]
    actions: dict[int, TableAction]
    needs_priority: bool
    const_default: bool
    is_const: bool
    profile_id: int = 0
    action_ids: dict[str, int] = field(default_factory=dict)
    single: bool = False  # one exact or LPM field: decode_match's fast path
    fast_insert: bool = False  # single, direct and not const: insert_wire applies
    # the serialized FieldMatch's field_id of the single field (insert_wire's check)
    field_head: bytes = b""
    # serialized TableAction -> validated ActionCall, shared by the entries using it
    call_cache: dict[bytes, Any] = field(default_factory=dict)
    # (action name, args) -> serialized TableAction, for reads
    encoded_calls: dict[tuple[str, tuple[int, ...]], bytes] = field(default_factory=dict)
    direct_counter_id: int = 0
    direct_meter_id: int = 0
    supports_timeout: bool = False


@dataclass
class ProfileInfo:
    id: int
    name: str
    profile: Any
    table_ids: list[int]
    with_selector: bool
    max_group_size: int


@dataclass
class ExternInfo:
    """A counter, meter or register array by P4Info id."""

    id: int
    name: str
    obj: Any
    size: int
    bitwidth: int = 0
    table_id: int = 0
    unit: int = 0  # CounterSpec.Unit for counters


@dataclass
class PacketMetadata:
    """The controller header (packet_in / packet_out): (id, name, bitwidth) in order."""

    fields: list[tuple[int, str, int]] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return (sum(width for _i, _n, width in self.fields) + 7) // 8


class PipelineConfig:
    """A P4Info + BMv2 JSON pair, loaded and cross-checked."""

    def __init__(self, p4info: p4info_pb2.P4Info, device_config: bytes,
                 cookie: int | None = None) -> None:
        self.p4info = p4info
        self.device_config = device_config
        self.cookie = cookie
        self.pipeline = Pipeline.from_json(device_config, start=time.monotonic())
        self.actions = self._actions()
        self.tables = self._tables()
        self.profiles = self._profiles()
        self.counters = self._externs(p4info.counters, self.pipeline.program.counters, "counter")
        self.meters = self._externs(p4info.meters, self.pipeline.program.meters, "meter")
        self.registers = self._externs(p4info.registers, self.pipeline.program.registers,
                                       "register")
        self.direct_counters = self._direct(p4info.direct_counters, "direct_counter_id")
        self.direct_meters = self._direct(p4info.direct_meters, "direct_meter_id")
        self.value_sets = self._value_sets()
        self.packet_in = self._controller_header("packet_in")
        self.packet_out = self._controller_header("packet_out")
        # how each PRE replica's port was written (bytes of ``port``, 0: egress_port)
        self.replica_forms: dict[tuple[str, int], list[int]] = {}
        self.digests = DigestManager(p4info)

    # -- actions and tables ---------------------------------------------------------
    def _actions(self) -> dict[int, ActionInfo]:
        engine_names = {action.name: action for action in self.pipeline.program.actions.values()}
        actions = {}
        for action in self.p4info.actions:
            name = action.preamble.name
            engine = engine_names.get(name)
            if engine is None:
                raise MismatchError(f"P4Info action '{name}' is not in the BMv2 JSON")
            engine_params = dict(engine.params)
            ordered = []
            for position, param in enumerate(action.params):
                if param.name not in engine_params:
                    raise MismatchError(f"action '{name}': parameter '{param.name}' is not in "
                                        "the BMv2 JSON")
                if engine_params[param.name] != param.bitwidth:
                    raise MismatchError(f"action '{name}': parameter '{param.name}' has "
                                        f"{param.bitwidth} bits in the P4Info, "
                                        f"{engine_params[param.name]} in the BMv2 JSON")
                ordered.append(ParamSpec(param.id, param.name, param.bitwidth, position))
            if len(ordered) != len(engine.params):
                raise MismatchError(f"action '{name}' has {len(engine.params)} parameters in "
                                    f"the BMv2 JSON, {len(ordered)} in the P4Info")
            actions[action.preamble.id] = ActionInfo(action.preamble.id, name,
                                                     {p.id: p for p in ordered}, ordered)
        return actions

    def _tables(self) -> dict[int, TableInfo]:
        tables = {}
        for table in self.p4info.tables:
            name = table.preamble.name
            engine = self.pipeline.tables.get(name)
            if engine is None:
                raise MismatchError(f"P4Info table '{name}' is not in the BMv2 JSON")
            if len(table.match_fields) != len(engine.key):
                raise MismatchError(f"table '{name}' has {len(engine.key)} match fields in the "
                                    f"BMv2 JSON, {len(table.match_fields)} in the P4Info")
            ordered = []
            for position, (mf, key) in enumerate(zip(table.match_fields, engine.key)):
                kind = ENGINE_KINDS.get(mf.match_type)
                if kind is None and mf.match_type == 1:  # legacy P4_14 "valid" match type
                    kind = "valid"
                if kind == "optional" and key.match_kind == "ternary":
                    kind = "ternary"  # p4c writes optional fields as ternary in the JSON
                if mf.name != key.name:
                    raise MismatchError(f"table '{name}': match field '{mf.name}' is not in "
                                        f"the BMv2 JSON (its key field {position + 1} is "
                                        f"'{key.name}')")
                if mf.bitwidth != key.bitwidth:
                    raise MismatchError(f"table '{name}': match field '{mf.name}' has "
                                        f"{mf.bitwidth} bits in the P4Info, {key.bitwidth} "
                                        "in the BMv2 JSON")
                if kind != key.match_kind:
                    raise MismatchError(f"table '{name}': match field '{mf.name}' is "
                                        f"{KIND_NAMES.get(mf.match_type, '?')} in the P4Info, "
                                        f"{key.match_kind} in the BMv2 JSON")
                ordered.append(FieldSpec(mf.id, mf.name, mf.bitwidth, mf.match_type, position))
            actions = {}
            for ref in table.action_refs:
                info = self.actions.get(ref.id)
                if info is None:
                    raise MismatchError(f"table '{name}' refers to unknown action id {ref.id}")
                engine_action = engine.actions.get(info.name)
                if engine_action is None:
                    raise MismatchError(f"table '{name}': action '{info.name}' is not allowed "
                                        "there in the BMv2 JSON")
                actions[ref.id] = TableAction(info, engine_action, ref.scope)
            tables[table.preamble.id] = TableInfo(
                id=table.preamble.id, name=name, table=engine,
                fields={f.id: f for f in ordered}, ordered=ordered, actions=actions,
                needs_priority=any(f.match_type in (MatchField.TERNARY, MatchField.RANGE,
                                                    MatchField.OPTIONAL) for f in ordered),
                const_default=bool(table.const_default_action_id), is_const=table.is_const_table,
                profile_id=table.implementation_id,
                action_ids={allowed.info.name: aid for aid, allowed in actions.items()},
                single=len(ordered) == 1 and ordered[0].match_type in (MatchField.EXACT,
                                                                         MatchField.LPM),
                supports_timeout=table.idle_timeout_behavior != 0)
            info = tables[table.preamble.id]
            info.fast_insert = info.single and not info.profile_id and not info.is_const \
                and not engine.immutable
            if info.single:
                info.field_head = b"\x08" + varint(ordered[0].id)
        return tables

    def _profiles(self) -> dict[int, ProfileInfo]:
        profiles = {}
        for profile in self.p4info.action_profiles:
            name = profile.preamble.name
            engine = self.pipeline.program.profiles.get(name)
            if engine is None:
                raise MismatchError(f"P4Info action profile '{name}' is not in the BMv2 JSON")
            profiles[profile.preamble.id] = ProfileInfo(
                profile.preamble.id, name, engine, list(profile.table_ids),
                profile.with_selector, profile.max_group_size)
        return profiles

    def _externs(self, entries: Any, engine_objects: dict[str, Any],
                 kind: str) -> dict[int, ExternInfo]:
        result = {}
        for entry in entries:
            name = entry.preamble.name
            obj = engine_objects.get(name)
            if obj is None:
                raise MismatchError(f"P4Info {kind} '{name}' is not in the BMv2 JSON")
            width = entry.type_spec.bitstring.bit.bitwidth if kind == "register" else 0
            unit = entry.spec.unit if kind == "counter" else 0
            result[entry.preamble.id] = ExternInfo(entry.preamble.id, name, obj, entry.size,
                                                   width, unit=unit)
        return result

    def _direct(self, entries: Any, attribute: str) -> dict[int, ExternInfo]:
        result = {}
        for entry in entries:
            table = self.tables.get(entry.direct_table_id)
            if table is None:
                raise MismatchError(f"direct resource '{entry.preamble.name}' refers to an "
                                    f"unknown table id {entry.direct_table_id}")
            setattr(table, attribute, entry.preamble.id)
            meter = None
            for candidate in self.pipeline.program.meters.values():
                if candidate.is_direct and candidate.binding == table.name:
                    meter = candidate
            unit = entry.spec.unit if attribute == "direct_counter_id" else 0
            result[entry.preamble.id] = ExternInfo(entry.preamble.id, entry.preamble.name,
                                                   meter, 0, 0, table.id, unit)
        return result

    def _value_sets(self) -> dict[int, tuple[Any, list[FieldSpec], int]]:
        """(engine value set, its fields, its P4Info size) by P4Info id."""
        result = {}
        for value_set in self.p4info.value_sets:
            name = value_set.preamble.name
            engine = self.pipeline.program.value_sets.get(name)
            if engine is None:
                # p4c names the JSON value set by its local name
                engine = self.pipeline.program.value_sets.get(name.rsplit(".", 1)[-1])
            if engine is None:
                raise MismatchError(f"P4Info value set '{name}' is not in the BMv2 JSON")
            specs = [FieldSpec(mf.id, mf.name, mf.bitwidth, mf.match_type, i)
                     for i, mf in enumerate(value_set.match)]
            if not engine.widths:
                engine.widths = [spec.bitwidth for spec in specs]
            result[value_set.preamble.id] = (engine, specs, value_set.size)
        return result

    def _controller_header(self, name: str) -> PacketMetadata | None:
        for header in self.p4info.controller_packet_metadata:
            if header.preamble.name == name:
                return PacketMetadata([(m.id, m.name, m.bitwidth) for m in header.metadata])
        return None


def unwrap_device_config(data: bytes) -> bytes:
    """The BMv2 JSON inside a legacy ``p4.tmp.P4DeviceConfig``, or ``data`` itself.

    P4DeviceConfig is {bool reassign = 1; Extras extras = 2; bytes device_data = 3}.
    Its module ships only with PI's own build, so the wire format is read here;
    raw JSON starts with '{' or whitespace, never a valid field tag of it.
    """
    position, device_data, end = 0, None, len(data)
    try:
        while position < end:
            tag, position = _varint(data, position)
            field, wire = tag >> 3, tag & 7
            if field == 1 and wire == 0:
                _value, position = _varint(data, position)
            elif field in (2, 3) and wire == 2:
                length, position = _varint(data, position)
                if position + length > end:
                    return data
                if field == 3:
                    device_data = data[position:position + length]
                position += length
            else:
                return data
    except IndexError:
        return data
    return device_data if device_data is not None else data


def _varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
        if shift > 63:
            raise IndexError("varint too long")
