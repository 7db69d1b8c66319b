"""Table entries over real gRPC: PI's per-update errors, default entries, reads,
direct counters and meters, and packets through the programmed switch."""

from __future__ import annotations

import hashlib
from typing import Any

import grpc
import pytest
from rawclient import P4_DIR, Client, Names, Served, failed_write, own_program, rpc_error, update
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from p4runtime_lib.protos import code_pb2, p4runtime_pb2

INSERT, MODIFY, DELETE = (p4runtime_pb2.Update.INSERT, p4runtime_pb2.Update.MODIFY,
                          p4runtime_pb2.Update.DELETE)
TableEntry = p4runtime_pb2.TableEntry
Entity = p4runtime_pb2.Entity
OK, INVALID, EXISTS, NOT_FOUND, DENIED = (code_pb2.OK, code_pb2.INVALID_ARGUMENT,
                                          code_pb2.ALREADY_EXISTS, code_pb2.NOT_FOUND,
                                          code_pb2.PERMISSION_DENIED)


@pytest.fixture
def tables(served: Served) -> tuple[Client, Names]:
    names, device_config = own_program("tables")
    return served.primary(names, device_config), names


@pytest.fixture
def metered(served: Served) -> tuple[Client, Names]:
    names, device_config = own_program("runtime")
    return served.primary(names, device_config), names


def test_runtime_program_is_compiled_from_its_source() -> None:
    stamp = (P4_DIR / "runtime.p4.sha256").read_text().split()[0]
    assert stamp == hashlib.sha256((P4_DIR / "runtime.p4").read_bytes()).hexdigest()


# -- entry builders (raw protobuf, no library under test) --------------------------------

def action(names: Names, name: str, *params: bytes) -> p4runtime_pb2.TableAction:
    table_action = p4runtime_pb2.TableAction()
    table_action.action.action_id = names[name]
    for param_id, value in enumerate(params, start=1):
        table_action.action.params.add(param_id=param_id, value=value)
    return table_action


def route(names: Names, port: bytes = b"\x01", prefix: bytes = b"\x0a\x01\x00\x00",
          length: int = 16, value: bytes = b"\x07", egress: bytes = b"\x02",
          **fields: Any) -> TableEntry:
    entry = TableEntry(table_id=names["MyIngress.route"], **fields)
    entry.match.add(field_id=1).exact.value = port
    lpm = entry.match.add(field_id=2).lpm
    lpm.value, lpm.prefix_len = prefix, length
    entry.action.CopyFrom(action(names, "MyIngress.set_route", value, egress))
    return entry


def acl(names: Names, priority: int = 10, src: tuple[bytes, bytes] | None = None,
        ports: tuple[bytes, bytes] | None = None, protocol: bytes | None = None,
        mark: bytes = b"\x05", **fields: Any) -> TableEntry:
    entry = TableEntry(table_id=names["MyIngress.acl"], priority=priority, **fields)
    if src is not None:
        ternary = entry.match.add(field_id=1).ternary
        ternary.value, ternary.mask = src
    if ports is not None:
        rng = entry.match.add(field_id=2).range
        rng.low, rng.high = ports
    if protocol is not None:
        entry.match.add(field_id=3).optional.value = protocol
    entry.action.CopyFrom(action(names, "MyIngress.mark_acl", mark))
    return entry


def default(names: Names, table: str, action_name: str | None = None,
            *params: bytes) -> TableEntry:
    entry = TableEntry(table_id=names[table], is_default_action=True)
    if action_name is not None:
        entry.action.CopyFrom(action(names, action_name, *params))
    return entry


def udp_frame(src: str = "10.0.0.1", dst: str = "10.1.2.3", sport: int = 0x1234,
              dport: int = 80, proto: int | None = None) -> bytes:
    ip = IP(src=src, dst=dst) if proto is None else IP(src=src, dst=dst, proto=proto)
    return bytes(Ether(src="00:00:00:00:00:01", dst="00:00:00:00:00:02") / ip
                 / UDP(sport=sport, dport=dport) / b"x")


def report(frame: bytes) -> dict[str, int]:
    """tables.p4's report header (after ethernet / ipv4 / udp)."""
    start = 14 + 20 + 8
    acl_, route_, konst, member, color = frame[start:start + 5]
    return {"acl": acl_, "route": route_, "konst": konst, "member": member, "color": color,
            "seen": int.from_bytes(frame[start + 5:start + 9], "big")}


