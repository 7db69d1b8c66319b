"""Entities other than table entries: counters, meters, registers, the packet
replication engine, action profiles and parser value sets."""

from __future__ import annotations

from typing import Any

from p4runtime_lib.protos import p4runtime_pb2
from p4switch.engine import (
    CloneSession,
    DuplicateEntry,
    EntryNotFound,
    InvalidEntry,
    TableFull,
)

from .bytestrings import canonical, to_int
from .config import ExternInfo, PipelineConfig
from .errors import (
    INVALID_ID,
    already_exists,
    exhausted,
    invalid,
    not_found,
    out_of_range,
    unimplemented,
)
from .table_entries import (
    decode_action,
    decode_match,
    decode_meter_config,
    encode_call,
    encode_match,
    table_info,
)

Update = p4runtime_pb2.Update
MAX_GROUP_ID = 0xFFFF  # BMv2's multicast group ids are 16 bits


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
        raise invalid(f"Index {index} is out of range (size {size})")
    return index


def _only_modify(update_type: int, what: str) -> None:
    if update_type == Update.UNSPECIFIED:
        raise invalid("Update type is not set")
    if update_type != Update.MODIFY:
        raise invalid(f"Update type for {what} must be MODIFY")


# -- counters ------------------------------------------------------------------------

def write_counter(config: PipelineConfig, update_type: int, entry: Any) -> None:
    info = _extern(config.counters, entry.counter_id)
    _only_modify(update_type, "counters")
    counter = info.obj
    data = entry.data
    indices = [_index(entry, counter.size)] if entry.HasField("index") else range(counter.size)
    for index in indices:
        counter.packets[index] = data.packet_count
        counter.bytes[index] = data.byte_count


def read_counters(config: PipelineConfig, request: Any) -> list[p4runtime_pb2.Entity]:
    infos = [_extern(config.counters, request.counter_id)] if request.counter_id \
        else list(config.counters.values())
    out = []
    for info in infos:
        counter = info.obj
        indices = [_index(request, counter.size)] if request.HasField("index") \
            else range(counter.size)
        for index in indices:
            entity = p4runtime_pb2.Entity()
            entry = entity.counter_entry
            entry.counter_id = info.id
            entry.index.index = index
            entry.data.packet_count = counter.packets[index]
            entry.data.byte_count = counter.bytes[index]
            out.append(entity)
    return out


def _direct_entry(config: PipelineConfig, table_entry: Any) -> tuple[Any, Any]:
    info = table_info(config, table_entry.table_id)
    if table_entry.is_default_action:
        raise unimplemented("Direct resources of the default entry are not supported")
    match, priority = decode_match(info, table_entry)
    entry = info.table.find(match, priority)
    if entry is None:
        raise not_found("Cannot find match entry")
    return info, entry


def write_direct_counter(config: PipelineConfig, update_type: int, entry: Any) -> None:
    _only_modify(update_type, "direct counters")
    info, found = _direct_entry(config, entry.table_entry)
    if not info.direct_counter_id:
        raise invalid(f"Table '{info.name}' has no direct counter")
    found.packets = entry.data.packet_count
    found.bytes = entry.data.byte_count


def read_direct_counters(config: PipelineConfig, request: Any) -> list[p4runtime_pb2.Entity]:
    table_entry = request.table_entry
    if table_entry.table_id == 0:
        infos = [t for t in config.tables.values() if t.direct_counter_id]
    else:
        infos = [table_info(config, table_entry.table_id)]
    out = []
    for info in infos:
        if not info.direct_counter_id:
            raise invalid(f"Table '{info.name}' has no direct counter")
        entries = [_direct_entry(config, table_entry)[1]] if table_entry.match \
            else list(info.table.entries())
        for found in entries:
            entity = p4runtime_pb2.Entity()
            direct = entity.direct_counter_entry
            direct.table_entry.table_id = info.id
            encode_match(info, found, direct.table_entry)
            if info.needs_priority:
                direct.table_entry.priority = found.priority
            direct.data.packet_count = found.packets
            direct.data.byte_count = found.bytes
            out.append(entity)
    return out


# -- meters ----------------------------------------------------------------------------

def write_meter(config: PipelineConfig, update_type: int, entry: Any) -> None:
    info = _extern(config.meters, entry.meter_id)
    _only_modify(update_type, "meters")
    if not entry.HasField("index"):
        raise unimplemented("Wildcard write is not supported for indirect meters yet")
    index = _index(entry, info.obj.size)
    meter_config = decode_meter_config(entry.config) if entry.HasField("config") else None
    info.obj.configure(index, meter_config)
    config.pipeline.program.generation.bump()


def read_meters(config: PipelineConfig, request: Any) -> list[p4runtime_pb2.Entity]:
    infos = [_extern(config.meters, request.meter_id)] if request.meter_id \
        else list(config.meters.values())
    out = []
    for info in infos:
        meter = info.obj
        indices = [_index(request, meter.size)] if request.HasField("index") \
            else range(meter.size)
        for index in indices:
            entity = p4runtime_pb2.Entity()
            entry = entity.meter_entry
            entry.meter_id = info.id
            entry.index.index = index
            current = meter.configs.get(index)
            if current is not None:
                entry.config.cir, entry.config.cburst = current.cir, current.cburst
                entry.config.pir, entry.config.pburst = current.pir, current.pburst
            out.append(entity)
    return out


