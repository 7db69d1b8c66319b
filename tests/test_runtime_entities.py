"""Entities besides table entries, over real gRPC: counters, meters, registers,
action profiles, parser value sets, multicast groups and clone sessions."""

from __future__ import annotations

import grpc
import pytest
from rawclient import Client, Names, Served, failed_write, own_program, rpc_error, update
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from p4runtime_lib.protos import code_pb2, p4runtime_pb2

INSERT, MODIFY, DELETE = (p4runtime_pb2.Update.INSERT, p4runtime_pb2.Update.MODIFY,
                          p4runtime_pb2.Update.DELETE)
Entity = p4runtime_pb2.Entity
PRE = p4runtime_pb2.PacketReplicationEngineEntry
OK, INVALID, EXISTS, NOT_FOUND = (code_pb2.OK, code_pb2.INVALID_ARGUMENT,
                                  code_pb2.ALREADY_EXISTS, code_pb2.NOT_FOUND)


@pytest.fixture
def tables(served: Served) -> tuple[Client, Names]:
    names, device_config = own_program("tables")
    return served.primary(names, device_config), names


@pytest.fixture
def replicate(served: Served) -> tuple[Client, Names]:
    names, device_config = own_program("replicate")
    return served.primary(names, device_config), names


def udp_frame(sport: int = 0x1234, dst: str = "10.1.2.3") -> bytes:
    return bytes(Ether(src="00:00:00:00:00:01", dst="00:00:00:00:00:02")
                 / IP(src="10.0.0.1", dst=dst) / UDP(sport=sport, dport=80) / b"x")


def report(frame: bytes) -> dict[str, int]:
    start = 14 + 20 + 8
    return {"member": frame[start + 3], "color": frame[start + 4],
            "seen": int.from_bytes(frame[start + 5:start + 9], "big")}


def route_everything(client: Client, names: Names, port: int = 2) -> None:
    """tables.p4 forwards nothing by default: send all of 10/8 to ``port``."""
    entry = p4runtime_pb2.TableEntry(table_id=names["MyIngress.route"])
    entry.match.add(field_id=1).exact.value = b"\x01"
    lpm = entry.match.add(field_id=2).lpm
    lpm.value, lpm.prefix_len = b"\x0a\x00\x00\x00", 8
    entry.action.action.action_id = names["MyIngress.set_route"]
    entry.action.action.params.add(param_id=1, value=b"\x01")
    entry.action.action.params.add(param_id=2, value=bytes([port]))
    client.write(update(INSERT, table_entry=entry))


# -- counters, meters, registers ---------------------------------------------------------

def counter(names: Names, index: int | None = None, packets: int = 0,
            nbytes: int = 0) -> p4runtime_pb2.CounterEntry:
    entry = p4runtime_pb2.CounterEntry(counter_id=names["MyIngress.port_packets"])
    if index is not None:
        entry.index.index = index
    if packets or nbytes:
        entry.data.packet_count, entry.data.byte_count = packets, nbytes
    return entry


def test_indirect_counters(served: Served, tables: tuple[Client, Names]) -> None:
    client, names = tables
    route_everything(client, names)
    frame = udp_frame()
    served.switch.receive(1, frame)
    served.switch.receive(1, frame)
    (one,) = client.read(Entity(counter_entry=counter(names, 1)))
    assert (one.counter_entry.data.packet_count, one.counter_entry.data.byte_count) == \
        (2, 2 * len(frame))
    whole = client.read(Entity(counter_entry=counter(names)))
    assert [e.counter_entry.index.index for e in whole] == list(range(16))
    everything = client.read(Entity(counter_entry=p4runtime_pb2.CounterEntry()))
    assert everything == whole
    client.write(update(MODIFY, counter_entry=counter(names, 4, 10, 1000)))
    (four,) = client.read(Entity(counter_entry=counter(names, 4)))
    assert four.counter_entry == counter(names, 4, 10, 1000)
    client.write(update(MODIFY, counter_entry=counter(names, packets=7, nbytes=70)))  # all
    assert {e.counter_entry.data.packet_count
            for e in client.read(Entity(counter_entry=counter(names)))} == {7}
    client.write(update(DELETE, counter_entry=counter(names, 4)))  # PI: DELETE resets
    reset = client.read(Entity(counter_entry=counter(names, 4)))[0].counter_entry.data
    assert (reset.packet_count, reset.byte_count) == (0, 0)
    unknown = counter(names, 1)
    unknown.counter_id = names["MyIngress.acl_hits"]  # a direct counter's id
    errors = failed_write(client, update(INSERT, counter_entry=counter(names, 1, 1)),
                          update(MODIFY, counter_entry=counter(names, 16, 1)),
                          update(MODIFY, counter_entry=counter(names, -1, 1)),
                          update(MODIFY, counter_entry=unknown))
    assert errors == [(INVALID, "INSERT update type not supported for counters"),
                      (code_pb2.OUT_OF_RANGE, "Index 16 is out of range (size 16)"),
                      (INVALID, "A negative number is not a valid index value"),
                      (INVALID, "Invalid P4 id")]
    error = rpc_error(client.read, Entity(counter_entry=counter(names, 99)))
    assert error.code() == grpc.StatusCode.OUT_OF_RANGE


