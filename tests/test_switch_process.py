"""The switch as a process: real veths in namespaces, real gRPC, real packets."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import crcmod.predefined
import pytest
from procs import (
    REPO,
    Namespaces,
    capture,
    captured,
    expected_out,
    flow,
    free_port,
    load_balance_s1,
    send_frames,
    start_switch,
    stop,
)
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Dot1Q, Ether
from scapy.utils import rdpcap

from p4runtime_lib import (
    P4Info,
    SwitchConnection,
    WriteError,
    insert,
    table_entry,
)

CRC16 = crcmod.predefined.mkCrcFun("crc-16")
PYTHON = sys.executable
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces")


@pytest.fixture
def s1(tmp_path: Path) -> Iterator[tuple[Namespaces, SwitchConnection, subprocess.Popen, Path]]:
    with load_balance_s1(tmp_path, f"t{os.getpid() % 10000}") as value:
        yield value


def test_forwards_real_packets_split_by_crc16(s1) -> None:
    ns, _connection, _process, pcaps = s1
    sports = random.Random(7).sample(range(49152, 65536), 30)
    frames = [flow(s) for s in sports]
    listeners = {2: capture(ns, ns.names[1], 4), 3: capture(ns, ns.names[2], 4)}
    send_frames(ns, ns.names[0], frames)
    got = {port: captured(process) for port, process in listeners.items()}
    for sport, frame in zip(sports, frames):
        key = bytes([10, 0, 1, 1, 10, 0, 0, 1, 6]) + sport.to_bytes(2, "big") + b"\x04\xd2"
        port = 2 if CRC16(key) % 2 == 0 else 3
        assert expected_out(frame, port) in got[port], sport
    ours = [f for port in (2, 3) for f in got[port] if TCP in Ether(f)]
    assert len(ours) == len(frames)  # nothing else, nothing twice
    time.sleep(0.3)  # the pcap files, as BMv2 writes them, hold the same frames
    assert [bytes(p) for p in rdpcap(str(pcaps / f"{ns.names[0]}_in.pcap"))] == frames
    for port in (2, 3):
        written = [bytes(p) for p in rdpcap(str(pcaps / f"{ns.names[port - 1]}_out.pcap"))]
        assert sorted(written) == sorted(f for f in got[port] if TCP in Ether(f))


def test_a_wrong_write_fails_with_the_right_code(s1) -> None:
    _ns, connection, _process, _pcaps = s1
    info = connection.p4info
    duplicate = insert(table_entry(info, "ecmp_group", {"hdr.ipv4.dstAddr": "10.0.0.1/32"},
                                   "MyIngress.drop"))
    with pytest.raises(WriteError) as failure:
        connection.write([duplicate])
    (error,) = failure.value.errors
    assert error.message == "Match entry exists, use MODIFY if you wish to change action"
    assert "ALREADY_EXISTS" in str(error) and "MyIngress.ecmp_group" in str(error)
    entries = connection.read_table_entries()
    assert len(entries) == 5


def test_vlan_tag_reaches_the_pipeline_and_the_pcap(s1) -> None:
    ns, _connection, _process, pcaps = s1
    tagged = bytes(Ether(src="08:00:00:00:01:01", dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=42)
                   / IP(src="10.0.1.1", dst="10.0.0.1") / TCP(sport=50000, dport=1234))
    send_frames(ns, ns.names[0], [tagged])
    time.sleep(1)
    inbound = [bytes(p) for p in rdpcap(str(pcaps / f"{ns.names[0]}_in.pcap"))]
    assert tagged in inbound  # the 802.1Q tag was put back, as libpcap does for BMv2
    for name in ns.names[1:]:  # etherType 0x8100 is not parsed: egress port 0, no interface
        assert tagged not in [bytes(p) for p in rdpcap(str(pcaps / f"{name}_out.pcap"))]


def test_malformed_frames_then_a_valid_one(s1) -> None:
    ns, _connection, process, pcaps = s1
    rng = random.Random(3)
    valid = flow(50000)
    junk = [valid[:n] for n in (1, 13, 14, 20, 33, 34, 40, 53)]
    junk += [bytes(rng.randrange(256) for _ in range(rng.randrange(14, 200))) for _ in range(200)]
    junk += [valid[:54] + bytes(8946)]  # jumbo: 9000 bytes
    send_frames(ns, ns.names[0], junk)
    key = bytes([10, 0, 1, 1, 10, 0, 0, 1, 6]) + (50000).to_bytes(2, "big") + b"\x04\xd2"
    port = 2 if CRC16(key) % 2 == 0 else 3
    listener = capture(ns, ns.names[port - 1], 3)
    send_frames(ns, ns.names[0], [valid])
    assert expected_out(valid, port) in captured(listener)
    assert process.poll() is None
    inbound = [bytes(p) for p in rdpcap(str(pcaps / f"{ns.names[0]}_in.pcap"))]
    assert junk[-1] in inbound  # the 9000-byte frame reached the pipeline whole


# -- command line -----------------------------------------------------------------------

def run_cli(*args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "p4switch", *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO / "utils")},
                          timeout=timeout, check=False)


@pytest.mark.parametrize("args, message", [
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["-i", "1@no-such-if0", "--no-p4"], "interface 'no-such-if0' does not exist"),
    (["-i", "one@x", "--no-p4"], "bad interface 'one@x'"),
    (["/no/such.json"], "cannot read /no/such.json"),
    (["--no-p4", "--", "--grpc-server-addr", "256.1.1.1:1"], "cannot listen on 256.1.1.1:1"),
])
def test_bad_start_is_one_line(args: list[str], message: str) -> None:
    result = run_cli(*args)
    assert result.returncode != 0
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_broken_json_and_busy_port(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"header_types": [}')
    result = run_cli(str(broken))
    assert result.returncode != 0 and "not a BMv2 JSON file" in result.stderr
    port = free_port()
    first = start_switch(["--no-p4"], port)
    try:
        result = run_cli("--no-p4", "--", "--grpc-server-addr", f"127.0.0.1:{port}")
        assert result.returncode != 0
        assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    finally:
        assert stop(first) == 0


# -- the tutorial's basic.json (reference output of p4c) ------------------------------------

def test_basic_json_forwards_untagged_ipv4_and_not_tagged(reference: Path, tmp_path: Path) -> None:
    """basic.p4 parses IPv4 only after etherType 0x0800: the same packet with an
    802.1Q tag reaches the pipeline tagged, is not parsed as IPv4, and goes nowhere."""
    ns = Namespaces(f"b{os.getpid() % 10000}")
    try:
        h1, h2 = ns.add("a"), ns.add("b")
        port = free_port()
        process = start_switch([f"-i1@{h1}", f"-i2@{h2}", str(reference / "basic.json")], port,
                               log=tmp_path / "switch.log")
        info = P4Info.load(reference / "basic.p4info.txtpb")
        with SwitchConnection("s1", f"127.0.0.1:{port}", p4info=info) as connection:
            connection.become_primary()
            connection.set_pipeline(info.proto, (reference / "basic.json").read_bytes())
            connection.write([insert(table_entry(
                info, "ipv4_lpm", {"hdr.ipv4.dstAddr": "10.0.2.0/24"}, "ipv4_forward",
                {"dstAddr": "08:00:00:00:02:22", "port": 2}))])
            packet = (Ether(src="08:00:00:00:01:11", dst="08:00:00:00:01:00")
                      / IP(src="10.0.1.1", dst="10.0.2.2", ttl=64) / TCP(sport=1, dport=2)
                      / b"basic")
            tagged = (Ether(src="08:00:00:00:01:11", dst="08:00:00:00:01:00") / Dot1Q(vlan=5)
                      / IP(src="10.0.1.1", dst="10.0.2.2", ttl=64) / TCP(sport=1, dport=2))
            listener = capture(ns, h2, 3)
            send_frames(ns, h1, [bytes(tagged), bytes(packet)])
            got = captured(listener)
        expected = packet.copy()
        expected.src, expected.dst = "08:00:00:00:01:00", "08:00:00:00:02:22"
        expected[IP].ttl = 63
        del expected[IP].chksum
        assert [f for f in got if IP in Ether(f)] == [bytes(Ether(bytes(expected)))]
        assert stop(process) == 0
    finally:
        ns.close()
