"""Megaflows: real-shaped traffic hits the cache, and nothing that comes out changes.

Every program the engine tests load runs mixed traffic -- per-packet IPv4
identification, TCP sequence numbers, payloads, some TTLs, non-IPv4, truncated
and random frames -- through a pipeline with its caches and one without; the
outputs, drops and direct counters must be identical.  For load_balance the
outputs are also checked against frames scapy builds on its own (CRC-16/ARC of
the five-tuple from crcmod picks the port).
"""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw
from scapy.utils import checksum
from test_engine_programs import CRC16_ARC, NOW, add, expected_lb, ip, load, mac, program_s1

from p4switch.engine import ActionCall, Pipeline
from p4switch.engine.fielduse import field_use

BUILD = Path(__file__).resolve().parents[1] / "build"
OWN = Path(__file__).parent / "p4"
H1 = "08:00:00:00:01:01"
Flow = tuple[int, Callable[[random.Random], bytes]]  # (ingress port, frame maker)


# -- traffic ------------------------------------------------------------------------

def ip_flow(rng: random.Random, dst: str, eth_dst: str = "ff:ff:ff:ff:ff:ff",
            ethertype: int | None = None, prefix: bytes = b"", options: bytes = b"",
            kind: str | None = None, ttl: int | None = None) -> Callable[[random.Random], bytes]:
    """A flow of TCP, UDP or ICMP over IPv4: fixed addresses, ports and TTL (``ttl``, or
    a random one that 3 % of the packets change);
    identification, sequence numbers and payload new in every packet.  scapy builds a
    template per TTL and payload size; each packet patches the varying bytes into it
    (and its IPv4 checksum, by scapy's ``checksum``)."""
    src = f"10.0.{rng.randrange(1, 4)}.{rng.randrange(1, 255)}"
    sport, dport = rng.randrange(49152, 65536), rng.choice([80, 443, 1234])
    kind = kind or rng.choice(["tcp"] * 6 + ["udp", "udp", "icmp"])
    usual_ttl = ttl if ttl is not None else rng.choice([64] * 8 + [1, 0])
    sizes = [0] + [rng.randrange(1, 64) for _ in range(3)]
    templates: dict[tuple[int, int], bytes] = {}

    def template(ttl_now: int, size: int) -> bytes:
        l4 = {"tcp": TCP(sport=sport, dport=dport, flags="PA"),
              "udp": UDP(sport=sport, dport=dport), "icmp": ICMP(id=sport)}[kind]
        packet = IP(src=src, dst=dst, ttl=ttl_now,
                    options=[IPOption(options)] if options else []) / l4 / Raw(b"\0" * size)
        eth = Ether(src=H1, dst=eth_dst, type=ethertype if ethertype is not None else 0x0800)
        return bytes(eth) + prefix + bytes(packet)

    def make(r: random.Random) -> bytes:
        ttl_now = usual_ttl if ttl is not None or r.random() < 0.97 \
            else r.choice([0, 1, 2, 255])
        size = r.choice(sizes)
        if (ttl_now, size) not in templates:
            templates[ttl_now, size] = template(ttl_now, size)
        frame = bytearray(templates[ttl_now, size])
        ip_at = 14 + len(prefix)
        l4_at = ip_at + (frame[ip_at] & 15) * 4
        frame[ip_at + 4:ip_at + 6] = r.randbytes(2)  # identification
        if kind == "tcp":
            frame[l4_at + 4:l4_at + 12] = r.randbytes(8)  # sequence and ack numbers
        elif kind == "icmp":
            frame[l4_at + 6:l4_at + 8] = r.randbytes(2)
        frame[len(frame) - size:] = r.randbytes(size)
        frame[ip_at + 10:ip_at + 12] = b"\0\0"
        frame[ip_at + 10:ip_at + 12] = struct.pack("!H", checksum(bytes(frame[ip_at:l4_at])))
        return bytes(frame)
    return make


