"""A paced sender of 64-byte TCP frames (60 without the FCS) of 1,024 flows.

trafgen 0.6.8's ``-b RATE`` does not pace on these machines: the frames of a run
leave as one line-rate burst and trafgen then sleeps out the rest of the time
(measured: 16,000 frames at ``-b 25000pps`` reached the receiver within 41 ms,
1,000 at ``-b 1000pps`` within 1.5 ms), so a "loss-free rate" measured with it is
the depth of the switch's buffer, not its rate.  ``-t GAP`` paces but tops out near
116 kpps (its sendto path).  This sender keeps to the rate within a sleep's
granularity (frames due are sent at once, then it sleeps until the next is due:
bursts of ~0.1 ms of traffic), from a buffer built with numpy beforehand:

- ``repeated``: 1,024 frames (source ports 10000-11023), sent in turn;
- ``real``: no two frames alike: IPv4 identification and TCP sequence number grow
  per frame, the 6 payload bytes are random, both checksums right.

Run inside the sender's namespace; prints one JSON line: frames sent, send errors,
CLOCK_MONOTONIC start and end in ns.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time

import numpy as np

FRAME = 60
FLOWS = 1024
ETHER = bytes.fromhex("ffffffffffff" "080000000101" "0800")
IPV4 = bytes.fromhex("4500002e" "00000000" "4006" "0000" "0a000101" "0a000001")
TCP = bytes.fromhex("0000" "04d2" "00000000" "00000000" "5018" "2000" "0000" "0000")


def fold(total: np.ndarray) -> np.ndarray:
    """One's-complement checksum of 32-bit word sums."""
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return (~total & 0xFFFF).astype(np.uint16)


def frames(kind: str, count: int, seed: int = 1) -> bytes:
    """``count`` frames of ``kind`` (``repeated`` or ``real``), back to back."""
    rows = count if kind == "real" else min(count, FLOWS)
    index = np.arange(rows, dtype=np.uint64)
    data = np.zeros((rows, FRAME), dtype=np.uint8)
    data[:, :14] = np.frombuffer(ETHER, np.uint8)
    data[:, 14:34] = np.frombuffer(IPV4, np.uint8)
    data[:, 34:54] = np.frombuffer(TCP, np.uint8)
    words = data.view(">u2")  # 30 big-endian 16-bit words per frame
    words[:, 17] = 10000 + index % FLOWS  # TCP source port
    if kind == "real":
        words[:, 9] = index & 0xFFFF  # IPv4 identification
        words[:, 19] = (index >> 16) & 0xFFFF  # TCP sequence number
        words[:, 20] = index & 0xFFFF
        data[:, 54:] = np.random.default_rng(seed).integers(0, 256, (rows, 6), np.uint8)
    words[:, 12] = fold(words[:, 7:17].astype(np.uint32).sum(axis=1))  # IPv4 checksum
    pseudo = 0x0A00 + 0x0101 + 0x0A00 + 0x0001 + 6 + 26
    words[:, 25] = fold(words[:, 17:30].astype(np.uint32).sum(axis=1) + pseudo)
    block = data.tobytes()
    if rows < count:
        block = block * (count // rows) + block[:count % rows * FRAME]
    return block


def send_paced(iface: str, block: bytes, rate: float, seconds: float | None = None) -> dict:
    """Send the frames of ``block`` out of ``iface`` at ``rate`` frames per second, for
    at most ``seconds`` (a rate beyond the sender's then ends on time, with fewer sent)."""
    count = len(block) // FRAME
    limit = float("inf") if seconds is None else seconds
    view = memoryview(block)
    errors = 0
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as sock:
        sock.bind((iface, 0))
        send, clock, sleep = sock.send, time.perf_counter, time.sleep
        started = time.perf_counter_ns()
        start = clock()
        sent = 0
        while sent < count and clock() - start < limit:
            due = min(count, int((clock() - start) * rate) + 1, sent + 256)
            while sent < due:
                try:
                    send(view[sent * FRAME:(sent + 1) * FRAME])
                except OSError:
                    errors += 1
                sent += 1
            wait = start + sent / rate - clock()
            if wait > 0:
                sleep(wait)
        ended = time.perf_counter_ns()
    return {"sent": sent - errors, "errors": errors, "start_ns": started, "end_ns": ended}


def main() -> int:
    """Build the frames, then send them paced."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iface", default="eth0")
    parser.add_argument("--kind", choices=["repeated", "real"], default="repeated")
    parser.add_argument("--rate", type=float, required=True, help="frames per second")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--seconds", type=float, help="stop sending after this long")
    args = parser.parse_args()
    result = send_paced(args.iface, frames(args.kind, args.count), args.rate, args.seconds)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
