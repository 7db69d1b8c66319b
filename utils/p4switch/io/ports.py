"""Switch ports on Linux interfaces: AF_PACKET sockets with a TPACKET_V2 RX ring.

Receiving one frame per ``recv`` syscall loses packets under load in Python,
so each port maps a packet ring the kernel fills and the data-plane thread
walks with ``struct``, one poll per batch.  The kernel moves a received
802.1Q/802.1ad tag into the frame's metadata; it is put back, as libpcap does
for BMv2, so the pipeline sees frames as they were on the wire.  Frames the
switch itself sends are not received back (PACKET_IGNORE_OUTGOING, and the
ring's ``sll_pkttype`` on kernels without it).

Ring holes: under a flood that overflows the ring, the kernel (6.18 here) now
and then leaves a slot free while filling the slots after it.  A reader that
only ever waits for its next slot then waits forever: poll says readable at
once, the port receives nothing again and the kernel drops every later frame
(seen in about 1 run in 3 of the overload test before this).  So a free slot
followed by a filled one for longer than ``HOLE_NS`` (a writer fills its slot
in microseconds, unless it is preempted: then its frame is read a lap later, out
of order) is skipped and counted (``ring_holes``); while it waits, the
port is not caught up (``hole_slot``).  The kernel later fills the hole with a
frame newer than those after it, so a batch's age is that of the older of its
first and last frames.

Why TPACKET_V2 (one fixed-size slot per frame, poll woken per frame) and not
TPACKET_V3 (variable-size frames packed into blocks): V3 hands a block over
only when it is full or when its timer fires, and the timer's smallest setting
is 1 ms, so at low rates every frame waited ~0.5 ms (p50 615 us at 1 kpps).
V2 wakes the reader per frame when it sleeps, and when it is busy the frames
simply pile up and are taken in one batch: the batch size adapts to the load
by itself.  Measured side by side (bench/forwarding.py, paced sender, 2026-12-03,
2 shared cores): V2 137 kpps loss-free on repeated headers, 21 kpps on real-shaped
TCP, idle latency p50/p99 174/395 us; V3 (before) 162 / 25 kpps, 1,024/6,937 us.
V2's slots have a fixed size, so a jumbo MTU takes more memory (``ring_geometry``).

Bounded queueing: a switch that falls behind should drop at its ingress, not
hold seconds of backlog.  Every slot carries the kernel's arrival stamp; when
``DataPlane`` has been behind for a while it passes ``receive_batch`` a cut-off
time, and frames stamped before it are dropped unprocessed and counted
(``overload_drops``): the standing queue is ``max_delay_ms`` whatever a frame
costs to process, while bursts and stalls are absorbed by the ring (16,384
slots at MTU 1500); see ``DataPlane``.

Frames are sent with one ``send`` per frame on a second socket.  Measured here
(veth, 60-byte frames): ``send`` 426k pps, a TPACKET_V2 TX ring filled from
Python 160k-400k pps (batches of 1-256), so the ring is not worth its code.
The qdisc is not bypassed: PACKET_QDISC_BYPASS is ~10% faster but hides sent
frames from ``tcpdump`` on the switch's interfaces, which BMv2 users rely on.

The Python standard library has no packet-ring API and no well-kept package
wraps TPACKET_V2, hence the few struct layouts below (linux/if_packet.h).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
PACKET_IGNORE_OUTGOING = 23
TPACKET_V2 = 1
ETH_P_ALL = 0x0003
ETH_P_8021Q = 0x8100
PACKET_OUTGOING = 4  # sll_pkttype of a frame this host sent

TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
TP_STATUS_CSUMNOTREADY = 1 << 3
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6

RING_BYTES = 32 << 20  # per port: 16,384 slots of 2 KiB at MTU 1500
MIN_SLOTS = 16384      # bigger slots (jumbo MTU) take more memory, up to MAX_RING_BYTES
MAX_RING_BYTES = 256 << 20
PAGE = mmap.PAGESIZE
SLOT_OVERHEAD = 80     # the kernel puts the MAC header at 80 - 14 (TPACKET2_HDRLEN + 16)
MAX_TAGS = 8           # room for two VLAN tags above the MTU
BATCH_LIMIT = 256      # frames (or drops) per receive_batch: the cut-off stays fresh
DEFAULT_MAX_DELAY_MS = 20.0  # the queue a switch that stays behind keeps, at most
BEHIND_GRACE_MS = 500.0      # how long it may stay behind before it drops (bursts, stalls)
BEHIND_FRAMES = 1024         # ... and only with this many frames still waiting in a ring
CLOCK_SANITY_NS = 60 * 10**9  # a stamp further off than this is from another clock
HOLE_NS = 2_000_000    # a free slot before a filled one for this long is a hole: skipped

# struct tpacket2_hdr (32 bytes): tp_status, tp_len, tp_snaplen, tp_mac, tp_net,
# tp_sec, tp_nsec, tp_vlan_tci, tp_vlan_tpid, padding; then struct sockaddr_ll,
# whose sll_pkttype is at 32 + 10.
PACKET_HEADER = struct.Struct("=IIIHHIIHH4x10xB")
SLOT_STATUS = struct.Struct("=I")
STATS = struct.Struct("=II")             # struct tpacket_stats
TAG = struct.Struct("!HH")


class PortError(OSError):
    """A port cannot be opened: one line naming the interface and the cause."""


def interface_index(name: str) -> int:
    """The interface's index; PortError if there is no such interface."""
    try:
        return socket.if_nametoindex(name)
    except (OSError, ValueError):
        raise PortError(f"interface '{name}' does not exist") from None