def test_indirect_meters(served: Served, tables: tuple[Client, Names]) -> None:
    client, names = tables
    route_everything(client, names)
    meter = p4runtime_pb2.MeterEntry(meter_id=names["MyIngress.port_meter"])
    meter.index.index = 1
    (unset,) = client.read(Entity(meter_entry=meter))
    assert not unset.meter_entry.HasField("config")
    meter.config.cir, meter.config.cburst, meter.config.pir, meter.config.pburst = 1, 1, 1, 1
    client.write(update(MODIFY, meter_entry=meter))
    assert client.read(Entity(meter_entry=meter))[0].meter_entry == meter
    for _ in range(2):
        served.switch.receive(1, udp_frame())
    assert [report(f)["color"] for f in served.ports[2].frames] == [0, 2]  # green, red
    meter.ClearField("config")
    client.write(update(MODIFY, meter_entry=meter))  # no config: unconfigured again
    served.switch.receive(1, udp_frame())
    assert report(served.ports[2].frames[-1])["color"] == 0
    bad = p4runtime_pb2.MeterEntry()
    bad.CopyFrom(meter)
    bad.config.pburst = 2**33
    errors = failed_write(client, update(MODIFY, meter_entry=bad),
                          update(INSERT, meter_entry=meter))
    assert errors == [(code_pb2.UNIMPLEMENTED, "Pburst too large"),
                      (INVALID, "INSERT update type not supported for meters")]


def test_registers(served: Served, tables: tuple[Client, Names]) -> None:
    client, names = tables
    route_everything(client, names)
    register = p4runtime_pb2.RegisterEntry(register_id=names["MyIngress.seen_by_source"])
    register.index.index = 0x234  # srcPort 0x1234 [9:0]
    register.data.bitstring = b"\x00\x00\x00\x29"
    client.write(update(MODIFY, register_entry=register))
    served.switch.receive(1, udp_frame(sport=0x1234))
    assert report(served.ports[2].frames[0])["seen"] == 42
    (read,) = client.read(Entity(register_entry=register))
    assert read.register_entry.data.bitstring == b"\x2a"  # canonical
    assert len(client.read(Entity(register_entry=p4runtime_pb2.RegisterEntry()))) == 1024
    wide = p4runtime_pb2.RegisterEntry()
    wide.CopyFrom(register)
    wide.data.bitstring = b"\x01\x00\x00\x00\x00"
    errors = failed_write(client, update(MODIFY, register_entry=wide))
    assert errors == [(INVALID, "Bytestring provided does not fit within 32 bits")]


# -- action profiles ---------------------------------------------------------------------

def member(names: Names, member_id: int, value: int) -> p4runtime_pb2.ActionProfileMember:
    entry = p4runtime_pb2.ActionProfileMember(action_profile_id=names["MyIngress.spread"],
                                              member_id=member_id)
    entry.action.action_id = names["MyIngress.pick"]
    entry.action.params.add(param_id=1, value=bytes([value]))
    return entry


