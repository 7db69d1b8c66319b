"""The per-packet trace (--log-console / --log-file): BMv2-like lines for every packet,
written with one write and one flush per batch of frames instead of one per line."""

from __future__ import annotations

import io
import re

from procs import REPO
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from netrun.ecmp import flow_hash
from p4switch.engine import ActionCall, Pipeline
from p4switch.switch import PacketLog, Switch

LINE = re.compile(r"^\[\d\d:\d\d:\d\d\.\d{3}\] \[p4switch\] \[D\] \[(\d+)\.0\] \[cxt 0\] (.*)$")


class CountingStream(io.StringIO):
    """A text stream that counts its writes and flushes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = self.flushes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)

    def flush(self) -> None:
        self.flushes += 1


class Sent(list):
    """A port that keeps what the switch sends (the trace is under test, not the I/O)."""

    def send(self, frame: bytes) -> None:
        self.append(frame)


def s1_switch(stream: CountingStream) -> Switch:
    """load_balance with s1's rules (values written out here, as the tutorial lists them)."""
    pipeline = Pipeline.from_json((REPO / "build/load_balance.json").read_bytes())
    tables = pipeline.tables

    def add(table: str, match: list, action: str, *args: int) -> None:
        tables[table].insert(match, ActionCall(tables[table].actions[action], args))

    add("MyIngress.ecmp_group", [(0x0A000001, 32)], "MyIngress.set_ecmp_select", 0, 2)
    add("MyIngress.ecmp_nhop", [0], "MyIngress.set_nhop", 0x000000000102, 0x0A000202, 2)
    add("MyIngress.ecmp_nhop", [1], "MyIngress.set_nhop", 0x000000000103, 0x0A000303, 3)
    add("MyEgress.send_frame", [2], "MyEgress.rewrite_mac", 0x000000010200)
    add("MyEgress.send_frame", [3], "MyEgress.rewrite_mac", 0x000000010300)
    group = tables["MyIngress.ecmp_group"]
    group.set_default(ActionCall(group.actions["MyIngress.drop"], ()))
    switch = Switch(0, None, PacketLog(stream))
    switch.set_pipeline(pipeline)
    for number in (1, 2, 3):
        switch.add_port(number, Sent())
    return switch


def test_a_batch_is_traced_packet_by_packet_in_one_write() -> None:
    stream = CountingStream()
    switch = s1_switch(stream)
    sports = list(range(40000, 40050))
    frames = [bytes(Ether() / IP(src="10.0.1.1", dst="10.0.0.1", id=i)
                    / TCP(sport=sport, dport=1234, seq=i) / (b"x" * (i % 5)))
              for i, sport in enumerate(sports)]
    switch.receive_batch(1, frames)
    assert (stream.writes, stream.flushes) == (1, 1)
    packets: dict[int, list[str]] = {}
    for line in stream.getvalue().splitlines():
        match = LINE.match(line)
        assert match, line
        packets.setdefault(int(match[1]), []).append(match[2])
    assert sorted(packets) == list(range(len(frames)))
    assert len(switch.ports[2]) + len(switch.ports[3]) == len(frames)
    for number, (sport, frame) in enumerate(zip(sports, frames)):
        port = 2 + flow_hash(sport) % 2  # crcmod's CRC-16/ARC of the 5-tuple
        lines = packets[number]
        assert lines[0] == f"Processing packet received on port 1 ({len(frame)} bytes)"
        assert "Table 'MyIngress.ecmp_group': hit" in lines
        assert f"Egress port is {port}" in lines
        assert lines[-1] == f"Transmitting {len(frame)} bytes on port {port}"


def test_batched_traces_of_megaflow_hits_are_the_slow_paths_traces() -> None:
    """The switch serves a batch's megaflow hits with their trace from a template:
    every packet's lines, its id, and every output must be those of the slow path."""
    cached_stream, plain_stream = CountingStream(), CountingStream()
    cached, plain = s1_switch(cached_stream), s1_switch(plain_stream)
    assert plain.pipeline is not None
    plain.pipeline.cache.enabled = False
    frames = []
    for i in range(600):  # 40 flows, per-packet id, seq and payload; new flows; drops
        sport = 40000 + (i % 40 if i % 7 else i)
        dst = "10.9.9.9" if i % 53 == 0 else "10.0.0.1"  # no entry
        ttl = 0 if i % 97 == 1 else 64
        frames.append(bytes(Ether() / IP(src="10.0.1.1", dst=dst, id=i, ttl=ttl)
                            / TCP(sport=sport, dport=1234, seq=i * 7919) / (b"y" * (i % 9))))
    for start in range(0, len(frames), 64):
        cached.receive_batch(1, frames[start:start + 64])
        plain.receive_batch(1, frames[start:start + 64])

    def lines(stream: CountingStream) -> list[tuple[str, str]]:
        return [LINE.match(line).group(1, 2) for line in stream.getvalue().splitlines()]

    assert cached.pipeline is not None and cached.pipeline.cache.megaflows.hits > 400
    assert lines(cached_stream) == lines(plain_stream)
    assert {int(number) for number, _ in lines(cached_stream)} == set(range(len(frames)))
    for number in (2, 3):
        assert cached.ports[number] == plain.ports[number]


def test_a_single_frame_and_a_drop_are_written_at_once() -> None:
    stream = CountingStream()
    switch = s1_switch(stream)
    switch.receive(1, bytes(Ether() / IP(src="10.0.1.1", dst="10.9.9.9") / TCP()))
    assert stream.writes == 1
    lines = [LINE.match(line)[2] for line in stream.getvalue().splitlines()]
    assert lines[0] == "Processing packet received on port 1 (54 bytes)"
    assert "Table 'MyIngress.ecmp_group': miss" in lines
    assert not any(line.startswith("Transmitting") for line in lines)


def test_a_program_off_the_fast_path_is_noted_once_per_push() -> None:
    """tables.p4 counts into a counter array (state): the switch says so once, when the
    pipeline is installed; load_balance (direct counters only) stays silent."""
    notes: list[str] = []
    switch = Switch(0, None, notice=notes.append)
    switch.set_pipeline(Pipeline.from_json((REPO / "build/load_balance.json").read_bytes()))
    assert notes == []
    tables = Pipeline.from_json((REPO / "tests/p4/tables.json").read_bytes())
    switch.set_pipeline(tables)
    for frame in (bytes(Ether() / IP() / TCP(seq=i)) for i in range(5)):
        switch.receive(1, frame)
    assert notes == [f"no flow cache for this program ({tables.cache.reason}): every packet "
                     "takes the slow path"]
    assert tables.cache.reason and tables.cache.hits == 0