def interface_mtu(name: str) -> int:
    """The interface's MTU (1500 if it cannot be read)."""
    try:
        return int(Path(f"/sys/class/net/{name}/mtu").read_text())
    except (OSError, ValueError):
        return 1500


def ring_geometry(mtu: int) -> tuple[int, int, int]:
    """(slot size, slot count, block size) of a ring whose slots hold a whole frame
    of ``mtu`` bytes plus Ethernet header and tags (snaplen == len): RING_BYTES, or
    MIN_SLOTS slots within MAX_RING_BYTES for a jumbo MTU (9000: 256 MiB)."""
    slot = 1 << 11
    while slot < SLOT_OVERHEAD + mtu + 14 + MAX_TAGS:
        slot *= 2
    block = max(slot, PAGE)
    ring = min(max(RING_BYTES, MIN_SLOTS * slot), MAX_RING_BYTES)
    count = max(ring // block, 8) * (block // slot)
    return slot, count, block


def _open_failed(name: str, exc: OSError) -> PortError:
    if isinstance(exc, PermissionError):
        return PortError(f"cannot open interface '{name}': {exc.strerror} "
                         "(run as root, or give python CAP_NET_RAW)")
    return PortError(f"cannot open interface '{name}': {exc.strerror or exc}")


class PortCounters:
    """What one port saw; ``kernel_drops`` are frames the full ring could not take,
    ``overload_drops`` frames dropped unprocessed because they had waited too long."""

    def __init__(self) -> None:
        self.received = 0
        self.overload_drops = 0
        self.sent = 0
        self.send_errors = 0
        self.kernel_drops = 0
        self.truncated = 0
        self.checksum_pending = 0
        self.link_down = 0
        self.ring_holes = 0

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


class Port:
    """One switch port: an RX ring socket and a TX socket on an interface.

    ``warn`` receives one-line warnings: the first cut frame and the first
    offloaded checksum, and every link going down or away.
    """

    def __init__(self, number: int, name: str,
                 warn: Callable[[str], None] | None = None) -> None:
        self.number = number
        self.name = name
        self.ifindex = interface_index(name)
        self.warn = warn
        self.counters = PortCounters()
        self.slot = 0
        self.oldest_ns = 0
        self.hole_slot, self.hole_since = -1, 0
        self.slot_size, self.slot_count, self.block_size = ring_geometry(interface_mtu(name))
        self.ring: mmap.mmap | None = None
        self.rx = self._open_rx()
        try:
            self.tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            self.tx.bind((name, 0))
        except OSError as exc:
            self._close_rx()
            raise _open_failed(name, exc) from None

    def _open_rx(self) -> socket.socket:
        try:
            # Protocol 0: nothing is received until bind() names the interface (created
            # with ETH_P_ALL, the ring would first fill with every interface's frames).
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except OSError as exc:
            raise _open_failed(self.name, exc) from None
        try:
            sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
            slot, count, block = self.slot_size, self.slot_count, self.block_size
            request = struct.pack("=IIII", block, slot * count // block, slot, count)
            sock.setsockopt(SOL_PACKET, PACKET_RX_RING, request)
            self.ring = mmap.mmap(sock.fileno(), slot * count,
                                  mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            with contextlib.suppress(OSError):  # Linux >= 4.20; sll_pkttype otherwise
                sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            membership = struct.pack("=iHH8s", self.ifindex, PACKET_MR_PROMISC, 0, b"")
            sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, membership)
            sock.bind((self.name, ETH_P_ALL))
        except OSError as exc:
            if self.ring is not None:
                self.ring.close()
            sock.close()
            raise _open_failed(self.name, exc) from None
        return sock

    def fileno(self) -> int:
        return self.rx.fileno()

    def receive_batch(self, limit: int = BATCH_LIMIT, stale_before_ns: int = 0
                      ) -> list[bytes]:
        """The frames waiting in the ring, oldest first, at most ``limit`` slots'
        worth (non-blocking).  Frames the kernel stamped before ``stale_before_ns``
        (CLOCK_REALTIME) are dropped and counted as overload drops; ``oldest_ns`` is
        the stamp of the older of the first and last slots taken (0: the ring was
        empty)."""
        ring = self.ring
        assert ring is not None
        frames: list[bytes] = []
        append = frames.append
        unpack_packet = PACKET_HEADER.unpack_from
        release = SLOT_STATUS.pack_into
        size, count, slot = self.slot_size, self.slot_count, self.slot
        stale = stamp = 0
        self.oldest_ns = 0
        for _ in range(limit):
            base = slot * size
            (status, length, snaplen, mac, _net, sec, nsec, tci, tpid,
             pkttype) = unpack_packet(ring, base)
            if not status & TP_STATUS_USER:
                break
            slot = slot + 1 if slot + 1 < count else 0
            stamp = sec * 1_000_000_000 + nsec
            if not self.oldest_ns:
                self.oldest_ns = stamp
            if stale_before_ns and 0 < stale_before_ns - stamp < CLOCK_SANITY_NS:
                stale += 1
            elif pkttype == PACKET_OUTGOING or (
                    (snaplen < length or status & TP_STATUS_CSUMNOTREADY)
                    and not self._acceptable(snaplen, length, status)):
                pass
            else:
                start = base + mac
                frame = ring[start:start + snaplen]
                if status & TP_STATUS_VLAN_VALID or tci:  # libpcap's VLAN_VALID
                    tag_type = tpid if status & TP_STATUS_VLAN_TPID_VALID or tpid \
                        else ETH_P_8021Q
                    frame = frame[:12] + TAG.pack(tag_type, tci & 0xFFFF) + frame[12:]
                append(frame)
            release(ring, base, TP_STATUS_KERNEL)
        self.slot = slot
        if 0 < self.oldest_ns - stamp < CLOCK_SANITY_NS:  # the first was a filled hole
            self.oldest_ns = stamp
        if not self.oldest_ns:
            self._skip_hole()
        self.counters.received += len(frames)
        if stale:
            self._stale(stale)
        return frames

    def waiting_at_least(self, count: int) -> bool:
        """Whether ``count`` or more frames wait in the ring from the reader's slot on:
        the slot ``count - 1`` ahead is filled (the kernel fills slots in order; a ring
        hole makes the answer one slot off, no more)."""
        ahead = (self.slot + count - 1) % self.slot_count
        return bool(SLOT_STATUS.unpack_from(self.ring, ahead * self.slot_size)[0]
                    & TP_STATUS_USER)

    def _skip_hole(self) -> None:
        """The reader's slot is free: if the next one is filled and has been since
        ``HOLE_NS`` ago, the kernel will never fill this one; step over it."""
        ring, slot = self.ring, self.slot
        following = slot + 1 if slot + 1 < self.slot_count else 0
        if not SLOT_STATUS.unpack_from(ring, following * self.slot_size)[0] & TP_STATUS_USER:
            self.hole_slot = -1
            return
        now = time.monotonic_ns()
        if self.hole_slot != slot:
            self.hole_slot, self.hole_since = slot, now
        elif now - self.hole_since > HOLE_NS:
            self.slot, self.hole_slot = following, -1
            self.counters.ring_holes += 1
            if self.counters.ring_holes == 1:
                self._warn("a ring slot stayed free while later ones were filled (the "
                           "kernel skipped it or its writer stalled); stepped over it "
                           "(counted as ring holes)")

    def _stale(self, count: int) -> None:
        """Count frames dropped for their age; say so at the first."""
        counters = self.counters
        if not counters.overload_drops:
            self._warn("the switch is behind: frames that waited longer than the bound "
                       "are dropped at ingress (counted as overload drops)")
        counters.overload_drops += count

    def _acceptable(self, snaplen: int, length: int, status: int) -> bool:
        """Count a frame the kernel cut short (dropped) or whose checksum a
        local sender left to offloading (kept, with a hint)."""
        counters = self.counters
        if snaplen < length:
            counters.truncated += 1
            if counters.truncated == 1:
                self._warn(f"dropped a {length}-byte frame the ring cut to {snaplen} "
                           "bytes (was the MTU raised after the switch started? restart "
                           "it; is GRO on? 'ethtool -K IFACE gro off')")
            return False
        counters.checksum_pending += 1
        if counters.checksum_pending == 1:
            self._warn("frames arrive with their checksum left to offloading; "
                       "turn offloads off on the sending host ('ethtool -K IFACE tx off "
                       "rx off sg off') or TCP through the switch breaks")
        return True

    def _warn(self, message: str) -> None:
        if self.warn is not None:
            self.warn(f"port {self.number} ({self.name}): {message}")

    def link_event(self) -> None:
        """The kernel flagged the RX socket (interface down or deleted): read the
        error so poll stops reporting it, count it and say so."""
        with contextlib.suppress(OSError):
            self.rx.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        self.counters.link_down += 1
        try:
            socket.if_nametoindex(self.name)
        except OSError:
            self._warn("the interface was deleted; the port receives nothing from now on")
        else:
            self._warn("the interface went down; frames are lost until it is up again")

    def send(self, frame: bytes) -> None:
        """Transmit ``frame``; failures (interface down, frame above the MTU,
        full queue) are counted and the frame dropped, as BMv2 does."""
        try:
            self.tx.send(frame)
            self.counters.sent += 1
        except OSError:
            self.counters.send_errors += 1

    def read_kernel_drops(self) -> int:
        """Fold the kernel's ring counters (reset on each read) into ours."""
        with contextlib.suppress(OSError, ValueError):
            _packets, drops = STATS.unpack(
                self.rx.getsockopt(SOL_PACKET, PACKET_STATISTICS, STATS.size))
            self.counters.kernel_drops += drops
        return self.counters.kernel_drops

    def stats(self) -> dict[str, int]:
        """Counters of this port (see PortCounters)."""
        self.read_kernel_drops()
        return self.counters.as_dict()

    # Read by existing callers; kept as views of the counters.
    @property
    def received(self) -> int:
        return self.counters.received

    @property
    def sent(self) -> int:
        return self.counters.sent

    @property
    def send_errors(self) -> int:
        return self.counters.send_errors

    def _close_rx(self) -> None:
        if self.ring is not None:
            with contextlib.suppress(OSError, ValueError, BufferError):
                self.ring.close()
        with contextlib.suppress(OSError):
            self.rx.close()

    def close(self) -> None:
        """Release the ring and both sockets (idempotent)."""
        self._close_rx()
        with contextlib.suppress(OSError):
            self.tx.close()


class DataPlaneCounters:
    """What the polling thread did."""

    def __init__(self) -> None:
        self.wakeups = 0
        self.batches = 0
        self.frames = 0
        self.largest_batch = 0
        self.errors = 0

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


class DataPlane:
    """One thread polling every port's ring; hands each batch of received
    frames to ``deliver(port_number, frames)``.

    ``after_round`` runs after each pass over the ports and at least every
    ``idle_ms`` (pcap flushing).  An exception raised by ``deliver`` is counted
    and reported once through ``warn``; the thread keeps forwarding.

    Bounded queueing, CoDel's idea cut down: the thread is *behind* while the
    oldest frame of each batch it takes has waited more than ``max_delay_ms`` and
    ``BEHIND_FRAMES`` more wait in the ring (more traffic than it forwards fills the
    ring; a data plane slowed by control-plane work at a low rate only lags, and
    dropping there lost 10,000 of 330,000 frames in the 60 s soak).
    Behind for longer than ``grace_ms`` (not a stall it catches up from, but
    more traffic than it can forward), it drops, unprocessed, every frame that
    has waited more than ``max_delay_ms`` (the port's ``overload_drops``), and
    goes on dropping until its rings are empty; behind again within twice the
    grace after that (the overload goes on: the sender paused, or the kernel left
    a ring hole), it drops again at once (CoDel re-enters its dropping state
    the same way).  So a sustained overload keeps
    a queue of ``max_delay_ms``, gone that long after the overload ends, while
    a burst or a stall shorter than the grace loses nothing (up to the ring's
    16,384 frames).  ``max_delay_ms`` 0 keeps every frame.
    """

    def __init__(self, ports: list[Port],
                 deliver: Callable[[int, list[bytes]], object],
                 after_round: Callable[[], object] | None = None,
                 warn: Callable[[str], None] | None = None, idle_ms: int = 100,
                 max_delay_ms: float = DEFAULT_MAX_DELAY_MS,
                 grace_ms: float = BEHIND_GRACE_MS) -> None:
        self.ports = list(ports)
        self.deliver = deliver
        self.after_round = after_round
        self.warn = warn
        self.idle_ms = idle_ms
        self.max_delay_ns = int(max_delay_ms * 1_000_000)
        self.grace_ns = int(grace_ms * 1_000_000)
        self.counters = DataPlaneCounters()
        self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="dataplane", daemon=True)
        self._thread.start()

    def run(self) -> None:
        """The polling loop (the thread's body); returns after ``stop()``."""
        poller = select.poll()
        by_fd = {port.fileno(): port for port in self.ports}
        for fd in by_fd:
            poller.register(fd, select.POLLIN)
        poller.register(self._wake, select.POLLIN)
        counters = self.counters
        failed = select.POLLERR | select.POLLHUP | select.POLLNVAL
        max_delay, clock = self.max_delay_ns, time.time_ns
        behind_since, dropping, stopped_dropping = 0, False, -self.grace_ns * 2
        while not self._stop.is_set():
            for fd, events in poller.poll(self.idle_ms):
                if events & failed and fd in by_fd:  # else poll would spin on it
                    if events & select.POLLNVAL:
                        poller.unregister(fd)
                    else:
                        by_fd[fd].link_event()
            counters.wakeups += 1
            busy = True
            while busy and not self._stop.is_set():  # drain every ring before sleeping
                busy = False
                for port in self.ports:
                    now = clock()
                    frames = port.receive_batch(BATCH_LIMIT, now - max_delay if dropping else 0)
                    if not port.oldest_ns:
                        busy = busy or port.hole_slot >= 0  # frames wait behind a hole
                        continue
                    busy = True
                    if max_delay and not dropping:
                        if 0 < now - port.oldest_ns - max_delay < CLOCK_SANITY_NS \
                                and port.waiting_at_least(BEHIND_FRAMES):
                            behind_since = behind_since or now
                            # behind for the grace, or again soon after dropping
                            dropping = now - behind_since > self.grace_ns \
                                or now - stopped_dropping < 2 * self.grace_ns
                        else:
                            behind_since = 0
                    if frames:
                        self._deliver(port.number, frames)
                self._after_round()
            if dropping:
                stopped_dropping = clock()
            behind_since, dropping = 0, False  # caught up: every ring is empty

    def _deliver(self, number: int, frames: list[bytes]) -> None:
        counters = self.counters
        counters.batches += 1
        counters.frames += len(frames)
        if len(frames) > counters.largest_batch:
            counters.largest_batch = len(frames)
        try:
            self.deliver(number, frames)
        except Exception as exc:  # keep forwarding; the cause is reported once
            self._failed(f"a batch of {len(frames)} frame(s) from port {number} was lost: "
                         f"{type(exc).__name__}: {exc}")

    def _after_round(self) -> None:
        if self.after_round is None:
            return
        try:
            self.after_round()
        except Exception as exc:  # e.g. the pcap disk is full: forwarding goes on
            self._failed(f"{type(exc).__name__}: {exc}")

    def _failed(self, message: str) -> None:
        self.counters.errors += 1
        if self.counters.errors == 1 and self.warn is not None:
            self.warn(f"data plane: {message} (further errors only counted)")

    def stats(self) -> dict[str, dict[str, int]]:
        """Counters of the loop and of every port, by port number."""
        result = {"dataplane": self.counters.as_dict()}
        for port in self.ports:
            result[f"port {port.number}"] = port.stats()
        return result

    def stop(self) -> None:
        """Wake the thread, wait for it, release the wake-up fd (idempotent)."""
        if self._wake < 0:
            return
        self._stop.set()
        os.eventfd_write(self._wake, 1)
        if self._thread is not None:
            self._thread.join(timeout=5)
        os.close(self._wake)
        self._wake = -1
