"""Engine benchmark: per-packet cost of load_balance with 10 and 10,000 LPM entries,
without and with the flow cache (in process, no I/O)."""

from __future__ import annotations

import time

from common import BUILD_JSON, Figure
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from p4switch.engine import ActionCall, Pipeline


def pipeline(entries: int) -> Pipeline:
    program = BUILD_JSON.read_text().replace('"max_size" : 1024', '"max_size" : 100000')
    pipe = Pipeline.from_json(program)
    group = pipe.tables["MyIngress.ecmp_group"]
    select = ActionCall(group.actions["MyIngress.set_ecmp_select"], (0, 2))
    group.insert([(0x0A000001, 32)], select)
    for i in range(entries - 1):
        group.insert([((11 << 24) | (i << 8), 24)], select)
    nhop = pipe.tables["MyIngress.ecmp_nhop"]
    for index, port in ((0, 2), (1, 3)):
        nhop.insert([index], ActionCall(nhop.actions["MyIngress.set_nhop"],
                                        (0x080000000202, 0x0A000202, port)))
    send = pipe.tables["MyEgress.send_frame"]
    for port in (2, 3):
        send.insert([port], ActionCall(send.actions["MyEgress.rewrite_mac"], (0x000000010200,)))
    return pipe


def per_packet_us(pipe: Pipeline, cached: bool, count: int = 20000) -> float:
    frames = [bytes(Ether() / IP(src="10.0.1.1", dst="10.0.0.1") / TCP(sport=10000 + i, dport=1234))
              for i in range(256)]
    pipe.cache.enabled = cached
    clock = time.monotonic  # what the switch passes as ``now``
    for frame in frames:
        pipe.process(1, frame, clock())
    start = time.perf_counter()
    for i in range(count):
        pipe.process(1, frames[i & 255], clock())
    return (time.perf_counter() - start) / count * 1e6


def run(figures: list[Figure]) -> None:
    small, large = pipeline(10), pipeline(10_000)
    for cached in (False, True):
        few, many = per_packet_us(small, cached), per_packet_us(large, cached)
        label = "flow cache" if cached else "no cache"
        figures.append(Figure("engine", f"per-packet cost, 10,000 entries ({label})", many, "us",
                              "10 entries", few, "flat (ratio ~1)", many / few < 1.3))