def group(names: Names, group_id: int, *members: int,
          weight: int = 1, max_size: int = 0) -> p4runtime_pb2.ActionProfileGroup:
    entry = p4runtime_pb2.ActionProfileGroup(action_profile_id=names["MyIngress.spread"],
                                             group_id=group_id, max_size=max_size)
    for member_id in members:
        entry.members.add(member_id=member_id, weight=weight)
    return entry


def spread_entry(names: Names, dst: bytes, **reference: int) -> p4runtime_pb2.TableEntry:
    entry = p4runtime_pb2.TableEntry(table_id=names["MyIngress.spread_table"])
    entry.match.add(field_id=1).exact.value = dst
    for key, value in reference.items():
        setattr(entry.action, key, value)
    return entry


def test_action_profile_members_groups_and_indirect_entries(
        served: Served, tables: tuple[Client, Names]) -> None:
    client, names = tables
    route_everything(client, names)
    client.write(update(INSERT, action_profile_member=member(names, 1, 0x11)),
                 update(INSERT, action_profile_member=member(names, 2, 0x22)),
                 update(INSERT, action_profile_group=group(names, 10, 1, 2)),
                 update(INSERT, table_entry=spread_entry(names, b"\x0a\x01\x02\x03",
                                                         action_profile_group_id=10)),
                 update(INSERT, table_entry=spread_entry(names, b"\x0a\x00\x00\x09",
                                                         action_profile_member_id=2)))
    seen = set()
    for sport in range(40):
        served.switch.receive(1, udp_frame(sport=sport))
        seen.add(report(served.ports[2].frames[-1])["member"])
    assert seen == {0x11, 0x22}  # the selector hash spreads flows over both members
    served.switch.receive(1, udp_frame(dst="10.0.0.9"))
    assert report(served.ports[2].frames[-1])["member"] == 0x22
    members = client.read(Entity(action_profile_member=p4runtime_pb2.ActionProfileMember()))
    assert [e.action_profile_member for e in members] == [member(names, 1, 0x11),
                                                           member(names, 2, 0x22)]
    (read,) = client.read(Entity(action_profile_group=group(names, 10)))
    assert read.action_profile_group == group(names, 10, 1, 2)
    client.write(update(MODIFY, action_profile_member=member(names, 2, 0x33)),
                 update(MODIFY, action_profile_group=group(names, 10, 2)))
    served.switch.receive(1, udp_frame())
    assert report(served.ports[2].frames[-1])["member"] == 0x33
    read_entries = client.read(Entity(table_entry=p4runtime_pb2.TableEntry(
        table_id=names["MyIngress.spread_table"])))
    assert {e.table_entry.action.WhichOneof("type") for e in read_entries} == \
        {"action_profile_group_id", "action_profile_member_id"}
    errors = failed_write(
        client,
        update(INSERT, action_profile_member=member(names, 1, 0x11)),
        update(MODIFY, action_profile_member=member(names, 5, 0x11)),
        update(DELETE, action_profile_member=member(names, 5, 0x11)),
        update(INSERT, action_profile_group=group(names, 10, 1)),
        update(INSERT, action_profile_group=group(names, 11, 7)),
        update(INSERT, action_profile_group=group(names, 12, 1, 1)),
        update(INSERT, action_profile_group=group(names, 13, 1, weight=0)),
        update(INSERT, action_profile_group=group(names, 14, 1, max_size=-1)),
        update(MODIFY, action_profile_group=group(names, 10, 1, max_size=3)),
        update(DELETE, action_profile_group=group(names, 15)),
        update(INSERT, action_profile_group=group(names, 16, 1, weight=2)),
    )
    assert errors == [
        (EXISTS, "Duplicate member id: 1"),
        (NOT_FOUND, "Member id does not exist: 5"),
        (NOT_FOUND, "Member id does not exist: 5"),
        (EXISTS, "Duplicate group id: 10"),
        (NOT_FOUND, "Member id does not exist: 7"),
        (INVALID, "Duplicate member id 1 for group 12, use weights instead"),
        (INVALID, "Member weight must be a positive integer value"),
        (INVALID, "Group max_size cannot be less than 0"),
        (INVALID, "Cannot change group max_size after group creation"),
        (NOT_FOUND, "Group id does not exist: 15"),
        (code_pb2.UNIMPLEMENTED, "Member weights other than 1 are not supported by this "
                                 "switch"),
    ]
    error = rpc_error(client.read, Entity(action_profile_group=group(names, 99)))
    assert (error.code(), error.details()) == (grpc.StatusCode.NOT_FOUND,
                                               "Group id does not exist: 99")


