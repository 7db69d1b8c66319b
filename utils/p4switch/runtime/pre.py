"""The packet replication engine: multicast groups and clone sessions, as PI checks them.

A replica's port may be written as ``egress_port`` (uint32) or as a ``port``
bytestring; reads give each replica back in the form it was written in.
"""

from __future__ import annotations

from typing import Any

from p4protos import p4runtime_pb2
from p4switch.engine import CloneSession

from .config import PipelineConfig
from .errors import already_exists, invalid, not_found, out_of_range, unimplemented
from .readsink import ReadSink

Update = p4runtime_pb2.Update
FIRST_RESERVED_GROUP = 1 << 15  # PI keeps the ids above for clone sessions
MAX_SESSION = 32768  # PI's clone session ids: 1 .. 32767
MAX_PORT = 0x1FF  # BMv2's 9-bit port numbers


def _replicas(replicas: Any) -> tuple[list[tuple[int, int]], list[int]]:
    """([(port, instance)], [bytes of each port: 0 for egress_port]) with PI's checks."""
    out: list[tuple[int, int]] = []
    forms: list[int] = []
    for replica in replicas:
        kind = replica.WhichOneof("port_kind")
        if kind == "egress_port":
            port, form = replica.egress_port, 0
        elif kind == "port":
            raw = replica.port
            if not raw:
                raise invalid("Port must not be the empty string")
            if len(raw) > 4:
                raise unimplemented(f"Got port of {len(raw)} bytes, but only 4 bytes are "
                                    "supported")
            port, form = int.from_bytes(raw, "big"), len(raw)
            if port >> 31:
                raise invalid("Port must be non-negative.")
        else:
            raise invalid("Missing port in multicast group replica")
        if port > MAX_PORT:
            raise invalid(f"Port {port} does not fit in BMv2's 9-bit port numbers")
        if (port, replica.instance) in out:
            raise invalid("Duplicate replica in multicast group")
        out.append((port, replica.instance))
        forms.append(form)
    return out, forms


def _add_replicas(target: Any, replicas: list[tuple[int, int]], forms: list[int]) -> None:
    for (port, instance), form in zip(replicas, forms or [0] * len(replicas)):
        if form:
            target.add(port=port.to_bytes(form, "big"), instance=instance)
        else:
            target.add(egress_port=port, instance=instance)


def _check_type(update_type: int) -> None:
    if update_type == Update.UNSPECIFIED:
        raise invalid("Update type is not set")
    if update_type not in (Update.INSERT, Update.MODIFY, Update.DELETE):
        raise invalid("Invalid update type")


def write_pre(config: PipelineConfig, update_type: int, entry: Any) -> None:
    """INSERT / MODIFY / DELETE of a multicast group or clone session."""
    kind = entry.WhichOneof("type")
    if kind == "multicast_group_entry":
        _write_group(config, update_type, entry.multicast_group_entry)
    elif kind == "clone_session_entry":
        _write_session(config, update_type, entry.clone_session_entry)
    else:
        raise invalid("Invalid PRE operation")


def _write_group(config: PipelineConfig, update_type: int, group: Any) -> None:
    pre = config.pipeline.pre
    gid = group.multicast_group_id
    if gid == 0:
        raise invalid("0 is not a valid group id")
    if gid >= FIRST_RESERVED_GROUP:
        raise out_of_range("Group id value is too high")
    _check_type(update_type)
    exists = gid in pre.groups
    if update_type == Update.INSERT and exists:
        raise already_exists("Multicast group already exists")
    if update_type != Update.INSERT and not exists:
        raise not_found("Multicast group does not exist")
    key = ("group", gid)
    if update_type == Update.DELETE:
        pre.delete_group(gid)
        config.replica_forms.pop(key, None)
        return
    replicas, forms = _replicas(group.replicas)
    pre.set_group(gid, replicas)
    config.replica_forms[key] = forms


def _write_session(config: PipelineConfig, update_type: int, session: Any) -> None:
    pre = config.pipeline.pre
    sid = session.session_id
    if sid == 0:
        raise invalid("0 is not a valid session id")
    _check_type(update_type)
    if sid >= MAX_SESSION:
        raise invalid("Clone session id out-of-range")
    exists = sid in pre.sessions
    if update_type == Update.INSERT and exists:
        raise already_exists("Clone session id already exists")
    if update_type != Update.INSERT and not exists:
        raise not_found("Clone session id does not exist")
    key = ("session", sid)
    if update_type == Update.DELETE:
        pre.delete_session(sid)
        config.replica_forms.pop(key, None)
        return
    replicas, forms = _replicas(session.replicas)
    if session.class_of_service:
        raise unimplemented("COS for clone sessions not supported yet")
    pre.set_session(sid, CloneSession(replicas, session.class_of_service,
                                      session.packet_length_bytes))
    config.replica_forms[key] = forms


def read_pre(config: PipelineConfig, request: Any, sink: ReadSink) -> None:
    """Groups and sessions by id (0 = all); an empty entry reads both kinds."""
    pre = config.pipeline.pre
    kind = request.WhichOneof("type")
    if kind in (None, "multicast_group_entry"):
        wanted = request.multicast_group_entry.multicast_group_id if kind else 0
        if wanted >= FIRST_RESERVED_GROUP:
            raise out_of_range("Group id value is too high")
        if wanted and wanted not in pre.groups:
            raise not_found("Multicast group does not exist")
        for gid in [wanted] if wanted else sorted(pre.groups):
            group = sink.add().packet_replication_engine_entry.multicast_group_entry
            group.multicast_group_id = gid
            _add_replicas(group.replicas, pre.groups[gid],
                          config.replica_forms.get(("group", gid), []))
    if kind in (None, "clone_session_entry"):
        wanted = request.clone_session_entry.session_id if kind else 0
        if wanted and wanted not in pre.sessions:
            raise not_found("Clone session id does not exist")
        for sid in [wanted] if wanted else sorted(pre.sessions):
            session = pre.sessions[sid]
            entry = sink.add().packet_replication_engine_entry.clone_session_entry
            entry.session_id = sid
            entry.class_of_service = session.class_of_service
            entry.packet_length_bytes = session.packet_length_bytes
            _add_replicas(entry.replicas, session.replicas,
                          config.replica_forms.get(("session", sid), []))