def entries(client: Client, **fields: Any) -> list[TableEntry]:
    return [e.table_entry for e in client.read(Entity(table_entry=TableEntry(**fields)))]


# -- PI's errors, one batch per program -------------------------------------------------

def test_match_key_errors(tables: tuple[Client, Names]) -> None:
    client, names = tables
    wrong_kind = route(names)
    wrong_kind.match[1].ClearField("lpm")
    wrong_kind.match[1].exact.value = b"\x0a\x01\x00\x00"
    unknown_field = route(names)
    unknown_field.match[0].field_id = 9
    missing_exact = route(names)
    del missing_exact.match[0]
    duplicate_field = acl(names, src=(b"\x0a\x00\x00\x00", b"\xff\x00\x00\x00"))
    duplicate_field.match.add().CopyFrom(duplicate_field.match[0])
    errors = failed_write(
        client,
        update(INSERT, table_entry=route(names)),
        update(INSERT, table_entry=route(names, value=b"\x08")),
        update(INSERT, table_entry=route(names, port=b"\x02\x00")),
        update(INSERT, table_entry=route(names, port=b"\x00\x00\x01\xff")),  # padded, fits
        update(INSERT, table_entry=route(names, prefix=b"\x0a\x01\x00\x01")),
        update(INSERT, table_entry=route(names, prefix=b"\x00\x00\x00\x00", length=0)),
        update(INSERT, table_entry=route(names, length=33)),
        update(INSERT, table_entry=route(names, port=b"\x03", priority=5)),
        update(INSERT, table_entry=wrong_kind),
        update(INSERT, table_entry=unknown_field),
        update(INSERT, table_entry=missing_exact),
        update(INSERT, table_entry=duplicate_field),
        update(INSERT, table_entry=acl(names, priority=0, src=(b"\x0a", b"\xff"))),
        update(INSERT, table_entry=acl(names, src=(b"\x0a", b"\x00"))),
        update(INSERT, table_entry=acl(names, src=(b"\x0b", b"\x0a"))),
        update(INSERT, table_entry=acl(names, ports=(b"\x10", b"\x01"))),
        update(INSERT, table_entry=acl(names, ports=(b"\x00", b"\xff\xff"))),
        update(INSERT, table_entry=acl(names, src=(b"\x01\x00\x00\x00\x00", b"\xff"))),
    )
    assert errors == [
        (OK, ""),
        (EXISTS, "Match entry exists, use MODIFY if you wish to change action"),
        (INVALID, "Bytestring provided does not fit within 9 bits"),
        (OK, ""),
        (INVALID, "Invalid LPM value, incorrect number of trailing zeros"),
        (INVALID, "Invalid reprsentation of 'don't care' LPM match, omit match field instead "
                  "of using a prefix length of 0"),
        (INVALID, "Prefix length cannot be > bitwidth"),
        (INVALID, "Non-zero priority for non-ternary match"),
        (INVALID, "Invalid match type"),
        (INVALID, "Unknown field in match key"),
        (INVALID, "Missing non-ternary field 'standard_metadata.ingress_port' in match key"),
        (INVALID, "Duplicate field 'hdr.ipv4.srcAddr' in match key"),
        (INVALID, "Zero priority for ternary match"),
        (INVALID, "Invalid representation of 'don't care' ternary match, omit match field "
                  "instead of using 0 mask"),
        (INVALID, "Invalid ternary value, make sure value & mask == value"),
        (INVALID, "Invalid range value, make sure low <= high"),
        (INVALID, "Invalid representation of 'don't care' range match, omit match field "
                  "instead of using low=0 and high=2**bitwidth-1"),
        (INVALID, "Bytestring provided does not fit within 32 bits"),
    ]
    # CONTINUE_ON_ERROR: the two good updates were applied
    assert len(entries(client, table_id=names["MyIngress.route"])) == 2


