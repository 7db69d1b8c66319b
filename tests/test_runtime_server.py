"""The P4Runtime server over real gRPC, driven with the generated stub only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from rawclient import Client, batch_errors, load_p4info, update
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from p4runtime_lib.protos import code_pb2, p4runtime_pb2
from p4switch.runtime import serve
from p4switch.switch import Switch

INSERT, MODIFY, DELETE = (p4runtime_pb2.Update.INSERT, p4runtime_pb2.Update.MODIFY,
                          p4runtime_pb2.Update.DELETE)
SetAction = p4runtime_pb2.SetForwardingPipelineConfigRequest


class RecordingPort:
    """A port that keeps what the switch sends (the engine and switch are real)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.frames: list[bytes] = []

    def send(self, frame: bytes) -> None:
        self.frames.append(frame)


@pytest.fixture
def switch() -> Iterator[tuple[Switch, str]]:
    sw = Switch(device_id=0, cpu_port=64)
    for number in (1, 2, 3):
        sw.add_port(number, RecordingPort(f"port{number}"))
    server = serve(sw, "127.0.0.1:0")
    yield sw, f"127.0.0.1:{server.bound_port}"
    server.stop(0)


@pytest.fixture
def client(switch: tuple[Switch, str]) -> Iterator[Client]:
    c = Client(switch[1])
    yield c
    c.close()


class Names:
    """P4Info ids by name, so tests read like the program."""

    def __init__(self, p4info) -> None:
        self.p4info = p4info
        self.ids = {o.preamble.name: o.preamble.id
                    for kind in (p4info.tables, p4info.actions) for o in kind}

    def __getitem__(self, name: str) -> int:
        return self.ids[name]


@pytest.fixture
def lb(reference: Path) -> tuple[Names, bytes]:
    return Names(load_p4info(reference / "load_balance.p4info.txtpb")), \
        (reference / "load_balance.json").read_bytes()


def programmed(client: Client, lb: tuple[Names, bytes]) -> Names:
    names, device_config = lb
    assert client.become_primary().arbitration.status.code == code_pb2.OK
    client.set_pipeline(names.p4info, device_config)
    return names


def group_entry(names: Names, addr: bytes, plen: int = 32, base: bytes = b"\x00",
                count: bytes = b"\x02") -> p4runtime_pb2.TableEntry:
    entry = p4runtime_pb2.TableEntry(table_id=names["MyIngress.ecmp_group"])
    entry.match.add(field_id=1).lpm.CopyFrom(
        p4runtime_pb2.FieldMatch.LPM(value=addr, prefix_len=plen))
    action = entry.action.action
    action.action_id = names["MyIngress.set_ecmp_select"]
    action.params.add(param_id=1, value=base)
    action.params.add(param_id=2, value=count)
    return entry


def nhop_entry(names: Names, select: bytes, dmac: bytes, ip: bytes,
               port: bytes) -> p4runtime_pb2.TableEntry:
    entry = p4runtime_pb2.TableEntry(table_id=names["MyIngress.ecmp_nhop"])
    entry.match.add(field_id=1).exact.value = select
    action = entry.action.action
    action.action_id = names["MyIngress.set_nhop"]
    for param_id, value in enumerate((dmac, ip, port), start=1):
        action.params.add(param_id=param_id, value=value)
    return entry


def write_error(client: Client, *updates) -> list[tuple[int, str]]:
    with pytest.raises(grpc.RpcError) as info:
        client.write(*updates)
    assert info.value.code() == grpc.StatusCode.UNKNOWN
    return batch_errors(info.value)


# -- capabilities and arbitration ------------------------------------------------

def test_capabilities(client: Client) -> None:
    response = client.stub.Capabilities(p4runtime_pb2.CapabilitiesRequest())
    assert response.p4runtime_api_version == "1.3.0"


