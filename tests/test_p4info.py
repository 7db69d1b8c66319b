"""P4Info lookups: full names, aliases, suffixes, ids, suggestions, ambiguity."""

from __future__ import annotations

from pathlib import Path

import pytest

from p4runtime_lib.errors import ControllerError, P4InfoError
from p4runtime_lib.p4info import P4Info
from p4runtime_lib.protos import p4info_pb2

REPO = Path(__file__).resolve().parent.parent
DEFAULT_ONLY, TABLE_AND_DEFAULT = p4info_pb2.ActionRef.DEFAULT_ONLY, \
    p4info_pb2.ActionRef.TABLE_AND_DEFAULT


@pytest.fixture(scope="module")
def info() -> P4Info:
    return P4Info.load(REPO / "build/load_balance.p4.p4info.txtpb")


@pytest.fixture(scope="module")
def tables() -> P4Info:
    """Our test program with every match kind, a profile, counters, meters, registers."""
    return P4Info.load(REPO / "tests/p4/tables.p4.p4info.txtpb")


def test_names_aliases_suffixes_and_ids(info: P4Info) -> None:
    table = info.table("MyIngress.ecmp_group")
    assert table.preamble.id == 41423289
    assert info.table("ecmp_group") is table
    assert info.table(41423289) is table
    assert info.action("set_nhop").preamble.name == "MyIngress.set_nhop"
    assert info.action("MyEgress.drop").preamble.id == 20880156
    assert info.action("NoAction").preamble.id == 21257015
    assert info.get("tables", "send_frame").preamble.name == "MyEgress.send_frame"
    assert info.names("tables") == ["MyEgress.send_frame", "MyIngress.ecmp_group",
                                    "MyIngress.ecmp_nhop"]


def test_ambiguous_name_lists_the_candidates(info: P4Info) -> None:
    with pytest.raises(P4InfoError) as failure:
        info.action("drop")
    assert str(failure.value) == ("action name 'drop' is ambiguous in the P4Info: use one of "
                                  "'MyEgress.drop', 'MyIngress.drop'")
    assert failure.value.suggestions == ["MyEgress.drop", "MyIngress.drop"]


def test_unknown_names_suggest_the_closest(info: P4Info) -> None:
    with pytest.raises(P4InfoError) as failure:
        info.table("ecmp_grp")
    assert str(failure.value) == "no table named 'ecmp_grp' in the P4Info " \
                                 "(did you mean 'ecmp_group'?)"
    assert isinstance(failure.value, LookupError) and isinstance(failure.value, ControllerError)
    with pytest.raises(P4InfoError, match="did you mean 'set_nhop'"):
        info.action("set_nhp")
    with pytest.raises(P4InfoError, match="no table with id 5 in the P4Info; known: "
                                          "MyEgress.send_frame, MyIngress.ecmp_group"):
        info.table(5)
    with pytest.raises(P4InfoError, match="no counter named 'x' in the P4Info; there are no "
                                          "counters"):
        info.counter("x")
    with pytest.raises(P4InfoError, match="unknown P4Info kind 'table' .did you mean 'tables'"):
        info.get("table", "ecmp_group")


def test_match_fields_and_params_by_name_suffix_or_id(info: P4Info) -> None:
    table = info.table("ecmp_group")
    field = info.match_field(table, "hdr.ipv4.dstAddr")
    assert (field.id, field.bitwidth, field.match_type) == (1, 32, p4info_pb2.MatchField.LPM)
    assert info.match_field("ecmp_group", "dstAddr") is field
    assert info.match_field(table, 1) is field
    assert info.param("set_nhop", "port").bitwidth == 9
    assert info.param("set_ecmp_select", 2).name == "ecmp_count"


def test_match_field_and_param_errors(info: P4Info) -> None:
    with pytest.raises(P4InfoError) as failure:
        info.match_field("ecmp_group", "hdr.ipv4.dstAdr")
    assert str(failure.value) == ("no match field named 'hdr.ipv4.dstAdr' in table "
                                  "'MyIngress.ecmp_group' (did you mean 'hdr.ipv4.dstAddr'?)")
    with pytest.raises(P4InfoError, match="no parameter named 'nhop_mac' of action "
                                          "'MyIngress.set_nhop' .did you mean 'nhop_dmac'"):
        info.param("set_nhop", "nhop_mac")
    with pytest.raises(P4InfoError, match="no parameter with id 9 of action "
                                          "'MyIngress.set_nhop'; known: nhop_dmac"):
        info.param("set_nhop", 9)
    with pytest.raises(P4InfoError, match="no parameter named 'x' of action 'MyIngress.drop'; "
                                          "there are no parameters"):
        info.param("MyIngress.drop", "x")


