"""The exact P4Runtime updates mycontroller.py's helpers build.

Expected messages are written out field by field, with the P4Info ids p4c
derives for these names (tutorial_spec.md §8.3) and canonical bytestrings.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from p4runtime_lib import EntryError, P4Info, default_entry, table_entry
from p4runtime_lib.protos import p4runtime_pb2

REPO = Path(__file__).resolve().parent.parent
INSERT, MODIFY = p4runtime_pb2.Update.INSERT, p4runtime_pb2.Update.MODIFY

ECMP_GROUP, ECMP_NHOP, SEND_FRAME = 41423289, 42718419, 49202009
INGRESS_DROP, SET_ECMP_SELECT, SET_NHOP, REWRITE_MAC = 25652968, 28332005, 24952588, 22398708


@pytest.fixture(scope="module")
def controller():
    spec = importlib.util.spec_from_file_location("mycontroller", REPO / "mycontroller.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def info() -> P4Info:
    return P4Info.load(REPO / "build/load_balance.p4.p4info.txtpb")


def update(kind: int, table_id: int, action_id: int, params: list[bytes],
           match: p4runtime_pb2.FieldMatch | None = None,
           default: bool = False) -> p4runtime_pb2.Update:
    entry = p4runtime_pb2.TableEntry(table_id=table_id, is_default_action=default)
    if match is not None:
        entry.match.append(match)
    entry.action.action.action_id = action_id
    for param_id, value in enumerate(params, start=1):
        entry.action.action.params.add(param_id=param_id, value=value)
    return p4runtime_pb2.Update(type=kind, entity=p4runtime_pb2.Entity(table_entry=entry))


def lpm(value: bytes, length: int) -> p4runtime_pb2.FieldMatch:
    return p4runtime_pb2.FieldMatch(field_id=1, lpm=p4runtime_pb2.FieldMatch.LPM(
        value=value, prefix_len=length))


def exact(value: bytes) -> p4runtime_pb2.FieldMatch:
    return p4runtime_pb2.FieldMatch(field_id=1, exact=p4runtime_pb2.FieldMatch.Exact(value=value))


def test_ecmp_group_rules(controller, info: P4Info) -> None:
    expected = {
        "s1": [update(INSERT, ECMP_GROUP, SET_ECMP_SELECT, [b"\x00", b"\x02"],
                      lpm(b"\x0a\x00\x00\x01", 32)),
               update(MODIFY, ECMP_GROUP, INGRESS_DROP, [], default=True)],
        "s2": [update(INSERT, ECMP_GROUP, SET_ECMP_SELECT, [b"\x00", b"\x01"],
                      lpm(b"\x0a\x00\x02\x02", 32)),
               update(MODIFY, ECMP_GROUP, INGRESS_DROP, [], default=True)],
        "s3": [update(INSERT, ECMP_GROUP, SET_ECMP_SELECT, [b"\x00", b"\x01"],
                      lpm(b"\x0a\x00\x03\x03", 32)),
               update(MODIFY, ECMP_GROUP, INGRESS_DROP, [], default=True)],
    }
    for switch, updates in expected.items():
        assert controller.write_ecmp_group_rules(info, switch) == updates


def test_ecmp_nhop_rules(controller, info: P4Info) -> None:
    expected = {
        "s1": [update(INSERT, ECMP_NHOP, SET_NHOP, [b"\x01\x02", b"\x0a\x00\x02\x02", b"\x02"],
                      exact(b"\x00")),
               update(INSERT, ECMP_NHOP, SET_NHOP, [b"\x01\x03", b"\x0a\x00\x03\x03", b"\x03"],
                      exact(b"\x01"))],
        "s2": [update(INSERT, ECMP_NHOP, SET_NHOP,
                      [b"\x08\x00\x00\x00\x02\x02", b"\x0a\x00\x02\x02", b"\x01"],
                      exact(b"\x00"))],
        "s3": [update(INSERT, ECMP_NHOP, SET_NHOP,
                      [b"\x08\x00\x00\x00\x03\x03", b"\x0a\x00\x03\x03", b"\x01"],
                      exact(b"\x00"))],
    }
    for switch, updates in expected.items():
        assert controller.write_ecmp_nhop_rules(info, switch) == updates


def test_send_frame_rules(controller, info: P4Info) -> None:
    expected = {
        "s1": [update(INSERT, SEND_FRAME, REWRITE_MAC, [b"\x01\x02\x00"], exact(b"\x02")),
               update(INSERT, SEND_FRAME, REWRITE_MAC, [b"\x01\x03\x00"], exact(b"\x03"))],
        "s2": [update(INSERT, SEND_FRAME, REWRITE_MAC, [b"\x02\x01\x00"], exact(b"\x01"))],
        "s3": [update(INSERT, SEND_FRAME, REWRITE_MAC, [b"\x03\x01\x00"], exact(b"\x01"))],
    }
    for switch, updates in expected.items():
        assert controller.write_send_frame_rules(info, switch) == updates


def test_entry_building_errors_are_readable(info: P4Info) -> None:
    with pytest.raises(EntryError, match="does not fit in 9 bits"):
        table_entry(info, "send_frame", {"standard_metadata.egress_port": 512},
                    "rewrite_mac", {"smac": 1})
    with pytest.raises(EntryError, match="needs parameter 'port'"):
        table_entry(info, "ecmp_nhop", {"meta.ecmp_select": 0}, "set_nhop",
                    {"nhop_dmac": 1, "nhop_ipv4": 2})
    with pytest.raises(EntryError, match="did you mean 'nhop_ipv4'"):
        table_entry(info, "ecmp_nhop", {"meta.ecmp_select": 0}, "set_nhop",
                    {"nhop_dmac": 1, "nhop_ipv4": 2, "port": 1, "nhop_ip": 3})
    with pytest.raises(EntryError, match="can only be the default action"):
        table_entry(info, "ecmp_group", {"hdr.ipv4.dstAddr": "10.0.0.1/32"}, "NoAction")
    with pytest.raises(EntryError, match="bits set after its /8 prefix"):
        table_entry(info, "ecmp_group", {"hdr.ipv4.dstAddr": "10.0.0.1/8"}, "MyIngress.drop")
    assert default_entry(info, "ecmp_group").is_default_action