def test_primary_and_backup_are_told_their_roles(switch: tuple[Switch, str]) -> None:
    first, second, third = Client(switch[1]), Client(switch[1]), Client(switch[1])
    try:
        reply = first.become_primary(low=5).arbitration
        assert (reply.status.code, reply.status.message) == (code_pb2.OK, "Is primary")
        reply = second.become_primary(low=3).arbitration
        assert reply.status.code == code_pb2.ALREADY_EXISTS
        assert reply.election_id.low == 5  # the primary's id
        reply = third.become_primary(low=9).arbitration
        assert reply.status.code == code_pb2.OK
        # everybody hears about the new primary
        assert first.stream.receive().arbitration.status.code == code_pb2.ALREADY_EXISTS
        backup = second.stream.receive().arbitration
        assert (backup.status.code, backup.election_id.low) == (code_pb2.ALREADY_EXISTS, 9)
    finally:
        for c in (first, second, third):
            c.close()


def test_duplicate_election_id_ends_the_stream(switch: tuple[Switch, str]) -> None:
    first, second = Client(switch[1]), Client(switch[1])
    try:
        first.become_primary(low=1)
        outcome = second.become_primary(low=1)
        assert isinstance(outcome, grpc.RpcError)
        assert outcome.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert outcome.details() == "Election id already exists"
    finally:
        first.close()
        second.close()


def test_backup_takes_over_when_the_primary_leaves(switch: tuple[Switch, str]) -> None:
    primary, backup = Client(switch[1]), Client(switch[1])
    try:
        primary.become_primary(low=2)
        assert backup.become_primary(low=1).arbitration.status.code == code_pb2.ALREADY_EXISTS
        primary.close()
        promoted = backup.stream.receive(timeout=5).arbitration
        assert (promoted.status.code, promoted.election_id.low) == (code_pb2.OK, 1)
    finally:
        backup.close()


def test_wrong_device_id_is_refused(switch: tuple[Switch, str]) -> None:
    other = Client(switch[1], device_id=7)
    try:
        outcome = other.become_primary()
        assert isinstance(outcome, grpc.RpcError)
        assert outcome.code() == grpc.StatusCode.NOT_FOUND
    finally:
        other.close()


def test_only_the_primary_writes(switch: tuple[Switch, str], lb: tuple[Names, bytes]) -> None:
    primary, backup = Client(switch[1]), Client(switch[1])
    try:
        names = programmed(primary, lb)
        backup.become_primary(low=0)
        backup.election = (0, 0)
        with pytest.raises(grpc.RpcError) as info:
            backup.write(update(INSERT, table_entry=group_entry(names, b"\x0a\x00\x00\x01")))
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert info.value.details() == "Not primary"
        with pytest.raises(grpc.RpcError) as info:
            backup.set_pipeline(names.p4info, lb[1])
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        primary.close()
        backup.close()


def test_no_write_without_an_arbitrated_stream(client: Client, lb) -> None:
    names, device_config = lb
    with pytest.raises(grpc.RpcError) as info:
        client.set_pipeline(names.p4info, device_config)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED


# -- pipeline config ------------------------------------------------------------------

def test_write_before_a_pipeline_is_a_failed_precondition(client: Client, lb) -> None:
    names, _ = lb
    client.become_primary()
    with pytest.raises(grpc.RpcError) as info:
        client.write(update(INSERT, table_entry=group_entry(names, b"\x0a\x00\x00\x01")))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert info.value.details() == "No forwarding pipeline config set for this device"


def test_pipeline_push_accepts_the_legacy_p4_tmp_wrapper(switch: tuple[Switch, str],
                                                         client: Client, lb) -> None:
    names, device_config = lb
    client.become_primary()
    # p4.tmp.P4DeviceConfig {reassign: true, device_data: <json>} in wire format
    length = len(device_config)
    varint = bytearray()
    while True:
        byte, length = length & 0x7F, length >> 7
        varint.append(byte | (0x80 if length else 0))
        if not length:
            break
    wrapped = b"\x08\x01" + b"\x1a" + bytes(varint) + device_config
    client.set_pipeline(names.p4info, wrapped)
    pipeline = switch[0].pipeline
    assert pipeline is not None and pipeline.program.json == json.loads(device_config)
    client.write(update(INSERT, table_entry=group_entry(names, b"\x0a\x00\x00\x01")))