def test_action_and_update_errors(tables: tuple[Client, Names]) -> None:
    client, names = tables
    unknown_table = route(names)
    unknown_table.table_id = 0x02000001
    unknown_action = route(names)
    unknown_action.action.action.action_id = 0x01000001
    other_table_action = route(names)
    other_table_action.action.CopyFrom(action(names, "MyIngress.pick", b"\x01"))
    missing_param = route(names)
    del missing_param.action.action.params[1]
    unknown_param = route(names)
    unknown_param.action.action.params[1].param_id = 7
    no_action = route(names, port=b"\x05")
    no_action.ClearField("action")
    indirect_with_action = TableEntry(table_id=names["MyIngress.spread_table"])
    indirect_with_action.match.add(field_id=1).exact.value = b"\x0a\x00\x00\x01"
    indirect_with_action.action.CopyFrom(action(names, "MyIngress.pick", b"\x01"))
    unknown_member = TableEntry()
    unknown_member.CopyFrom(indirect_with_action)
    unknown_member.action.action_profile_member_id = 3
    direct_with_member = route(names, port=b"\x06")
    direct_with_member.action.action_profile_member_id = 3
    konst = TableEntry(table_id=names["MyIngress.konst"], priority=1)
    ternary = konst.match.add(field_id=1).ternary
    ternary.value, ternary.mask = b"\x01", b"\xff"
    konst.action.CopyFrom(action(names, "MyIngress.set_konst", b"\x01"))
    empty = p4runtime_pb2.Update(type=INSERT)
    errors = failed_write(
        client,
        update(INSERT, table_entry=unknown_table),
        update(INSERT, table_entry=unknown_action),
        update(INSERT, table_entry=other_table_action),
        update(INSERT, table_entry=missing_param),
        update(INSERT, table_entry=unknown_param),
        update(INSERT, table_entry=route(names, value=b"\x01\x00")),
        update(INSERT, table_entry=no_action),
        update(INSERT, table_entry=indirect_with_action),
        update(INSERT, table_entry=unknown_member),
        update(INSERT, table_entry=direct_with_member),
        update(INSERT, table_entry=konst),
        update(MODIFY, table_entry=route(names, port=b"\x07")),
        update(DELETE, table_entry=route(names, port=b"\x07")),
        update(p4runtime_pb2.Update.UNSPECIFIED, table_entry=route(names)),
        empty,
        update(INSERT, table_entry=route(names, port=b"\x08", idle_timeout_ns=10**9)),
        update(INSERT, table_entry=route(names, port=b"\x09",
                                         meter_config=p4runtime_pb2.MeterConfig(cir=1))),
        update(INSERT, table_entry=route(names, port=b"\x0a",
                                         counter_data=p4runtime_pb2.CounterData())),
    )
    spread = names["MyIngress.spread_table"]
    assert errors == [
        (INVALID, "Invalid P4 id"),
        (INVALID, "Invalid P4 id"),
        (INVALID, "Invalid action for table"),
        (INVALID, "Unexpected number of action parameters ('MyIngress.set_route' takes 2, "
                  "got 1)"),
        (INVALID, "Unknown action parameter (id 7 of 'MyIngress.set_route')"),
        (INVALID, "Bytestring provided does not fit within 8 bits"),
        (INVALID, "'action' field must be set"),
        (INVALID, f"Cannot provide direct action for indirect table {spread}"),
        (INVALID, "Invalid member / group id (no member 3 in 'MyIngress.spread')"),
        (INVALID, f"Cannot provide indirect action for direct table "
                  f"{names['MyIngress.route']}"),
        (DENIED, "Table 'MyIngress.konst' is const: its entries are fixed by the P4 program"),
        (NOT_FOUND, "Cannot find match entry"),
        (NOT_FOUND, "Cannot find match entry"),
        (INVALID, "Update type is not set"),
        (code_pb2.UNKNOWN, "Incorrect entity type"),
        (INVALID, "idle_timeout_ns must be set to 0 for tables which do not support idle "
                  "timeout"),
        (INVALID, "Table has no direct meters"),
        (INVALID, "Table has no direct counters"),
    ]