def odd_frame(r: random.Random) -> bytes:
    """ARP, random bytes, or a frame with a random EtherType."""
    choice = r.random()
    if choice < 0.4:
        return bytes(Ether(src=H1, dst="ff:ff:ff:ff:ff:ff")
                     / ARP(pdst=f"10.0.1.{r.randrange(256)}"))
    if choice < 0.7:
        return r.randbytes(r.randrange(80))
    return bytes(Ether(src=H1, dst="ff:ff:ff:ff:ff:ff", type=r.randrange(65536))) \
        + r.randbytes(r.randrange(60))


def traffic(flows: list[Flow], count: int, seed: int) -> list[tuple[int, bytes]]:
    """``count`` (port, frame): packets of the flows, 4 % odd frames, 4 % cut short."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        if rng.random() < 0.04:
            out.append((rng.randrange(1, 4), odd_frame(rng)))
            continue
        port, make = rng.choice(flows)
        frame = make(rng)
        if rng.random() < 0.04:
            frame = frame[:rng.randrange(len(frame) + 1)]
        out.append((port, frame))
    return out


def same_as_uncached(make: Callable[[], Pipeline], frames: list[tuple[int, bytes]]) -> Pipeline:
    """Run ``frames`` through a cached and an uncached pipeline, through a cached one
    in batches (``process_many``, as the switch runs), and through a cached and an
    uncached one that trace every packet (``--log-console``); every result, every
    direct counter and every packet's trace must agree.  Returns the cached
    pipeline."""
    cached, plain, traced, traced_plain = make(), make(), make(), make()
    plain.cache.enabled = traced_plain.cache.enabled = False
    wanted: list[Any] = []
    for number, (port, frame) in enumerate(frames):
        got, want = cached.process(port, frame, NOW), plain.process(port, frame, NOW)
        wanted.append(want)
        assert (got.outputs, got.drops) == (want.outputs, want.drops), (number, frame.hex())
        lines: list[str] = []
        plain_lines: list[str] = []
        got = traced.process(port, frame, NOW, lines.append)
        traced_plain.process(port, frame, NOW, plain_lines.append)
        assert (got.outputs, got.drops, lines) == (want.outputs, want.drops, plain_lines), \
            (number, frame.hex())
    assert counters(cached) == counters(plain) == counters(traced) == counters(traced_plain)
    assert traced.cache.hits <= cached.cache.hits  # the trace uses megaflows only
    batched = make()
    assert_batches_agree(batched, frames, wanted)
    assert counters(batched) == counters(plain)
    return cached


def assert_batches_agree(pipeline: Pipeline, frames: list[tuple[int, bytes]],
                         wanted: list[Any]) -> None:
    """``process_many`` over runs of 1-64 frames from one port gives, run by run, the
    outputs and digests one-by-one ``process`` on an uncached pipeline gave
    (``wanted``), and the same direct counters (compared by the caller)."""
    rng, start = random.Random(len(frames)), 0
    while start < len(frames):
        port, end = frames[start][0], start + 1
        while end < min(len(frames), start + rng.randrange(1, 65)) and frames[end][0] == port:
            end += 1
        outputs, digests = pipeline.process_many(port, [f for _p, f in frames[start:end]],
                                                 lambda: NOW)
        assert outputs == [o for want in wanted[start:end] for o in want.outputs], start
        assert digests == [d for want in wanted[start:end] for d in want.digests], start
        start = end


def counters(pipeline: Pipeline) -> dict[str, list[tuple[int, int]]]:
    return {name: [(e.packets, e.bytes) for e in table.entries()]
            for name, table in pipeline.tables.items() if table.with_counters}


# -- programs ---------------------------------------------------------------------------

def lb_flows(rng: random.Random, count: int) -> list[Flow]:
    dsts = ["10.0.0.1"] * 8 + ["10.0.9.9"]
    return [(rng.randrange(1, 4), ip_flow(rng, rng.choice(dsts))) for _ in range(count)]


def basic(reference: Path) -> Pipeline:
    pipeline = load(reference, "basic")
    add(pipeline, "MyIngress.ipv4_lpm", [(ip("10.0.0.0"), 8)], "MyIngress.ipv4_forward",
        mac("08:00:00:00:00:08"), 8)
    add(pipeline, "MyIngress.ipv4_lpm", [(ip("10.0.2.0"), 24)], "MyIngress.ipv4_forward",
        mac("08:00:00:00:02:22"), 2)
    return pipeline


def basic_tunnel(reference: Path) -> Pipeline:
    pipeline = basic_like(reference, "basic_tunnel")
    add(pipeline, "MyIngress.myTunnel_exact", [2], "MyIngress.myTunnel_forward", 4)
    return pipeline


def basic_like(reference: Path, name: str) -> Pipeline:
    pipeline = load(reference, name)
    add(pipeline, "MyIngress.ipv4_lpm", [(ip("10.0.2.0"), 24)], "MyIngress.ipv4_forward",
        mac("08:00:00:00:02:22"), 2)
    return pipeline


def multicast(reference: Path) -> Pipeline:
    pipeline = load(reference, "multicast")
    pipeline.pre.set_group(1, [(1, 1), (2, 1), (3, 1), (4, 1)])
    add(pipeline, "MyIngress.mac_lookup", [mac("08:00:00:00:03:33")], "MyIngress.mac_forward", 3)
    add(pipeline, "MyIngress.mac_lookup", [mac("ff:ff:ff:ff:ff:ff")], "MyIngress.multicast")
    return pipeline


def stacks() -> Pipeline:
    pipeline = Pipeline.from_json((OWN / "stacks.json").read_bytes())
    table = pipeline.tables["MyIngress.op"]
    for last, action, args in ((2, "forward", (2,)), (3, "pop_label", (3,)),
                               (4, "push_label", (77, 4)), (5, "strip_options", (2,)),
                               (6, "chop", (60, 5)), (7, "stop_here", (6,))):
        table.insert([0x0A00000000 << 8 | last],
                     ActionCall(table.actions[f"MyIngress.{action}"], args))
    pipeline.program.value_sets["MyParser.tunnel_types"].add(0x9000)
    return pipeline


def stack_flows(rng: random.Random) -> list[Flow]:
    flows: list[Flow] = []
    for last in range(1, 8):
        dst = f"0a:00:00:00:00:0{last}"
        labels = b"".join(struct.pack("!I", (rng.randrange(1 << 20) << 12) | (i == 1) << 8 | 9)
                          for i in range(2))
        flows.append((1, ip_flow(rng, "10.0.0.2", dst)))
        flows.append((1, ip_flow(rng, "10.0.0.2", dst, 0x88B5, labels)))
        flows.append((2, ip_flow(rng, "10.0.0.2", dst, 0x9000, labels[4:])))
        flows.append((3, ip_flow(rng, "10.0.0.2", dst, options=bytes([0x94, 4, 0, 0]))))
    return flows


def hashes_flow(rng: random.Random) -> Callable[[random.Random], bytes]:
    def make(r: random.Random) -> bytes:
        body = struct.pack("!IIH", r.randrange(2 ** 32), r.randrange(2 ** 32), r.randrange(65536))
        total = checksum(body) if r.random() < 0.8 else r.randrange(65536)
        tail = struct.pack("!HBB", total, r.randrange(256), r.randrange(256))
        return bytes(Ether(src=H1, dst="0a:00:00:00:00:01", type=0x7777)) + body + tail \
            + r.randbytes(r.randrange(20))
    return make


# -- tests ------------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["build", "reference"])
def test_load_balance_identical_with_and_without_cache(where: str, request: Any) -> None:
    directory = BUILD if where == "build" else request.getfixturevalue("reference")
    rng = random.Random(3)
    frames = traffic(lb_flows(rng, 200), 4000, seed=4)
    cached = same_as_uncached(lambda: program_s1(directory), frames)
    assert cached.cache.megaflows.hits > 2000, cached.cache.megaflows.fallbacks
    assert len(cached.cache.megaflows.shapes) >= 3  # ethernet, +ipv4, +ipv4+tcp


@pytest.mark.parametrize("name", ["basic", "basic_tunnel", "multicast", "source_routing"])
def test_reference_programs_identical_with_and_without_cache(name: str, reference: Path) -> None:
    rng = random.Random(5)
    flows: list[Flow] = [(rng.randrange(1, 4), ip_flow(rng, rng.choice(
        ["10.0.2.2", "10.0.2.9", "10.1.1.1", "192.168.0.1"]),
        rng.choice(["08:00:00:00:03:33", "ff:ff:ff:ff:ff:ff", "08:00:00:00:01:00"])))
        for _ in range(40)]
    if name == "basic_tunnel":
        flows += [(1, ip_flow(rng, "10.0.2.2", ethertype=0x1212,
                              prefix=struct.pack("!HH", 0x0800, rng.choice([1, 2, 2]))))
                  for _ in range(20)]
    if name == "source_routing":
        flows += [(1, ip_flow(rng, "10.0.2.2", ethertype=0x1234, prefix=struct.pack(
            "!HHH", 2, 3, 0x8000 | 1)[rng.randrange(3) * 2:])) for _ in range(20)]
    make = {"basic": lambda: basic(reference), "basic_tunnel": lambda: basic_tunnel(reference),
            "multicast": lambda: multicast(reference),
            "source_routing": lambda: load(reference, "source_routing")}[name]
    cached = same_as_uncached(make, traffic(flows, 3000, seed=6))
    assert cached.cache.hits > 1000, cached.cache.megaflows.fallbacks  # exact or megaflow
    if name == "source_routing":  # the stack is not patchable: the exact cache serves it
        assert cached.cache.megaflows.fallbacks.get("header stack extraction", 0) > 0


def test_own_programs_identical_with_and_without_cache() -> None:
    rng = random.Random(7)
    cached = same_as_uncached(stacks, traffic(stack_flows(rng), 3000, seed=8))
    fallbacks = cached.cache.megaflows.fallbacks
    assert cached.cache.megaflows.hits > 200, fallbacks
    assert {"header stack extraction", "lookahead", "truncated"} <= \
        set(fallbacks), fallbacks
    hashes = lambda: Pipeline.from_json((OWN / "hashes.json").read_bytes())  # noqa: E731
    flows: list[Flow] = [(1, hashes_flow(rng)), (2, ip_flow(rng, "10.0.0.1"))]
    cached = same_as_uncached(hashes, traffic(flows, 2000, seed=9))
    assert cached.cache.megaflows.fallbacks.get("headers added or removed", 0) > 0


def test_real_shaped_load_balance_traffic_is_mostly_hits() -> None:
    """1,024 TCP flows x 12 packets, every packet with its own IPv4 id, TCP seq and
    payload: all but the first packet of each flow hit (the exact cache: none), with
    the per-packet trace on too."""
    pipeline, exact_only, traced = program_s1(BUILD), program_s1(BUILD), program_s1(BUILD)
    exact_only.cache.megaflows.enabled = False
    lines: list[str] = []
    rng = random.Random(10)
    flows = [ip_flow(rng, "10.0.0.1", kind="tcp", ttl=64) for _ in range(1024)]
    sent = 0
    for _round in range(12):
        for make in flows:
            frame = make(rng)
            port = 3 if CRC16_ARC(frame[26:34] + b"\x06" + frame[34:38]) % 2 else 2
            assert pipeline.process(1, frame, NOW).outputs == [(port, lb_out(frame, port))]
            exact_only.process(1, frame, NOW)
            assert traced.process(1, frame, NOW, lines.append).outputs == \
                [(port, lb_out(frame, port))]
            assert lines[-1] == f"Transmitting {len(frame)} bytes on port {port}"
            sent += 1
    assert pipeline.cache.megaflows.hits == pipeline.cache.hits
    assert pipeline.cache.hits > 0.9 * sent  # 11 of 12
    assert pipeline.cache.misses <= len(flows)
    assert exact_only.cache.hits < 0.01 * sent
    assert traced.cache.hits > 0.9 * sent  # the trace log keeps the fast path


def lb_out(frame: bytes, port: int) -> bytes:
    """load_balance's s1 output (``expected_lb``'s rewrite, by struct): MACs and dstAddr
    of the next hop, TTL - 1, the IPv4 checksum recomputed, TCP and payload as they came."""
    ipv4 = bytearray(frame[14:34])
    ipv4[8] -= 1
    ipv4[16:20] = bytes([10, 0, port, port])
    ipv4[10:12] = b"\0\0"
    ipv4[10:12] = struct.pack("!H", checksum(bytes(ipv4)))
    eth = bytes.fromhex(f"00000000010{port}000000010{port}00") + b"\x08\x00"
    return eth + bytes(ipv4) + frame[34:]


def test_lb_out_agrees_with_scapy() -> None:
    """The struct rewrite above is what scapy's ``expected_lb`` builds."""
    rng = random.Random(13)
    for _ in range(20):
        frame = ip_flow(rng, "10.0.0.1", kind="tcp", ttl=64)(rng)
        for port in (2, 3):
            assert lb_out(frame, port) == expected_lb(
                frame, f"00:00:00:00:01:0{port}", f"00:00:00:01:0{port}:00", f"10.0.{port}.{port}")


