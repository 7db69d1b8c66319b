"""The switch's INSERT fast path read from an update's bytes (``insert_wire``).

It must take exactly the common shape -- an INSERT of table_id + one well-formed
exact/LPM field + a direct action -- and leave everything else (returning False,
nothing changed) to the full path, whose answers the other runtime tests check.
Updates are built with protobuf here, field by field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from p4protos import p4runtime_pb2
from p4protos.wire import read_varint, varint
from p4switch.runtime.server import P4RuntimeServicer
from p4switch.runtime.table_entries import insert_wire
from p4switch.switch import Switch

REPO = Path(__file__).resolve().parent.parent
ECMP_GROUP, SET_ECMP_SELECT, ECMP_NHOP, SET_NHOP = 41423289, 28332005, 42718419, 24952588
DROP, NO_ACTION = 25652968, 21257015
FieldMatch, Update = p4runtime_pb2.FieldMatch, p4runtime_pb2.Update


def pipeline_request() -> p4runtime_pb2.SetForwardingPipelineConfigRequest:
    """load_balance's P4Info and BMv2 JSON, VERIFY_AND_COMMIT."""
    from google.protobuf import text_format

    from p4protos import p4info_pb2

    info = p4info_pb2.P4Info()
    text_format.Merge((REPO / "build/load_balance.p4.p4info.txtpb").read_text(), info)
    request = p4runtime_pb2.SetForwardingPipelineConfigRequest(
        device_id=0, action=p4runtime_pb2.SetForwardingPipelineConfigRequest.VERIFY_AND_COMMIT)
    request.config.p4info.CopyFrom(info)
    request.config.p4_device_config = (REPO / "build/load_balance.json").read_bytes()
    return request


@pytest.fixture
def servicer() -> P4RuntimeServicer:
    servicer = P4RuntimeServicer(Switch(device_id=0))
    servicer._set_pipeline(pipeline_request())
    return servicer


def group_insert(value: bytes = b"\x0a\x00\x01\x00", length: int = 24,
                 params: tuple[bytes, bytes] = (b"\x00", b"\x02")) -> p4runtime_pb2.Update:
    update = p4runtime_pb2.Update(type=Update.INSERT)
    entry = update.entity.table_entry
    entry.table_id = ECMP_GROUP
    entry.match.add(field_id=1, lpm=FieldMatch.LPM(value=value, prefix_len=length))
    entry.action.action.action_id = SET_ECMP_SELECT
    entry.action.action.params.add(param_id=1, value=params[0])
    entry.action.action.params.add(param_id=2, value=params[1])
    return update


def count(servicer: P4RuntimeServicer, table_id: int = ECMP_GROUP) -> int:
    return len(servicer._require_config().tables[table_id].table)


def test_the_common_insert_goes_in_from_its_bytes(servicer: P4RuntimeServicer) -> None:
    config = servicer._require_config()
    assert insert_wire(config, group_insert().SerializeToString())
    assert count(servicer) == 1
    assert not insert_wire(config, group_insert().SerializeToString())  # duplicate: full path
    assert count(servicer) == 1
    nhop = p4runtime_pb2.Update(type=Update.INSERT)
    entry = nhop.entity.table_entry
    entry.table_id = ECMP_NHOP
    entry.match.add(field_id=1, exact=FieldMatch.Exact(value=b"\x00\x05"))  # padded is fine
    entry.action.action.action_id = SET_NHOP
    for param_id, value in ((1, b"\x08\x00\x00\x00\x02\x02"), (2, b"\x0a\x00\x02\x02"),
                            (3, b"\x02")):
        entry.action.action.params.add(param_id=param_id, value=value)
    assert insert_wire(config, nhop.SerializeToString())
    assert count(servicer, ECMP_NHOP) == 1


