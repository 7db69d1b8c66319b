"""Steady, real-shaped traffic to the virtual address, and receivers that count it.

``send`` paces TCP segments from h1 to 10.0.0.1 over N flows (source ports
``--first-sport`` ..): the IPv4 identification, the TCP sequence number and the
payload change on every packet, as real TCP does; the payload names the flow
and a global sequence number, so a receiver tells exactly which packets came.
``receive`` counts, per flow, the sequence numbers that reached its host.

Raw AF_PACKET sockets (scapy builds one template per flow; per packet only
the varying fields and the checksums are patched): scapy's ``sendp`` manages
about 2,000 packets/s, this ~100,000.

    python -m live.traffic send --iface eth0 --flows 1000 --rate 20000 --seconds 10 [--seed 1]
    python -m live.traffic receive --iface eth0      # JSON summary on SIGTERM / SIGINT
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import socket
import struct
import sys
import time
from array import array
from collections.abc import Iterator

MAGIC = b"LBv1"
PAYLOAD = struct.Struct("!4sHI")  # magic, source port, sequence number
H1_MAC, GATEWAY_MAC = "08:00:00:00:01:01", "08:00:00:00:01:00"
H1, VIP, DPORT = "10.0.1.1", "10.0.0.1", 1234
ETH, IPV4 = 14, 20
ETH_P_ALL = 0x0003


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(array("H", data))  # native order: byte-swap once at the end
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    value = ~total & 0xFFFF
    return socket.htons(value) if sys.byteorder == "little" else value


class Segments:
    """h1's TCP segments to the virtual address, one template per flow."""

    def __init__(self, sports: list[int], src_mac: str = H1_MAC,
                 dst_mac: str = GATEWAY_MAC, src: str = H1, dst: str = VIP,
                 dport: int = DPORT, pad: int = 0, tail: bytes = b"") -> None:
        self.sports = sports
        self.ether = bytes.fromhex(dst_mac.replace(":", "")) + \
            bytes.fromhex(src_mac.replace(":", "")) + b"\x08\x00"
        self.src, self.dst = socket.inet_aton(src), socket.inet_aton(dst)
        self.dport = dport
        self.pad = tail + b"\0" * pad  # after the flow's tag: a message, then padding
        self.length = IPV4 + 20 + PAYLOAD.size + len(self.pad)

    def frame(self, sport: int, seq: int) -> bytes:
        """One segment: IPv4 id and TCP seq from ``seq``; correct checksums."""
        payload = PAYLOAD.pack(MAGIC, sport, seq) + self.pad
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, self.length, seq & 0xFFFF, 0, 64, 6, 0,
                         self.src, self.dst)
        ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
        tcp = struct.pack("!HHIIBBHHH", sport, self.dport, seq, 0, 5 << 4, 0x18, 8192, 0, 0)
        pseudo = self.src + self.dst + struct.pack("!BBH", 0, 6, len(tcp) + len(payload))
        tcp = tcp[:16] + struct.pack("!H", _checksum(pseudo + tcp + payload)) + tcp[18:]
        return self.ether + ip + tcp + payload

    def stream(self) -> Iterator[tuple[int, bytes]]:
        """(sport, frame) round-robin over the flows, forever."""
        seq = 0
        while True:
            for sport in self.sports:
                yield sport, self.frame(sport, seq)
                seq += 1


