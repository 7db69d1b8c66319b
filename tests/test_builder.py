"""TableBuilder: entries compiled per table, encoded by hand to wire format.

Every expected message here is built with protobuf's own API (field by field)
from literal ids and canonical bytestrings computed with ``int.to_bytes`` per
the spec's rule (shortest big-endian form, zero as one zero byte), so a wrong
tag, length or value in the hand encoding shows up as a difference.
"""

from __future__ import annotations

import ipaddress
import random
import socket
from pathlib import Path

import pytest

from p4runtime_lib import P4Info, SwitchConnection, TableBuilder, WriteError, insert, table_entry
from p4runtime_lib.builder import delimited, varint, write_request_from
from p4runtime_lib.errors import CodecError, EntryError, ValueTooWide
from p4runtime_lib.protos import p4info_pb2, p4runtime_pb2

REPO = Path(__file__).resolve().parent.parent
FieldMatch, Update = p4runtime_pb2.FieldMatch, p4runtime_pb2.Update
ECMP_GROUP, SET_ECMP_SELECT, ECMP_NHOP, SET_NHOP = 41423289, 28332005, 42718419, 24952588
ACL, MARK_ACL, ROUTE, SET_ROUTE = 37519123, 25088248, 43142405, 32380709


@pytest.fixture(scope="module")
def lb() -> P4Info:
    return P4Info.load(REPO / "build/load_balance.p4.p4info.txtpb")


@pytest.fixture(scope="module")
def tables() -> P4Info:
    return P4Info.load(REPO / "tests/p4/tables.p4.p4info.txtpb")


