"""SetForwardingPipelineConfig / GetForwardingPipelineConfig over real gRPC."""

from __future__ import annotations

import json
from collections.abc import Callable

import grpc
import pytest
from rawclient import Names, Served, own_program, rpc_error, update
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from p4runtime_lib.protos import p4info_pb2, p4runtime_pb2

SetAction = p4runtime_pb2.SetForwardingPipelineConfigRequest
GetRequest = p4runtime_pb2.GetForwardingPipelineConfigRequest
INSERT, MODIFY = p4runtime_pb2.Update.INSERT, p4runtime_pb2.Update.MODIFY
Entity = p4runtime_pb2.Entity


@pytest.fixture
def tables() -> tuple[Names, bytes]:
    return own_program("tables")


def varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte, number = number & 0x7F, number >> 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


def legacy_device_config(device_data: bytes) -> bytes:
    """p4.tmp.P4DeviceConfig {reassign: true, extras {kv {"a": "b"}}, device_data}
    in wire format, built by hand: the p4.tmp module ships only with PI."""
    entry = b"\x0a\x01a" + b"\x12\x01b"  # map<string, string> entry: key 1, value 2
    extras = b"\x0a" + varint(len(entry)) + entry  # Extras.kv = 1
    return (b"\x08\x01" + b"\x12" + varint(len(extras)) + extras
            + b"\x1a" + varint(len(device_data)) + device_data)


def route_entry(names: Names, port: int, prefix: int, length: int, value: int,
                egress: int) -> p4runtime_pb2.TableEntry:
    entry = p4runtime_pb2.TableEntry(table_id=names["MyIngress.route"])
    entry.match.add(field_id=1).exact.value = port.to_bytes(2, "big")
    lpm = entry.match.add(field_id=2).lpm
    lpm.value, lpm.prefix_len = prefix.to_bytes(4, "big"), length
    action = entry.action.action
    action.action_id = names["MyIngress.set_route"]
    action.params.add(param_id=1, value=bytes([value]))
    action.params.add(param_id=2, value=egress.to_bytes(2, "big"))
    return entry


def udp_frame(dst: str = "10.1.2.3") -> bytes:
    return bytes(Ether(src="00:00:00:00:00:01", dst="00:00:00:00:00:02")
                 / IP(src="10.0.0.1", dst=dst) / UDP(sport=0x1234, dport=80) / b"x")


def route_result(frame: bytes) -> int:
    """tables.p4's report.route: the report header follows ethernet/ipv4/udp."""
    return frame[14 + 20 + 8 + 1]


def get_config(served: Served,
               kind: int = GetRequest.ALL) -> p4runtime_pb2.ForwardingPipelineConfig:
    request = GetRequest(device_id=0, response_type=kind)
    return served.client().stub.GetForwardingPipelineConfig(request).config


# -- pushing --------------------------------------------------------------------------

def test_raw_json_and_get_pipeline_config_in_every_response_type(
        served: Served, tables: tuple[Names, bytes]) -> None:
    names, device_config = tables
    error = rpc_error(get_config, served)
    assert (error.code(), error.details()) == (
        grpc.StatusCode.FAILED_PRECONDITION, "No forwarding pipeline config set for this device")
    client = served.client()
    client.become_primary()
    request = SetAction(device_id=0, action=SetAction.VERIFY_AND_COMMIT)
    request.election_id.low = 1
    request.config.p4info.CopyFrom(names.p4info)
    request.config.p4_device_config = device_config
    request.config.cookie.cookie = 0xC00C1E
    client.stub.SetForwardingPipelineConfig(request)
    expected = {GetRequest.ALL: (True, True), GetRequest.COOKIE_ONLY: (False, False),
                GetRequest.P4INFO_AND_COOKIE: (True, False),
                GetRequest.DEVICE_CONFIG_AND_COOKIE: (False, True)}
    for kind, (with_p4info, with_device_config) in expected.items():
        config = get_config(served, kind)
        assert config.cookie.cookie == 0xC00C1E
        assert (config.p4info == names.p4info) == with_p4info
        assert config.HasField("p4info") == with_p4info
        assert (config.p4_device_config == device_config) == with_device_config
    error = rpc_error(get_config, served, 9)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_legacy_p4_tmp_wrapper_is_unwrapped_and_given_back_as_sent(
        served: Served, tables: tuple[Names, bytes]) -> None:
    names, device_config = tables
    client = served.client()
    client.become_primary()
    wrapped = legacy_device_config(device_config)
    client.set_pipeline(names.p4info, wrapped)
    assert served.switch.pipeline is not None
    assert "MyIngress.route" in served.switch.pipeline.tables
    assert get_config(served).p4_device_config == wrapped
    client.write(update(INSERT, table_entry=route_entry(names, 1, 0x0A010000, 16, 7, 2)))
    served.switch.receive(1, udp_frame())
    (out,) = served.ports[2].frames
    assert route_result(out) == 7


