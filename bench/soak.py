#!/usr/bin/env python3
"""Soak: s1 keeps forwarding real-shaped traffic while its control plane is busy.

Our switch runs load_balance on three veths (namespaces PREFIXa/b/c = ports 1-3:
h1, h2, h3).  h1 sends steady real-shaped TCP (``live.traffic``: IPv4 id, TCP seq
and payload change per packet) over many flows to 10.0.0.1; receivers on h2 and
h3 record every packet (flow, sequence number, arrival time, and whether s1
rewrote it as mycontroller's rules say).  Meanwhile, all at once:

* batches: a primary controller (election id 10) writes 1,000 ``ecmp_group``
  entries (10.200.x.y/32: they never match the traffic) in one WriteRequest and
  deletes them in another, back to back;
* reads: every table is read (wildcard Read) every 100 ms;
* a second controller connects every second with a lower election id (5),
  arbitrates (it must be told "backup"), and disconnects;
* idle StreamChannels (never arbitrated) stay open the whole time;
* re-programmings, spread over the run: mycontroller.py's steps with election
  id 20 (connect, become primary, push the pipeline VERIFY_AND_COMMIT, write its
  s1 rules in one WriteRequest, read every table and default back, disconnect).
  The push wipes every table, so the batches pause around it.

What counts: every packet sent must reach the host crc16 (crcmod, computed here,
not by the switch) picks for its flow, rewritten as the rules say, once.  A
VERIFY_AND_COMMIT push replaces the pipeline with one whose tables are empty, so
packets s1 processes between the commit and the rules' write are dropped, on
BMv2 too: those are counted apart ("push-lost") and measured as the push's
forwarding gap -- the largest inter-arrival gap at h2+h3 that overlaps the push
window (push sent .. rules written), target <= 50 ms.  Any other missing packet is
lost.  ``--push-mode save-commit`` re-programs without that window
(VERIFY_AND_SAVE, the rules written into the saved pipeline while the old one
forwards, then COMMIT).  The switch's RSS at the end must be within 5 MiB of its
RSS after the warm-up (which runs every load, one push included).

    python bench/soak.py [--seconds 600] [--rate 5000] [--pushes 100]

prints one line per minute and a summary; exit status 1 if anything was lost,
misdelivered or duplicated, a control-plane call failed, an idle stream was
closed, RSS grew more than 5 MiB, the median push gap is above the target or more
than one push's gap is (every push's gap is reported).
Needs root (namespaces, veths).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import heapq
import json
import math
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import grpc  # noqa: E402
from common import BUILD_JSON, BUILD_P4INFO, ENV, REPO, free_ports, proc_status, sh, stop  # noqa: E402

from netrun.ecmp import flow_hash, load_controller  # noqa: E402
from p4runtime_lib import (  # noqa: E402
    ControllerError,
    NotPrimary,
    P4Info,
    SwitchConnection,
    delete,
    insert,
    table_entry,
)
from p4runtime_lib.protos import p4runtime_pb2, p4runtime_pb2_grpc  # noqa: E402

SetRequest = p4runtime_pb2.SetForwardingPipelineConfigRequest
RECORD = struct.Struct("<dIHB")  # arrival (CLOCK_MONOTONIC), seq, sport, rewritten ok
TRAFFIC = ("env", f"PYTHONPATH={REPO / 'utils'}", sys.executable, "-m", "live.traffic")
H1, VIP, DPORT = "10.0.1.1", "10.0.0.1", 1234
# mycontroller.py's s1: ecmp_select 0 -> h2 on port 2, 1 -> h3 on port 3
HOSTS = {"h2": ("b", "10.0.2.2", "00:00:00:00:01:02", "00:00:00:01:02:00"),
         "h3": ("c", "10.0.3.3", "00:00:00:00:01:03", "00:00:00:01:03:00")}
WRITER_ID, SECOND_ID, REPROGRAM_ID = 10, 5, 20
MIB = 1024


@dataclass
class Config:
    """What one soak run does (defaults: ``make soak``)."""

    seconds: float = 600.0  # measured period, after the warm-up
    rate: float = 5000.0  # packets/s of real-shaped traffic
    flows: int = 1000
    seed: int = 10
    pushes: int | None = None  # re-programmings in the measured period; None: one per 6 s
    push_mode: str = "commit"  # "commit" (mycontroller.py) or "save-commit"
    batch: int = 1000  # entries per write / delete batch
    read_interval: float = 0.1
    second_interval: float = 1.0
    idle_streams: int = 100
    warmup: float = 5.0
    report_every: float = 60.0
    rss_limit_mib: float = 5.0
    gap_target: float = 0.050
    prefix: str = field(default_factory=lambda: f"sk{os.getpid() % 10000}")

    @property
    def push_count(self) -> int:
        return self.pushes if self.pushes is not None else max(1, round(self.seconds / 6))


# -- expected values, computed independently of the switch -------------------------------

def expected_host(sport: int) -> str:
    """h2 or h3: crc16(srcAddr, dstAddr, protocol, srcPort, dstPort) mod 2 (crcmod)."""
    return ("h2", "h3")[flow_hash(sport, H1, VIP, dport=DPORT) % 2]


def flow_ports(flows: int, seed: int) -> list[int]:
    """The source ports ``live.traffic send --flows F --seed S`` uses."""
    return random.Random(seed).sample(range(1024, 65536), flows)


# -- the receiver (runs inside a host's namespace) ------------------------------------------

def receive(iface: str, out: Path, ip: str, mac: str, smac: str) -> int:
    """Append one RECORD per live.traffic segment arriving on ``iface`` to ``out`` until
    SIGTERM; ``ok`` says s1 rewrote it for this host (IPv4 dst, TTL 63, MACs)."""
    from live.traffic import ETH, MAGIC, PAYLOAD, open_socket

    want_ip = socket.inet_aton(ip)
    want_macs = bytes.fromhex(mac.replace(":", "")) + bytes.fromhex(smac.replace(":", ""))
    sock = open_socket(iface)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
    sock.settimeout(0.05)
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    pending = bytearray()
    flushed = time.monotonic()
    with open(out, "ab", buffering=0) as sink:
        print("receiving", file=sys.stderr, flush=True)
        while True:
            try:
                frame, address = sock.recvfrom(65535)
            except TimeoutError:
                frame = b""
                if stopping:
                    break
            now = time.monotonic()
            if frame and address[2] != socket.PACKET_OUTGOING and len(frame) >= 64 \
                    and frame[12:14] == b"\x08\x00":
                tcp = ETH + (frame[ETH] & 0x0F) * 4
                offset = tcp + (frame[tcp + 12] >> 4) * 4
                with contextlib.suppress(struct.error):
                    magic, sport, seq = PAYLOAD.unpack_from(frame, offset)
                    if magic == MAGIC:
                        ok = frame[:12] == want_macs and frame[30:34] == want_ip \
                            and frame[ETH + 8] == 63
                        pending += RECORD.pack(now, seq, sport, ok)
            if pending and (now - flushed > 0.05 or len(pending) > 1 << 16):
                sink.write(pending)
                pending.clear()
                flushed = now
        sink.write(pending)
    return 0


# -- what arrived ----------------------------------------------------------------------------

@dataclass
class Push:
    """One re-programming: when the push was sent, when the rules were written."""

    start: float
    pushed: float
    end: float
    warmup: bool
    gap: float | None = None  # largest inter-arrival gap overlapping [start, end]
    lost: int = 0  # packets missing whose neighbours arrived around [start, end]


class Ledger:
    """Every packet's arrival by sequence number, and each host's arrival times."""

    def __init__(self, capacity: int, hosts: dict[int, str]) -> None:
        self.arrival = array("d", bytes(8 * capacity))  # 0.0: not (yet) received
        self.hosts = hosts  # sport -> the host crc16 picks
        self.times: dict[str, array] = {"h2": array("d"), "h3": array("d")}
        self.highest = -1
        self.received = self.misdelivered = self.not_rewritten = self.duplicated = 0
        self.unknown = 0  # sequence numbers or ports the sender cannot have sent
        self.settled = 0  # every seq below was accounted for
        self.lost = self.push_lost = 0
        self.lost_runs: list[tuple[int, int]] = []
        self.per_flow: Counter[int] = Counter()
        self.gap_done = 0.0  # arrivals before this time were scanned for gaps
        self.gap_index = {"h2": 0, "h3": 0}
        self.gap_last = 0.0
        self.largest_other_gap = 0.0

    def take(self, host: str, data: bytes) -> None:
        """Record whole RECORDs received by ``host``."""
        times = self.times[host]
        arrival, hosts = self.arrival, self.hosts
        for now, seq, sport, ok in RECORD.iter_unpack(data):
            if seq >= len(arrival) or sport not in hosts:
                self.unknown += 1
                continue
            times.append(now)
            if arrival[seq]:
                self.duplicated += 1
                continue
            arrival[seq] = now
            self.received += 1
            self.per_flow[sport] += 1
            if hosts[sport] != host:
                self.misdelivered += 1
            if not ok:
                self.not_rewritten += 1
            if seq > self.highest:
                self.highest = seq

    def settle(self, upto: int, pushes: list[Push], slack: float = 0.01) -> None:
        """Account for every seq below ``upto``: a run of missing seqs whose neighbours
        arrived around a push window (the one before it no later than ``slack`` s after
        the window's end, the one after it no earlier than its start) is that push's;
        any other is lost.  A run with nothing received after it waits."""
        arrival = self.arrival
        limit = min(len(arrival), self.highest + 1)
        seq = self.settled
        while seq < min(upto, limit):
            if arrival[seq]:
                seq += 1
                continue
            first = seq
            while seq < limit and not arrival[seq]:
                seq += 1
            if seq >= limit:  # nothing arrived after it (yet)
                seq = first
                break
            before = arrival[first - 1] if first else 0.0
            after = arrival[seq]
            push = next((p for p in pushes if after >= p.start and before <= p.end + slack),
                        None)
            if push is not None:
                push.lost += seq - first
                self.push_lost += seq - first
            else:
                self.lost += seq - first
                self.lost_runs.append((first, seq - first))
        self.settled = seq

    def push_gap(self, push: Push) -> float:
        """The largest gap between consecutive arrivals (h2 and h3 merged) that overlaps
        the push window."""
        near = []
        for times in self.times.values():
            low = bisect.bisect_left(times, push.start - 1.0)
            high = bisect.bisect_right(times, push.end + 1.0)
            near.append(times[low:high])
        merged = list(heapq.merge(*near))
        gap = 0.0
        for before, after in zip(merged, merged[1:]):
            if before <= push.end and after >= push.start:
                gap = max(gap, after - before)
        return gap

    def scan_gaps(self, horizon: float, pushes: list[Push]) -> None:
        """The largest inter-arrival gap not overlapping any push window, up to
        ``horizon`` (arrivals after it may still be on their way)."""
        fresh = []
        for host, times in self.times.items():
            end = bisect.bisect_right(times, horizon)
            fresh.append(times[self.gap_index[host]:end])
            self.gap_index[host] = end
        merged = list(heapq.merge(*fresh))
        last = self.gap_last
        for now in merged:
            if last and now - last > self.largest_other_gap and not any(
                    now >= p.start and last <= p.end for p in pushes):
                self.largest_other_gap = now - last
            last = now
        self.gap_last = last


# -- the loads -------------------------------------------------------------------------------

class Load(threading.Thread):
    """A daemon thread looping ``step`` until ``stopping``; errors are counted."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.stopping = threading.Event()
        self.count = 0
        self.errors: Counter[str] = Counter()
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            self.loop()
        except BaseException as error:  # noqa: BLE001 - reported by the soak
            self.failure = error
            self.errors[f"{type(error).__name__}: {error}"] += 1

    def loop(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)


class Batches(Load):
    """1,000 entries written in one WriteRequest, then deleted in one, back to back,
    by the long-lived primary (election id 10)."""

    def __init__(self, address: str, info: P4Info, size: int) -> None:
        super().__init__("batches")
        self.connection = SwitchConnection("s1-batches", address, 0,
                                           election_id=(0, WRITER_ID), p4info=info,
                                           timeout=10)
        entries = [table_entry(info, "ecmp_group",
                               {"hdr.ipv4.dstAddr": f"10.200.{i >> 8}.{i & 255}/32"},
                               "set_ecmp_select", {"ecmp_base": 0, "ecmp_count": 2})
                   for i in range(size)]
        self.inserts = [insert(e) for e in entries]
        self.deletes = [delete(e) for e in entries]
        self._hold = threading.Event()
        self._idle = threading.Event()
        self._idle.set()

    def start_primary(self) -> None:
        self.connection.become_primary()
        self.start()

    def loop(self) -> None:
        while not self.stopping.is_set():
            if self._hold.is_set():
                self._idle.set()
                time.sleep(0.001)
                continue
            self._idle.clear()
            if self._hold.is_set():
                continue
            for updates in (self.inserts, self.deletes):
                try:
                    self.connection.write(updates)
                except ControllerError as error:
                    self.errors[str(error).splitlines()[0][:200]] += 1
            self.count += 1
        self._idle.set()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """No batch in flight (the table holds none of ours) until the block ends."""
        self._hold.set()
        try:
            self._idle.wait()
            yield
        finally:
            self._hold.clear()

    def stop(self) -> None:
        super().stop()
        self.connection.close()


class Reader(Load):
    """Every table read (one wildcard Read) every ``interval`` s."""

    def __init__(self, address: str, info: P4Info, interval: float) -> None:
        super().__init__("reader")
        self.connection = SwitchConnection("s1-reader", address, 0, p4info=info, timeout=10)
        self.interval = interval
        self.entities: Counter[int] = Counter()
        self.slowest = 0.0

    def loop(self) -> None:
        due = time.monotonic()
        while not self.stopping.is_set():
            began = time.monotonic()
            try:
                self.entities[len(self.connection.read_table_entries())] += 1
            except ControllerError as error:
                self.errors[str(error)[:200]] += 1
            self.slowest = max(self.slowest, time.monotonic() - began)
            self.count += 1
            due += self.interval
            self.stopping.wait(max(0.0, due - time.monotonic()))

    def stop(self) -> None:
        super().stop()
        self.connection.close()


class SecondController(Load):
    """Every ``interval`` s: a new connection with election id 5 arbitrates, must hear
    it is a backup (the primary being 10, or 20 during a re-programming), and leaves."""

    def __init__(self, address: str, interval: float,
                 context: Callable[[], str] = lambda: "") -> None:
        super().__init__("second-controller")
        self.address = address
        self.interval = interval
        self.context = context  # what the other controllers were doing, for a failure

    def loop(self) -> None:
        due = time.monotonic()
        while not self.stopping.is_set():
            with SwitchConnection("s1-second", self.address, 0,
                                  election_id=(0, SECOND_ID), timeout=10) as second:
                try:
                    answer = second.become_primary()
                    self.errors[f"the second controller became primary (answer: primary "
                                f"{answer.election_id.high}:{answer.election_id.low} "
                                f"'{answer.status.message}'; {self.context()})"] += 1
                except NotPrimary as error:
                    if error.primary not in ((0, WRITER_ID), (0, REPROGRAM_ID)):
                        self.errors[str(error)[:200]] += 1
                except ControllerError as error:
                    self.errors[str(error)[:200]] += 1
            self.count += 1
            due += self.interval
            self.stopping.wait(max(0.0, due - time.monotonic()))


class IdleStreams:
    """``count`` StreamChannels that never send anything, on their own event loop."""

    def __init__(self, address: str, count: int) -> None:
        self.address = address
        self.count = count
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="idle-streams",
                                       daemon=True)
        self.calls: list[Any] = []
        self.channels: list[Any] = []

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._open(), self.loop).result(60)

    async def _open(self) -> None:
        self.channels = [grpc.aio.insecure_channel(self.address) for _ in range(10)]
        stubs = [p4runtime_pb2_grpc.P4RuntimeStub(c) for c in self.channels]
        self.calls = [stubs[i % len(stubs)].StreamChannel() for i in range(self.count)]
        await asyncio.gather(*(call.initial_metadata() for call in self.calls))

    def open(self) -> int:
        """How many are still open (the server has not ended them)."""
        return sum(1 for call in self.calls if not call.done())

    def stop(self) -> None:
        async def close() -> None:
            for call in self.calls:
                call.cancel()
            for channel in self.channels:
                await channel.close()

        if self.thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(close(), self.loop).result(30)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