def canon(number: int) -> bytes:
    """The spec's canonical bytestring, written out independently of the library."""
    if number == 0:
        return b"\x00"
    return number.to_bytes((number.bit_length() + 7) // 8, "big")


def group_entry(prefix: int, length: int, base: int, count: int) -> p4runtime_pb2.TableEntry:
    entry = p4runtime_pb2.TableEntry(table_id=ECMP_GROUP)
    entry.match.add(field_id=1, lpm=FieldMatch.LPM(value=canon(prefix), prefix_len=length))
    entry.action.action.action_id = SET_ECMP_SELECT
    entry.action.action.params.add(param_id=1, value=canon(base))
    entry.action.action.params.add(param_id=2, value=canon(count))
    return entry


def test_the_tags_are_p4runtimes_field_numbers() -> None:
    """The hand encoder's tags against the descriptors (field number << 3 | wire type)."""
    from p4runtime_lib import builder

    def tag(message: type, name: str) -> bytes:
        number = message.DESCRIPTOR.fields_by_name[name].number
        field_type = message.DESCRIPTOR.fields_by_name[name].type
        wire = 2 if field_type in (9, 11, 12) else 0  # string, message, bytes
        return bytes((number << 3 | wire,))

    p = p4runtime_pb2
    expected = [
        (builder.WRITE_DEVICE_ID, p.WriteRequest, "device_id"),
        (builder.WRITE_ELECTION_ID, p.WriteRequest, "election_id"),
        (builder.WRITE_UPDATES, p.WriteRequest, "updates"),
        (builder.UINT128_HIGH, p.Uint128, "high"), (builder.UINT128_LOW, p.Uint128, "low"),
        (builder.UPDATE_TYPE, Update, "type"), (builder.UPDATE_ENTITY, Update, "entity"),
        (builder.ENTITY_TABLE_ENTRY, p.Entity, "table_entry"),
        (builder.ENTRY_TABLE_ID, p.TableEntry, "table_id"),
        (builder.ENTRY_MATCH, p.TableEntry, "match"),
        (builder.ENTRY_ACTION, p.TableEntry, "action"),
        (builder.ENTRY_PRIORITY, p.TableEntry, "priority"),
        (builder.ENTRY_IDLE_TIMEOUT, p.TableEntry, "idle_timeout_ns"),
        (builder.MATCH_FIELD_ID, FieldMatch, "field_id"),
        (builder.MATCH_EXACT, FieldMatch, "exact"), (builder.MATCH_TERNARY, FieldMatch, "ternary"),
        (builder.MATCH_LPM, FieldMatch, "lpm"), (builder.MATCH_RANGE, FieldMatch, "range"),
        (builder.MATCH_OPTIONAL, FieldMatch, "optional"),
        (builder.FIRST, FieldMatch.LPM, "value"), (builder.FIRST, FieldMatch.Exact, "value"),
        (builder.FIRST, FieldMatch.Ternary, "value"), (builder.FIRST, FieldMatch.Range, "low"),
        (builder.FIRST, FieldMatch.Optional, "value"),
        (builder.SECOND, FieldMatch.LPM, "prefix_len"),
        (builder.SECOND_BYTES, FieldMatch.Ternary, "mask"),
        (builder.SECOND_BYTES, FieldMatch.Range, "high"),
        (builder.TABLE_ACTION, p.TableAction, "action"),
        (builder.TABLE_MEMBER, p.TableAction, "action_profile_member_id"),
        (builder.TABLE_GROUP, p.TableAction, "action_profile_group_id"),
        (builder.ACTION_ID, p.Action, "action_id"), (builder.ACTION_PARAM, p.Action, "params"),
        (builder.PARAM_ID, p.Action.Param, "param_id"),
        (builder.PARAM_VALUE, p.Action.Param, "value"),
    ]
    for ours, message, name in expected:
        assert ours == tag(message, name), (message.DESCRIPTOR.name, name)


@pytest.mark.parametrize("number", [0, 1, 127, 128, 300, 16383, 16384, 2**32 - 1, 2**63,
                                    2**64 - 1, -1, -2**63])
def test_varints_parse_back(number: int) -> None:
    """A hand-encoded varint in an int64 / uint64 field reads back as protobuf wrote it."""
    if number < 0:
        expected = p4runtime_pb2.TableEntry(idle_timeout_ns=number)
        assert p4runtime_pb2.TableEntry.FromString(b"\x48" + varint(number)) == expected
    else:
        expected = p4runtime_pb2.Uint128(high=number)
        assert p4runtime_pb2.Uint128.FromString(b"\x08" + varint(number)) == expected
        assert expected.SerializeToString() == (b"\x08" + varint(number) if number else b"")


def test_rows_of_lpm_inserts_equal_hand_built_updates(lb: P4Info) -> None:
    table = TableBuilder(lb, "MyIngress.ecmp_group")
    rows = [({"hdr.ipv4.dstAddr": ((10 << 24) | (i << 8), 24)}, "MyIngress.set_ecmp_select",
             {"ecmp_base": i % 3, "ecmp_count": 2 + i}) for i in range(300)]
    expected = [Update(type=Update.INSERT, entity=p4runtime_pb2.Entity(
        table_entry=group_entry((10 << 24) | (i << 8), 24, i % 3, 2 + i))) for i in range(300)]
    assert table.inserts(rows) == expected
    # the same bytes whatever the value's form or the name's (alias, suffix)
    text_rows = [({"dstAddr": f"10.{i >> 8}.{i & 255}.0/24"}, "set_ecmp_select",
                  {"ecmp_base": str(i % 3), "ecmp_count": hex(2 + i)}) for i in range(300)]
    assert table.inserts(text_rows) == expected
    assert [u.SerializeToString() for u in table.inserts(rows)] == \
        [u.SerializeToString() for u in expected]
    # the single-entry helpers build the same messages
    assert insert(table_entry(lb, "ecmp_group", *rows[7][:3])) == expected[7]


def test_write_request_is_one_request_with_every_update(lb: P4Info) -> None:
    table = TableBuilder(lb, "ecmp_group")
    rows = [({"hdr.ipv4.dstAddr": (i << 8, 24)}, "set_ecmp_select",
             {"ecmp_base": 0, "ecmp_count": 1}) for i in range(1, 1001)]
    request = table.write_request(rows, Update.MODIFY, device_id=3, election=(2, 5))
    expected = p4runtime_pb2.WriteRequest(device_id=3)
    expected.election_id.high, expected.election_id.low = 2, 5
    for i in range(1, 1001):
        expected.updates.add(type=Update.MODIFY).entity.table_entry.CopyFrom(
            group_entry(i << 8, 24, 0, 1))
    assert request == expected
    assert request.SerializeToString() == expected.SerializeToString()
    plain = table.write_request(rows[:1])
    assert plain.device_id == 0 and plain.HasField("election_id")
    assert (plain.election_id.high, plain.election_id.low) == (0, 1)
    assert plain.updates[0].type == Update.INSERT
    assert write_request_from([], election=1 << 64) == p4runtime_pb2.WriteRequest(
        election_id=p4runtime_pb2.Uint128(high=1))
    one = table.modify({"hdr.ipv4.dstAddr": (1 << 8, 24)}, "set_ecmp_select",
                       {"ecmp_base": 0, "ecmp_count": 1})
    assert one == expected.updates[0]
    assert table.delete({"hdr.ipv4.dstAddr": (1 << 8, 24)}) == Update(
        type=Update.DELETE, entity=p4runtime_pb2.Entity(table_entry=p4runtime_pb2.TableEntry(
            table_id=ECMP_GROUP, match=[FieldMatch(field_id=1, lpm=FieldMatch.LPM(
                value=canon(1 << 8), prefix_len=24))])))
    deletes = table.updates(rows[:2], Update.DELETE)
    assert [u.type for u in deletes] == [Update.DELETE] * 2
    with pytest.raises(EntryError, match="update type 9 is not INSERT, MODIFY or DELETE"):
        table.updates(rows[:1], 9)
    with pytest.raises(EntryError, match="election id .* is not a 128-bit unsigned number"):
        table.write_request(rows[:1], election=(-1, 0))


def test_every_match_kind_priority_and_idle_timeout(tables: P4Info) -> None:
    acl = TableBuilder(tables, "acl")
    built = acl.entry({"hdr.ipv4.srcAddr": "10.0.0.0/8", "hdr.udp.dstPort": (1000, 2000),
                       "hdr.ipv4.protocol": 0}, "mark_acl", {"value": 0}, priority=300,
                      idle_timeout_ns=10**12)
    expected = p4runtime_pb2.TableEntry(table_id=ACL, priority=300, idle_timeout_ns=10**12)
    expected.match.add(field_id=1, ternary=FieldMatch.Ternary(value=canon(10 << 24),
                                                              mask=canon(255 << 24)))
    expected.match.add(field_id=2, range=FieldMatch.Range(low=canon(1000), high=canon(2000)))
    expected.match.add(field_id=3, optional=FieldMatch.Optional(value=canon(0)))
    expected.action.action.action_id = MARK_ACL
    expected.action.action.params.add(param_id=1, value=canon(0))
    assert built == expected
    route = TableBuilder(tables, "route").entry(
        {"hdr.ipv4.dstAddr": "10.1.0.0/16", "standard_metadata.ingress_port": 511},
        "set_route", {"port": 511, "value": 0xFF})
    expected = p4runtime_pb2.TableEntry(table_id=ROUTE)
    expected.match.add(field_id=1, exact=FieldMatch.Exact(value=canon(511)))
    expected.match.add(field_id=2, lpm=FieldMatch.LPM(value=canon(0x0A01 << 16),
                                                      prefix_len=16))
    expected.action.action.action_id = SET_ROUTE
    for param in tables.action("set_route").params:
        value = 511 if param.name == "port" else 0xFF
        expected.action.action.params.add(param_id=param.id, value=canon(value))
    assert route == expected


def wide_info() -> P4Info:
    """A made-up P4Info with big ids and fields wider than 1,016 bits (lengths >= 128,
    two-byte varints) to exercise the encoder's long forms."""
    info = p4info_pb2.P4Info()
    table = info.tables.add()
    table.preamble.id, table.preamble.name, table.preamble.alias = 0x02FF_FFFF, "I.wide", "wide"
    for number, (name, width, kind) in enumerate(
            [("h.key", 1200, p4info_pb2.MatchField.EXACT),
             ("h.pfx", 2000, p4info_pb2.MatchField.LPM)], start=200):
        table.match_fields.add(id=number, name=name, bitwidth=width, match_type=kind)
    action = info.actions.add()
    action.preamble.id, action.preamble.name, action.preamble.alias = 0x01FF_FFFF, "I.set", "set"
    action.params.add(id=300, name="blob", bitwidth=1100)
    action.params.add(id=1, name="small", bitwidth=1)
    table.action_refs.add(id=action.preamble.id)
    return P4Info(info)


def test_wide_fields_and_big_ids() -> None:
    info = wide_info()
    key, prefix, blob = (1 << 1199) | 5, ((1 << 2000) - 1) ^ ((1 << 1000) - 1), 1 << 1099
    built = TableBuilder(info, "wide").insert({"h.key": key, "h.pfx": (prefix, 1000)},
                                              "set", {"blob": blob, "small": 1})
    entry = p4runtime_pb2.TableEntry(table_id=0x02FF_FFFF)
    entry.match.add(field_id=200, exact=FieldMatch.Exact(value=canon(key)))
    entry.match.add(field_id=201, lpm=FieldMatch.LPM(value=canon(prefix), prefix_len=1000))
    entry.action.action.action_id = 0x01FF_FFFF
    entry.action.action.params.add(param_id=300, value=canon(blob))
    entry.action.action.params.add(param_id=1, value=canon(1))
    assert built == Update(type=Update.INSERT, entity=p4runtime_pb2.Entity(table_entry=entry))
    with pytest.raises(ValueTooWide, match="value .* does not fit in 1100 bits for parameter "
                                           "'blob' of 'I.set'"):
        TableBuilder(info, "wide").entry({"h.key": 1}, "set", {"blob": 1 << 1100, "small": 0})


def test_random_entries_equal_protobuf_built_ones(tables: P4Info) -> None:
    """1,000 random entries of tables.p4's route table and its ACL (every kind), each
    compared with the same entry built field by field."""
    rng = random.Random(9)
    acl, route = TableBuilder(tables, "acl"), TableBuilder(tables, "route")
    port, value = (next(p for p in tables.action("set_route").params if p.name == n)
                   for n in ("port", "value"))
    for _ in range(500):
        src, length = rng.getrandbits(32), rng.randint(1, 32)
        src &= ~((1 << (32 - length)) - 1)
        low = rng.getrandbits(16)
        high = rng.randint(low, 65535)
        proto, priority = rng.getrandbits(8), rng.randint(1, 2**31 - 1)
        mark = rng.getrandbits(rng.choice([1, 4, 8]))
        got = acl.entry({"hdr.ipv4.protocol": proto, "hdr.udp.dstPort": f"{low}..{high}",
                         "hdr.ipv4.srcAddr": f"{ipaddress.IPv4Address(src)}/{length}"},
                        "mark_acl", {"value": mark}, priority)
        want = p4runtime_pb2.TableEntry(table_id=ACL, priority=priority)
        want.match.add(field_id=1, ternary=FieldMatch.Ternary(
            value=canon(src), mask=canon(((1 << length) - 1) << (32 - length))))
        if (low, high) != (0, 65535):
            want.match.add(field_id=2, range=FieldMatch.Range(low=canon(low),
                                                              high=canon(high)))
        want.match.add(field_id=3, optional=FieldMatch.Optional(value=canon(proto)))
        want.action.action.action_id = MARK_ACL
        want.action.action.params.add(param_id=1, value=canon(mark))
        assert got == want
        dst, length = rng.getrandbits(32), rng.randint(0, 32)
        dst &= ~((1 << (32 - length)) - 1)
        ingress, out, val = rng.getrandbits(9), rng.getrandbits(9), rng.getrandbits(8)
        got = route.entry({"hdr.ipv4.dstAddr": (dst, length),
                           "standard_metadata.ingress_port": ingress},
                          "set_route", {"value": val, "port": out})
        want = p4runtime_pb2.TableEntry(table_id=ROUTE)
        want.match.add(field_id=1, exact=FieldMatch.Exact(value=canon(ingress)))
        if length:
            want.match.add(field_id=2, lpm=FieldMatch.LPM(value=canon(dst), prefix_len=length))
        want.action.action.action_id = SET_ROUTE
        for param in sorted((port, value), key=lambda p: list(
                tables.action("set_route").params).index(p)):
            want.action.action.params.add(param_id=param.id,
                                          value=canon(out if param is port else val))
        assert got == want


def test_member_group_and_no_action(tables: P4Info) -> None:
    spread = TableBuilder(tables, "spread_table")
    member = spread.entry({"hdr.ipv4.dstAddr": 1}, member=2**32 - 1)
    assert member.action.action_profile_member_id == 2**32 - 1
    assert spread.entry({"hdr.ipv4.dstAddr": 1}, group=0).action.HasField(
        "action_profile_group_id") is False  # proto3: a zero id reads as unset, as before
    assert spread.entry({"hdr.ipv4.dstAddr": 1}) == p4runtime_pb2.TableEntry(
        table_id=spread.id, match=[FieldMatch(field_id=1, exact=FieldMatch.Exact(value=b"\x01"))])
    with pytest.raises(EntryError, match="action profile member id -1 of an entry of "
                                         "'MyIngress.spread_table' is not a 32-bit unsigned"):
        spread.entry({"hdr.ipv4.dstAddr": 1}, member=-1)


@pytest.mark.parametrize("row, error, message", [
    (({"hdr.ipv4.dstAddr": (1 << 32, 24)}, "set_ecmp_select", {"ecmp_base": 0,
                                                               "ecmp_count": 1}),
     ValueTooWide, r"^value 4294967296 does not fit in 32 bits for 'hdr.ipv4.dstAddr' of "
                   r"table 'MyIngress.ecmp_group'; the largest 32-bit value is 4294967295$"),
    (({"hdr.ipv4.dstAddr": (0x0A000001, 24)}, "set_ecmp_select", {"ecmp_base": 0,
                                                                 "ecmp_count": 1}),
     CodecError, r"has bits set after its /24 prefix .*; did you mean 167772160/24\?$"),
    (({"hdr.ipv4.dstAddr": (0, 33)}, "set_ecmp_select", {"ecmp_base": 0, "ecmp_count": 1}),
     CodecError, "^prefix length 33 is not within 0..32 for 'hdr.ipv4.dstAddr'"),
    (({"hdr.ipv4.dstAddr": (-1, 8)}, "set_ecmp_select", {"ecmp_base": 0, "ecmp_count": 1}),
     CodecError, "^negative value -1 for 'hdr.ipv4.dstAddr'"),
    (({"hdr.ipv4.dstAddr": "10.0.0.0/8"}, "set_ecmp_select", {"ecmp_base": 1 << 16,
                                                              "ecmp_count": 1}),
     ValueTooWide, r"^value 65536 does not fit in 16 bits for parameter 'ecmp_base' of "
                   r"'MyIngress.set_ecmp_select'; the largest 16-bit value is 65535$"),
    (({"hdr.ipv4.dstAdr": "10.0.0.0/8"}, "set_ecmp_select", {}), EntryError,
     r"^no match field named 'hdr.ipv4.dstAdr' in table 'MyIngress.ecmp_group' \(did you "
     r"mean 'hdr.ipv4.dstAddr'\?\)"),
    (({"hdr.ipv4.dstAddr": "10.0.0.0/8"}, "set_ecmp_selct", {}), EntryError,
     r"^no action named 'set_ecmp_selct' in the P4Info \(did you mean 'set_ecmp_select'\?\)"),
    (({"hdr.ipv4.dstAddr": "10.0.0.0/8"}, "set_ecmp_select", {"ecmp_bas": 0,
                                                              "ecmp_count": 1}),
     EntryError, r"^no parameter named 'ecmp_bas' of action 'MyIngress.set_ecmp_select' "
                 r"\(did you mean 'ecmp_base'\?\)"),
    (({"hdr.ipv4.dstAddr": "10.0.0.0/8"}, "set_ecmp_select", {"ecmp_count": 1}),
     EntryError, r"^action 'MyIngress.set_ecmp_select' needs parameter 'ecmp_base' "
                 r"\(16 bits\); its parameters: ecmp_base, ecmp_count$"),
    (({"hdr.ipv4.dstAddr": "10.0.0.0/8"}, "NoAction", None), EntryError,
     "^action 'NoAction' can only be the default action of 'MyIngress.ecmp_group'"),
    (({"hdr.ipv4.dstAddr": "10.0.0.0/8", "dstAddr": "10.0.0.0/8"}, "drop", None),
     EntryError, "^match field 'hdr.ipv4.dstAddr' of 'MyIngress.ecmp_group' given twice$"),
    (({"hdr.ipv4.dstAddr": "10.0.0.256/32"}, "drop", None), CodecError,
     "^cannot read '10.0.0.256' as a number, MAC or IP address for 'hdr.ipv4.dstAddr'"),
    (({"hdr.ipv4.dstAddr": "10.0.0.0/8"}, "drop", None, 3), EntryError,
     r"^table 'MyIngress.ecmp_group' has no ternary, range or optional field: its entries "
     r"take no priority \(got 3\)$"),
])
def test_bad_rows_raise_one_line_causes(lb: P4Info, row: tuple, error: type,
                                        message: str) -> None:
    table = TableBuilder(lb, "ecmp_group")
    good = ({"hdr.ipv4.dstAddr": "10.0.0.0/8"}, "drop", None)
    for call in (lambda: table.inserts([good, row]), lambda: table.write_request([row]),
                 lambda: table_entry(lb, "ecmp_group", *row)):
        with pytest.raises(error, match=message) as caught:
            call()
        assert "\n" not in str(caught.value)


def test_unknown_table_and_exact_field_missing(lb: P4Info) -> None:
    with pytest.raises(EntryError, match=r"^no table named 'ecmp_grup' in the P4Info \(did "
                                         r"you mean 'ecmp_group'\?\)"):
        TableBuilder(lb, "ecmp_grup")
    with pytest.raises(EntryError, match="^table 'MyIngress.ecmp_nhop' needs a value for its "
                                         "exact field 'meta.ecmp_select'"):
        TableBuilder(lb, "ecmp_nhop").inserts([({}, "drop", None)])


def test_delimited_long_bodies() -> None:
    body = bytes(range(256)) * 3
    assert p4runtime_pb2.FieldMatch.Exact.FromString(delimited(b"\x0a", body)).value == body
    assert socket.inet_pton(socket.AF_INET, "10.0.0.1") == canon(0x0A000001)


def test_a_built_write_request_goes_to_the_switch_as_is(lb: P4Info, served) -> None:
    """Our switch takes the one WriteRequest and reads the entries back; a duplicate in a
    second request comes back as a WriteError naming that update."""
    connection = SwitchConnection("s1", served.address, 0, p4info=lb)
    try:
        connection.become_primary()
        connection.set_pipeline(lb.proto, (REPO / "build/load_balance.json").read_bytes())
        table = TableBuilder(lb, "ecmp_group")
        rows = [({"hdr.ipv4.dstAddr": (i << 8, 24)}, "set_ecmp_select",
                 {"ecmp_base": i % 4, "ecmp_count": 1}) for i in range(1, 201)]
        request = table.write_request(rows, device_id=99, election=(7, 7))
        connection.write(request)  # the connection's device and election id replace those
        assert request.device_id == 0 and request.election_id.low == 1
        read = {(e.match[0].lpm.value, e.action.action.params[0].value)
                for e in connection.read_table_entries("ecmp_group")}
        assert read == {(canon(i << 8), canon(i % 4)) for i in range(1, 201)}
        with pytest.raises(WriteError, match="1 of 2 updates failed") as caught:
            connection.write(table.write_request([
                ({"hdr.ipv4.dstAddr": (201 << 8, 24)}, "drop", None), rows[5]]))
        assert "hdr.ipv4.dstAddr=0.0.6.0/24" in str(caught.value.errors[0]) or \
            "0.0.6.0/24" in repr(caught.value.errors)
    finally:
        connection.close()