def mismatch(change: Callable[[p4info_pb2.P4Info], None]) -> p4info_pb2.P4Info:
    p4info = p4info_pb2.P4Info()
    p4info.CopyFrom(own_program("tables")[0].p4info)
    change(p4info)
    return p4info


def _table(p4info: p4info_pb2.P4Info, name: str) -> p4info_pb2.Table:
    return next(t for t in p4info.tables if t.preamble.name == name)


def _action(p4info: p4info_pb2.P4Info, name: str) -> p4info_pb2.Action:
    return next(a for a in p4info.actions if a.preamble.name == name)


MISMATCHES = [
    (lambda p: setattr(_action(p, "MyIngress.set_route").params[1], "bitwidth", 16),
     "action 'MyIngress.set_route': parameter 'port' has 16 bits in the P4Info, 9 in the "
     "BMv2 JSON"),
    (lambda p: setattr(_action(p, "MyIngress.set_route").params[0], "name", "val"),
     "action 'MyIngress.set_route': parameter 'val' is not in the BMv2 JSON"),
    (lambda p: setattr(_table(p, "MyIngress.route").match_fields[1], "name", "hdr.ipv4.dst"),
     "table 'MyIngress.route': match field 'hdr.ipv4.dst' is not in the BMv2 JSON (its key "
     "field 2 is 'hdr.ipv4.dstAddr')"),
    (lambda p: setattr(_table(p, "MyIngress.acl").match_fields[0], "bitwidth", 16),
     "table 'MyIngress.acl': match field 'hdr.ipv4.srcAddr' has 16 bits in the P4Info, 32 in "
     "the BMv2 JSON"),
    (lambda p: setattr(_table(p, "MyIngress.route").preamble, "name", "MyIngress.routes"),
     "P4Info table 'MyIngress.routes' is not in the BMv2 JSON"),
    (lambda p: setattr(_action(p, "MyIngress.pick").preamble, "name", "MyIngress.choose"),
     "P4Info action 'MyIngress.choose' is not in the BMv2 JSON"),
]


@pytest.mark.parametrize("change,message", MISMATCHES)
def test_verify_names_the_first_p4info_json_mismatch(served: Served,
                                                     tables: tuple[Names, bytes],
                                                     change: Callable[[p4info_pb2.P4Info], None],
                                                     message: str) -> None:
    client = served.client()
    client.become_primary()
    for action in (SetAction.VERIFY, SetAction.VERIFY_AND_COMMIT):
        error = rpc_error(client.set_pipeline, mismatch(change), tables[1], action)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.details() == f"Invalid forwarding pipeline config: {message}"
    assert served.switch.pipeline is None