class Reprogrammer(Load):
    """mycontroller.py's steps on s1 at the times in ``schedule`` (monotonic), with
    the batches paused; each push's window is recorded."""

    def __init__(self, address: str, info: P4Info, batches: Batches, schedule: list[float],
                 warmup_until: float, mode: str) -> None:
        super().__init__("reprogrammer")
        self.address, self.info, self.batches = address, info, batches
        self.schedule, self.warmup_until, self.mode = schedule, warmup_until, mode
        self.device_config = BUILD_JSON.read_bytes()
        self.rules = load_controller(REPO).RULES["s1"](info)
        self.expected = sorted(u.entity.table_entry.SerializeToString(deterministic=True)
                               for u in self.rules if u.type == p4runtime_pb2.Update.INSERT)
        self.pushes: list[Push] = []
        self.push_seconds: list[float] = []  # the SetForwardingPipelineConfig RPC alone

    def loop(self) -> None:
        for when in self.schedule:
            if self.stopping.wait(max(0.0, when - time.monotonic())):
                return
            with self.batches.held():
                push = self.reprogram()
                if not self.writer_hears(WRITER_ID):  # the switch has seen us leave
                    self.errors["the batch writer did not become primary again"] += 1
            if push is not None:
                self.count += 1

    def writer_hears(self, primary: int, timeout: float = 10.0) -> bool:
        """Wait until the batch writer's stream has said who is primary now (its
        ``is_primary`` alone may still be the news from before our arbitration)."""
        writer = self.batches.connection
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if writer.primary_id == (0, primary) and \
                    writer.is_primary == (primary == WRITER_ID):
                return True
            time.sleep(0.001)
        return False

    def reprogram(self) -> Push | None:
        """Connect, become primary, push, write the rules, read back, disconnect."""
        try:
            with SwitchConnection("s1", self.address, 0, election_id=(0, REPROGRAM_ID),
                                  p4info=self.info, timeout=10) as sw:
                sw.become_primary()
                if self.batches.is_alive() and not self.writer_hears(REPROGRAM_ID):
                    self.errors["the batch writer did not hear of the re-programmer"] += 1
                start = time.monotonic()
                # listed at once, still open: the ledger may settle packets lost in the
                # window while this push is still in progress
                push = Push(start, pushed=math.inf, end=math.inf,
                            warmup=start < self.warmup_until)
                self.pushes.append(push)
                if self.mode == "commit":
                    sw.set_pipeline(self.info, self.device_config)
                    push.pushed = pushed = time.monotonic()
                    sw.write(self.rules)
                else:  # save-commit: the old pipeline forwards until COMMIT
                    sw.set_pipeline(self.info, self.device_config, SetRequest.VERIFY_AND_SAVE)
                    push.pushed = pushed = time.monotonic()
                    sw.write(self.rules)
                    commit = SetRequest(device_id=0, action=SetRequest.COMMIT)
                    commit.election_id.low = REPROGRAM_ID
                    sw.stub.SetForwardingPipelineConfig(commit, timeout=10)
                push.end = time.monotonic()
                entries = sorted(e.SerializeToString(deterministic=True)
                                 for e in sw.read_table_entries())
                defaults = [sw.read_default_entry(t.preamble.id) for t in self.info.proto.tables]
        except (ControllerError, grpc.RpcError) as error:
            self.errors[str(error).splitlines()[0][:200]] += 1
            if self.pushes and math.isinf(self.pushes[-1].end):
                self.pushes[-1].end = time.monotonic()  # the window closes anyway
            return None
        self.push_seconds.append(pushed - start)
        drop = self.info.action("MyIngress.drop").preamble.id
        group = self.info.table("ecmp_group").preamble.id
        if entries != self.expected or not any(
                d.table_id == group and d.action.action.action_id == drop for d in defaults):
            self.errors["the tables read back are not mycontroller's s1 rules"] += 1
        return push