def test_a_p4info_that_does_not_match_the_json_is_refused(client: Client, lb,
                                                          reference: Path) -> None:
    _, device_config = lb
    client.become_primary()
    other = load_p4info(reference / "basic.p4info.txtpb")
    with pytest.raises(grpc.RpcError) as info:
        client.set_pipeline(other, device_config, SetAction.VERIFY)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'MyIngress.ipv4_forward' is not in the BMv2 JSON" in info.value.details()


def test_a_broken_json_is_refused(client: Client, lb) -> None:
    names, _ = lb
    client.become_primary()
    with pytest.raises(grpc.RpcError) as info:
        client.set_pipeline(names.p4info, b'{"header_types": [')
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "BMv2 JSON" in info.value.details()


def test_get_pipeline_config_response_types(client: Client, lb) -> None:
    names, device_config = lb
    request = p4runtime_pb2.GetForwardingPipelineConfigRequest(device_id=0)
    with pytest.raises(grpc.RpcError) as info:
        client.stub.GetForwardingPipelineConfig(request)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    programmed(client, lb)
    Kind = p4runtime_pb2.GetForwardingPipelineConfigRequest
    for kind, has_p4info, has_device in ((Kind.ALL, True, True), (Kind.COOKIE_ONLY, False, False),
                                         (Kind.P4INFO_AND_COOKIE, True, False),
                                         (Kind.DEVICE_CONFIG_AND_COOKIE, False, True)):
        request.response_type = kind
        config = client.stub.GetForwardingPipelineConfig(request).config
        assert config.HasField("p4info") == has_p4info
        assert (config.p4_device_config == device_config) == has_device


def test_verify_and_save_then_commit(switch, client: Client, lb) -> None:
    sw, _ = switch
    names, device_config = lb
    client.become_primary()
    client.set_pipeline(names.p4info, device_config, SetAction.VERIFY_AND_SAVE)
    assert sw.pipeline is None  # saved, not yet forwarding
    client.write(update(INSERT, table_entry=group_entry(names, b"\x0a\x00\x00\x01")))
    client.set_pipeline(names.p4info, b"", SetAction.COMMIT)
    assert sw.pipeline is not None
    assert len(client.read(p4runtime_pb2.Entity(table_entry=p4runtime_pb2.TableEntry()))) == 1


def test_reconcile_keeps_entries_and_verify_and_commit_wipes_them(client: Client, lb) -> None:
    names = programmed(client, lb)
    client.write(update(INSERT, table_entry=group_entry(names, b"\x0a\x00\x00\x01")))
    client.set_pipeline(names.p4info, lb[1], SetAction.RECONCILE_AND_COMMIT)
    everything = p4runtime_pb2.Entity(table_entry=p4runtime_pb2.TableEntry())
    assert len(client.read(everything)) == 1
    client.set_pipeline(names.p4info, lb[1], SetAction.VERIFY_AND_COMMIT)
    assert client.read(everything) == []


# -- table entries ------------------------------------------------------------------

def test_insert_read_modify_delete_with_canonical_read_back(client: Client, lb) -> None:
    names = programmed(client, lb)
    padded = nhop_entry(names, b"\x00\x00", b"\x00\x00\x00\x00\x01\x02", b"\x0a\x00\x02\x02",
                        b"\x00\x02")
    client.write(update(INSERT, table_entry=padded))
    (read,) = client.read(p4runtime_pb2.Entity(table_entry=p4runtime_pb2.TableEntry(
        table_id=names["MyIngress.ecmp_nhop"])))
    canonical = nhop_entry(names, b"\x00", b"\x01\x02", b"\x0a\x00\x02\x02", b"\x02")
    assert read.table_entry == canonical
    changed = nhop_entry(names, b"\x00", b"\x01\x03", b"\x0a\x00\x03\x03", b"\x03")
    client.write(update(MODIFY, table_entry=changed))
    (read,) = client.read(p4runtime_pb2.Entity(table_entry=p4runtime_pb2.TableEntry()))
    assert read.table_entry == changed
    client.write(update(DELETE, table_entry=canonical))  # canonical key finds it
    assert client.read(p4runtime_pb2.Entity(table_entry=p4runtime_pb2.TableEntry())) == []


