"""P4Info lookups: full names, aliases, suffixes, ids, suggestions, ambiguity."""

from __future__ import annotations

from pathlib import Path

import pytest

from p4runtime_lib.p4info import P4Info, P4InfoError

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def info() -> P4Info:
    return P4Info.load(REPO / "build/load_balance.p4.p4info.txtpb")


def test_names_aliases_and_ids(info: P4Info) -> None:
    table = info.table("MyIngress.ecmp_group")
    assert info.table("ecmp_group") is table
    assert info.table(table.preamble.id) is table
    assert info.action("set_nhop").preamble.name == "MyIngress.set_nhop"
    assert info.action("MyEgress.drop").preamble.name == "MyEgress.drop"


def test_ambiguous_name_lists_the_candidates(info: P4Info) -> None:
    with pytest.raises(P4InfoError, match="'drop' is ambiguous: use one of 'MyEgress.drop', "
                                          "'MyIngress.drop'"):
        info.action("drop")


def test_unknown_names_suggest_the_closest(info: P4Info) -> None:
    with pytest.raises(P4InfoError, match="did you mean 'ecmp_group'"):
        info.table("ecmp_grp")
    table = info.table("ecmp_group")
    with pytest.raises(P4InfoError, match="did you mean 'hdr.ipv4.dstAddr'"):
        info.match_field(table, "hdr.ipv4.dstAdr")
    with pytest.raises(P4InfoError, match="did you mean 'nhop_dmac'"):
        info.param(info.action("set_nhop"), "nhop_mac")
    with pytest.raises(P4InfoError, match="no table with id 5"):
        info.table(5)


def test_actions_allowed_in_a_table(info: P4Info) -> None:
    table = info.table("ecmp_nhop")
    action, ref = info.table_action(table, "set_nhop")
    assert action.preamble.name == "MyIngress.set_nhop" and ref.scope == 0
    with pytest.raises(P4InfoError, match="not allowed in table 'MyIngress.ecmp_nhop'"):
        info.table_action(table, "rewrite_mac")


def test_loading_errors(tmp_path: Path) -> None:
    with pytest.raises(P4InfoError, match="Have you run 'make'"):
        P4Info.load(tmp_path / "missing.txtpb")
    bad = tmp_path / "bad.txtpb"
    bad.write_bytes(b"\xff\x00not a p4info")
    with pytest.raises(P4InfoError):
        P4Info.load(bad)


def test_binary_p4info(info: P4Info, tmp_path: Path) -> None:
    path = tmp_path / "p4info.bin"
    path.write_bytes(info.proto.SerializeToString())
    assert P4Info.load(path).table("ecmp_group").preamble.id == \
        info.table("ecmp_group").preamble.id
