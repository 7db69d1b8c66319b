"""Switch ports on Linux interfaces: AF_PACKET sockets with a TPACKET_V3 RX ring.

Receiving one frame per ``recv`` syscall loses packets under load in Python,
so each port maps a TPACKET_V3 ring: the kernel fills blocks of frames and the
data-plane thread walks them with ``struct``, one poll per batch.  The kernel
moves a received 802.1Q/802.1ad tag into the frame's metadata; it is put back,
as libpcap does for BMv2, so the pipeline sees frames as they were on the wire.
Frames the switch itself sends are not received back (PACKET_IGNORE_OUTGOING,
and the ring's ``sll_pkttype`` on kernels without it).

Frames are sent with one ``send`` per frame on a second socket.  Measured here
(veth, 60-byte frames): ``send`` 426k pps, a TPACKET_V2 TX ring filled from
Python 160k-400k pps (batches of 1-256), so the ring is not worth its code.
The qdisc is not bypassed: PACKET_QDISC_BYPASS is ~10% faster but hides sent
frames from ``tcpdump`` on the switch's interfaces, which BMv2 users rely on.

The Python standard library has no packet-ring API and no well-kept package
wraps TPACKET_V3, hence the few struct layouts below (linux/if_packet.h).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import select
import socket
import struct
import threading
from collections.abc import Callable
from pathlib import Path

SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
PACKET_IGNORE_OUTGOING = 23
TPACKET_V3 = 2
ETH_P_ALL = 0x0003
ETH_P_8021Q = 0x8100
PACKET_OUTGOING = 4  # sll_pkttype of a frame this host sent

TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
TP_STATUS_CSUMNOTREADY = 1 << 3
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6

# The kernel retires a block when it is full or RETIRE_TIMEOUT_MS after its
# first frame, so at moderate rates a lagging reader is buffered "block count"
# timeouts of traffic whatever the block size: many small blocks absorb a burst,
# few big ones do not (a 60k-frame burst: kept whole by 128 x 128 KiB, 16% of it
# by 16 x 1 MiB; trafgen's bursts: loss-free up to 200 kpps with 512 x 64 KiB,
# 125-175 kpps with 256 x 128 KiB).  So blocks are 64 KiB unless the interface's
# MTU needs bigger ones: a frame must fit a block whole (snaplen == len).
RING_BYTES = 32 << 20  # per port
MIN_BLOCK = 1 << 16
BLOCK_OVERHEAD = 48 + 96  # block descriptor; tpacket3_hdr + sockaddr_ll, aligned
MAX_TAGS = 8           # room for two VLAN tags above the MTU
FRAME_SIZE = 1 << 14   # V3 ignores it for packing, but the kernel checks the geometry
RETIRE_TIMEOUT_MS = 1  # hand a partly filled block over after 1 ms (the added latency)

# struct tpacket_block_desc / tpacket_hdr_v1 (offsets into a block)
BLOCK_STATUS = struct.Struct("=I")       # at 8
BLOCK_HEADER = struct.Struct("=II")      # num_pkts, offset_to_first_pkt at 12
# struct tpacket3_hdr (48 bytes): next_offset, sec, nsec, snaplen, len, status, mac,
# net, rxhash, vlan_tci, vlan_tpid, padding; then struct sockaddr_ll, whose
# sll_pkttype is at 48 + 10.
PACKET_HEADER = struct.Struct("=IIIIIIHHIIH16xB")
STATS = struct.Struct("=III")            # struct tpacket_stats_v3
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


def ring_geometry(mtu: int) -> tuple[int, int]:
    """(block size, block count) of a RING_BYTES ring whose blocks hold a whole
    frame of ``mtu`` bytes plus Ethernet header and tags."""
    block = MIN_BLOCK
    while block - BLOCK_OVERHEAD < mtu + 14 + MAX_TAGS:
        block *= 2
    return block, max(RING_BYTES // block, 8)


def _open_failed(name: str, exc: OSError) -> PortError:
    if isinstance(exc, PermissionError):
        return PortError(f"cannot open interface '{name}': {exc.strerror} "
                         "(run as root, or give python CAP_NET_RAW)")
    return PortError(f"cannot open interface '{name}': {exc.strerror or exc}")


class PortCounters:
    """What one port saw; ``kernel_drops`` are frames the full ring could not take."""

    def __init__(self) -> None:
        self.received = 0
        self.sent = 0
        self.send_errors = 0
        self.kernel_drops = 0
        self.truncated = 0
        self.checksum_pending = 0
        self.link_down = 0

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
        self.block = 0
        self.block_size, self.block_count = ring_geometry(interface_mtu(name))
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
            sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
            size, count = self.block_size, self.block_count
            request = struct.pack("=IIIIIII", size, count, FRAME_SIZE,
                                  size * count // FRAME_SIZE, RETIRE_TIMEOUT_MS, 0, 0)
            sock.setsockopt(SOL_PACKET, PACKET_RX_RING, request)
            self.ring = mmap.mmap(sock.fileno(), size * count,
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

    def receive_batch(self) -> list[bytes]:
        """Every frame waiting in the ring, oldest first (non-blocking)."""
        ring = self.ring
        assert ring is not None
        frames: list[bytes] = []
        append = frames.append
        unpack_packet = PACKET_HEADER.unpack_from
        while True:
            base = self.block * self.block_size
            (status,) = BLOCK_STATUS.unpack_from(ring, base + 8)
            if not status & TP_STATUS_USER:
                break
            count, offset = BLOCK_HEADER.unpack_from(ring, base + 12)
            position = base + offset
            for _ in range(count):
                (next_offset, _sec, _nsec, snaplen, length, pkt_status, mac, _net, _hash,
                 tci, tpid, pkttype) = unpack_packet(ring, position)
                start = position + mac
                position += next_offset
                if pkttype == PACKET_OUTGOING:
                    continue
                if (snaplen < length or pkt_status & TP_STATUS_CSUMNOTREADY) \
                        and not self._acceptable(snaplen, length, pkt_status):
                    continue
                frame = ring[start:start + snaplen]
                if pkt_status & TP_STATUS_VLAN_VALID or tci:  # libpcap's VLAN_VALID
                    tag_type = tpid if pkt_status & TP_STATUS_VLAN_TPID_VALID or tpid \
                        else ETH_P_8021Q
                    frame = frame[:12] + TAG.pack(tag_type, tci & 0xFFFF) + frame[12:]
                append(frame)
            BLOCK_STATUS.pack_into(ring, base + 8, TP_STATUS_KERNEL)
            self.block = (self.block + 1) % self.block_count
        self.counters.received += len(frames)
        return frames

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
            _packets, drops, _frozen = STATS.unpack(
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
    """

    def __init__(self, ports: list[Port],
                 deliver: Callable[[int, list[bytes]], object],
                 after_round: Callable[[], object] | None = None,
                 warn: Callable[[str], None] | None = None, idle_ms: int = 100) -> None:
        self.ports = list(ports)
        self.deliver = deliver
        self.after_round = after_round
        self.warn = warn
        self.idle_ms = idle_ms
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
                    frames = port.receive_batch()
                    if frames:
                        busy = True
                        self._deliver(port.number, frames)
                self._after_round()

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