def test_the_fast_and_full_paths_leave_the_same_table(servicer: P4RuntimeServicer) -> None:
    """1,000 inserts through the fast path, read back, equal 1,000 through the full one."""
    config = servicer._require_config()
    updates = [group_insert((10 << 24 | i << 8).to_bytes(4, "big"), 24,
                            ((i % 7).to_bytes(1, "big"), (i % 5 + 1).to_bytes(1, "big")))
               for i in range(1000)]
    assert all(insert_wire(config, u.SerializeToString()) for u in updates)
    read = p4runtime_pb2.ReadRequest(device_id=0)
    read.entities.add().table_entry.table_id = ECMP_GROUP

    class Context:
        def abort(self, code: Any, details: str) -> None:
            raise AssertionError(details)

    def read_back() -> list[bytes]:
        out = []
        for response in servicer.Read(read, Context()):
            out += [e.SerializeToString(deterministic=True) for e in response.entities]
        return sorted(out)

    fast = read_back()
    servicer._set_pipeline(pipeline_request())
    config = servicer._require_config()
    for update in updates:
        P4RuntimeServicer.apply_one(config, update)
    assert read_back() == fast and len(fast) == 1000


def _with(change: Any) -> p4runtime_pb2.Update:
    update = group_insert()
    change(update)
    return update


@pytest.mark.parametrize("name, update", [
    ("MODIFY", _with(lambda u: setattr(u, "type", Update.MODIFY))),
    ("priority set", _with(lambda u: setattr(u.entity.table_entry, "priority", 1))),
    ("idle timeout set", _with(lambda u: setattr(u.entity.table_entry, "idle_timeout_ns", 5))),
    ("default entry", _with(lambda u: setattr(u.entity.table_entry, "is_default_action", True))),
    ("metadata", _with(lambda u: setattr(u.entity.table_entry, "metadata", b"x"))),
    ("unknown table", _with(lambda u: setattr(u.entity.table_entry, "table_id", 12345))),
    ("wrong field id", _with(lambda u: setattr(u.entity.table_entry.match[0], "field_id", 2))),
    ("prefix length 0", group_insert(b"\x00", 0)),
    ("prefix length 33", group_insert(b"\x0a\x00\x00\x00", 33)),
    ("bits after the prefix", group_insert(b"\x0a\x00\x01\x01", 24)),
    ("value wider than 32 bits", group_insert(b"\x01\x00\x00\x00\x00", 8)),
    ("exact instead of lpm", _with(lambda u: u.entity.table_entry.match[0].exact.SetInParent())),
    ("two match fields", _with(lambda u: u.entity.table_entry.match.add(
        field_id=1, lpm=FieldMatch.LPM(value=b"\x0a\x00\x00\x00", prefix_len=8)))),
    ("no action", _with(lambda u: u.entity.table_entry.ClearField("action"))),
    ("member instead of action", _with(lambda u: setattr(
        u.entity.table_entry.action, "action_profile_member_id", 1))),
    ("default-only action", _with(lambda u: (
        u.entity.table_entry.action.action.ClearField("params"),
        setattr(u.entity.table_entry.action.action, "action_id", NO_ACTION)))),
    ("param too wide", group_insert(params=(b"\x01\x00\x00", b"\x02"))),
    ("param missing", _with(lambda u: u.entity.table_entry.action.action.params.pop())),
    ("action not in the table", _with(lambda u: setattr(
        u.entity.table_entry.action.action, "action_id", SET_NHOP))),
])
def test_anything_else_takes_the_full_path(servicer: P4RuntimeServicer, name: str,
                                           update: p4runtime_pb2.Update) -> None:
    config = servicer._require_config()
    assert not insert_wire(config, update.SerializeToString()), name
    assert count(servicer) == 0


def test_unknown_fields_and_cut_bytes_take_the_full_path(servicer: P4RuntimeServicer) -> None:
    config = servicer._require_config()
    raw = group_insert().SerializeToString()
    unknown = p4runtime_pb2.Update.FromString(raw + b"\xa0\x06\x01")  # field 100, varint 1
    assert not insert_wire(config, unknown.SerializeToString())
    for cut in range(len(raw)):
        assert not insert_wire(config, raw[:cut])
    assert count(servicer) == 0
    assert insert_wire(config, raw)


@pytest.mark.parametrize("number", [0, 1, 127, 128, 2**21, 2**32 - 1, 2**64 - 1])
def test_varints_round_trip(number: int) -> None:
    data = b"\xff" + varint(number) + b"\x00"
    assert read_varint(data, 1) == (number, len(data) - 1)
    assert p4runtime_pb2.Uint128.FromString(b"\x10" + varint(number)).low == number