def test_verify_accepts_a_matching_pair_without_installing_it(
        served: Served, tables: tuple[Names, bytes]) -> None:
    client = served.client()
    client.become_primary()
    client.set_pipeline(tables[0].p4info, tables[1], SetAction.VERIFY)
    assert served.switch.pipeline is None
    assert rpc_error(get_config, served).code() == grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.parametrize("device_config,fragment", [
    (b'{"header_types": [', "Invalid forwarding pipeline config: "),
    (b"{}", "not a BMv2 JSON file"),
    (json.dumps({"header_types": 5, "headers": [], "parsers": [], "deparsers": [],
                 "pipelines": []}).encode(), "Invalid forwarding pipeline config"),
    (b"", "has no p4_device_config"),
])
def test_a_broken_device_config_is_invalid_argument(served: Served,
                                                    tables: tuple[Names, bytes],
                                                    device_config: bytes,
                                                    fragment: str) -> None:
    client = served.client()
    client.become_primary()
    error = rpc_error(client.set_pipeline, tables[0].p4info, device_config)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fragment in error.details()
    assert "\n" not in error.details()
    client.set_pipeline(tables[0].p4info, tables[1])  # the server is fine


def test_missing_p4info_or_action_is_invalid_argument(served: Served,
                                                      tables: tuple[Names, bytes]) -> None:
    client = served.client()
    client.become_primary()
    error = rpc_error(client.set_pipeline, p4info_pb2.P4Info(), tables[1])
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT, "The forwarding pipeline config has no P4Info")
    error = rpc_error(client.set_pipeline, tables[0].p4info, tables[1], SetAction.UNSPECIFIED)
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT, "Invalid SetForwardingPipeline action")


# -- the state across pushes ------------------------------------------------------------

def test_verify_and_save_then_commit(served: Served, tables: tuple[Names, bytes]) -> None:
    names, device_config = tables
    replicate_names, replicate_json = own_program("replicate")
    client = served.client()
    client.become_primary()
    client.set_pipeline(replicate_names.p4info, replicate_json)
    running = served.switch.pipeline
    error = rpc_error(client.set_pipeline, names.p4info, b"", SetAction.COMMIT)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    client.set_pipeline(names.p4info, device_config, SetAction.VERIFY_AND_SAVE)
    assert served.switch.pipeline is running  # still forwarding with the old program
    client.write(update(INSERT, table_entry=route_entry(names, 1, 0x0A010000, 16, 7, 2)))
    client.set_pipeline(names.p4info, b"", SetAction.COMMIT)
    assert served.switch.pipeline is not running
    served.switch.receive(1, udp_frame())
    assert route_result(served.ports[2].frames[0]) == 7


def test_verify_and_commit_wipes_the_state(served: Served, tables: tuple[Names, bytes]) -> None:
    names, device_config = tables
    client = served.primary(names, device_config)
    client.write(update(INSERT, table_entry=route_entry(names, 1, 0x0A010000, 16, 7, 2)))
    counter = p4runtime_pb2.CounterEntry(counter_id=names["MyIngress.port_packets"])
    counter.index.index = 3
    counter.data.packet_count = 5
    client.write(update(MODIFY, counter_entry=counter))
    client.set_pipeline(names.p4info, device_config)
    assert client.read(Entity(table_entry=p4runtime_pb2.TableEntry(
        table_id=names["MyIngress.route"]))) == []
    read = client.read(Entity(counter_entry=p4runtime_pb2.CounterEntry(
        counter_id=counter.counter_id, index=counter.index)))
    assert read[0].counter_entry.data.packet_count == 0


def state(client: object) -> list[p4runtime_pb2.Entity]:
    """Everything a reconcile must keep, read back."""
    everything = p4runtime_pb2.TableEntry()
    everything.counter_data.SetInParent()
    defaults = p4runtime_pb2.TableEntry(is_default_action=True)
    return client.read(  # type: ignore[attr-defined]
        Entity(table_entry=everything), Entity(table_entry=defaults),
        Entity(counter_entry=p4runtime_pb2.CounterEntry()),
        Entity(meter_entry=p4runtime_pb2.MeterEntry()),
        Entity(register_entry=p4runtime_pb2.RegisterEntry()),
        Entity(action_profile_member=p4runtime_pb2.ActionProfileMember()),
        Entity(action_profile_group=p4runtime_pb2.ActionProfileGroup()),
        Entity(packet_replication_engine_entry=p4runtime_pb2.PacketReplicationEngineEntry()))


