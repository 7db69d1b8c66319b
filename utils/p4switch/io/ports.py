"""Switch ports on Linux interfaces: AF_PACKET sockets with a TPACKET_V3 RX ring.

(Traffic generators such as trafgen send in bursts well above their average
rate; the ring is sized to absorb them.)

Receiving one frame per ``recv`` syscall loses packets under load in Python,
so each port maps a TPACKET_V3 ring: the kernel fills blocks of frames and the
data-plane thread walks them with ``struct``, one poll per batch.  The kernel
moves a received 802.1Q tag into the frame's metadata; it is put back, as
libpcap does for BMv2, so the pipeline sees frames as they were on the wire.
Frames are sent with ``send`` on a second socket that bypasses the qdisc.

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

SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_RX_RING = 5
PACKET_VERSION = 10
PACKET_QDISC_BYPASS = 20
PACKET_IGNORE_OUTGOING = 23
TPACKET_V3 = 2
ETH_P_ALL = 0x0003

TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6

# Many small blocks: the kernel hands a block over when it is full or 1 ms old,
# so at moderate rates blocks go out part-filled and the number of blocks, not
# their size, bounds how long a burst the ring absorbs (512 blocks: >= 0.5 s).
BLOCK_SIZE = 1 << 16   # 64 KiB blocks: frames up to ~64 KiB are never truncated
BLOCK_COUNT = 512      # 32 MiB ring per port
FRAME_SIZE = 1 << 14
RETIRE_TIMEOUT_MS = 1

# struct tpacket_block_desc / tpacket_hdr_v1 (offsets into a block)
BLOCK_STATUS = struct.Struct("=I")       # at 8
BLOCK_HEADER = struct.Struct("=III")     # num_pkts, offset_to_first_pkt, blk_len at 12
# struct tpacket3_hdr: next_offset, sec, nsec, snaplen, len, status, mac, net, rxhash,
# vlan_tci, vlan_tpid
PACKET_HEADER = struct.Struct("=IIIIIIHHIIH")


class PortError(OSError):
    """A port cannot be opened: one line naming the interface and the cause."""


def interface_index(name: str) -> int:
    try:
        return socket.if_nametoindex(name)
    except OSError:
        raise PortError(f"interface '{name}' does not exist") from None


class Port:
    """One switch port: an RX ring socket and a TX socket on an interface."""

    def __init__(self, number: int, name: str) -> None:
        self.number = number
        self.name = name
        self.ifindex = interface_index(name)
        self.rx = self._open_rx()
        self.tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        with contextlib.suppress(OSError):  # an optimisation only
            self.tx.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
        self.tx.bind((name, 0))
        self.block = 0
        self.received = 0
        self.sent = 0
        self.send_errors = 0

    def _open_rx(self) -> socket.socket:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
            request = struct.pack("=IIIIIII", BLOCK_SIZE, BLOCK_COUNT, FRAME_SIZE,
                                  BLOCK_SIZE * BLOCK_COUNT // FRAME_SIZE, RETIRE_TIMEOUT_MS,
                                  0, 0)
            sock.setsockopt(SOL_PACKET, PACKET_RX_RING, request)
            self.ring = mmap.mmap(sock.fileno(), BLOCK_SIZE * BLOCK_COUNT,
                                  mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)  # Linux >= 4.20
            membership = struct.pack("=iHH8s", self.ifindex, PACKET_MR_PROMISC, 0, b"")
            sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, membership)
            sock.bind((self.name, ETH_P_ALL))
        except OSError as exc:
            sock.close()
            raise PortError(f"cannot open interface '{self.name}': {exc.strerror or exc}") \
                from None
        return sock

    def fileno(self) -> int:
        return self.rx.fileno()

    def receive_batch(self) -> list[bytes]:
        """Every frame waiting in the ring, oldest first (non-blocking)."""
        ring = self.ring
        frames: list[bytes] = []
        unpack_packet = PACKET_HEADER.unpack_from
        while True:
            base = self.block * BLOCK_SIZE
            (status,) = BLOCK_STATUS.unpack_from(ring, base + 8)
            if not status & TP_STATUS_USER:
                break
            count, offset, _length = BLOCK_HEADER.unpack_from(ring, base + 12)
            position = base + offset
            for _ in range(count):
                (next_offset, _sec, _nsec, snaplen, _len, pkt_status, mac, _net, _hash,
                 tci, tpid) = unpack_packet(ring, position)
                start = position + mac
                frame = ring[start:start + snaplen]
                if pkt_status & TP_STATUS_VLAN_VALID:
                    tag_type = tpid if pkt_status & TP_STATUS_VLAN_TPID_VALID and tpid \
                        else 0x8100
                    frame = frame[:12] + struct.pack("!HH", tag_type, tci & 0xFFFF) + \
                        frame[12:]
                frames.append(frame)
                position += next_offset
            BLOCK_STATUS.pack_into(ring, base + 8, TP_STATUS_KERNEL)
            self.block = (self.block + 1) % BLOCK_COUNT
        self.received += len(frames)
        return frames

    def send(self, frame: bytes) -> None:
        # One send() per frame: measured faster from Python than filling a
        # PACKET_TX_RING slot by slot and flushing it.
        try:
            self.tx.send(frame)
            self.sent += 1
        except OSError:
            self.send_errors += 1  # e.g. the peer interface went down; BMv2 drops too

    def close(self) -> None:
        for closer in (self.ring.close, self.rx.close, self.tx.close):
            with contextlib.suppress(OSError, ValueError, BufferError):
                closer()


class DataPlane:
    """Polls every port and hands each batch of received frames to
    ``deliver(port_number, frames)``."""

    def __init__(self, ports: list[Port],
                 deliver: Callable[[int, list[bytes]], object]) -> None:
        self.ports = list(ports)
        self.deliver = deliver
        self._wake_r, self._wake_w = os.pipe()
        self._stop = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="dataplane", daemon=True)
        self._thread.start()

    def run(self) -> None:
        poller = select.poll()
        for port in self.ports:
            poller.register(port.fileno(), select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        deliver = self.deliver
        ports = self.ports
        while not self._stop:
            poller.poll(100)
            busy = True
            while busy:  # drain every ring before sleeping again
                busy = False
                for port in ports:
                    frames = port.receive_batch()
                    if frames:
                        busy = True
                        deliver(port.number, frames)

    def stop(self) -> None:
        self._stop = True
        os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(timeout=5)
        os.close(self._wake_r)
        os.close(self._wake_w)