def test_a_table_write_reaches_flows_cached_as_megaflows() -> None:
    pipeline = program_s1(BUILD)
    make = ip_flow(random.Random(11), "10.0.0.1", kind="tcp", ttl=64)
    rng = random.Random(12)
    frame = make(rng)
    port = 3 if CRC16_ARC(frame[26:34] + b"\x06" + frame[34:38]) % 2 else 2
    for _ in range(3):
        frame = make(rng)
        assert pipeline.process(1, frame, NOW).outputs == [(port, lb_out(frame, port))]
    assert pipeline.cache.megaflows.hits == 2
    table = pipeline.tables["MyIngress.ecmp_nhop"]
    for entry in table.entries():
        table.modify(entry, ActionCall(table.actions["MyIngress.set_nhop"],
                                       (mac("00:00:00:00:01:07"), ip("10.0.7.7"), 7)))
    out = pipeline.process(1, make(rng), NOW).outputs
    assert out[0][0] == 7 and Ether(out[0][1])[IP].dst == "10.0.7.7"
    assert pipeline.cache.megaflows.hits == 2  # the old megaflow was gone
    pipeline.process(1, make(rng), NOW)
    assert pipeline.cache.megaflows.hits == 3


def test_batches_serve_repeated_frames_from_the_exact_cache_and_follow_writes() -> None:
    """The switch's batches (``process_many``) of frames repeated byte for byte: exact
    cache hits, each rewritten as crc16 (crcmod) and ``lb_out`` say and counted in the
    direct counters as without a cache; after a table write, the next batch follows it."""
    batched, plain = program_s1(BUILD), program_s1(BUILD)
    plain.cache.enabled = False
    rng = random.Random(13)
    distinct = [ip_flow(rng, "10.0.0.1", kind="tcp", ttl=64)(rng) for _ in range(64)]
    for _round in range(4):
        frames = rng.sample(distinct, len(distinct))
        outputs, digests = batched.process_many(1, frames, lambda: NOW)
        expected = []
        for frame in frames:
            port = 3 if CRC16_ARC(frame[26:34] + b"\x06" + frame[34:38]) % 2 else 2
            expected.append((port, lb_out(frame, port)))
            plain.process(1, frame, NOW)
        assert (outputs, digests) == (expected, [])
    assert batched.cache.hits == 3 * len(distinct) and batched.cache.megaflows.hits == 0
    assert counters(batched) == counters(plain)
    table = batched.tables["MyIngress.ecmp_nhop"]
    for entry in table.entries():
        table.modify(entry, ActionCall(table.actions["MyIngress.set_nhop"],
                                       (mac("00:00:00:00:01:07"), ip("10.0.7.7"), 7)))
    outputs, _ = batched.process_many(1, distinct, lambda: NOW)
    assert {port for port, _data in outputs} == {7}
    assert {Ether(data)[IP].dst for _port, data in outputs} == {"10.0.7.7"}