def test_action_scopes_and_const_default(metered: tuple[Client, Names]) -> None:
    client, names = metered
    entry = TableEntry(table_id=names["MyIngress.metered"])
    entry.match.add(field_id=1).exact.value = b"\x02"
    entry.action.CopyFrom(action(names, "MyIngress.miss"))
    errors = failed_write(
        client,
        update(INSERT, table_entry=entry),
        update(MODIFY, table_entry=default(names, "MyIngress.metered",
                                           "MyIngress.forward_only_in_entries", b"\x01")),
        update(MODIFY, table_entry=default(names, "MyIngress.metered", "MyIngress.forward",
                                           b"\x01")),
        update(MODIFY, table_entry=default(names, "MyIngress.fixed_default",
                                           "MyIngress.to_port", b"\x01")),
        update(MODIFY, table_entry=default(names, "MyIngress.fixed_default")),
        update(INSERT, table_entry=default(names, "MyIngress.metered", "MyIngress.miss")),
        update(DELETE, table_entry=default(names, "MyIngress.metered")),
        update(MODIFY, table_entry=TableEntry(table_id=names["MyIngress.metered"],
                                              is_default_action=True, priority=3)),
    )
    fixed = names["MyIngress.fixed_default"]
    assert errors == [
        (DENIED, "Cannot use DEFAULT_ONLY action in table entry"),
        (DENIED, "Cannot use TABLE_ONLY action as default action"),
        (OK, ""),
        (DENIED, f"Cannot set / reset default action for table {fixed} which has a const "
                 "default action"),
        (DENIED, f"Cannot set / reset default action for table {fixed} which has a const "
                 "default action"),
        (INVALID, "Cannot use INSERT for default entry"),
        (INVALID, "Cannot use DELETE for default entry"),
        (INVALID, "Non-zero priority for default entry"),
    ]


def test_full_table_is_resource_exhausted_and_the_rest_of_the_batch_applies(
        metered: tuple[Client, Names]) -> None:
    client, names = metered

    def source(prefix: int) -> TableEntry:
        entry = TableEntry(table_id=names["MyIngress.fixed_default"])
        lpm = entry.match.add(field_id=1).lpm
        lpm.value, lpm.prefix_len = prefix.to_bytes(6, "big"), 48
        entry.action.CopyFrom(action(names, "MyIngress.to_port", b"\x01"))
        return entry

    metered_entry = TableEntry(table_id=names["MyIngress.metered"])
    metered_entry.match.add(field_id=1).exact.value = b"\x09"
    metered_entry.action.CopyFrom(action(names, "MyIngress.forward", b"\x02"))
    errors = failed_write(client, *(update(INSERT, table_entry=source(i)) for i in range(1, 6)),
                          update(INSERT, table_entry=metered_entry))
    assert errors == [(OK, "")] * 4 + [
        (code_pb2.RESOURCE_EXHAUSTED, "Table 'MyIngress.fixed_default' is full (4 entries)"),
        (OK, "")]
    assert len(entries(client)) == 5


# -- default entries ------------------------------------------------------------------------

def test_default_entry_modify_read_and_reset(served: Served,
                                            tables: tuple[Client, Names]) -> None:
    client, names = tables
    query = default(names, "MyIngress.route")
    (initial,) = entries(client, table_id=names["MyIngress.route"], is_default_action=True)
    assert initial == default(names, "MyIngress.route", "MyIngress.no_route")
    client.write(update(MODIFY, table_entry=default(names, "MyIngress.route",
                                                    "MyIngress.set_route", b"\x00\x09",
                                                    b"\x00\x03")))
    (changed,) = client.read(Entity(table_entry=query))
    assert changed.table_entry == default(names, "MyIngress.route", "MyIngress.set_route",
                                          b"\x09", b"\x03")  # canonical
    served.switch.receive(1, udp_frame())
    assert report(served.ports[3].frames[0])["route"] == 9
    client.write(update(MODIFY, table_entry=query))  # no action: back to the P4 default
    assert client.read(Entity(table_entry=query))[0].table_entry == initial
    # every table's default at once (table_id 0), in P4Info order
    defaults = entries(client, is_default_action=True)
    assert [e.table_id for e in defaults] == [t.preamble.id for t in names.p4info.tables]


# -- reads ----------------------------------------------------------------------------------

def test_read_back_is_canonical_and_a_key_finds_one_entry_or_none(
        tables: tuple[Client, Names]) -> None:
    client, names = tables
    padded = route(names, port=b"\x00\x01", prefix=b"\x0a\x01\x00\x00", value=b"\x00",
                   egress=b"\x00\x02")
    client.write(update(INSERT, table_entry=padded),
                 update(INSERT, table_entry=route(names, port=b"\x02")))
    canonical = route(names, port=b"\x01", value=b"\x00", egress=b"\x02")
    (read,) = client.read(Entity(table_entry=route(names, port=b"\x00\x00\x01")))
    assert read.table_entry == canonical
    missing = route(names, port=b"\x04")
    assert client.read(Entity(table_entry=missing)) == []
    assert len(entries(client, table_id=names["MyIngress.route"])) == 2


