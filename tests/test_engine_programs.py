"""The engine runs p4c's output for the tutorial programs like BMv2.

Every expected frame is built independently with scapy (and scapy's own
checksum); hash values come from crcmod, not from the engine.
"""

from __future__ import annotations

import struct
from pathlib import Path

import crcmod.predefined
import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw
from scapy.utils import checksum

from p4switch.engine import ActionCall, Pipeline

CRC16_ARC = crcmod.predefined.mkCrcFun("crc-16")  # BMv2's crc16 is CRC-16/ARC
NOW = 0.0  # Pipeline.process reads no clock: these packets all arrive at t = 0 s


def load(reference: Path, name: str) -> Pipeline:
    return Pipeline.from_json((reference / f"{name}.json").read_bytes())


def add(pipeline: Pipeline, table: str, match: list, action: str, *args: int,
        priority: int = 0) -> None:
    t = pipeline.tables[table]
    t.insert(match, ActionCall(t.actions[action], tuple(args)), priority)


def set_default(pipeline: Pipeline, table: str, action: str, *args: int) -> None:
    t = pipeline.tables[table]
    t.set_default(ActionCall(t.actions[action], tuple(args)))


def mac(text: str) -> int:
    return int(text.replace(":", ""), 16)


def ip(text: str) -> int:
    return int.from_bytes(bytes(int(x) for x in text.split(".")), "big")


# -- load_balance ---------------------------------------------------------------

def program_s1(reference: Path) -> Pipeline:
    """load_balance as s1 of the exercise (rules of issue 3)."""
    pipeline = load(reference, "load_balance")
    add(pipeline, "MyIngress.ecmp_group", [(ip("10.0.0.1"), 32)],
        "MyIngress.set_ecmp_select", 0, 2)
    add(pipeline, "MyIngress.ecmp_nhop", [0], "MyIngress.set_nhop",
        mac("00:00:00:00:01:02"), ip("10.0.2.2"), 2)
    add(pipeline, "MyIngress.ecmp_nhop", [1], "MyIngress.set_nhop",
        mac("00:00:00:00:01:03"), ip("10.0.3.3"), 3)
    add(pipeline, "MyEgress.send_frame", [2], "MyEgress.rewrite_mac", mac("00:00:00:01:02:00"))
    add(pipeline, "MyEgress.send_frame", [3], "MyEgress.rewrite_mac", mac("00:00:00:01:03:00"))
    set_default(pipeline, "MyIngress.ecmp_group", "MyIngress.drop")
    return pipeline


def tcp_frame(sport: int, dst: str = "10.0.0.1", ttl: int = 64, payload: bytes = b"hi") -> bytes:
    return bytes(Ether(src="08:00:00:00:01:01", dst="ff:ff:ff:ff:ff:ff")
                 / IP(src="10.0.1.1", dst=dst, ttl=ttl) / TCP(sport=sport, dport=1234)
                 / Raw(payload))


def expected_lb(frame: bytes, dmac: str, smac: str, new_dst: str) -> bytes:
    """What BMv2 sends: MACs and dst IP rewritten, TTL-1, IPv4 checksum recomputed,
    TCP checksum left stale (the program does not update it)."""
    packet = Ether(frame)
    packet.dst, packet.src = dmac, smac
    packet[IP].dst = new_dst
    packet[IP].ttl -= 1
    del packet[IP].chksum
    return bytes(packet)


def test_load_balance_splits_by_crc16_of_the_five_tuple(reference: Path) -> None:
    pipeline = program_s1(reference)
    seen = {2: 0, 3: 0}
    for sport in range(50000, 50064):
        frame = tcp_frame(sport)
        key = (bytes([10, 0, 1, 1, 10, 0, 0, 1, 6]) + struct.pack("!HH", sport, 1234))
        select = CRC16_ARC(key) % 2
        port = 2 if select == 0 else 3
        expected = expected_lb(frame, f"00:00:00:00:01:0{port}", f"00:00:00:01:0{port}:00",
                               "10.0.2.2" if port == 2 else "10.0.3.3")
        result = pipeline.process(1, frame, NOW)
        assert result.outputs == [(port, expected)], sport
        seen[port] += 1
    assert seen[2] and seen[3]


def test_load_balance_spec_example_ports(reference: Path) -> None:
    pipeline = program_s1(reference)
    ports = [pipeline.process(1, tcp_frame(sport), NOW).outputs[0][0]
             for sport in (50000, 50001, 50002, 50003)]
    assert ports == [2, 3, 3, 2]


def test_load_balance_miss_hits_default_drop(reference: Path) -> None:
    pipeline = program_s1(reference)
    result = pipeline.process(1, tcp_frame(50000, dst="10.0.9.9"), NOW)
    assert result.outputs == [] and result.drops == 1


def test_load_balance_without_default_drop_sends_to_port_0(reference: Path) -> None:
    """NoAction leaves egress_spec 0: BMv2 transmits on port 0 (no interface there)."""
    pipeline = load(reference, "load_balance")
    frame = tcp_frame(50000, dst="10.0.9.9")
    result = pipeline.process(1, frame, NOW)
    assert result.outputs == [(0, frame)]


