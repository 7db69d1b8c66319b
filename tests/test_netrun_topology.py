"""topology.json as the tutorial writes it, one-line errors for what cannot run, and
the crc16 split prediction against the spec's worked examples (no root needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from procs import REPO

from netrun.ecmp import Ecmp, RulesError, five_tuple, flow_hash
from netrun.topology import LinkEnd, TopologyError, load_topology


def test_the_repo_topology_is_the_tutorials_without_rule_files() -> None:
    topo = load_topology(REPO / "topology.json")
    assert {name: (h.ip, h.mac, h.commands) for name, h in topo.hosts.items()} == {
        "h1": ("10.0.1.1/24", "08:00:00:00:01:01",
               ["route add default gw 10.0.1.10 dev eth0",
                "arp -i eth0 -s 10.0.1.10 08:00:00:00:01:00"]),
        "h2": ("10.0.2.2/24", "08:00:00:00:02:02",
               ["route add default gw 10.0.2.20 dev eth0",
                "arp -i eth0 -s 10.0.2.20 08:00:00:00:02:00"]),
        "h3": ("10.0.3.3/24", "08:00:00:00:03:03",
               ["route add default gw 10.0.3.30 dev eth0",
                "arp -i eth0 -s 10.0.3.30 08:00:00:00:03:00"]),
    }
    assert topo.switches == {"s1": {}, "s2": {}, "s3": {}}
    assert topo.links == [
        (LinkEnd("h1", None), LinkEnd("s1", 1)), (LinkEnd("s1", 2), LinkEnd("s2", 2)),
        (LinkEnd("s1", 3), LinkEnd("s3", 2)), (LinkEnd("s3", 3), LinkEnd("s2", 3)),
        (LinkEnd("h2", None), LinkEnd("s2", 1)), (LinkEnd("h3", None), LinkEnd("s3", 1))]
    assert topo.switch_interfaces() == [f"s{s}-eth{p}" for s in (1, 2, 3) for p in (1, 2, 3)]


def test_switches_sort_naturally_and_keep_tutorial_options(tmp_path: Path) -> None:
    topo_file = tmp_path / "topology.json"
    topo_file.write_text(json.dumps({
        "hosts": {"h1": {"ip": "10.0.1.1/24", "mac": "08:00:00:00:01:01"}},
        "switches": {"s10": {}, "s2": {"program": "other.json", "cpu_port": 255}},
        "links": [["h1", "s10-p1"], ["s2-p1", "s10-p2"]]}))
    topo = load_topology(topo_file)
    assert topo.switch_interfaces() == ["s2-eth1", "s10-eth1", "s10-eth2"]
    assert topo.switches["s2"] == {"program": str(tmp_path / "other.json"), "cpu_port": 255}


@pytest.mark.parametrize(("document", "message"), [
    ("[1, 2]", "expected a JSON object with hosts, switches, links"),
    ('{"hosts": []}', "'hosts' must be a JSON object"),
    ('{"hosts": {"h1": {"ip": "10.0.1.1/24"}}}', "host 'h1' needs an 'ip' and a 'mac'"),
    ('{"switches": {"s1": {"runtime_json": "s1-runtime.json"}}}',
     "switch 's1' has 'runtime_json': rules come from ./mycontroller.py in this exercise; "
     "remove it"),
    ('{"switches": {"s1": {"cpu-port": 3}}}',
     "switch 's1': unknown key 'cpu-port' (known: program, cpu_port, priority_queues)"),
    ('{"switches": {"s1": {"cpu_port": "x"}}}',
     "switch 's1': 'cpu_port' must be a non-negative integer"),
    ('{"switches": {"s1": {}}, "links": [["s1-p1", "s9-p1"]]}',
     "link end 's9-p1' is neither a host nor a switch port sN-pM (hosts: ; switches: s1)"),
    ('{"switches": {"s1": {}}, "links": [["s1-p1", "s1-p1"]]}', "port 1 of s1 is linked twice"),
    ('{"switches": {"s1": {}}, "links": [["s1-p1"]]}', "needs two ends"),
    ('{"hosts": {"h1": {"ip": "a", "mac": "b"}, "h2": {"ip": "c", "mac": "d"}}, '
     '"links": [["h1", "h2"]]}', "link [h1, h2] joins two hosts"),
    ('{"hosts": {"h1": {"ip": "a", "mac": "b"}}, "switches": {"s1": {}}, '
     '"links": [["h1", "s1-p1"], ["h1", "s1-p2"]]}', "host h1 (it has a single eth0) is "
     "linked twice"),
    ('{"hosts": {"h1": {"ip": "a", "mac": "b"}}, "switches": {"s1": {}}, "links": []}',
     "'h1' has no link"),
])
def test_unusable_topologies_are_one_line(tmp_path: Path, document: str, message: str) -> None:
    path = tmp_path / "topology.json"
    path.write_text(document)
    with pytest.raises(TopologyError) as error:
        load_topology(path)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_missing_or_broken_files_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match=r"^cannot read .*nope\.json: No such file"):
        load_topology(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(TopologyError, match=r"bad\.json is not valid JSON: "):
        load_topology(tmp_path / "bad.json")


def test_the_split_prediction_matches_the_spec_examples() -> None:
    """tutorial_spec: sport 50000 -> crc16 0x8a04 -> h2; 50001, 50002 -> h3; 50003 -> h2,
    with the VIP, base, count and next hops read from mycontroller.py's rules for s1."""
    assert five_tuple(50000) == bytes.fromhex("0a000101" "0a000001" "06" "c350" "04d2")
    assert flow_hash(50000) == 0x8A04
    ecmp = Ecmp.load(REPO)
    assert (ecmp.vip, ecmp.base, ecmp.count, ecmp.next_hops) == ("10.0.0.1", 0, 2, ["h2", "h3"])
    assert [ecmp.host(s) for s in (50000, 50001, 50002, 50003)] == ["h2", "h3", "h3", "h2"]
    assert ecmp.split([50000, 50001, 50002, 50003]) == \
        {"h2": [50000, 50003], "h3": [50001, 50002]}