def write_direct_meter(config: PipelineConfig, update_type: int, entry: Any) -> None:
    _only_modify(update_type, "direct meters")
    info, found = _direct_entry(config, entry.table_entry)
    if not info.direct_meter_id:
        raise invalid(f"Table '{info.name}' has no direct meter")
    found.meter_config = decode_meter_config(entry.config) if entry.HasField("config") else None
    found.meter_state = None
    config.pipeline.program.generation.bump()


# -- registers ------------------------------------------------------------------------

def write_register(config: PipelineConfig, update_type: int, entry: Any) -> None:
    info = _extern(config.registers, entry.register_id)
    _only_modify(update_type, "registers")
    register = info.obj
    if entry.data.WhichOneof("data") != "bitstring":
        raise invalid("Register data must be a bitstring")
    value = to_int(entry.data.bitstring, register.bitwidth)
    if entry.HasField("index"):
        register.values[_index(entry, register.size)] = value
    else:
        register.values[:] = [value] * register.size


def read_registers(config: PipelineConfig, request: Any) -> list[p4runtime_pb2.Entity]:
    infos = [_extern(config.registers, request.register_id)] if request.register_id \
        else list(config.registers.values())
    out = []
    for info in infos:
        register = info.obj
        indices = [_index(request, register.size)] if request.HasField("index") \
            else range(register.size)
        for index in indices:
            entity = p4runtime_pb2.Entity()
            entry = entity.register_entry
            entry.register_id = info.id
            entry.index.index = index
            entry.data.bitstring = canonical(register.values[index])
            out.append(entity)
    return out


# -- packet replication engine ------------------------------------------------------

def _replicas(replicas: Any) -> list[tuple[int, int]]:
    out = []
    for replica in replicas:
        if replica.WhichOneof("port_kind") == "port":
            if not replica.port:
                raise invalid("Port must not be the empty string")
            port = int.from_bytes(replica.port, "big")
        else:
            port = replica.egress_port
        if port > 0x1FF:
            raise invalid(f"Port {port} does not fit in BMv2's 9-bit port numbers")
        out.append((port, replica.instance))
    return out


def write_pre(config: PipelineConfig, update_type: int, entry: Any) -> None:
    pre = config.pipeline.pre
    kind = entry.WhichOneof("type")
    if update_type == Update.UNSPECIFIED:
        raise invalid("Update type is not set")
    if kind == "multicast_group_entry":
        group = entry.multicast_group_entry
        gid = group.multicast_group_id
        if gid == 0:
            raise invalid("0 is not a valid group id")
        if gid > MAX_GROUP_ID:
            raise out_of_range("Group id value is too high")
        exists = gid in pre.groups
        if update_type == Update.INSERT and exists:
            raise already_exists(f"Multicast group {gid} already exists")
        if update_type in (Update.MODIFY, Update.DELETE) and not exists:
            raise not_found(f"Multicast group {gid} does not exist")
        if update_type == Update.DELETE:
            pre.delete_group(gid)
        else:
            pre.set_group(gid, _replicas(group.replicas))
    elif kind == "clone_session_entry":
        session = entry.clone_session_entry
        sid = session.session_id
        if sid == 0:
            raise invalid("0 is not a valid session id")
        exists = sid in pre.sessions
        if update_type == Update.INSERT and exists:
            raise already_exists(f"Clone session {sid} already exists")
        if update_type in (Update.MODIFY, Update.DELETE) and not exists:
            raise not_found(f"Clone session {sid} does not exist")
        if update_type == Update.DELETE:
            pre.delete_session(sid)
        else:
            pre.set_session(sid, CloneSession(_replicas(session.replicas),
                                              session.class_of_service,
                                              session.packet_length_bytes))
    else:
        raise invalid("Invalid PRE operation")


def read_pre(config: PipelineConfig, request: Any) -> list[p4runtime_pb2.Entity]:
    pre = config.pipeline.pre
    kind = request.WhichOneof("type")
    out = []
    if kind in (None, "multicast_group_entry"):
        wanted = request.multicast_group_entry.multicast_group_id if kind else 0
        for gid, replicas in sorted(pre.groups.items()):
            if wanted and gid != wanted:
                continue
            entity = p4runtime_pb2.Entity()
            group = entity.packet_replication_engine_entry.multicast_group_entry
            group.multicast_group_id = gid
            for port, rid in replicas:
                group.replicas.add(egress_port=port, instance=rid)
            out.append(entity)
    if kind in (None, "clone_session_entry"):
        wanted = request.clone_session_entry.session_id if kind else 0
        for sid, session in sorted(pre.sessions.items()):
            if wanted and sid != wanted:
                continue
            entity = p4runtime_pb2.Entity()
            entry = entity.packet_replication_engine_entry.clone_session_entry
            entry.session_id = sid
            entry.class_of_service = session.class_of_service
            entry.packet_length_bytes = session.packet_length_bytes
            for port, instance in session.replicas:
                entry.replicas.add(egress_port=port, instance=instance)
            out.append(entity)
    return out