def test_load_balance_ttl_zero_skips_tables(reference: Path) -> None:
    pipeline = program_s1(reference)
    frame = tcp_frame(50000, ttl=0)
    assert pipeline.process(1, frame, NOW).outputs == [(0, frame)]


def test_load_balance_non_ip_passes_unparsed(reference: Path) -> None:
    pipeline = program_s1(reference)
    frame = bytes(Ether(src="08:00:00:00:01:01", dst="ff:ff:ff:ff:ff:ff") / ARP(pdst="10.0.1.10"))
    assert pipeline.process(1, frame, NOW).outputs == [(0, frame)]


def test_load_balance_icmp_hash_skips_invalid_tcp_fields(reference: Path) -> None:
    """BMv2 leaves fields of invalid headers out of the hash input."""
    pipeline = program_s1(reference)
    frame = bytes(Ether(src="08:00:00:00:01:01", dst="ff:ff:ff:ff:ff:ff")
                  / IP(src="10.0.1.1", dst="10.0.0.1") / ICMP())
    select = CRC16_ARC(bytes([10, 0, 1, 1, 10, 0, 0, 1, 1])) % 2
    port = 2 if select == 0 else 3
    expected = expected_lb(frame, f"00:00:00:00:01:0{port}", f"00:00:00:01:0{port}:00",
                           "10.0.2.2" if port == 2 else "10.0.3.3")
    assert pipeline.process(1, frame, NOW).outputs == [(port, expected)]


def test_truncated_tcp_header_is_a_parser_error_not_a_crash(reference: Path) -> None:
    """PacketTooShort: ipv4 stays valid, tcp invalid, its bytes stay in the payload."""
    pipeline = program_s1(reference)
    full = tcp_frame(50000)
    frame = full[:14 + 20 + 10]  # half a TCP header
    select = CRC16_ARC(bytes([10, 0, 1, 1, 10, 0, 0, 1, 6])) % 2
    port = 2 if select == 0 else 3
    packet = bytearray(frame)
    packet[0:6] = bytes.fromhex(f"00000000010{port}")
    packet[6:12] = bytes.fromhex(f"000000010{port}00")
    packet[14 + 8] -= 1  # ttl
    packet[14 + 16:14 + 20] = bytes([10, 0, port, port])
    packet[14 + 10:14 + 12] = b"\x00\x00"
    packet[14 + 10:14 + 12] = struct.pack("!H", checksum(bytes(packet[14:34])))
    assert pipeline.process(1, frame, NOW).outputs == [(port, bytes(packet))]


@pytest.mark.parametrize("size", [0, 1, 13, 14, 20, 33, 34, 53])
def test_short_frames_never_crash(reference: Path, size: int) -> None:
    pipeline = program_s1(reference)
    frame = tcp_frame(50000)[:size]
    result = pipeline.process(1, frame, NOW)
    assert result.error is None
    for _port, out in result.outputs:
        assert len(out) == size


# -- basic / basic_tunnel / ecn -----------------------------------------------------

def test_basic_longest_prefix_wins(reference: Path) -> None:
    pipeline = load(reference, "basic")
    add(pipeline, "MyIngress.ipv4_lpm", [(ip("10.0.0.0"), 8)], "MyIngress.ipv4_forward",
        mac("08:00:00:00:00:08"), 8)
    add(pipeline, "MyIngress.ipv4_lpm", [(ip("10.0.2.0"), 24)], "MyIngress.ipv4_forward",
        mac("08:00:00:00:02:22"), 2)
    add(pipeline, "MyIngress.ipv4_lpm", [(ip("10.0.2.2"), 32)], "MyIngress.ipv4_forward",
        mac("08:00:00:00:02:02"), 3)
    for dst, port, dmac in (("10.0.2.2", 3, "08:00:00:00:02:02"),
                            ("10.0.2.7", 2, "08:00:00:00:02:22"),
                            ("10.9.9.9", 8, "08:00:00:00:00:08")):
        frame = bytes(Ether(src="08:00:00:00:01:11", dst="08:00:00:00:01:00")
                      / IP(src="10.0.1.1", dst=dst) / UDP(dport=7) / Raw(b"x" * 10))
        packet = Ether(frame)
        packet.src, packet.dst = packet.dst, dmac
        packet[IP].ttl -= 1
        del packet[IP].chksum
        assert pipeline.process(1, frame, NOW).outputs == [(port, bytes(packet))]
    # basic's default action is drop
    miss = bytes(Ether() / IP(dst="192.168.1.1"))
    assert pipeline.process(1, miss, NOW).outputs == []


def test_basic_tunnel_forwards_on_dst_id(reference: Path) -> None:
    pipeline = load(reference, "basic_tunnel")
    add(pipeline, "MyIngress.myTunnel_exact", [2], "MyIngress.myTunnel_forward", 4)
    frame = (bytes(Ether(src="08:00:00:00:01:11", dst="08:00:00:00:02:22", type=0x1212))
             + struct.pack("!HH", 0x0800, 2) + bytes(IP(src="10.0.1.1", dst="10.0.2.2")))
    assert pipeline.process(1, frame, NOW).outputs == [(4, frame)]
    unknown = frame[:14] + struct.pack("!HH", 0x0800, 9) + frame[18:]
    assert pipeline.process(1, unknown, NOW).outputs == []