def test_pi_error_codes_per_update(client: Client, lb) -> None:
    names = programmed(client, lb)
    good = group_entry(names, b"\x0a\x00\x00\x01")
    wide = group_entry(names, b"\x0a\x00\x00\x01", count=b"\x01\x00\x00\x00\x00")
    trailing = group_entry(names, b"\x0a\x00\x00\x01", plen=24)
    zero = group_entry(names, b"\x00\x00\x00\x00", plen=0)
    unknown_table = p4runtime_pb2.TableEntry()
    unknown_table.CopyFrom(good)
    unknown_table.table_id = 123
    noaction = group_entry(names, b"\x0a\x00\x00\x09")
    noaction.action.action.Clear()
    noaction.action.action.action_id = names["NoAction"]
    default_insert = p4runtime_pb2.TableEntry(table_id=names["MyIngress.ecmp_group"],
                                              is_default_action=True)
    default_insert.action.action.action_id = names["MyIngress.drop"]
    errors = write_error(
        client,
        update(INSERT, table_entry=good),
        update(INSERT, table_entry=good),
        update(INSERT, table_entry=wide),
        update(INSERT, table_entry=trailing),
        update(INSERT, table_entry=zero),
        update(INSERT, table_entry=unknown_table),
        update(INSERT, table_entry=noaction),
        update(INSERT, table_entry=default_insert),
        update(DELETE, table_entry=default_insert),
        update(DELETE, table_entry=group_entry(names, b"\x0a\x00\x00\x07")),
    )
    assert errors == [
        (code_pb2.OK, ""),
        (code_pb2.ALREADY_EXISTS, "Match entry exists, use MODIFY if you wish to change action"),
        (code_pb2.INVALID_ARGUMENT, "Bytestring provided does not fit within 32 bits"),
        (code_pb2.INVALID_ARGUMENT, "Invalid LPM value, incorrect number of trailing zeros"),
        (code_pb2.INVALID_ARGUMENT, "Invalid reprsentation of 'don't care' LPM match, omit "
                                    "match field instead of using a prefix length of 0"),
        (code_pb2.INVALID_ARGUMENT, "Invalid P4 id"),
        (code_pb2.PERMISSION_DENIED, "Cannot use DEFAULT_ONLY action in table entry"),
        (code_pb2.INVALID_ARGUMENT, "Cannot use INSERT for default entry"),
        (code_pb2.INVALID_ARGUMENT, "Cannot use DELETE for default entry"),
        (code_pb2.NOT_FOUND, "Cannot find match entry"),
    ]
    # the good update of the failed batch was applied
    assert len(client.read(p4runtime_pb2.Entity(table_entry=p4runtime_pb2.TableEntry()))) == 1


def test_full_table_is_resource_exhausted_and_the_rest_applies(client: Client, lb) -> None:
    names = programmed(client, lb)
    entries = [nhop_entry(names, bytes([i]), b"\x01", b"\x01", b"\x01") for i in range(3)]
    extra = group_entry(names, b"\x0a\x00\x00\x01")
    errors = write_error(client, *(update(INSERT, table_entry=e) for e in entries),
                         update(INSERT, table_entry=extra))
    assert errors[2] == (code_pb2.RESOURCE_EXHAUSTED,
                         "Table 'MyIngress.ecmp_nhop' is full (2 entries)")
    assert [code for code, _ in errors] == [code_pb2.OK, code_pb2.OK,
                                            code_pb2.RESOURCE_EXHAUSTED, code_pb2.OK]


def test_default_entry_modify_read_and_reset(client: Client, lb) -> None:
    names = programmed(client, lb)
    query = p4runtime_pb2.Entity(table_entry=p4runtime_pb2.TableEntry(
        table_id=names["MyIngress.ecmp_group"], is_default_action=True))
    (initial,) = client.read(query)
    assert initial.table_entry.action.action.action_id == names["NoAction"]
    drop = p4runtime_pb2.TableEntry(table_id=names["MyIngress.ecmp_group"],
                                    is_default_action=True)
    drop.action.action.action_id = names["MyIngress.drop"]
    client.write(update(MODIFY, table_entry=drop))
    assert client.read(query)[0].table_entry == drop
    client.write(update(MODIFY, table_entry=p4runtime_pb2.TableEntry(
        table_id=names["MyIngress.ecmp_group"], is_default_action=True)))
    assert client.read(query)[0] == initial