def test_wildcard_read_filters(tables: tuple[Client, Names]) -> None:
    client, names = tables
    client.write(
        update(INSERT, table_entry=acl(names, priority=10, src=(b"\x0a\x00\x00\x00",
                                                                b"\xff\x00\x00\x00"))),
        update(INSERT, table_entry=acl(names, priority=20, protocol=b"\x11",
                                       controller_metadata=77, metadata=b"note")),
        update(INSERT, table_entry=route(names)))
    acl_id = names["MyIngress.acl"]
    assert [e.priority for e in entries(client, table_id=acl_id, priority=20)] == [20]
    assert [e.metadata for e in entries(client, table_id=acl_id,
                                        controller_metadata=77)] == [b"note"]
    assert [e.priority for e in entries(client, table_id=acl_id, metadata=b"note")] == [20]
    by_action = TableEntry(table_id=names["MyIngress.route"])
    by_action.action.action.action_id = names["MyIngress.no_route"]
    assert client.read(Entity(table_entry=by_action)) == []
    by_action.action.action.action_id = names["MyIngress.set_route"]
    assert len(client.read(Entity(table_entry=by_action))) == 1
    # everything, const entries included, and the optional field read back as written
    everything = entries(client)
    assert len(everything) == 2 + 1 + 3
    optional = next(e for e in everything if e.priority == 20)
    assert optional.match[0].optional.value == b"\x11"


def test_modify_replaces_action_and_controller_data(tables: tuple[Client, Names]) -> None:
    client, names = tables
    client.write(update(INSERT, table_entry=route(names, controller_metadata=5,
                                                  metadata=b"first")))
    client.write(update(MODIFY, table_entry=route(names, value=b"\x08")))
    (read,) = entries(client, table_id=names["MyIngress.route"])
    assert (read.action.action.params[0].value, read.controller_metadata, read.metadata) == \
        (b"\x08", 0, b"")
    client.write(update(DELETE, table_entry=route(names, value=b"\x01")))  # action ignored
    assert entries(client, table_id=names["MyIngress.route"]) == []


# -- packets through the programmed switch -----------------------------------------------

def test_priorities_and_match_kinds_decide_what_packets_hit(served: Served,
                                                          tables: tuple[Client, Names]) -> None:
    client, names = tables
    client.write(
        update(INSERT, table_entry=route(names, prefix=b"\x0a\x00\x00\x00", length=8,
                                         egress=b"\x02")),
        update(INSERT, table_entry=acl(names, priority=10, src=(b"\x0a\x00\x00\x00",
                                                                b"\xff\x00\x00\x00"),
                                       mark=b"\x01")),
        update(INSERT, table_entry=acl(names, priority=20, ports=(b"\x00\x50", b"\x00\x60"),
                                       mark=b"\x02")),
        update(INSERT, table_entry=acl(names, priority=30, protocol=b"\x06", mark=b"\x03")))
    for frame, expected in ((udp_frame(dport=80), 2), (udp_frame(dport=81), 2),
                            (udp_frame(dport=200), 1), (udp_frame(src="11.0.0.1", dport=7),
                                                        0xEE)):
        served.ports[2].frames.clear()
        served.switch.receive(1, frame)
        (out,) = served.ports[2].frames
        assert report(out)["acl"] == expected
        assert report(out)["konst"] == 1  # const entries: 0x1234 hits 0x1000 &&& 0xF000 first