def test_ecn_leaves_ecn_alone_with_an_empty_queue(reference: Path) -> None:
    pipeline = load(reference, "ecn")
    add(pipeline, "MyIngress.ipv4_lpm", [(ip("10.0.2.2"), 32)], "MyIngress.ipv4_forward",
        mac("08:00:00:00:02:22"), 2)
    frame = bytes(Ether(src="08:00:00:00:01:11", dst="08:00:00:00:01:00")
                  / IP(src="10.0.1.1", dst="10.0.2.2", tos=1) / UDP())
    packet = Ether(frame)
    packet.src, packet.dst = packet.dst, "08:00:00:00:02:22"
    packet[IP].ttl -= 1
    del packet[IP].chksum
    assert pipeline.process(1, frame, NOW).outputs == [(2, bytes(packet))]


# -- header stacks: mri and source_routing -------------------------------------------

def ipv4_header(total_len: int, ihl: int, options: bytes, ttl: int = 64) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", (4 << 4) | ihl, 0, total_len, 1, 0, ttl, 17, 0,
                         bytes([10, 0, 1, 1]), bytes([10, 0, 2, 2]))
    # MRI's update_checksum covers the fixed 20 bytes only, not the options.
    return header[:10] + struct.pack("!H", checksum(header)) + header[12:] + options


def test_mri_pushes_a_switch_trace(reference: Path) -> None:
    pipeline = load(reference, "mri")
    add(pipeline, "MyIngress.ipv4_lpm", [(ip("10.0.2.2"), 32)], "MyIngress.ipv4_forward",
        mac("08:00:00:00:02:22"), 2)
    set_default(pipeline, "MyEgress.swtrace", "MyEgress.add_swtrace", 7)
    eth_in = struct.pack("!6s6sH", bytes.fromhex("080000000100"), bytes.fromhex("080000000111"),
                         0x0800)
    payload = b"\x00\x07\x00\x07\x00\x0c\x00\x00data"
    option_in = bytes([0x1F, 4]) + struct.pack("!H", 0)  # option 31, length 4, count 0
    frame = eth_in + ipv4_header(20 + 4 + len(payload), 6, option_in) + payload
    eth_out = struct.pack("!6s6sH", bytes.fromhex("080000000222"), bytes.fromhex("080000000100"),
                          0x0800)
    option_out = bytes([0x1F, 12]) + struct.pack("!H", 1) + struct.pack("!II", 7, 0)
    expected = eth_out + ipv4_header(20 + 12 + len(payload), 8, option_out, ttl=63) + payload
    assert pipeline.process(1, frame, NOW).outputs == [(2, expected)]


def test_source_routing_pops_the_stack(reference: Path) -> None:
    """Each hop pops its port; every hop decrements the TTL (no checksum update)."""
    pipeline = load(reference, "source_routing")
    eth = bytes(Ether(src="08:00:00:00:01:11", dst="08:00:00:00:02:22", type=0x1234))
    routes = struct.pack("!HHH", 2, 3, 0x8000 | 1)  # port 2, port 3, bos port 1
    ip_bytes = bytes(IP(src="10.0.1.1", dst="10.0.2.2") / UDP())
    ip_after = ip_bytes[:8] + bytes([ip_bytes[8] - 1]) + ip_bytes[9:]
    out = pipeline.process(1, eth + routes + ip_bytes, NOW).outputs
    assert out == [(2, eth + routes[2:] + ip_after)]
    # last hop: bos set -> etherType back to IPv4 and the stack is emptied
    last = pipeline.process(1, eth + routes[4:] + ip_bytes, NOW).outputs
    assert last == [(1, bytes(Ether(src="08:00:00:00:01:11", dst="08:00:00:00:02:22", type=0x800))
                     + ip_after)]


def test_source_routing_without_routes_drops(reference: Path) -> None:
    pipeline = load(reference, "source_routing")
    frame = bytes(Ether(type=0x0800) / IP() / UDP())
    assert pipeline.process(1, frame, NOW).outputs == []


# -- multicast ------------------------------------------------------------------

def test_multicast_replicates_and_prunes_the_ingress_port(reference: Path) -> None:
    pipeline = load(reference, "multicast")
    pipeline.pre.set_group(1, [(1, 1), (2, 1), (3, 1), (4, 1)])
    add(pipeline, "MyIngress.mac_lookup", [mac("08:00:00:00:03:33")],
        "MyIngress.mac_forward", 3)
    frame = bytes(Ether(src="08:00:00:00:01:11", dst="ff:ff:ff:ff:ff:ff") / IP() / UDP())
    result = pipeline.process(2, frame, NOW)
    assert result.outputs == [(1, frame), (3, frame), (4, frame)]
    unicast = bytes(Ether(src="08:00:00:00:01:11", dst="08:00:00:00:03:33") / IP() / UDP())
    assert pipeline.process(2, unicast, NOW).outputs == [(3, unicast)]