def test_actions_allowed_in_a_table_and_their_scope(info: P4Info) -> None:
    table = info.table("ecmp_nhop")
    assert [(a.preamble.name, scope) for a, scope in info.table_actions(table)] == [
        ("MyIngress.drop", TABLE_AND_DEFAULT), ("MyIngress.set_nhop", TABLE_AND_DEFAULT),
        ("NoAction", DEFAULT_ONLY)]
    action, ref = info.table_action(table, "set_nhop")
    assert action.preamble.name == "MyIngress.set_nhop" and ref.scope == TABLE_AND_DEFAULT
    # inside a table, "drop" means the one the table allows
    assert info.table_action(table, "drop")[0].preamble.name == "MyIngress.drop"
    assert info.table_action("send_frame", "drop")[0].preamble.name == "MyEgress.drop"
    with pytest.raises(P4InfoError) as failure:
        info.table_action(table, "rewrite_mac")
    assert str(failure.value) == ("action 'MyEgress.rewrite_mac' is not allowed in table "
                                  "'MyIngress.ecmp_nhop'; allowed: MyIngress.drop, "
                                  "MyIngress.set_nhop, NoAction")
    with pytest.raises(P4InfoError, match="did you mean 'set_nhop'"):
        info.table_action(table, "set_nhopp")


def test_every_kind_of_object(tables: P4Info) -> None:
    assert tables.counter("port_packets").size == 16
    assert tables.direct_counter("acl_hits").direct_table_id == tables.table("acl").preamble.id
    assert tables.meter("MyIngress.port_meter").size == 16
    assert tables.register("seen_by_source").size == 1024
    assert tables.action_profile("spread").with_selector
    assert tables.table("spread_table").implementation_id == \
        tables.action_profile("spread").preamble.id
    kinds = [tables.match_field("acl", n).match_type
             for n in ("hdr.ipv4.srcAddr", "dstPort", "protocol")]
    assert kinds == [p4info_pb2.MatchField.TERNARY, p4info_pb2.MatchField.RANGE,
                     p4info_pb2.MatchField.OPTIONAL]
    assert "3 tables" in repr(P4Info.load(REPO / "build/load_balance.p4.p4info.txtpb"))


def test_suffix_shared_by_two_fields_is_ambiguous(tables: P4Info) -> None:
    assert tables.match_field("acl", "srcAddr").name == "hdr.ipv4.srcAddr"
    with pytest.raises(P4InfoError, match="did you mean"):
        tables.match_field("acl", "ipv4.proto")


def test_controller_packet_metadata() -> None:
    replicate = P4Info.load(REPO / "tests/p4/replicate.p4.p4info.txtpb")
    packet_out = replicate.packet_metadata("packet_out")
    assert [(m.id, m.name, m.bitwidth) for m in packet_out.metadata][0] == \
        (1, "egress_port", 9)
    assert replicate.packet_metadata("packet_in").metadata[0].name == "ingress_port"


def test_loading_errors(tmp_path: Path) -> None:
    with pytest.raises(P4InfoError) as failure:
        P4Info.load(tmp_path / "missing.txtpb")
    assert str(failure.value).endswith("No such file or directory; have you run 'make'?")
    bad = tmp_path / "bad.txtpb"
    bad.write_bytes(b"\xff\x00not a p4info")
    with pytest.raises(P4InfoError, match="is not a P4Info file"):
        P4Info.load(bad)
    typo = tmp_path / "typo.txtpb"
    typo.write_text('tables {\n  preamble {\n    id: 1\n    name: "t"\n  }\n  size 12\n}\n')
    with pytest.raises(P4InfoError, match="is not valid P4Info text: 6:"):
        P4Info.load(typo)
    empty = tmp_path / "empty.txtpb"
    empty.write_text("# nothing here\n")
    with pytest.raises(P4InfoError, match="has no tables and no actions"):
        P4Info.load(empty)


def test_text_from_a_newer_p4c_with_unknown_fields_loads(tmp_path: Path) -> None:
    """tutorial_spec §5.1: allow_unknown_field, for a P4Info from a newer p4c."""
    text = (REPO / "build/load_balance.p4.p4info.txtpb").read_text()
    newer = tmp_path / "newer.txtpb"
    newer.write_text(text.replace('    alias: "ecmp_group"\n',
                                  '    alias: "ecmp_group"\n    future_field: 7\n'))
    assert P4Info.load(newer).table("ecmp_group").preamble.id == 41423289


def test_binary_p4info(info: P4Info, tmp_path: Path) -> None:
    for name in ("p4info.bin", "p4info.anything"):
        path = tmp_path / name
        path.write_bytes(info.proto.SerializeToString())
        assert P4Info.load(path).proto == info.proto