# -- parser value sets -----------------------------------------------------------------

def test_parser_value_set_members(served: Served) -> None:
    names, device_config = own_program("stacks")
    client = served.primary(names, device_config)

    def label(value: int, bos: int) -> bytes:
        return ((value << 12) | (bos << 8) | 64).to_bytes(4, "big")

    frame = bytes(Ether(src="00:00:00:00:00:01", dst="00:00:00:00:00:02", type=0x9000)) \
        + label(5, 0) + label(6, 1) + bytes(IP(src="10.0.0.1", dst="10.0.0.2"))
    served.switch.receive(2, frame)
    assert served.ports[1].frames[-1][5] == 0  # not a tunnel: no labels parsed
    entry = p4runtime_pb2.ValueSetEntry(value_set_id=names["MyParser.tunnel_types"])
    entry.members.add().match.add(field_id=1).exact.value = b"\x90\x00"
    entry.members.add().match.add(field_id=1).exact.value = b"\x00\x00\x91\x00"  # padded
    client.write(update(MODIFY, value_set_entry=entry))
    served.switch.receive(2, frame)
    assert served.ports[1].frames[-1][5] == 1  # two labels parsed: the last one is index 1
    (read,) = client.read(Entity(value_set_entry=p4runtime_pb2.ValueSetEntry(
        value_set_id=entry.value_set_id)))
    assert [m.match[0].exact.value for m in read.value_set_entry.members] == \
        [b"\x90\x00", b"\x91\x00"]
    too_many = p4runtime_pb2.ValueSetEntry(value_set_id=entry.value_set_id)
    for value in range(5):
        too_many.members.add().match.add(field_id=1).exact.value = bytes([value + 1])
    errors = failed_write(client, update(MODIFY, value_set_entry=too_many),
                          update(INSERT, value_set_entry=entry))
    assert errors == [(code_pb2.RESOURCE_EXHAUSTED, "Value set holds at most 4 members, got 5"),
                      (INVALID, "INSERT update type not supported for value sets")]


# -- packet replication engine ------------------------------------------------------------

def mc_group(group_id: int, *replicas: tuple[int | bytes, int]) -> PRE:
    entry = PRE()
    entry.multicast_group_entry.multicast_group_id = group_id
    for port, instance in replicas:
        if isinstance(port, bytes):
            entry.multicast_group_entry.replicas.add(port=port, instance=instance)
        else:
            entry.multicast_group_entry.replicas.add(egress_port=port, instance=instance)
    return entry


def session(session_id: int, *replicas: tuple[int, int], cos: int = 0,
            length: int = 0) -> PRE:
    entry = PRE()
    clone = entry.clone_session_entry
    clone.session_id, clone.class_of_service, clone.packet_length_bytes = session_id, cos, length
    for port, instance in replicas:
        clone.replicas.add(egress_port=port, instance=instance)
    return entry


def fwd(names: Names, dst: int, action_name: str, *params: bytes) -> p4runtime_pb2.TableEntry:
    entry = p4runtime_pb2.TableEntry(table_id=names["MyIngress.fwd"])
    entry.match.add(field_id=1).exact.value = dst.to_bytes(6, "big")
    entry.action.action.action_id = names[action_name]
    for param_id, value in enumerate(params, start=1):
        entry.action.action.params.add(param_id=param_id, value=value)
    return entry


def tagged(dst: int) -> bytes:
    return dst.to_bytes(6, "big") + bytes(6) + b"\x99\x99" + bytes(5)


