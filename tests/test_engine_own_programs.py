"""The engine on our own test programs (tests/p4/*.p4, compiled by p4c 1.2.4.8).

They cover what the tutorial programs do not: header stacks both ways,
varbit headers, lookahead, verify, parser value sets, truncate, exit, every
match kind, const entries, action selectors, counters, meters, registers,
every hash algorithm, signed and saturating arithmetic, clones, resubmit,
recirculate, digests and multicast replication ids.  Expected values come from
struct/scapy/crcmod/zlib, never from the engine.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path

import crcmod.predefined
import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import checksum

from p4switch.engine import ActionCall, CloneSession, MeterConfig, Pipeline

P4_DIR = Path(__file__).parent / "p4"
CRC16 = crcmod.predefined.mkCrcFun("crc-16")
NOW = 0.0  # Pipeline.process reads no clock: packets arrive at t = 0 s unless a test says


def load(name: str) -> Pipeline:
    return Pipeline.from_json((P4_DIR / f"{name}.json").read_bytes())


def add(pipeline: Pipeline, table: str, match: list, action: str, *args: int,
        priority: int = 0) -> None:
    t = pipeline.tables[table]
    t.insert(match, ActionCall(t.actions[action], tuple(args)), priority)


@pytest.mark.parametrize("name", ["stacks", "tables", "replicate", "hashes"])
def test_committed_json_matches_its_source(name: str) -> None:
    """tests/p4/NAME.json was compiled from this very NAME.p4 (sha256 stamp)."""
    stamp = (P4_DIR / f"{name}.p4.sha256").read_text().split()[0]
    assert stamp == hashlib.sha256((P4_DIR / f"{name}.p4").read_bytes()).hexdigest()


# -- stacks.p4 -----------------------------------------------------------------------

DST = bytes.fromhex("0a0000000000")
SRC = bytes.fromhex("0b0000000000")


def label(value: int, bos: int, ttl: int = 9, tc: int = 0) -> bytes:
    return struct.pack("!I", (value << 12) | (tc << 9) | (bos << 8) | ttl)


def ipv4(ihl: int = 5, options: bytes = b"", payload_len: int = 8) -> bytes:
    total = ihl * 4 + payload_len
    header = struct.pack("!BBHHHBBH4s4s", (4 << 4) | ihl, 0, total, 7, 0, 64, 17, 0,
                         bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    return header + options


UDP_BYTES = struct.pack("!HHHH", 1111, 2222, 8, 0)


def eth(ethertype: int, dst: bytes = DST, src: bytes = SRC) -> bytes:
    return dst + src + struct.pack("!H", ethertype)


def last_byte(dst: bytes, value: int) -> bytes:
    return dst[:5] + bytes([value])


def stacks_with_op(action: str, *args: int) -> Pipeline:
    pipeline = load("stacks")
    add(pipeline, "MyIngress.op", [int.from_bytes(DST, "big")], action, *args)
    return pipeline


def test_pop_front_removes_the_top_label() -> None:
    pipeline = stacks_with_op("MyIngress.pop_label", 3)
    frame = eth(0x88B5) + label(100, 0) + label(200, 1) + ipv4() + UDP_BYTES
    # lastIndex was 1 when parsing ended; it lands in the last byte of dstAddr
    expected = eth(0x88B5, last_byte(DST, 1)) + label(200, 1) + ipv4() + UDP_BYTES
    assert pipeline.process(1, frame, NOW).outputs == [(3, expected)]


def test_push_front_adds_a_label() -> None:
    pipeline = stacks_with_op("MyIngress.push_label", 77, 4)
    frame = eth(0x88B5) + label(100, 1) + ipv4() + UDP_BYTES
    expected = (eth(0x88B5, last_byte(DST, 0)) + label(77, 0, ttl=64) + label(100, 1)
                + ipv4() + UDP_BYTES)
    assert pipeline.process(1, frame, NOW).outputs == [(4, expected)]


def test_varbit_options_and_lookahead() -> None:
    pipeline = load("stacks")
    options = bytes([0x94, 4, 0, 0])  # router alert
    frame = eth(0x0800) + ipv4(6, options) + UDP_BYTES
    # default action forward(1); options kept; peek header holds the first option byte
    expected = eth(0x0800, last_byte(DST, 0)) + ipv4(6, options) + UDP_BYTES + bytes([0x94])
    assert pipeline.process(2, frame, NOW).outputs == [(1, expected)]


def test_removing_a_varbit_header() -> None:
    pipeline = stacks_with_op("MyIngress.strip_options", 2)
    options = bytes([1, 1, 1, 1, 7, 7, 7, 7])
    frame = eth(0x0800) + ipv4(7, options) + UDP_BYTES + b"data"
    ip_out = bytearray(ipv4(7))
    ip_out[0] = (4 << 4) | 5  # ihl rewritten, totalLen left as it was
    # options invalid: no peek header either
    expected = eth(0x0800, last_byte(DST, 0)) + bytes(ip_out) + UDP_BYTES + b"data"
    assert pipeline.process(1, frame, NOW).outputs == [(2, expected)]


@pytest.mark.parametrize("frame, marker", [
    (eth(0x0800) + ipv4()[:15], 1),                                  # PacketTooShort
    (eth(0x88B5) + b"".join(label(i, 0) for i in range(5)), 2),      # StackOutOfBounds
    (eth(0x0800) + ipv4(4)[:20] + UDP_BYTES, 3),                     # verify failed
])
def test_parser_errors_reach_ingress(frame: bytes, marker: int) -> None:
    """BMv2 keeps the headers extracted before the error and the rest as payload."""
    pipeline = load("stacks")
    (out,) = pipeline.process(1, frame, NOW).outputs
    assert out[0] == 1
    data = out[1]
    assert data[6:12] == marker.to_bytes(6, "big")
    assert data[14:] == frame[14:]  # the labels/ipv4 went back out unchanged


def test_parser_value_set() -> None:
    pipeline = load("stacks")
    frame = eth(0x9000) + label(5, 1) + ipv4() + UDP_BYTES
    assert pipeline.process(1, frame, NOW).outputs == [(1, eth(0x9000) + frame[14:])]
    pipeline.program.value_sets["MyParser.tunnel_types"].add(0x9000)
    expected = eth(0x9000, last_byte(DST, 0)) + frame[14:]
    assert pipeline.process(1, frame, NOW).outputs == [(1, expected)]


def test_truncate_and_exit() -> None:
    pipeline = stacks_with_op("MyIngress.chop", 20, 5)
    frame = eth(0x0800) + ipv4() + UDP_BYTES + b"x" * 30
    (port, data), = pipeline.process(1, frame, NOW).outputs
    assert (port, data) == (5, (eth(0x0800, last_byte(DST, 0)) + frame[14:])[:20])
    pipeline = stacks_with_op("MyIngress.stop_here", 6)
    short = eth(0x0800) + ipv4()[:10]  # a parser error that exit skips marking
    assert pipeline.process(1, short, NOW).outputs == [(6, short)]


# -- tables.p4 -----------------------------------------------------------------------

def udp_frame(src: str = "10.1.2.3", dst: str = "10.9.0.1", sport: int = 1000,
              dport: int = 53, proto_udp: bool = True) -> bytes:
    return bytes(Ether(dst="00:00:00:00:00:02", src="00:00:00:00:00:01")
                 / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / Raw(b"q"))


def report(out: bytes) -> tuple[int, int, int, int, int, int]:
    """acl, route, konst, member, color, seen from the report header."""
    return struct.unpack("!BBBBBI", out[14 + 20 + 8:14 + 20 + 8 + 9])


def tables_pipeline() -> Pipeline:
    pipeline = load("tables")
    add(pipeline, "MyIngress.route", [1, (0x0A090000, 16)], "MyIngress.set_route", 7, 2)
    add(pipeline, "MyIngress.route", [1, (0x0A090000, 24)], "MyIngress.set_route", 8, 3)
    return pipeline


def test_exact_plus_lpm_and_the_default() -> None:
    pipeline = tables_pipeline()
    (port, out), = pipeline.process(1, udp_frame(dst="10.9.0.1"), NOW).outputs
    assert (port, report(out)[1]) == (3, 8)
    (port, out), = pipeline.process(1, udp_frame(dst="10.9.5.1"), NOW).outputs
    assert (port, report(out)[1]) == (2, 7)
    assert pipeline.process(2, udp_frame(dst="10.9.0.1"), NOW).outputs == []  # no_route drops


def test_ternary_range_optional_priorities() -> None:
    pipeline = tables_pipeline()
    acl = pipeline.tables["MyIngress.acl"]
    call = acl.actions["MyIngress.mark_acl"]
    any_range = (0, 0xFFFF)
    acl.insert([(0x0A010000, 0xFFFF0000), any_range, (0, 0)], ActionCall(call, (1,)), 10)
    acl.insert([(0x0A010200, 0xFFFFFF00), (50, 60), (17, 0xFF)], ActionCall(call, (2,)), 20)
    acl.insert([(0, 0), (53, 53), (6, 0xFF)], ActionCall(call, (3,)), 30)
    results = {}
    for name, frame in {"both": udp_frame(), "range-miss": udp_frame(dport=70),
                        "none": udp_frame(src="10.2.0.1")}.items():
        (_, out), = pipeline.process(1, frame, NOW).outputs
        results[name] = report(out)[0]
    # priority 30 needs TCP; 20 wins over 10; outside the range only 10 fits; else default
    assert results == {"both": 2, "range-miss": 1, "none": 0xEE}


def test_const_entries_by_priority() -> None:
    pipeline = tables_pipeline()
    values = []
    for sport in (0x1234, 0x1034, 0x2000):
        (_, out), = pipeline.process(1, udp_frame(sport=sport), NOW).outputs
        values.append(report(out)[2])
    assert values == [1, 1, 3]  # 0x1234 matches both ternaries: the first listed wins


def test_action_selector_spreads_by_crc16() -> None:
    pipeline = tables_pipeline()
    profile = pipeline.program.profiles["MyIngress.spread"]
    table = pipeline.tables["MyIngress.spread_table"]
    pick = table.actions["MyIngress.pick"]
    for member in range(3):
        profile.add_member(100 + member, ActionCall(pick, (member,)))
    profile.set_group(1, [100, 101, 102], create=True)
    table.insert([0x0A090001], None, member=None, group=1)
    for sport in range(1000, 1020):
        (_, out), = pipeline.process(1, udp_frame(sport=sport), NOW).outputs
        expected = CRC16(struct.pack("!HH", sport, 53)) % 3
        assert report(out)[3] == expected


def test_counters_meters_and_registers() -> None:
    pipeline = tables_pipeline()
    frame = udp_frame(sport=0x0405)
    for _ in range(3):
        (_, out), = pipeline.process(1, frame, NOW).outputs
    assert report(out)[5] == 3  # the register counted three packets from this source port
    assert pipeline.program.registers["MyIngress.seen_by_source"].values[0x0405 & 0x3FF] == 3
    counter = pipeline.program.counters["MyIngress.port_packets"]
    assert (counter.packets[1], counter.bytes[1]) == (3, 3 * len(frame))
    # direct counter: the default action of acl counted nothing (no entry hit)
    assert all(e.packets == 0 for e in pipeline.tables["MyIngress.acl"].entries())
    meter = pipeline.program.meters["MyIngress.port_meter"]
    meter.configure(1, MeterConfig(cir=1, cburst=1, pir=2, pburst=2))
    colors = [report(pipeline.process(1, frame, NOW).outputs[0][1])[4] for _ in range(4)]
    assert colors[0] == 0 and colors[-1] == 2  # green first, then red once buckets are empty


def test_meters_refill_on_the_callers_clock() -> None:
    """``now`` is all the engine knows of time: the same instant empties the buckets,
    half a second refills half of them, a whole second all (cir 1/s, pir 2/s)."""
    pipeline = tables_pipeline()
    pipeline.program.meters["MyIngress.port_meter"].configure(
        1, MeterConfig(cir=1, cburst=1, pir=2, pburst=2))
    frame = udp_frame(sport=0x0405)

    def color(now: float) -> int:
        return report(pipeline.process(1, frame, now).outputs[0][1])[4]

    assert [color(100.0) for _ in range(4)] == [0, 1, 2, 2]  # green, yellow, red, red
    assert color(100.5) == 1  # committed 0.5 < 1, peak 1: yellow
    assert color(101.5) == 0  # a second later both are full again: green
    assert color(101.5) == 1


# -- hashes.p4 -----------------------------------------------------------------------

def hash_frame(a: int, b: int, c: int, s: int, u: int, good_sum: bool = True) -> bytes:
    body = struct.pack("!IIH", a, b, c)
    total = checksum(body) if good_sum else 0x1234
    return eth(0x7777) + body + struct.pack("!Hbb", total, s, u if u < 128 else u - 256)


@pytest.mark.parametrize("a, b, c, s, u", [
    (0x01020304, 0xA0B0C0D0, 0xBEEF, -5, 200),
    (0, 0xFFFFFFFF, 1, 127, 3),
    (0xDEADBEEF, 7, 0, -128, 255),
])
def test_hash_algorithms_and_arithmetic(a: int, b: int, c: int, s: int, u: int) -> None:
    pipeline = load("hashes")
    frame = hash_frame(a, b, c, s, u)
    (port, out), = pipeline.process(1, frame, NOW).outputs
    assert port == 2
    data = struct.pack("!IIH", a, b, c)
    result = out[len(frame):]
    fields = struct.unpack("!HIHHHHIBbBbBHBBB", result)
    (crc16, crc32, csum, ident, xor16, crc16c, crc32c, cksum_err, s_plus, u_sat, s_sat,
     shifted, concat, neg, cmp, sub) = fields
    xor = 0
    for i in range(0, len(data), 2):
        xor ^= int.from_bytes(data[i:i + 2], "big")
    wrap = ((s + 100 + 128) % 256) - 128
    assert (crc16, crc32, csum, ident, xor16) == (CRC16(data), zlib.crc32(data), checksum(data),
                                                  c, xor)
    assert (crc16c, crc32c) == (CRC16(data[:8]), zlib.crc32(data[:8]))
    assert cksum_err == 0
    assert (s_plus, u_sat, s_sat) == (wrap, min(u + 200, 255), max(s - 100, -128))
    assert shifted == ((u << 3) & 0xFF) >> 1
    assert concat == (u << 8) | (a & 0xFF)
    assert (neg, cmp, sub) == (~u & 0xFF, 1 if s < 0 else 0, (u - 200) & 0xFF)


def test_checksum_verification_sets_checksum_error() -> None:
    pipeline = load("hashes")
    frame = hash_frame(1, 2, 3, 0, 0, good_sum=False)
    (_, out), = pipeline.process(1, frame, NOW).outputs
    result = out[len(frame):]
    assert result[2 + 4 + 2 + 2 + 2 + 2 + 4] == 1


# -- replicate.p4 ----------------------------------------------------------------------

CPU = 64


def tag(instance: int = 0, rid: int = 0, passes: int = 0, mark: int = 0) -> bytes:
    return struct.pack("!BHBB", instance, rid, passes, mark)


def tagged(dst: bytes) -> bytes:
    return eth(0x9999, dst) + tag() + b"payload"


def replicate_with(action: str, *args: int, dst: bytes = DST) -> Pipeline:
    pipeline = load("replicate")
    add(pipeline, "MyIngress.fwd", [int.from_bytes(dst, "big")], action, *args)
    return pipeline


def test_multicast_sets_rid_and_instance_type() -> None:
    pipeline = replicate_with("MyIngress.flood", 5)
    pipeline.pre.set_group(5, [(2, 10), (3, 10), (4, 11)])
    outputs = pipeline.process(1, tagged(DST), NOW).outputs
    expected = [(port, eth(0x9999) + tag(5, rid) + b"payload")
                for port, rid in ((2, 10), (3, 10), (4, 11))]
    assert outputs == expected  # instance type 5 = replication


def test_ingress_clone_preserves_the_field_list() -> None:
    pipeline = replicate_with("MyIngress.clone_ingress", 9, 2)
    pipeline.pre.set_session(9, CloneSession([(7, 0)]))
    outputs = pipeline.process(1, tagged(DST), NOW).outputs
    # the clone is the original packet, instance type 1, with meta.mark preserved
    assert sorted(outputs) == sorted([(7, eth(0x9999) + tag(1, 0, 0, 0x11) + b"payload"),
                                      (2, eth(0x9999) + tag(0, 0, 0, 0x11) + b"payload")])


def test_egress_clone() -> None:
    pipeline = replicate_with("MyIngress.clone_egress", 4, 2)
    pipeline.pre.set_session(4, CloneSession([(6, 0)]))
    outputs = dict(pipeline.process(1, tagged(DST), NOW).outputs)
    assert outputs[2] == eth(0x9999) + tag(0, 0, 0, 0) + b"payload"
    assert outputs[6] == eth(0x9999) + tag(2, 0, 0, 0x33) + b"payload"


def test_resubmit_and_recirculate_carry_metadata() -> None:
    """Second pass: the field list kept passes and mark; ingress then forwards to 2.

    simple_switch resets instance_type to NORMAL before egress, so egress sees 0.
    """
    pipeline = replicate_with("MyIngress.recirculate_once", 3)
    outputs = pipeline.process(1, tagged(DST), NOW).outputs
    assert outputs == [(2, eth(0x9999) + tag(0, 0, 1, 0x44) + b"payload")]
    pipeline = replicate_with("MyIngress.resubmit_once", 3)
    outputs = pipeline.process(1, tagged(DST), NOW).outputs
    assert outputs == [(2, eth(0x9999) + tag(0, 0, 1, 0x22) + b"payload")]


def test_packet_in_header_and_digest() -> None:
    pipeline = replicate_with("MyIngress.to_cpu")
    outputs = pipeline.process(3, tagged(DST), NOW).outputs
    assert outputs == [(CPU, struct.pack("!H", 3 << 7) + eth(0x9999) + tag() + b"payload")]
    pipeline = replicate_with("MyIngress.learn", 2)
    result = pipeline.process(3, tagged(DST), NOW)
    (_digest_id, _name, values), = result.digests
    assert values == [int.from_bytes(SRC, "big"), 3]


def test_packet_out_goes_where_its_header_says() -> None:
    pipeline = load("replicate")
    frame = struct.pack("!H", 5 << 7) + eth(0x9999) + tag() + b"x"
    assert pipeline.process(CPU, frame, NOW).outputs == [(5, eth(0x9999) + tag() + b"x")]