def test_direct_counters_count_and_can_be_read_written_and_reset(
        served: Served, tables: tuple[Client, Names]) -> None:
    client, names = tables
    hit = acl(names, priority=10, src=(b"\x0a\x00\x00\x00", b"\xff\x00\x00\x00"))
    client.write(update(INSERT, table_entry=hit))
    frame = udp_frame()
    for _ in range(3):
        served.switch.receive(1, frame)
    with_counters = TableEntry(table_id=names["MyIngress.acl"])
    with_counters.counter_data.SetInParent()
    (read,) = client.read(Entity(table_entry=with_counters))
    assert (read.table_entry.counter_data.packet_count,
            read.table_entry.counter_data.byte_count) == (3, 3 * len(frame))
    direct = p4runtime_pb2.DirectCounterEntry()
    direct.table_entry.CopyFrom(hit)
    direct.table_entry.ClearField("action")
    (read,) = client.read(Entity(direct_counter_entry=direct))
    assert read.direct_counter_entry.data.packet_count == 3
    direct.data.packet_count, direct.data.byte_count = 100, 1000
    client.write(update(MODIFY, direct_counter_entry=direct))
    (read,) = client.read(Entity(direct_counter_entry=p4runtime_pb2.DirectCounterEntry(
        table_entry=TableEntry(table_id=names["MyIngress.acl"]))))
    assert (read.direct_counter_entry.data.packet_count,
            read.direct_counter_entry.data.byte_count) == (100, 1000)
    client.write(update(DELETE, direct_counter_entry=direct))  # PI: DELETE resets
    (read,) = client.read(Entity(direct_counter_entry=direct))
    assert read.direct_counter_entry.data.packet_count == 0
    errors = failed_write(client, update(INSERT, direct_counter_entry=direct),
                          update(MODIFY, direct_counter_entry=p4runtime_pb2.DirectCounterEntry(
                              table_entry=route(names))))
    assert errors == [(INVALID, "INSERT update type not supported for counters"),
                      (INVALID, "Table has no direct counters")]


def test_direct_meter_config_colours_packets(served: Served,
                                             metered: tuple[Client, Names]) -> None:
    client, names = metered
    entry = TableEntry(table_id=names["MyIngress.metered"], idle_timeout_ns=5 * 10**9)
    entry.match.add(field_id=1).exact.value = b"\x00\x00\x00\x00\x00\x02"
    entry.action.CopyFrom(action(names, "MyIngress.forward", b"\x02"))
    entry.meter_config.cir, entry.meter_config.cburst = 1, 1
    entry.meter_config.pir, entry.meter_config.pburst = 1, 1
    client.write(update(INSERT, table_entry=entry))
    frame = bytes(Ether(src="00:00:00:00:00:01", dst="00:00:00:00:00:02", type=0x1234))
    for _ in range(2):
        served.switch.receive(1, frame)
    colours = [out[11] for out in served.ports[2].frames]  # last byte of the source MAC
    assert colours == [0, 2]  # green, then red: one packet per second at most
    query = TableEntry(table_id=names["MyIngress.metered"])
    query.meter_config.SetInParent()
    (read,) = entries(client, table_id=names["MyIngress.metered"])
    assert read.idle_timeout_ns == 5 * 10**9 and not read.HasField("meter_config")
    (read,) = client.read(Entity(table_entry=query))
    assert read.table_entry.meter_config == entry.meter_config
    direct = p4runtime_pb2.DirectMeterEntry()
    direct.table_entry.table_id = names["MyIngress.metered"]
    direct.table_entry.match.add().CopyFrom(entry.match[0])
    direct.config.cir = direct.config.pir = -1  # PI's "no limit"
    direct.config.cburst = direct.config.pburst = -1
    client.write(update(MODIFY, direct_meter_entry=direct))
    (read,) = client.read(Entity(direct_meter_entry=p4runtime_pb2.DirectMeterEntry(
        table_entry=TableEntry(table_id=names["MyIngress.metered"]))))
    assert read.direct_meter_entry.config == direct.config
    served.ports[2].frames.clear()
    served.switch.receive(1, frame)
    assert served.ports[2].frames[0][11] == 0
    bad = p4runtime_pb2.DirectMeterEntry()
    bad.CopyFrom(direct)
    bad.config.cir = -5
    errors = failed_write(client, update(MODIFY, direct_meter_entry=bad),
                          update(DELETE, direct_meter_entry=direct),
                          update(INSERT, table_entry=TableEntry(
                              table_id=entry.table_id, match=[entry.match[0]],
                              action=entry.action, idle_timeout_ns=-1)))
    assert errors == [(INVALID, "Negative meter CIR"),
                      (INVALID, "DELETE update type not supported for meters"),
                      (INVALID, "idle_timeout_ns must be a positive value")]


def test_time_since_last_hit_is_checked(tables: tuple[Client, Names],
                                        served: Served) -> None:
    client, names = tables
    query = TableEntry(table_id=names["MyIngress.route"])
    query.time_since_last_hit.SetInParent()
    error = rpc_error(client.read, Entity(table_entry=query))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("Do not set time_since_last_hit")
    written = route(names)
    written.time_since_last_hit.elapsed_ns = 1
    errors = failed_write(client, update(INSERT, table_entry=written))
    assert errors == [(INVALID, "has_time_since_last_hit must not be set in WriteRequest")]
