"""AF_PACKET ports, the data plane loop and pcap files, in process, on real veths."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from procs import Namespaces, sh
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.utils import rdpcap

from p4switch.io.pcap import PcapObserver
from p4switch.io.ports import (
    BATCH_LIMIT,
    BEHIND_GRACE_MS,
    DEFAULT_MAX_DELAY_MS,
    HOLE_NS,
    DataPlane,
    Port,
    PortError,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for veths")
IFF_PROMISC = 0x100


@pytest.fixture
def veth() -> Iterator[tuple[str, str]]:
    """A veth pair in the root namespace, up, offloads off: (switch side, peer)."""
    a, b = f"pa{os.getpid() % 100000}", f"pb{os.getpid() % 100000}"
    sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
    try:
        for name in (a, b):
            sh("sysctl", "-q", "-w", f"net.ipv6.conf.{name}.disable_ipv6=1", check=False)
            sh("ethtool", "-K", name, "rx", "off", "tx", "off", "sg", "off", check=False)
            sh("ip", "link", "set", name, "up")
        yield a, b
    finally:
        subprocess.run(["ip", "link", "del", a], capture_output=True, check=False)


def raw_socket(name: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    sock.bind((name, 0))
    return sock


def receive(port: Port, count: int, timeout: float = 3) -> list[bytes]:
    """At least ``count`` frames from the ring, then whatever else is waiting."""
    frames: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(frames) < count and time.monotonic() < deadline:
        frames += port.receive_batch()
        time.sleep(0.005)
    time.sleep(0.05)
    while batch := port.receive_batch():  # a batch holds at most BATCH_LIMIT frames
        frames += batch
    return frames


def flags(name: str) -> int:
    return int(Path(f"/sys/class/net/{name}/flags").read_text(), 16)


PAYLOAD = IP(src="10.0.1.1", dst="10.0.0.1") / UDP(sport=1, dport=2) / b"tagged"
TAGGED = [  # the kernel moves the outer tag of each into metadata; it must come back
    Ether(src="08:00:00:00:01:01", dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=42) / PAYLOAD,
    Ether(src="08:00:00:00:01:01", dst="ff:ff:ff:ff:ff:ff") / Dot1Q(prio=5, dei=1, vlan=4094)
    / PAYLOAD,
    Ether(src="08:00:00:00:01:01", dst="ff:ff:ff:ff:ff:ff") / Dot1Q(prio=3, vlan=0) / PAYLOAD,
    Ether(src="08:00:00:00:01:01", dst="ff:ff:ff:ff:ff:ff") / Dot1Q(vlan=0) / PAYLOAD,
    Ether(src="08:00:00:00:01:01", dst="ff:ff:ff:ff:ff:ff") / Dot1AD(vlan=100)
    / Dot1Q(vlan=7) / PAYLOAD,
]


def test_frames_arrive_exactly_as_sent_tags_included(veth: tuple[str, str]) -> None:
    a, b = veth
    port = Port(1, a)
    try:
        untagged = bytes(Ether(src="08:00:00:00:01:01", dst="08:00:00:00:01:00") / PAYLOAD)
        frames = [untagged] + [bytes(f) for f in TAGGED]
        with raw_socket(b) as sender:
            for frame in frames:
                sender.send(frame)
        got = receive(port, len(frames))
        assert got == frames
        assert bytes(got[-1])[12:14] == b"\x88\xa8"  # the S-tag's TPID, not 0x8100
        assert port.stats()["received"] == len(frames)
    finally:
        port.close()


@pytest.mark.parametrize("size", [9000, 65535])
def test_jumbo_frames_are_whole(veth: tuple[str, str], size: int) -> None:
    a, b = veth
    for name in (a, b):
        sh("ip", "link", "set", name, "mtu", str(size - 14))
    port = Port(1, a)
    try:
        frame = bytes(Ether(src="08:00:00:00:01:01", dst="08:00:00:00:01:00", type=0x88B5)) \
            + bytes(range(256)) * ((size - 14) // 256) + bytes((size - 14) % 256)
        assert len(frame) == size
        with raw_socket(b) as sender:
            sender.send(frame)
        assert receive(port, 1) == [frame]
        assert port.stats()["truncated"] == 0
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3)) as peer:
            peer.bind((b, 0))
            peer.settimeout(2)
            port.send(frame)  # and back out whole
            assert peer.recv(70000) == frame
    finally:
        port.close()


def test_a_frame_above_the_ring_is_dropped_and_counted(veth: tuple[str, str]) -> None:
    a, b = veth
    warnings: list[str] = []
    port = Port(1, a, warn=warnings.append)  # MTU 1500: 64 KiB ring blocks
    try:
        for name in (a, b):
            sh("ip", "link", "set", name, "mtu", "65521")
        big = bytes(Ether(type=0x88B5)) + bytes(65521)
        small = bytes(Ether(type=0x88B5)) + b"after"
        with raw_socket(b) as sender:
            sender.send(big)
            sender.send(small)
        assert receive(port, 1) == [small]  # never a cut frame in the pipeline
        assert port.stats()["truncated"] == 1
        assert len(warnings) == 1 and "65535-byte frame" in warnings[0]
    finally:
        port.close()


def test_own_frames_are_not_received_back_and_promiscuous_mode(veth: tuple[str, str]) -> None:
    a, b = veth
    assert not flags(a) & IFF_PROMISC
    port = Port(1, a)
    try:
        assert flags(a) & IFF_PROMISC
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3)) as peer:
            peer.bind((b, 0))
            peer.settimeout(2)
            mine = bytes(Ether(src="08:00:00:00:01:00", dst="08:00:00:00:09:09") / PAYLOAD)
            port.send(mine)
            assert peer.recv(2000) == mine
            foreign = bytes(Ether(src="08:00:00:00:09:09", dst="08:00:00:00:07:07") / PAYLOAD)
            peer.send(foreign)  # not addressed to the interface: promiscuous mode
        assert receive(port, 1) == [foreign]
        assert port.stats()["sent"] == 1
    finally:
        port.close()
    assert not flags(a) & IFF_PROMISC  # the membership goes with the socket


def test_send_failures_are_counted_not_raised(veth: tuple[str, str]) -> None:
    a, _b = veth
    port = Port(1, a)
    try:
        port.send(bytes(Ether() / IP() / bytes(3000)))  # above the 1500-byte MTU
        sh("ip", "link", "set", a, "down")
        port.send(bytes(Ether() / IP()))
        assert port.stats()["send_errors"] == 2 and port.stats()["sent"] == 0
    finally:
        port.close()


def test_a_full_ring_counts_kernel_drops(veth: tuple[str, str]) -> None:
    a, b = veth
    port = Port(1, a)
    try:
        frame = bytes(Ether(src="08:00:00:00:01:01", dst="08:00:00:00:01:00") / PAYLOAD)
        sent = 0
        with raw_socket(b) as sender:
            deadline = time.monotonic() + 1.0  # well over the ring's 128 ms of traffic
            while time.monotonic() < deadline:
                for _ in range(1000):
                    sender.send(frame)
                sent += 1000
        received = len(receive(port, 1))
        drops = port.stats()["kernel_drops"]
        assert received > 1000 and drops > 0
        assert received + drops <= sent
    finally:
        port.close()


def test_a_hole_in_the_ring_is_stepped_over_not_waited_on_forever(
        veth: tuple[str, str]) -> None:
    """The kernel filled slots 1 and 2 but not 0 (made here by handing slot 0 back
    before it is read, as the kernel left it under a flood): the port waits
    HOLE_NS for it, then steps over it, counts it and says so once."""
    a, b = veth
    warnings: list[str] = []
    port = Port(1, a, warn=warnings.append)
    try:
        frames = [bytes(Ether(type=0x88B5) / bytes([n]) / PAYLOAD) for n in range(3)]
        with raw_socket(b) as sender:
            for frame in frames:
                sender.send(frame)
        deadline = time.monotonic() + 3
        while not struct.unpack_from("=I", port.ring, 2 * port.slot_size)[0] & 1:
            assert time.monotonic() < deadline, "the kernel filled no third slot"
            time.sleep(0.01)
        struct.pack_into("=I", port.ring, 0, 0)  # slot 0: free, as the kernel left it
        assert port.receive_batch() == [] and port.hole_slot == 0  # waits on it...
        assert port.stats()["ring_holes"] == 0
        time.sleep(HOLE_NS / 1e9 * 2)
        assert port.receive_batch() == []  # ...steps over it once it has waited too long
        assert receive(port, 2) == frames[1:]
        assert port.stats()["ring_holes"] == 1 and port.hole_slot == -1
        assert len(warnings) == 1 and "ring holes" in warnings[0]
    finally:
        port.close()


def test_missing_interface_is_one_line() -> None:
    with pytest.raises(PortError, match="^interface 'nosuch0' does not exist$"):
        Port(1, "nosuch0")
    with pytest.raises(PortError, match="does not exist"):
        Port(1, "bad\0name")


def test_offloaded_checksums_are_flagged_once(tmp_path: Path) -> None:
    """A host stack with tx offload on leaves TCP checksums unfinished: the port
    says so once (TCP through the switch would break)."""
    ns = Namespaces(f"q{os.getpid() % 100000}")
    warnings: list[str] = []
    try:
        name = ns.add("x", ip="10.77.0.1/24")
        ns.run(name, "ethtool", "-K", "eth0", "tx", "on")
        ns.run(name, "ip", "neigh", "add", "10.77.0.2", "lladdr", "08:00:00:00:07:07",
               "dev", "eth0")
        port = Port(1, name, warn=warnings.append)
        try:
            ns.run(name, "python3", "-c", "import socket; s = socket.socket(); "
                   "s.settimeout(0.3)\ntry: s.connect(('10.77.0.2', 80))\nexcept OSError: pass")
            frames = receive(port, 1)
            assert any(TCP in Ether(f) for f in frames)
            assert port.stats()["checksum_pending"] >= 1
            assert len(warnings) == 1 and "ethtool -K" in warnings[0] and name in warnings[0]
        finally:
            port.close()
    finally:
        ns.close()


# -- data plane loop ----------------------------------------------------------------------

def test_data_plane_delivers_survives_a_failing_consumer_and_stops(
        veth: tuple[str, str], tmp_path: Path) -> None:
    a, b = veth
    port = Port(3, a)
    pcap = PcapObserver(tmp_path, {3: a})
    delivered: list[tuple[int, bytes]] = []
    warnings: list[str] = []
    arrived = threading.Event()

    def deliver(number: int, frames: list[bytes]) -> None:
        for frame in frames:
            pcap.received(number, frame)
            if frame.endswith(b"boom"):
                raise ValueError("boom")
            delivered.append((number, frame))
            if frame.endswith(b"last"):
                arrived.set()

    plane = DataPlane([port], deliver, after_round=pcap.flush, warn=warnings.append)
    plane.start()
    try:
        frames = [bytes(Ether(type=0x88B5) / struct.pack("!I", i)) for i in range(50)]
        with raw_socket(b) as sender:
            for frame in [*frames, bytes(Ether(type=0x88B5) / b"boom")]:
                sender.send(frame)
            time.sleep(0.2)  # a later batch: the failed one does not stop the loop
            sender.send(bytes(Ether(type=0x88B5) / b"last"))
        assert arrived.wait(3)
        assert [f for _n, f in delivered[:50]] == frames, (warnings, plane.stats())
        assert {n for n, _f in delivered} == {3}
        assert len(warnings) == 1 and "ValueError: boom" in warnings[0]
        time.sleep(0.3)  # flushed after the round, while the switch runs
        assert len(rdpcap(str(tmp_path / f"{a}_in.pcap"))) == 52
        stats = plane.stats()
        assert stats["dataplane"]["errors"] == 1 and stats["dataplane"]["frames"] == 52
        assert stats["port 3"]["received"] == 52
    finally:
        started = time.monotonic()
        plane.stop()
        assert time.monotonic() - started < 1  # woken by its eventfd, not a timeout
        port.close()
        pcap.close()
    assert plane._thread is not None and not plane._thread.is_alive()


def test_pcap_files_are_classic_libpcap(tmp_path: Path) -> None:
    pcap = PcapObserver(tmp_path / "new", {1: "s1-eth1", 2: "s1-eth2"})
    frame = bytes(Ether(src="08:00:00:00:01:01", dst="08:00:00:00:01:00") / PAYLOAD)
    pcap.received(1, frame)
    pcap.sent(2, frame[:20])
    pcap.sent(9, frame)  # a port without files (the CPU port): ignored
    pcap.close()
    data = (tmp_path / "new" / "s1-eth1_in.pcap").read_bytes()
    magic, major, minor, _zone, _sigfigs, snaplen, linktype = struct.unpack("=IHHiIII",
                                                                          data[:24])
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, 1) and snaplen >= 65535
    seconds, micros, caplen, length = struct.unpack("=IIII", data[24:40])
    assert abs(seconds - time.time()) < 5 and micros < 1_000_000
    assert caplen == length == len(frame) and data[40:] == frame
    assert [bytes(p) for p in rdpcap(str(tmp_path / "new" / "s1-eth2_out.pcap"))] \
        == [frame[:20]]
    assert len(rdpcap(str(tmp_path / "new" / "s1-eth2_in.pcap"))) == 0


def test_a_link_going_down_or_away_is_reported_not_spun_on(veth: tuple[str, str]) -> None:
    a, b = veth
    port = Port(1, a)
    warnings: list[str] = []
    port.warn = warnings.append
    delivered: list[bytes] = []
    plane = DataPlane([port], lambda _n, frames: delivered.extend(frames))
    plane.start()
    try:
        time.sleep(0.3)
        sh("ip", "link", "set", a, "down")
        time.sleep(0.2)
        before = plane.counters.wakeups
        time.sleep(1)
        assert plane.counters.wakeups - before < 30  # poll sleeps again (was ~400,000/s)
        assert warnings == [f"port 1 ({a}): the interface went down; frames are lost until "
                            "it is up again"]
        sh("ip", "link", "set", a, "up")
        time.sleep(0.3)
        frame = bytes(Ether(type=0x88B5) / b"after the link came back")
        with raw_socket(b) as sender:
            sender.send(frame)
        deadline = time.monotonic() + 3
        while frame not in delivered and time.monotonic() < deadline:
            time.sleep(0.02)
        assert frame in delivered
        sh("ip", "link", "del", a)
        time.sleep(0.3)
        assert "deleted" in warnings[-1] and port.stats()["link_down"] == 2
        before = plane.counters.wakeups
        time.sleep(0.5)
        assert plane.counters.wakeups - before < 20
    finally:
        plane.stop()
        port.close()


# -- bounded queueing ---------------------------------------------------------------------

OVERLOAD_SENDER = r"""
import json, socket, struct, sys, time
rate, seconds, probes, gap = float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), 0.005
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
sock.bind((sys.argv[1], 0))
head = bytes.fromhex("080000000100080000000101" "88b5")
count = int(rate * seconds)
start = time.perf_counter()
for seq in range(count):  # kind 0: the overload, paced at RATE
    sock.send(head + struct.pack("!BIQ", 0, seq, time.time_ns()) + bytes(33))
    wait = start + (seq + 1) / rate - time.perf_counter()
    if wait > 0:
        time.sleep(wait)
