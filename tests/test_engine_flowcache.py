"""The flow cache never changes what comes out of the switch."""

from __future__ import annotations

import random
from pathlib import Path

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from test_engine_programs import NOW, add, ip, load, mac, program_s1, set_default

from p4switch.engine import ActionCall, Pipeline


def frames(seed: int, count: int) -> list[tuple[int, bytes]]:
    """(port, frame): repeated flows, same headers with other payloads, UDP, short frames."""
    rng = random.Random(seed)
    base = []
    for _ in range(20):
        sport = rng.randrange(49152, 65536)
        dst = rng.choice(["10.0.0.1", "10.0.0.1", "10.0.9.9"])
        l4 = TCP(sport=sport, dport=1234) if rng.random() < 0.8 else UDP(sport=sport)
        packet = (Ether(src="08:00:00:00:01:01", dst="ff:ff:ff:ff:ff:ff")
                  / IP(src="10.0.1.1", dst=dst, ttl=rng.choice([0, 1, 64, 64])) / l4)
        base.append((rng.choice([1, 2, 3]), packet))
    out = []
    for _ in range(count):
        port, packet = rng.choice(base)
        payload = bytes(rng.randrange(256) for _ in range(rng.choice([0, 10, rng.randrange(40)])))
        frame = bytes(packet / Raw(payload))
        if rng.random() < 0.05:
            frame = frame[:rng.randrange(len(frame) + 1)]
        out.append((port, frame))
    return out


def test_cached_results_equal_uncached_results(reference: Path) -> None:
    cached, plain = program_s1(reference), program_s1(reference)
    assert cached.cache.enabled, cached.cache.reason
    plain.cache.enabled = False
    for port, frame in frames(seed=1, count=3000):
        assert cached.process(port, frame, NOW).outputs == plain.process(port, frame, NOW).outputs
    assert cached.cache.hits > 500  # the comparison really went through the cache


def test_direct_counters_stay_on_the_cache_and_count_as_without_it() -> None:
    """Our load_balance counts every ecmp_nhop hit: the cache replays the counts."""
    build = Path(__file__).resolve().parents[1] / "build"
    cached, plain = program_s1(build), program_s1(build)
    assert cached.tables["MyIngress.ecmp_nhop"].with_counters
    assert cached.cache.enabled, cached.cache.reason
    plain.cache.enabled = False
    for port, frame in frames(seed=2, count=3000):
        assert cached.process(port, frame, NOW).outputs == plain.process(port, frame, NOW).outputs
    assert cached.cache.hits > 500

    def counts(pipeline: Pipeline) -> list[tuple[int, int]]:
        return [(e.packets, e.bytes) for e in pipeline.tables["MyIngress.ecmp_nhop"].entries()]

    assert counts(cached) == counts(plain) and sum(n for n, _ in counts(plain)) > 500


def test_a_table_write_invalidates_cached_flows(reference: Path) -> None:
    pipeline = program_s1(reference)
    frame = bytes(Ether() / IP(src="10.0.1.1", dst="10.0.0.1") / TCP(sport=50000, dport=1234))
    assert pipeline.process(1, frame, NOW).outputs[0][0] == 2
    assert pipeline.process(1, frame, NOW).outputs[0][0] == 2
    table = pipeline.tables["MyIngress.ecmp_nhop"]
    entry = table.find([0])
    table.modify(entry, ActionCall(table.actions["MyIngress.set_nhop"],
                                   (mac("00:00:00:00:01:07"), ip("10.0.7.7"), 7)))
    out = pipeline.process(1, frame, NOW).outputs
    assert out[0][0] == 7 and Ether(out[0][1])[IP].dst == "10.0.7.7"
    other = bytes(Ether() / IP(src="10.0.1.1", dst="10.5.5.5") / TCP(sport=1))
    assert pipeline.process(1, other, NOW).outputs == []  # the default drop, now cached
    add(pipeline, "MyIngress.ecmp_group", [(ip("10.5.0.0"), 16)],
        "MyIngress.set_ecmp_select", 0, 1)
    assert pipeline.process(1, other, NOW).outputs[0][0] == 7
    set_default(pipeline, "MyIngress.ecmp_group", "NoAction")
    unknown = bytes(Ether() / IP(src="10.0.1.1", dst="10.6.6.6") / TCP(sport=1))
    assert pipeline.process(1, unknown, NOW).outputs[0][0] == 0


def test_multicast_group_change_invalidates(reference: Path) -> None:
    pipeline = load(reference, "multicast")
    pipeline.pre.set_group(1, [(1, 1), (2, 1)])
    frame = bytes(Ether(src="08:00:00:00:01:11", dst="ff:ff:ff:ff:ff:ff") / IP() / UDP())
    assert [p for p, _ in pipeline.process(3, frame, NOW).outputs] == [1, 2]
    pipeline.pre.set_group(1, [(1, 1), (2, 1), (4, 1)])
    assert [p for p, _ in pipeline.process(3, frame, NOW).outputs] == [1, 2, 4]


def test_stateful_programs_are_never_cached(reference: Path) -> None:
    ecn = Pipeline.from_json((reference / "ecn.json").read_bytes())
    assert not ecn.cache.enabled
    assert "enq_qdepth" in (ecn.cache.reason or "")


def test_truncation_depends_on_the_frame_length() -> None:
    """truncate(150) leaves a 120-byte frame whole but cuts a 200-byte one with the same
    first 100 header bytes: a cached uncut result must not answer for the longer frame."""
    stacks = Path(__file__).parent / "p4" / "stacks.json"
    pipeline = Pipeline.from_json(stacks.read_bytes())
    table = pipeline.tables["MyIngress.op"]
    table.insert([0x0A0000000000], ActionCall(table.actions["MyIngress.chop"], (150, 5)))
    head = bytes(Ether(dst="0a:00:00:00:00:00", src="0b:00:00:00:00:00")
                 / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1111, dport=2222))
    short, long = head + b"x" * (120 - len(head)), head + b"x" * (200 - len(head))
    assert len(pipeline.process(1, short, NOW).outputs[0][1]) == 120
    assert len(pipeline.process(1, long, NOW).outputs[0][1]) == 150
    assert len(pipeline.process(1, long, NOW).outputs[0][1]) == 150