# -- action profiles ------------------------------------------------------------------

def _profile(config: PipelineConfig, profile_id: int) -> Any:
    info = config.profiles.get(profile_id)
    if info is None:
        raise invalid(INVALID_ID)
    return info


def write_profile_member(config: PipelineConfig, update_type: int, member: Any) -> None:
    info = _profile(config, member.action_profile_id)
    profile = info.profile
    try:
        if update_type == Update.DELETE:
            profile.delete_member(member.member_id)
            return
        if update_type not in (Update.INSERT, Update.MODIFY):
            raise invalid("Update type is not set")
        table = config.tables[info.table_ids[0]] if info.table_ids else None
        if table is None:
            raise invalid(f"Action profile '{info.name}' is not used by any table")
        fake = p4runtime_pb2.TableEntry(table_id=table.id)
        fake.action.action.CopyFrom(member.action)
        saved, table.profile_id = table.profile_id, 0
        try:
            call = decode_action(config, table, fake)[0]
        finally:
            table.profile_id = saved
        if update_type == Update.INSERT:
            profile.add_member(member.member_id, call)
        else:
            profile.modify_member(member.member_id, call)
    except DuplicateEntry as exc:
        raise already_exists(str(exc)) from exc
    except EntryNotFound as exc:
        raise not_found(str(exc)) from exc
    except TableFull as exc:
        raise exhausted(str(exc)) from exc
    except InvalidEntry as exc:
        raise invalid(str(exc)) from exc


def write_profile_group(config: PipelineConfig, update_type: int, group: Any) -> None:
    info = _profile(config, group.action_profile_id)
    profile = info.profile
    try:
        if update_type == Update.DELETE:
            profile.delete_group(group.group_id)
            return
        if update_type not in (Update.INSERT, Update.MODIFY):
            raise invalid("Update type is not set")
        members = [m.member_id for m in group.members]
        max_size = group.max_size or info.max_group_size
        profile.set_group(group.group_id, members, max_size, create=update_type == Update.INSERT)
    except DuplicateEntry as exc:
        raise already_exists(str(exc)) from exc
    except EntryNotFound as exc:
        raise not_found(str(exc)) from exc
    except InvalidEntry as exc:
        raise invalid(str(exc)) from exc


def read_profile_members(config: PipelineConfig, request: Any) -> list[p4runtime_pb2.Entity]:
    infos = [_profile(config, request.action_profile_id)] if request.action_profile_id \
        else list(config.profiles.values())
    out = []
    for info in infos:
        table = config.tables[info.table_ids[0]]
        for member_id, call in sorted(info.profile.members.items()):
            if request.member_id and member_id != request.member_id:
                continue
            entity = p4runtime_pb2.Entity()
            member = entity.action_profile_member
            member.action_profile_id, member.member_id = info.id, member_id
            holder = p4runtime_pb2.TableEntry()
            encode_call(config, table, call, holder)
            member.action.CopyFrom(holder.action.action)
            out.append(entity)
    return out


def read_profile_groups(config: PipelineConfig, request: Any) -> list[p4runtime_pb2.Entity]:
    infos = [_profile(config, request.action_profile_id)] if request.action_profile_id \
        else list(config.profiles.values())
    out = []
    for info in infos:
        for group_id, members in sorted(info.profile.groups.items()):
            if request.group_id and group_id != request.group_id:
                continue
            entity = p4runtime_pb2.Entity()
            group = entity.action_profile_group
            group.action_profile_id, group.group_id = info.id, group_id
            group.max_size = info.profile.group_max.get(group_id, 0)
            for member_id in members:
                group.members.add(member_id=member_id, weight=1)
            out.append(entity)
    return out


# -- parser value sets ------------------------------------------------------------------

def write_value_set(config: PipelineConfig, update_type: int, entry: Any) -> None:
    found = config.value_sets.get(entry.value_set_id)
    if found is None:
        raise invalid(INVALID_ID)
    _only_modify(update_type, "value sets")
    value_set, specs = found
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
    value_set.clear()
    for value in values:
        value_set.add(value)


def read_value_sets(config: PipelineConfig, request: Any) -> list[p4runtime_pb2.Entity]:
    ids = [request.value_set_id] if request.value_set_id else list(config.value_sets)
    out = []
    for value_set_id in ids:
        found = config.value_sets.get(value_set_id)
        if found is None:
            raise invalid(INVALID_ID)
        value_set, specs = found
        entity = p4runtime_pb2.Entity()
        entry = entity.value_set_entry
        entry.value_set_id = value_set_id
        for padded in sorted(value_set.values):
            member = entry.members.add()
            shift = sum(8 * ((s.bitwidth + 7) // 8) for s in specs)
            for spec in specs:
                shift -= 8 * ((spec.bitwidth + 7) // 8)
                part = (padded >> shift) & ((1 << spec.bitwidth) - 1)
                member.match.add(field_id=spec.id).exact.value = canonical(part)
        out.append(entity)
    return out
