"""Entities from names and values, validated; decoded back symmetrically.

Expected messages are written out by hand with literal ids (from the P4Info
files) and canonical bytestrings.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from p4runtime_lib.entries import (
    DecodedEntry,
    clone_session_entry,
    decode_table_entry,
    default_entry,
    delete,
    entity,
    format_table_entry,
    format_update,
    insert,
    modify,
    multicast_group_entry,
    table_entry,
    write_request,
)
from p4runtime_lib.errors import CodecError, EntryError, ValueTooWide
from p4runtime_lib.p4info import P4Info
from p4runtime_lib.protos import p4info_pb2, p4runtime_pb2

REPO = Path(__file__).resolve().parent.parent
FieldMatch = p4runtime_pb2.FieldMatch
ACL, ROUTE, SPREAD_TABLE = 37519123, 43142405, 48528738
MARK_ACL, SET_ROUTE, NO_ROUTE, NO_ACTION = 25088248, 32380709, 21288575, 21257015


@pytest.fixture(scope="module")
def lb() -> P4Info:
    return P4Info.load(REPO / "build/load_balance.p4.p4info.txtpb")


@pytest.fixture(scope="module")
def tables() -> P4Info:
    return P4Info.load(REPO / "tests/p4/tables.p4.p4info.txtpb")


def test_every_match_kind(tables: P4Info) -> None:
    built = table_entry(tables, "acl", {"hdr.ipv4.srcAddr": "10.0.0.0 &&& 255.0.0.0",
                                        "hdr.udp.dstPort": "1000..2000",
                                        "hdr.ipv4.protocol": 17},
                        "mark_acl", {"value": 7}, priority=10)
    expected = p4runtime_pb2.TableEntry(table_id=ACL, priority=10)
    expected.match.add(field_id=1, ternary=FieldMatch.Ternary(value=b"\x0a\x00\x00\x00",
                                                              mask=b"\xff\x00\x00\x00"))
    expected.match.add(field_id=2, range=FieldMatch.Range(low=b"\x03\xe8", high=b"\x07\xd0"))
    expected.match.add(field_id=3, optional=FieldMatch.Optional(value=b"\x11"))
    expected.action.action.action_id = MARK_ACL
    expected.action.action.params.add(param_id=1, value=b"\x07")
    assert built == expected

    route = table_entry(tables, "route", {"hdr.ipv4.dstAddr": ("10.1.0.0", 16),
                                          "standard_metadata.ingress_port": 1},
                        "set_route", {"port": 3, "value": 0})
    expected = p4runtime_pb2.TableEntry(table_id=ROUTE)
    expected.match.add(field_id=1, exact=FieldMatch.Exact(value=b"\x01"))  # P4Info order
    expected.match.add(field_id=2, lpm=FieldMatch.LPM(value=b"\x0a\x01\x00\x00", prefix_len=16))
    expected.action.action.action_id = SET_ROUTE
    expected.action.action.params.add(param_id=1, value=b"\x00")
    expected.action.action.params.add(param_id=2, value=b"\x03")
    assert route == expected


def test_dont_care_matches_are_omitted(tables: P4Info) -> None:
    entry = table_entry(tables, "acl", {"hdr.ipv4.srcAddr": "0.0.0.0 &&& 0.0.0.0",
                                        "hdr.udp.dstPort": (0, 65535),
                                        "hdr.ipv4.protocol": None}, "acl_miss", priority=1)
    assert list(entry.match) == [] and entry.priority == 1
    route = table_entry(tables, "route", {"standard_metadata.ingress_port": 0,
                                          "hdr.ipv4.dstAddr": "0.0.0.0/0"}, "no_route")
    assert [m.field_id for m in route.match] == [1]


def test_action_profile_members_and_groups(tables: P4Info) -> None:
    member = table_entry(tables, "spread_table", {"hdr.ipv4.dstAddr": "10.0.0.1"}, member=4)
    assert member.action.action_profile_member_id == 4 and member.table_id == SPREAD_TABLE
    group = table_entry(tables, "spread_table", {"hdr.ipv4.dstAddr": "10.0.0.1"}, group=2)
    assert group.action.action_profile_group_id == 2
    assert str(decode_table_entry(tables, group)) == \
        "MyIngress.spread_table: hdr.ipv4.dstAddr=10.0.0.1 => group 2"
    with pytest.raises(EntryError, match="uses an action profile: give member= or group="):
        table_entry(tables, "spread_table", {"hdr.ipv4.dstAddr": 1}, "pick", {"value": 1})
    with pytest.raises(EntryError, match="has no action profile"):
        table_entry(tables, "route", {"standard_metadata.ingress_port": 0}, member=1)
    with pytest.raises(EntryError, match="takes one of action, member or group"):
        table_entry(tables, "spread_table", {"hdr.ipv4.dstAddr": 1}, member=1, group=2)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(table="ecmp_grup", match={}), EntryError, "did you mean 'ecmp_group'"),
    (dict(table="ecmp_group", match={"hdr.ipv4.dstAdr": "10.0.0.1/32"}, action="drop"),
     EntryError, "no match field named 'hdr.ipv4.dstAdr' in table 'MyIngress.ecmp_group' "
                 r"\(did you mean 'hdr.ipv4.dstAddr'\?\)"),
    (dict(table="ecmp_nhop", match={}, action="drop"), EntryError,
     "table 'MyIngress.ecmp_nhop' needs a value for its exact field 'meta.ecmp_select'"),
    (dict(table="ecmp_nhop", match={"meta.ecmp_select": None}, action="drop"), EntryError,
     "needs a value for its exact field"),
    (dict(table="ecmp_nhop", match={"meta.ecmp_select": 0}, action="set_nhop",
          params={"nhop_dmac": 1, "nhop_ipv4": 2}), EntryError,
     r"action 'MyIngress.set_nhop' needs parameter 'port' \(9 bits\); its parameters: "
     "nhop_dmac, nhop_ipv4, port"),
    (dict(table="ecmp_nhop", match={"meta.ecmp_select": 0}, action="set_nhop",
          params={"nhop_dmac": 1, "nhop_ipv4": 2, "port": 1, "nhop_ip": 3}), EntryError,
     "no parameter named 'nhop_ip' of action 'MyIngress.set_nhop' "
     r"\(did you mean 'nhop_ipv4'\?\)"),
    (dict(table="ecmp_nhop", match={"meta.ecmp_select": 0}, action="rewrite_mac",
          params={"smac": 1}), EntryError,
     "action 'MyEgress.rewrite_mac' is not allowed in table 'MyIngress.ecmp_nhop'; allowed: "
     "MyIngress.drop, MyIngress.set_nhop, NoAction"),
    (dict(table="ecmp_group", match={"hdr.ipv4.dstAddr": "10.0.0.1/32"}, action="NoAction"),
     EntryError, "action 'NoAction' can only be the default action of 'MyIngress.ecmp_group'; "
                 "use it with default_entry"),
    (dict(table="ecmp_group", match={"hdr.ipv4.dstAddr": "10.0.0.1/8"}, action="drop"),
     CodecError, r"'10.0.0.1/8' has bits set after its /8 prefix for 'hdr.ipv4.dstAddr' of "
                 r"table 'MyIngress.ecmp_group'; did you mean 10.0.0.0/8\?"),
    (dict(table="send_frame", match={"standard_metadata.egress_port": 512},
          action="rewrite_mac", params={"smac": 1}), ValueTooWide,
     "value 512 does not fit in 9 bits for 'standard_metadata.egress_port'"),
    (dict(table="send_frame", match={"standard_metadata.egress_port": 1},
          action="rewrite_mac", params={"smac": "08:00:00:00:01:00:01"}), CodecError,
     "cannot read '08:00:00:00:01:00:01'"),
    (dict(table="ecmp_group", match={"hdr.ipv4.dstAddr": "10.0.0.1/32"}, action="drop",
          priority=5), EntryError, "has no ternary, range or optional field: its entries take "
                                   r"no priority \(got 5\)"),
    (dict(table="ecmp_group", match={}, params={"x": 1}), EntryError,
     "parameters given without an action"),
    (dict(table="ecmp_group", match={"dstAddr": "10.0.0.1", "hdr.ipv4.dstAddr": "10.0.0.2"}),
     EntryError, "match field 'hdr.ipv4.dstAddr' of 'MyIngress.ecmp_group' given twice"),
])
def test_invalid_entries(lb: P4Info, kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        table_entry(lb, **kwargs)


def test_priority_is_required_for_ternary_range_optional(tables: P4Info) -> None:
    for priority in (None, 0):
        with pytest.raises(EntryError, match="'MyIngress.acl' has ternary, range or optional "
                                             "fields: its entries need a priority"):
            table_entry(tables, "acl", {"hdr.ipv4.protocol": 6}, "acl_miss", priority=priority)
    with pytest.raises(EntryError, match="not within 1..2147483647"):
        table_entry(tables, "acl", {"hdr.ipv4.protocol": 6}, "acl_miss", priority=1 << 31)


def test_default_entries(lb: P4Info) -> None:
    entry = default_entry(lb, "ecmp_group", "MyIngress.drop")
    expected = p4runtime_pb2.TableEntry(table_id=41423289, is_default_action=True)
    expected.action.action.action_id = 25652968
    assert entry == expected
    assert default_entry(lb, "ecmp_group", "drop") == expected  # the ingress drop
    assert default_entry(lb, "ecmp_group", "NoAction").action.action.action_id == NO_ACTION
    reset = default_entry(lb, "MyEgress.send_frame")
    assert reset == p4runtime_pb2.TableEntry(table_id=49202009, is_default_action=True)
    with pytest.raises(EntryError, match="needs parameter 'ecmp_base'"):
        default_entry(lb, "ecmp_group", "set_ecmp_select")


def test_default_entry_scope_and_const_default(lb: P4Info) -> None:
    proto = p4info_pb2.P4Info()
    proto.CopyFrom(lb.proto)
    group = next(t for t in proto.tables if t.preamble.name == "MyIngress.ecmp_group")
    group.action_refs[0].scope = p4info_pb2.ActionRef.TABLE_ONLY  # MyIngress.drop
    group.const_default_action_id = NO_ACTION
    info = P4Info(proto)
    with pytest.raises(EntryError, match="cannot be the default action of "
                                         r"'MyIngress.ecmp_group' \(@tableonly\)"):
        default_entry(info, "ecmp_group", "MyIngress.drop")
    with pytest.raises(EntryError, match="has a const default action 'NoAction'"):
        default_entry(info, "ecmp_group", "set_ecmp_select", {"ecmp_base": 0, "ecmp_count": 1})


def test_decode_is_symmetric(lb: P4Info, tables: P4Info) -> None:
    cases = [
        (lb, table_entry(lb, "ecmp_group", {"hdr.ipv4.dstAddr": "10.0.0.1/32"},
                         "set_ecmp_select", {"ecmp_base": 0, "ecmp_count": 2}),
         "MyIngress.ecmp_group: hdr.ipv4.dstAddr=10.0.0.1/32 => "
         "MyIngress.set_ecmp_select(ecmp_base=0, ecmp_count=2)"),
        (lb, table_entry(lb, "ecmp_nhop", {"meta.ecmp_select": 1}, "set_nhop",
                         {"nhop_dmac": "00:00:00:00:01:03", "nhop_ipv4": "10.0.3.3",
                          "port": 3}),
         "MyIngress.ecmp_nhop: meta.ecmp_select=1 => MyIngress.set_nhop("
         "nhop_dmac=00:00:00:00:01:03, nhop_ipv4=10.0.3.3, port=3)"),
        (lb, default_entry(lb, "ecmp_group", "MyIngress.drop"),
         "MyIngress.ecmp_group: (default action) => MyIngress.drop()"),
        (tables, table_entry(tables, "acl", {"hdr.ipv4.srcAddr": "10.0.0.0/8",
                                             "hdr.udp.dstPort": (53, 53),
                                             "hdr.ipv4.protocol": 17},
                             "mark_acl", {"value": 255}, priority=3),
         "MyIngress.acl: hdr.ipv4.srcAddr=10.0.0.0 &&& 255.0.0.0, hdr.udp.dstPort=53..53, "
         "hdr.ipv4.protocol=17 priority=3 => MyIngress.mark_acl(value=255)"),
        (tables, table_entry(tables, "acl", {}, "acl_miss", priority=1),
         "MyIngress.acl: (any) priority=1 => MyIngress.acl_miss()"),
        (tables, table_entry(tables, "spread_table", {"hdr.ipv4.dstAddr": "10.0.0.9"},
                             member=7),
         "MyIngress.spread_table: hdr.ipv4.dstAddr=10.0.0.9 => member 7"),
    ]
    for info, entry, line in cases:
        decoded = decode_table_entry(info, entry)
        assert str(decoded) == line == format_table_entry(info, entry)
        assert decoded.to_entry(info) == entry


def test_padded_bytestrings_decode_like_canonical_ones(lb: P4Info) -> None:
    """Tutorial-style writes are padded; PI reads return canonical (tutorial_spec P11)."""
    padded = p4runtime_pb2.TableEntry(table_id=42718419)
    padded.match.add(field_id=1, exact=FieldMatch.Exact(value=b"\x00\x00"))
    padded.action.action.action_id = 24952588
    for param_id, value in ((1, b"\x00\x00\x00\x00\x01\x02"), (2, b"\x0a\x00\x02\x02"),
                            (3, b"\x00\x02")):
        padded.action.action.params.add(param_id=param_id, value=value)
    decoded = decode_table_entry(lb, padded)
    assert decoded == DecodedEntry("MyIngress.ecmp_nhop", {"meta.ecmp_select": "0"},
                                   "MyIngress.set_nhop", {"nhop_dmac": "00:00:00:00:01:02",
                                                          "nhop_ipv4": "10.0.2.2",
                                                          "port": "2"})
    canonical = decoded.to_entry(lb)
    assert canonical.match[0].exact.value == b"\x00"
    assert [p.value for p in canonical.action.action.params] == [b"\x01\x02",
                                                                 b"\x0a\x00\x02\x02", b"\x02"]


def test_pre_entries() -> None:
    group = multicast_group_entry(1, [1, 2, (3, 5)])
    expected = p4runtime_pb2.PacketReplicationEngineEntry()
    expected.multicast_group_entry.multicast_group_id = 1
    for port, instance in ((1, 0), (2, 0), (3, 5)):
        expected.multicast_group_entry.replicas.add(egress_port=port, instance=instance)
    assert group == expected
    session = clone_session_entry(100, [4], class_of_service=2, packet_length_bytes=64)
    expected = p4runtime_pb2.PacketReplicationEngineEntry()
    expected.clone_session_entry.session_id = 100
    expected.clone_session_entry.class_of_service = 2
    expected.clone_session_entry.packet_length_bytes = 64
    expected.clone_session_entry.replicas.add(egress_port=4, instance=0)
    assert session == expected
    assert format_update(None, insert(group)) == \
        "INSERT multicast group 1: replicas 1, 2, 3#5"
    assert format_update(None, delete(session)) == \
        "DELETE clone session 100: replicas 4, class of service 2, truncate to 64"
    with pytest.raises(EntryError, match="multicast group id 0 must be > 0"):
        multicast_group_entry(0, [1])
    with pytest.raises(EntryError, match="port and instance must be 32-bit unsigned"):
        clone_session_entry(1, [-1])


def test_updates_and_write_request(lb: P4Info) -> None:
    entry = default_entry(lb, "ecmp_group", "MyIngress.drop")
    update = modify(entry)
    assert update.type == p4runtime_pb2.Update.MODIFY
    assert update.entity == p4runtime_pb2.Entity(table_entry=entry)
    assert insert(entry).type == p4runtime_pb2.Update.INSERT
    counter = p4runtime_pb2.CounterEntry(counter_id=9)
    assert entity(counter) == p4runtime_pb2.Entity(counter_entry=counter)
    with pytest.raises(TypeError, match="cannot wrap str"):
        insert("entry")  # type: ignore[arg-type]
    request = write_request([update], device_id=2, election=(1, 7))
    expected = p4runtime_pb2.WriteRequest(device_id=2, updates=[update])
    expected.election_id.high, expected.election_id.low = 1, 7
    assert request == expected
    by_int = write_request([update], election=(1 << 64) + 7)
    assert (by_int.election_id.high, by_int.election_id.low) == (1, 7)
    with pytest.raises(EntryError, match="not a 128-bit unsigned number"):
        write_request([update], election=-1)
    assert format_update(lb, update) == \
        "MODIFY MyIngress.ecmp_group: (default action) => MyIngress.drop()"