def open_socket(iface: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((iface, 0))
    return sock


def send(iface: str, segments: Segments, rate: float, seconds: float,
         quiet: bool = False) -> dict:
    """Paced sending in 1 ms slots; returns what was sent (and how late it ran).
    Prints "sending" on stderr once it starts, unless ``quiet``."""
    sock = open_socket(iface)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    stream = segments.stream()
    sent = errors = 0
    if not quiet:
        print("sending", file=sys.stderr, flush=True)
    start = time.monotonic()
    end = start + seconds
    while True:
        now = time.monotonic()
        if now >= end:
            break
        due = int((now - start) * rate) + 1
        while sent + errors < due:
            _sport, frame = next(stream)
            try:
                sock.send(frame)
                sent += 1
            except BlockingIOError:
                errors += 1
        time.sleep(max(0.0, start + (sent + errors) / rate - time.monotonic()))
    sock.close()
    elapsed = time.monotonic() - start
    return {"sent": sent, "send_errors": errors, "seconds": elapsed,
            "rate": sent / elapsed if elapsed else 0.0, "sports": segments.sports}


class Receiver:
    """Counts the segments of ``send`` that arrive, per flow."""

    def __init__(self) -> None:
        self.seqs: dict[int, list[int]] = {}
        self.other = 0

    def take(self, frame: bytes) -> None:
        """Record one frame (an egress copy of our own sends is not seen on a veth's
        receive side; anything that is not ours counts as 'other')."""
        if len(frame) < ETH + IPV4 + 20 + PAYLOAD.size or frame[12:14] != b"\x08\x00":
            self.other += 1
            return
        ihl = (frame[ETH] & 0x0F) * 4
        tcp = ETH + ihl
        offset = tcp + (frame[tcp + 12] >> 4) * 4
        try:
            magic, sport, seq = PAYLOAD.unpack_from(frame, offset)
        except struct.error:
            self.other += 1
            return
        if magic != MAGIC:
            self.other += 1
            return
        self.seqs.setdefault(sport, []).append(seq)

    def summary(self) -> dict:
        return {"received": sum(len(s) for s in self.seqs.values()), "other": self.other,
                "flows": {str(sport): seqs for sport, seqs in self.seqs.items()}}


def receive(iface: str, stop_after: float | None = None) -> dict:
    """Receive until SIGTERM/SIGINT (or ``stop_after`` s); the summary."""
    sock = open_socket(iface)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    sock.settimeout(0.2)
    receiver = Receiver()
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
    print("receiving", file=sys.stderr, flush=True)
    deadline = time.monotonic() + stop_after if stop_after else None
    while not stopping and (deadline is None or time.monotonic() < deadline):
        try:
            frame, address = sock.recvfrom(65535)
        except TimeoutError:
            continue
        except InterruptedError:
            continue
        if address[2] != socket.PACKET_OUTGOING:
            receiver.take(frame)
    sock.setblocking(False)
    while True:  # what is already queued
        try:
            frame, address = sock.recvfrom(65535)
        except (BlockingIOError, InterruptedError):
            break
        if address[2] != socket.PACKET_OUTGOING:
            receiver.take(frame)
    sock.close()
    return receiver.summary()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="paced real-shaped traffic and receivers")
    commands = parser.add_subparsers(dest="command", required=True)
    sender = commands.add_parser("send")
    sender.add_argument("--iface", default="eth0")
    sender.add_argument("--flows", type=int, default=1000)
    sender.add_argument("--seed", type=int, default=None,
                        help="source ports drawn at random from 1024-65535 with this seed "
                             "(default: consecutive from --first-sport)")
    sender.add_argument("--first-sport", type=int, default=10000)
    sender.add_argument("--rate", type=float, default=1000.0, help="packets/s")
    sender.add_argument("--seconds", type=float, default=5.0)
    sender.add_argument("--pad", type=int, default=0, help="extra payload bytes")
    receiver = commands.add_parser("receive")
    receiver.add_argument("--iface", default="eth0")
    receiver.add_argument("--seconds", type=float, default=None)
    args = parser.parse_args(argv)
    try:
        if args.command == "send":
            if not 0 < args.flows <= 65536 - args.first_sport or args.rate <= 0:
                parser.error("--flows must fit the port range after --first-sport, "
                             "--rate must be above 0")
            sports = (random.Random(args.seed).sample(range(1024, 65536), args.flows)
                      if args.seed is not None
                      else list(range(args.first_sport, args.first_sport + args.flows)))
            print(json.dumps(send(args.iface, Segments(sports, pad=args.pad),
                                  args.rate, args.seconds)), flush=True)
        else:
            print(json.dumps(receive(args.iface, args.seconds)), flush=True)
    except OSError as error:
        print(f"error: {args.iface}: {error.strerror or error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