def program_everything(client: object, names: Names) -> None:
    updates = [update(INSERT, table_entry=route_entry(names, 1, 0x0A010000, 16, 7, 2))]
    acl = p4runtime_pb2.TableEntry(table_id=names["MyIngress.acl"], priority=10)
    ternary = acl.match.add(field_id=1).ternary
    ternary.value, ternary.mask = b"\x0a\x00\x00\x00", b"\xff\x00\x00\x00"
    acl.action.action.action_id = names["MyIngress.mark_acl"]
    acl.action.action.params.add(param_id=1, value=b"\x05")
    acl.counter_data.packet_count, acl.counter_data.byte_count = 3, 300
    updates.append(update(INSERT, table_entry=acl))
    default = p4runtime_pb2.TableEntry(table_id=names["MyIngress.route"], is_default_action=True)
    default.action.action.action_id = names["MyIngress.no_route"]
    updates.append(update(MODIFY, table_entry=default))
    member = p4runtime_pb2.ActionProfileMember(action_profile_id=names["MyIngress.spread"],
                                               member_id=4)
    member.action.action_id = names["MyIngress.pick"]
    member.action.params.add(param_id=1, value=b"\x09")
    updates.append(update(INSERT, action_profile_member=member))
    group = p4runtime_pb2.ActionProfileGroup(action_profile_id=names["MyIngress.spread"],
                                             group_id=2)
    group.members.add(member_id=4, weight=1)
    updates.append(update(INSERT, action_profile_group=group))
    counter = p4runtime_pb2.CounterEntry(counter_id=names["MyIngress.port_packets"])
    counter.index.index = 3
    counter.data.packet_count, counter.data.byte_count = 5, 500
    updates.append(update(MODIFY, counter_entry=counter))
    meter = p4runtime_pb2.MeterEntry(meter_id=names["MyIngress.port_meter"])
    meter.index.index = 1
    meter.config.cir, meter.config.cburst, meter.config.pir, meter.config.pburst = 1, 2, 3, 4
    updates.append(update(MODIFY, meter_entry=meter))
    register = p4runtime_pb2.RegisterEntry(register_id=names["MyIngress.seen_by_source"])
    register.index.index = 7
    register.data.bitstring = b"\x2a"
    updates.append(update(MODIFY, register_entry=register))
    mc = p4runtime_pb2.PacketReplicationEngineEntry()
    mc.multicast_group_entry.multicast_group_id = 3
    mc.multicast_group_entry.replicas.add(port=b"\x00\x02", instance=1)
    updates.append(update(INSERT, packet_replication_engine_entry=mc))
    client.write(*updates)  # type: ignore[attr-defined]


def test_reconcile_and_commit_keeps_the_whole_state(served: Served,
                                                    tables: tuple[Names, bytes]) -> None:
    names, device_config = tables
    client = served.primary(names, device_config)
    program_everything(client, names)
    before = state(client)
    old = served.switch.pipeline
    client.set_pipeline(names.p4info, device_config, SetAction.RECONCILE_AND_COMMIT)
    assert served.switch.pipeline is not old
    assert state(client) == before
    served.switch.receive(1, udp_frame())
    assert route_result(served.ports[2].frames[0]) == 7


def test_a_reconcile_that_cannot_keep_the_state_changes_nothing(
        served: Served, tables: tuple[Names, bytes]) -> None:
    names, device_config = tables
    client = served.primary(names, device_config)
    program_everything(client, names)
    before = state(client)
    old = served.switch.pipeline
    smaller = json.loads(device_config)
    for table in smaller["pipelines"][0]["tables"]:
        if table["name"] == "MyIngress.acl":
            table["max_size"] = 0
    error = rpc_error(client.set_pipeline, names.p4info, json.dumps(smaller).encode(),
                      SetAction.RECONCILE_AND_COMMIT)
    assert error.code() == grpc.StatusCode.UNKNOWN
    assert error.details().startswith("Error when reconciling config: Table 'MyIngress.acl' "
                                      "is full")
    assert served.switch.pipeline is old
    assert state(client) == before