def test_programmed_switch_forwards(switch, client: Client, lb) -> None:
    sw, _ = switch
    names = programmed(client, lb)
    send_frame = p4runtime_pb2.TableEntry(table_id=names["MyEgress.send_frame"])
    send_frame.match.add(field_id=1).exact.value = b"\x02"
    send_frame.action.action.action_id = names["MyEgress.rewrite_mac"]
    send_frame.action.action.params.add(param_id=1, value=b"\x01\x02\x00")
    client.write(update(INSERT, table_entry=group_entry(names, b"\x0a\x00\x00\x01",
                                                        count=b"\x01")),
                 update(INSERT, table_entry=nhop_entry(names, b"\x00", b"\x01\x02",
                                                       b"\x0a\x00\x02\x02", b"\x02")),
                 update(INSERT, table_entry=send_frame))
    frame = bytes(Ether(src="08:00:00:00:01:01", dst="ff:ff:ff:ff:ff:ff")
                  / IP(src="10.0.1.1", dst="10.0.0.1") / TCP(sport=50000, dport=1234))
    sw.receive(1, frame)
    (out,) = sw.ports[2].frames
    packet = Ether(out)
    assert (packet.src, packet.dst, packet[IP].dst, packet[IP].ttl) == \
        ("00:00:00:01:02:00", "00:00:00:00:01:02", "10.0.2.2", 63)


# -- multicast groups and clone sessions -----------------------------------------------

def test_multicast_groups_and_clone_sessions(switch, client: Client, reference: Path) -> None:
    sw, _ = switch
    p4info = load_p4info(reference / "multicast.p4info.txtpb")
    client.become_primary()
    client.set_pipeline(p4info, (reference / "multicast.json").read_bytes())
    group = p4runtime_pb2.PacketReplicationEngineEntry()
    group.multicast_group_entry.multicast_group_id = 1
    for port in (1, 2, 3):
        group.multicast_group_entry.replicas.add(egress_port=port, instance=1)
    session = p4runtime_pb2.PacketReplicationEngineEntry()
    session.clone_session_entry.session_id = 5
    session.clone_session_entry.replicas.add(port=b"\x03", instance=2)
    client.write(update(INSERT, packet_replication_engine_entry=group),
                 update(INSERT, packet_replication_engine_entry=session))
    read = client.read(p4runtime_pb2.Entity(
        packet_replication_engine_entry=p4runtime_pb2.PacketReplicationEngineEntry()))
    assert [e.packet_replication_engine_entry.WhichOneof("type") for e in read] == \
        ["multicast_group_entry", "clone_session_entry"]
    assert read[0].packet_replication_engine_entry == group
    errors = write_error(client, update(INSERT, packet_replication_engine_entry=group))
    assert errors[0][0] == code_pb2.ALREADY_EXISTS
    frame = bytes(Ether(src="08:00:00:00:01:11", dst="ff:ff:ff:ff:ff:ff") / IP())
    sw.receive(1, frame)  # flooded to 2 and 3, pruned on the ingress port
    assert (sw.ports[1].frames, sw.ports[2].frames, sw.ports[3].frames) == ([], [frame], [frame])


def test_large_batch_of_inserts(client: Client, lb) -> None:
    names, device_config = lb
    program = json.loads(device_config)
    program["pipelines"][0]["tables"][0]["max_size"] = 100_000
    client.become_primary()
    client.set_pipeline(names.p4info, json.dumps(program).encode())
    updates = [update(INSERT, table_entry=group_entry(
        names, (0x0A000000 + (i << 8)).to_bytes(4, "big"), plen=24)) for i in range(20_000)]
    client.write(*updates)
    assert len(client.read(p4runtime_pb2.Entity(table_entry=p4runtime_pb2.TableEntry()))) \
        == 20_000