def test_field_use_of_load_balance() -> None:
    """What load_balance.p4 reads: the parser's EtherType and protocol, the five-tuple
    (hash), dstAddr (LPM) and ttl (its condition); writes MACs, dstAddr, ttl.  The
    identification and everything else of IPv4 feed only update_checksum."""
    pipeline = program_s1(BUILD)
    layout = pipeline.program.layout
    use = field_use(pipeline.program.json, layout)
    names = {f.slot: f"{h.name}.{f.name}" for h in layout.headers if not h.metadata
             for f in h.fields}
    assert {names[s] for s in use.reads if s in names} == {
        "ethernet.etherType", "ipv4.protocol", "ipv4.srcAddr", "ipv4.dstAddr", "ipv4.ttl",
        "tcp.srcPort", "tcp.dstPort"}
    assert {names[s] for s in use.writes if s in names} == {
        "ethernet.dstAddr", "ethernet.srcAddr", "ipv4.dstAddr", "ipv4.ttl"}
    assert [names[u.target] for u in use.updates] == ["ipv4.hdrChecksum"]


def test_stateful_programs_keep_the_slow_path(reference: Path) -> None:
    """Registers, counters, meters, clones, queue depths: no cache at all, and why."""
    for path, word in ((OWN / "tables.json", "count"), (OWN / "replicate.json", "clone"),
                       (OWN / "runtime.json", "meters"), (reference / "ecn.json", "qdepth"),
                       (reference / "mri.json", "qdepth")):
        pipeline = Pipeline.from_json(path.read_bytes())
        assert not pipeline.cache.enabled and not pipeline.cache.megaflows.enabled
        assert word in (pipeline.cache.reason or ""), (path, pipeline.cache.reason)
        frame = bytes(Ether(src=H1) / IP(dst="10.0.2.2") / UDP() / Raw(b"x"))
        pipeline.process(1, frame, NOW)
        pipeline.process(1, frame, NOW)
        assert pipeline.cache.hits == 0 and not pipeline.cache.megaflows.entries