def test_the_prediction_follows_an_edited_controller(tmp_path: Path) -> None:
    """Swap s1's two next hops in a copy of mycontroller.py: the prediction swaps too
    (no second copy of the rules to forget), and rules without a VIP say so."""
    for name in ("topology.json", "build", "load_balance.p4", "utils"):
        (tmp_path / name).symlink_to(REPO / name)
    source = (REPO / "mycontroller.py").read_text()
    h2_rule = 'write_ecmp_nhop_rules(p4info, s1, 0, "10.0.2.2"'
    h3_rule = 'write_ecmp_nhop_rules(p4info, s1, 1, "10.0.3.3"'
    assert h2_rule in source and h3_rule in source
    swapped = source.replace(h2_rule, "@").replace(h3_rule, h2_rule.replace(" 0,", " 1,"))
    (tmp_path / "mycontroller.py").write_text(swapped.replace("@", h3_rule.replace(" 1,", " 0,")))
    ecmp = Ecmp.load(tmp_path)
    assert ecmp.hosts == {0: "h3", 1: "h2"}
    assert [ecmp.host(s) for s in (50000, 50001)] == ["h3", "h2"]

    vip_rule = 'write_ecmp_group_rules(p4info, s1, "10.0.0.1/32"'
    assert vip_rule in source
    (tmp_path / "mycontroller.py").write_text(source.replace(vip_rule, "# " + vip_rule))
    with pytest.raises(RulesError, match=r"^the rules do not balance a VIP over next hops: "
                                         r"vip=None"):
        Ecmp.load(tmp_path)


def test_crc16_is_crc16_arc() -> None:
    """The CRC catalogue's check value for CRC-16/ARC over "123456789" is 0xbb3d."""
    import crcmod.predefined

    assert crcmod.predefined.mkCrcFun("crc-16")(b"123456789") == 0xBB3D