end = time.time_ns()
for seq in range(probes):  # kind 1: a probe every 5 ms after it
    time.sleep(gap)
    sock.send(head + struct.pack("!BIQ", 1, seq, time.time_ns()) + bytes(33))
print(json.dumps({"sent": count, "end_ns": end}))
"""


def test_a_data_plane_that_lags_at_a_low_rate_drops_nothing(veth: tuple[str, str]) -> None:
    """A pipeline stalled 30 ms on every batch (as control-plane work can stall it)
    offered 2 kpps for 2 s: every batch it takes is older than DEFAULT_MAX_DELAY_MS
    for longer than the grace, but never more than ~60 frames wait, far from a ring
    filled by too much traffic, so it is lagging, not overloaded: nothing dropped,
    every frame handed over once, in order."""
    a, b = veth
    port = Port(1, a)
    seqs: list[int] = []
    oldest_ns = [0]

    def stalling_pipeline(_number: int, frames: list[bytes]) -> None:
        now = time.time_ns()
        for frame in frames:
            if frame[12:14] == b"\x88\xb5" and frame[14] == 0:
                seq, sent = struct.unpack_from("!IQ", frame, 15)
                seqs.append(seq)
                oldest_ns[0] = max(oldest_ns[0], now - sent)
        time.sleep(0.03)

    plane = DataPlane([port], stalling_pipeline)
    plane.start()
    try:
        sender = subprocess.run([sys.executable, "-c", OVERLOAD_SENDER, b, "2000", "2", "0"],
                                capture_output=True, text=True, check=True, timeout=60)
        report = json.loads(sender.stdout)
        time.sleep(0.5)
    finally:
        plane.stop()
        stats = port.stats()
        port.close()
    assert oldest_ns[0] > DEFAULT_MAX_DELAY_MS * 1e6  # it did lag behind the bound
    assert stats["overload_drops"] == stats["kernel_drops"] == 0, stats
    assert seqs == list(range(report["sent"]))


def test_a_data_plane_behind_drops_at_ingress_and_recovers_within_100_ms(
        veth: tuple[str, str]) -> None:
    """A pipeline taking 50 µs a frame (20 kpps) offered 60 kpps for 2 s: without a
    bound its ring would fill with 16,384 frames (0.8 s of work) and the kernel would
    drop the rest at the port.  With it, once the
    grace is over, no frame is handed over after waiting much more than
    DEFAULT_MAX_DELAY_MS, the rest are counted as overload drops (said once), and a
    probe sent 100 ms after the overload comes out at once."""
    a, b = veth
    warnings: list[str] = []
    port = Port(1, a, warn=warnings.append)
    waited: list[tuple[int, int, int]] = []  # (kind, seq, ns from send to hand-over)
    foreign: list[bytes] = []  # whatever else the kernel put on the veth

    def slow_pipeline(_number: int, frames: list[bytes]) -> None:
        for frame in frames:
            if frame[12:14] != b"\x88\xb5":
                foreign.append(frame)
                continue
            kind, seq, sent = struct.unpack_from("!BIQ", frame, 14)
            waited.append((kind, seq, time.time_ns() - sent))
            busy_until = time.perf_counter() + 50e-6
            while time.perf_counter() < busy_until:
                pass

    delivered_to_a = Path(f"/sys/class/net/{b}/statistics/tx_packets")
    before = int(delivered_to_a.read_text())
    plane = DataPlane([port], slow_pipeline)
    plane.start()
    try:
        sender = subprocess.run([sys.executable, "-c", OVERLOAD_SENDER, b, "60000", "2", "60"],
                                capture_output=True, text=True, check=True, timeout=60)
        report = json.loads(sender.stdout)
        time.sleep(0.5)
    finally:
        plane.stop()
        stats = port.stats()
        port.close()
    on_the_veth = int(delivered_to_a.read_text()) - before
    overload = [(seq, ns) for kind, seq, ns in waited if kind == 0]
    probes = {seq: ns for kind, seq, ns in waited if kind == 1}
    bound_ns = DEFAULT_MAX_DELAY_MS * 1e6
    batch_ns = BATCH_LIMIT * 50e3  # the cut-off is taken once per batch
    assert stats["overload_drops"] > 10_000  # ~40 kpps too many for 2 s
    # every frame is counted once: handed over (the overload's, the 60 probes, foreign
    # frames), dropped at ingress or dropped by the full ring (during the grace); the
    # veth drops some before the ring
    assert len({seq for seq, _ns in overload}) == len(overload) <= report["sent"]
    assert len(waited) + len(foreign) + stats["overload_drops"] + stats["kernel_drops"] \
        <= on_the_veth, (on_the_veth, report, stats, len(waited), len(foreign))
    tolerance = 50e6  # for a busy machine
    assert max(ns for _seq, ns in overload) < bound_ns + BEHIND_GRACE_MS * 1e6 + tolerance
    second_half = [ns for seq, ns in overload if seq >= report["sent"] // 2]
    # the kernel may hold a few frames before the ring (its per-CPU backlog waits for
    # ksoftirqd on a loaded machine: seen 100 ms), out of the switch's hands; without
    # the bound the second half would wait ~800 ms
    second_half.sort()
    assert second_half and second_half[len(second_half) * 99 // 100] < \
        bound_ns + batch_ns + tolerance and second_half[-1] < 250e6, second_half[-20:]
    # the first probes meet the overload's last 20 ms and may be dropped with it (on a
    # loaded machine); from 100 ms on every one is forwarded
    assert set(range(20, 60)) <= set(probes), probes
    # probe k left 5 ms x (k + 1) after the overload's end; from 100 ms on, at once
    assert all(probes[seq] < 10e6 for seq in range(20, 60)), probes
    said = [w for w in warnings if "ring holes" not in w]  # see Port._skip_hole
    assert len(said) == 1 and "overload drops" in said[0], warnings