# -- the lab: namespaces, the switch, the traffic -------------------------------------------

class Lab:
    """Namespaces PREFIXa/b/c, each with eth0 inside and a veth PREFIXx outside."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.names: list[str] = []

    def up(self) -> None:
        for short in "abc":
            name = self.prefix + short
            sh("ip", "netns", "add", name)
            self.names.append(name)
            sh("ip", "link", "add", name, "type", "veth", "peer", "name", "eth0", "netns", name)
            for side in ((), ("ip", "netns", "exec", name)):
                iface = "eth0" if side else name
                sh(*side, "ip", "link", "set", iface, "up")
                subprocess.run([*side, "ethtool", "-K", iface, "rx", "off", "tx", "off", "sg",
                                "off"], capture_output=True, check=False)
            sh("ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")

    def popen(self, short: str, *command: str, **kwargs: Any) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", self.prefix + short, *command],
                                **kwargs)

    def down(self) -> None:
        for name in self.names:
            subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        self.names.clear()


@dataclass
class Report:
    """What one soak measured."""

    config: Config
    sent: int = 0
    sender_rate: float = 0.0
    received: int = 0
    lost: int = 0
    push_lost: int = 0
    misdelivered: int = 0
    not_rewritten: int = 0
    duplicated: int = 0
    unknown: int = 0
    flows_seen: int = 0
    rss_before_kib: int = 0
    rss_after_kib: int = 0
    threads_before: int = 0
    threads_after: int = 0
    pushes: list[Push] = field(default_factory=list)
    push_seconds: list[float] = field(default_factory=list)
    largest_other_gap: float = 0.0
    batches: int = 0
    reads: int = 0
    read_slowest: float = 0.0
    entities_per_read: dict[int, int] = field(default_factory=dict)
    second_connects: int = 0
    idle_open: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    lost_runs: list[tuple[int, int]] = field(default_factory=list)

    @property
    def rss_growth_mib(self) -> float:
        return (self.rss_after_kib - self.rss_before_kib) / MIB

    @property
    def largest_push_gap(self) -> float:
        return max((p.gap or 0.0 for p in self.pushes), default=0.0)

    def failures(self) -> list[str]:
        """Why this run fails (empty: it passed)."""
        c = self.config
        out = []
        if self.lost:
            out.append(f"{self.lost} packets lost outside push windows (runs {self.lost_runs[:5]})")
        if self.received + self.lost + self.push_lost != self.sent:
            out.append(f"received {self.received} + lost {self.lost} + push-lost "
                       f"{self.push_lost} != sent {self.sent}")
        for name in ("misdelivered", "not_rewritten", "duplicated", "unknown"):
            if getattr(self, name):
                out.append(f"{getattr(self, name)} packets {name.replace('_', ' ')}")
        if self.flows_seen != c.flows:
            out.append(f"only {self.flows_seen} of {c.flows} flows arrived")
        if self.rss_growth_mib > c.rss_limit_mib:
            out.append(f"switch RSS grew {self.rss_growth_mib:.1f} MiB (limit {c.rss_limit_mib})")
        if len([p for p in self.pushes if not p.warmup]) != c.push_count:
            out.append(f"{len(self.pushes)} pushes done, {c.push_count} planned")
        if self.idle_open != c.idle_streams:
            out.append(f"{c.idle_streams - self.idle_open} idle streams were closed")
        gaps = sorted(p.gap for p in self.pushes if p.gap is not None)
        over = [g for g in gaps if g > c.gap_target]
        if gaps and (gaps[len(gaps) // 2] > c.gap_target or len(over) > 1):
            out.append(f"push gaps above {c.gap_target * 1000:.0f} ms: {len(over)} of "
                       f"{len(gaps)} (median {gaps[len(gaps) // 2] * 1000:.1f} ms; one "
                       "late push is allowed, a loaded machine's scheduling)")
        out += [f"{count}x {error}" for error, count in self.errors.items()]
        return out


def planned_pushes(start: float, config: Config) -> list[float]:
    """One push in the warm-up, then ``push_count`` spread over the measured period."""
    every = config.seconds / config.push_count
    measured = start + config.warmup
    return [start + config.warmup / 2,
            *(measured + (i + 0.5) * every for i in range(config.push_count))]


def run(config: Config, out: Callable[[str], None] = print) -> Report:
    """One soak; ``out`` gets the per-interval lines and the summary."""
    report = Report(config)
    info = P4Info.load(BUILD_P4INFO)
    sports = flow_ports(config.flows, config.seed)
    hosts = {sport: expected_host(sport) for sport in sports}
    total = config.warmup + config.seconds
    ledger = Ledger(int(config.rate * (total + 5) * 1.05) + 10_000, hosts)
    lab = Lab(config.prefix)
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    started: list[Any] = []  # to stop, last first
    out(f"soak: {config.rate:,.0f} packets/s of real-shaped TCP over {config.flows} flows for "
        f"{config.warmup:g} s warm-up + {config.seconds:g} s, while: {config.batch}-entry "
        f"batches written and deleted back to back; every table read every "
        f"{config.read_interval * 1000:.0f} ms; a second controller (election id {SECOND_ID}) "
        f"connecting every {config.second_interval:g} s; {config.idle_streams} idle streams; "
        f"{config.push_count} mycontroller-style re-programmings (+1 in the warm-up, "
        f"push mode {config.push_mode})")
    switch = None
    try:
        lab.up()
        port = free_ports(1)
        address = f"127.0.0.1:{port}"
        log = open(workdir / "switch.log", "w")  # noqa: SIM115 - closed below
        switch = subprocess.Popen(
            [sys.executable, "-m", "p4switch",
             *(f"-i{n}@{name}" for n, name in enumerate(lab.names, 1)), "--device-id", "0",
             str(BUILD_JSON), "--", "--grpc-server-addr", address],
            stdout=log, stderr=subprocess.STDOUT, env=ENV, cwd=REPO)
        log.close()
        wait_for_port(port, switch)
        # the first programming: mycontroller's steps, before any traffic
        batches = Batches(address, info, config.batch)
        first = Reprogrammer(address, info, batches, [], 0.0, "commit")
        if first.reprogram() is None:
            raise RuntimeError(f"the first programming failed: {dict(first.errors)}")

        receivers = {}
        for host, (short, ip, mac, smac) in HOSTS.items():
            path = workdir / f"{host}.bin"
            path.touch()
            process = lab.popen(short, sys.executable, str(Path(__file__).resolve()),
                                "receive", "--iface", "eth0", "--out", str(path), "--ip", ip,
                                "--mac", mac, "--smac", smac, stderr=subprocess.PIPE,
                                text=True, env=ENV)
            started.append(process)
            assert process.stderr is not None
            line = process.stderr.readline().strip()
            if line != "receiving":
                raise RuntimeError(f"receiver {host}: {line} {process.stderr.read()}")
            receivers[host] = (open(path, "rb"), bytearray())  # noqa: SIM115

        idle = IdleStreams(address, config.idle_streams)
        idle.start()
        sender = lab.popen("a", *TRAFFIC, "send", "--flows", str(config.flows), "--seed",
                           str(config.seed), "--rate", str(config.rate), "--seconds",
                           str(total + 1.0), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
        assert sender.stderr is not None
        if sender.stderr.readline().strip() != "sending":
            raise RuntimeError(f"sender: {sender.communicate()}")
        began = time.monotonic()
        batches.start_primary()
        reader = Reader(address, info, config.read_interval)
        reprogrammer = Reprogrammer(address, info, batches, planned_pushes(began, config),
                                    began + config.warmup, config.push_mode)

        def context() -> str:
            writer = batches.connection
            return (f"at {time.monotonic() - began:.3f} s: the batch writer is_primary "
                    f"{writer.is_primary}, primary_id {writer.primary_id}, "
                    f"{'held' if batches._hold.is_set() else 'writing'}; "
                    f"{reprogrammer.count} re-programmings done")

        second = SecondController(address, config.second_interval, context)
        loads: list[Load] = [batches, reader, second, reprogrammer]
        for load in loads[1:]:
            load.start()

        def collect(now: float) -> None:
            for host, (stream, rest) in receivers.items():
                rest += stream.read()
                whole = len(rest) - len(rest) % RECORD.size
                ledger.take(host, bytes(rest[:whole]))
                del rest[:whole]
            pushes = reprogrammer.pushes
            ledger.settle(ledger.highest - int(config.rate * 1.0), pushes)
            for push in pushes:
                if push.gap is None and push.end < now - 1.0:
                    push.gap = ledger.push_gap(push)
            ledger.scan_gaps(now - 1.0, pushes)

        time.sleep(max(0.0, began + config.warmup - time.monotonic()))
        collect(time.monotonic())
        report.threads_before, report.rss_before_kib = proc_status(switch.pid)
        out(f"after the warm-up: switch RSS {report.rss_before_kib / MIB:.1f} MiB, "
            f"{report.threads_before} threads")
        last_report = (time.monotonic(), ledger.received)
        end = began + total
        while True:
            now = time.monotonic()
            due = min(end, last_report[0] + config.report_every)
            if now < due:
                time.sleep(min(0.5, due - now))
                collect(time.monotonic())
                continue
            collect(now)
            threads, rss = proc_status(switch.pid)
            measured = [p for p in reprogrammer.pushes if p.gap is not None]
            gap = max((p.gap for p in measured), default=0.0)  # type: ignore[type-var]
            rate = (ledger.received - last_report[1]) / (now - last_report[0])
            out(f"[{now - began - config.warmup:5.0f} s] {rate:7,.0f} pkt/s  "
                f"sent {ledger.highest + 1:>9,}  lost {ledger.lost}  "
                f"push-lost {ledger.push_lost}  misdelivered {ledger.misdelivered}  "
                f"RSS {rss / MIB:.1f} MiB ({(rss - report.rss_before_kib) / MIB:+.1f})  "
                f"threads {threads}  open streams {idle.open() + 1}  "
                f"pushes {len(reprogrammer.pushes)}  largest push gap {gap * 1000:.1f} ms  "
                f"(batches {batches.count}, reads {reader.count}, "
                f"second controller {second.count})")
            last_report = (now, ledger.received)
            if now >= end:
                break
        report.idle_open = idle.open()
        for load in reversed(loads):  # the batch writer (the primary) last: with it gone,
            load.stop()  # a second controller arriving would rightly become primary
        idle.stop()
        sent_out, sent_err = sender.communicate(timeout=60)
        summary = json.loads(sent_out.strip().splitlines()[-1])
        time.sleep(0.5)  # the last packets reach the receivers
        for process in started:
            stop(process)
        collect(time.monotonic() + 10)
        report.sent = summary["sent"]
        report.sender_rate = summary["rate"]
        if summary["sports"] != sports:
            report.errors["the sender's source ports differ from ours"] = 1
        ledger.settle(report.sent, reprogrammer.pushes)
        if ledger.settled < report.sent:  # the last packets never came
            ledger.lost += report.sent - ledger.settled
            ledger.lost_runs.append((ledger.settled, report.sent - ledger.settled))
        time.sleep(1.0)  # the server finishes with the closed streams
        report.threads_after, report.rss_after_kib = proc_status(switch.pid)
        for name in ("received", "lost", "push_lost", "misdelivered", "not_rewritten",
                     "duplicated", "unknown", "lost_runs", "largest_other_gap"):
            setattr(report, name, getattr(ledger, name))
        report.flows_seen = len(ledger.per_flow)
        report.pushes = reprogrammer.pushes
        report.push_seconds = reprogrammer.push_seconds
        report.batches, report.reads, report.second_connects = \
            batches.count, reader.count, second.count
        report.read_slowest = reader.slowest
        report.entities_per_read = dict(reader.entities)
        for load in loads:
            for error, count in load.errors.items():
                report.errors[f"{load.name}: {error}"] = count
        for stream, _rest in receivers.values():
            stream.close()
        out(summarize(report))
        if report.failures():  # the switch's own words, before the log goes
            log_lines = (workdir / "switch.log").read_text(errors="replace").splitlines()
            out("switch log (last 20 lines):\n" + "\n".join(log_lines[-20:]))
        return report
    finally:
        for process in reversed(started):
            stop(process)
        if switch is not None:
            stop(switch)
        lab.down()
        for path in workdir.iterdir():
            path.unlink()
        workdir.rmdir()


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the switch exited ({process.returncode})")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError("the switch did not open its gRPC port")


def summarize(report: Report) -> str:
    """The run's figures, several lines."""
    c = report.config
    gaps = sorted((p.gap or 0.0) for p in report.pushes)
    ms = [g * 1000 for g in gaps]
    median = ms[len(ms) // 2] if ms else 0.0
    push_ms = sorted(s * 1000 for s in report.push_seconds)
    dropped = sorted(p.lost for p in report.pushes)
    over = sum(1 for g in gaps if g > c.gap_target)
    window = sorted((p.end - p.start) * 1000 for p in report.pushes)
    lines = [
        f"sent {report.sent:,} packets at {report.sender_rate:,.0f}/s over {c.flows} flows; "
        f"received {report.received:,}; lost {report.lost}; lost in push windows "
        f"{report.push_lost} ({len(report.pushes)} pushes); misdelivered "
        f"{report.misdelivered}; not rewritten {report.not_rewritten}; duplicated "
        f"{report.duplicated}; flows seen {report.flows_seen}/{c.flows}",
        f"push gap (largest inter-arrival gap at h2+h3 overlapping push..rules written): "
        f"median {median:.1f} ms, max {max(ms, default=0.0):.1f} ms (target "
        f"{c.gap_target * 1000:.0f} ms: {over} of {len(ms)} pushes above it); packets "
        f"dropped per push: median "
        f"{dropped[len(dropped) // 2] if dropped else 0}, max {max(dropped, default=0)} "
        f"(= {max(dropped, default=0) / c.rate * 1000:.1f} ms of traffic); push..rules "
        f"written median {window[len(window) // 2] if window else 0:.1f} ms, max "
        f"{max(window, default=0.0):.1f} ms; SetForwardingPipelineConfig alone median "
        f"{push_ms[len(push_ms) // 2] if push_ms else 0:.1f} ms",
        f"largest inter-arrival gap outside push windows: {report.largest_other_gap * 1000:.1f} "
        f"ms (nothing lost in it)",
        f"control plane: {report.batches} x ({c.batch} inserts + {c.batch} deletes), "
        f"{report.reads} reads (slowest {report.read_slowest * 1000:.0f} ms, entities per "
        f"read {sorted(report.entities_per_read)[:1]}..{sorted(report.entities_per_read)[-1:]}), "
        f"{report.second_connects} second-controller connections, {report.idle_open}/"
        f"{c.idle_streams} idle streams open at the end",
        f"switch RSS {report.rss_before_kib / MIB:.1f} -> {report.rss_after_kib / MIB:.1f} MiB "
        f"({report.rss_growth_mib:+.1f}, limit {c.rss_limit_mib:g}); threads "
        f"{report.threads_before} -> {report.threads_after}",
    ]
    failures = report.failures()
    lines.append("FAILED: " + "; ".join(failures) if failures else "soak passed")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    receiver = commands.add_parser("receive", help="(internal) a host's receiver")
    receiver.add_argument("--iface", default="eth0")
    receiver.add_argument("--out", type=Path, required=True)
    receiver.add_argument("--ip", required=True)
    receiver.add_argument("--mac", required=True)
    receiver.add_argument("--smac", required=True)
    default = Config()
    parser.add_argument("--seconds", type=float,
                        default=float(os.environ.get("SOAK_SECONDS") or default.seconds),
                        help="measured period (default 600, or $SOAK_SECONDS)")
    parser.add_argument("--rate", type=float, default=default.rate, help="packets/s")
    parser.add_argument("--flows", type=int, default=default.flows)
    parser.add_argument("--pushes", type=int, default=None,
                        help="re-programmings in the measured period (default: one per 6 s)")
    parser.add_argument("--push-mode", choices=("commit", "save-commit"),
                        default=default.push_mode)
    parser.add_argument("--idle-streams", type=int, default=default.idle_streams)
    parser.add_argument("--report-every", type=float, default=default.report_every)
    args = parser.parse_args(argv)
    if args.command == "receive":
        return receive(args.iface, args.out, args.ip, args.mac, args.smac)
    if os.geteuid() != 0:
        print("error: the soak needs root (namespaces, veths)", file=sys.stderr)
        return 1
    config = Config(seconds=args.seconds, rate=args.rate, flows=args.flows, pushes=args.pushes,
                    push_mode=args.push_mode, idle_streams=args.idle_streams,
                    report_every=args.report_every)
    report = run(config)
    return 1 if report.failures() else 0


if __name__ == "__main__":
    sys.exit(main())