def test_registers_alone_disable_the_cache() -> None:
    """tables.p4 without its counter and meter calls still uses a register: no cache."""
    text = (OWN / "tables.json").read_text()
    for op in ("count", "execute_meter"):
        text = text.replace(f'"op" : "{op}"', '"op" : "no_op"')
    pipeline = Pipeline.from_json(text)
    assert "register" in (pipeline.cache.reason or ""), pipeline.cache.reason
    assert not pipeline.cache.megaflows.enabled


def test_a_program_reading_packet_length_keys_on_it() -> None:
    """load_balance with its condition changed to ``packet_length > 80``: frames of one
    flow go both ways by their length, so the megaflows must key on it."""
    data = json.loads((BUILD / "load_balance.json").read_text())
    condition = data["pipelines"][0]["conditionals"][0]["expression"]["value"]["right"]
    assert condition["value"]["left"]["value"] == ["ipv4", "ttl"]
    condition["value"]["left"]["value"] = ["standard_metadata", "packet_length"]
    condition["value"]["right"]["value"] = "0x50"
    text = json.dumps(data)

    def make() -> Pipeline:
        pipeline = program_s1(BUILD)  # the same entries, on the changed program
        changed = Pipeline.from_json(text)
        for name, table in pipeline.tables.items():
            target = changed.tables[name]

            def call(old: ActionCall, target: Any = target) -> ActionCall:
                return ActionCall(target.actions[old.action.name], old.args)
            for entry in table.entries():
                target.insert(entry.match, call(entry.call), entry.priority)
            if table.default is not None:
                target.set_default(call(table.default))
        return changed

    rng = random.Random(14)
    flows: list[Flow] = [(1, ip_flow(rng, "10.0.0.1", kind="tcp", ttl=64)) for _ in range(30)]
    cached = same_as_uncached(make, traffic(flows, 1500, seed=15))
    assert cached.cache.megaflows.keyed_on_length and cached.cache.megaflows.hits > 500
    lengths = {len(out) > 80 for _, frame in traffic(flows, 200, seed=16)
               for _, out in cached.process(1, frame, NOW).outputs}
    assert lengths == {True, False}