def test_multicast_groups(served: Served, replicate: tuple[Client, Names]) -> None:
    client, names = replicate
    group = mc_group(1, (2, 5), (b"\x00\x03", 6))
    client.write(update(INSERT, packet_replication_engine_entry=group),
                 update(INSERT, table_entry=fwd(names, 0xAA, "MyIngress.flood", b"\x01")))
    served.switch.receive(1, tagged(0xAA))
    # the egress rid lands in the tag: each copy says which replica it is
    assert [f[15:17] for f in served.ports[2].frames + served.ports[3].frames] == \
        [b"\x00\x05", b"\x00\x06"]
    (read,) = client.read(Entity(packet_replication_engine_entry=mc_group(1)))
    assert read.packet_replication_engine_entry == group  # port kinds as written
    client.write(update(MODIFY, packet_replication_engine_entry=mc_group(1, (1, 1))))
    (read,) = client.read(Entity(packet_replication_engine_entry=mc_group(0)))
    assert read.packet_replication_engine_entry == mc_group(1, (1, 1))
    errors = failed_write(
        client,
        update(INSERT, packet_replication_engine_entry=group),
        update(INSERT, packet_replication_engine_entry=mc_group(0, (1, 1))),
        update(INSERT, packet_replication_engine_entry=mc_group(1 << 15, (1, 1))),
        update(INSERT, packet_replication_engine_entry=mc_group(2, (1, 1), (1, 1))),
        update(INSERT, packet_replication_engine_entry=mc_group(3, (b"", 1))),
        update(MODIFY, packet_replication_engine_entry=mc_group(4, (1, 1))),
        update(DELETE, packet_replication_engine_entry=mc_group(4)),
        update(INSERT, packet_replication_engine_entry=PRE()),
    )
    assert errors == [
        (EXISTS, "Multicast group already exists"),
        (INVALID, "0 is not a valid group id"),
        (code_pb2.OUT_OF_RANGE, "Group id value is too high"),
        (INVALID, "Duplicate replica in multicast group"),
        (INVALID, "Port must not be the empty string"),
        (NOT_FOUND, "Multicast group does not exist"),
        (NOT_FOUND, "Multicast group does not exist"),
        (INVALID, "Invalid PRE operation"),
    ]
    client.write(update(DELETE, packet_replication_engine_entry=mc_group(1)))
    error = rpc_error(client.read, Entity(packet_replication_engine_entry=mc_group(1)))
    assert (error.code(), error.details()) == (grpc.StatusCode.NOT_FOUND,
                                               "Multicast group does not exist")


def test_clone_sessions(served: Served, replicate: tuple[Client, Names]) -> None:
    client, names = replicate
    client.write(update(INSERT, packet_replication_engine_entry=session(5, (3, 1), length=9)),
                 update(INSERT, table_entry=fwd(names, 0xBB, "MyIngress.clone_ingress",
                                                b"\x00\x00\x00\x05", b"\x00\x02")))
    served.switch.receive(1, tagged(0xBB))
    assert len(served.ports[2].frames) == 1  # the original
    (clone,) = served.ports[3].frames
    assert len(clone) == 9  # truncated to the session's packet_length_bytes
    (read,) = client.read(Entity(packet_replication_engine_entry=session(5)))
    assert read.packet_replication_engine_entry == session(5, (3, 1), length=9)
    errors = failed_write(
        client,
        update(INSERT, packet_replication_engine_entry=session(5, (1, 1))),
        update(INSERT, packet_replication_engine_entry=session(0, (1, 1))),
        update(INSERT, packet_replication_engine_entry=session(40000, (1, 1))),
        update(INSERT, packet_replication_engine_entry=session(6, (1, 1), cos=2)),
        update(MODIFY, packet_replication_engine_entry=session(7, (1, 1))),
        update(DELETE, packet_replication_engine_entry=session(5)),
    )
    assert errors == [
        (EXISTS, "Clone session id already exists"),
        (INVALID, "0 is not a valid session id"),
        (INVALID, "Clone session id out-of-range"),
        (code_pb2.UNIMPLEMENTED, "COS for clone sessions not supported yet"),
        (NOT_FOUND, "Clone session id does not exist"),
        (OK, ""),
    ]
    everything = client.read(Entity(packet_replication_engine_entry=PRE()))
    assert everything == []
