#!/usr/bin/env python3
"""Print every TCP packet arriving on this host's eth0, and a count on exit.

    ./receive.py                        until Ctrl-C, one line per packet
    ./receive.py --verbose              every field of each packet (show2)
    ./receive.py --timeout 5 --json     for scripts: one JSON summary at the end
                                        ({"count": N, "sports": [...], "packets": [...]})

"sniffing on eth0" is printed (on stderr with --json) once capture has begun.
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV_PYTHON = HERE / ".venv" / "bin" / "python"
try:
    import scapy  # noqa: F401
except ImportError:
    if VENV_PYTHON.exists() and Path(sys.executable) != VENV_PYTHON:
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])
    sys.exit("error: scapy is missing: run 'make setup' first")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

from scapy.all import IP, TCP, AsyncSniffer, Packet, get_if_list  # noqa: E402
from scapy.error import Scapy_Exception  # noqa: E402


def interface() -> str:
    """The first interface whose name contains eth0."""
    for name in get_if_list():
        if "eth0" in name:
            return name
    sys.exit("Cannot find eth0 interface")


def summary(packet: Packet) -> dict:
    """The fields a load-balancing check needs, JSON-ready."""
    ip, tcp = packet[IP], packet[TCP]
    return {"src": ip.src, "dst": ip.dst, "sport": tcp.sport, "dport": tcp.dport,
            "ttl": ip.ttl, "id": ip.id, "seq": tcp.seq, "src_mac": packet.src,
            "dst_mac": packet.dst,
            "payload": bytes(tcp.payload).decode(errors="replace")}


def main() -> int:
    parser = argparse.ArgumentParser(description="print TCP packets received on eth0")
    parser.add_argument("--count", type=int, default=0, help="stop after N packets")
    parser.add_argument("--timeout", type=float, help="stop after this many seconds")
    parser.add_argument("--verbose", action="store_true", help="show every field (show2)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary at the end")
    args = parser.parse_args()
    if args.count < 0 or (args.timeout is not None and args.timeout <= 0):
        parser.error("--count and --timeout must be positive")
    iface = interface()
    seen: list[dict] = []

    def handle(packet: Packet) -> None:
        seen.append(summary(packet))
        if not args.json:
            got = seen[-1]
            print(f"got a packet: {got['src']}:{got['sport']} -> {got['dst']}:{got['dport']} "
                  f"ttl={got['ttl']} {got['src_mac']} -> {got['dst_mac']} "
                  f"payload={got['payload']!r}", flush=True)
            if args.verbose:
                packet.show2()
                sys.stdout.flush()

    ready, stop_requested = threading.Event(), threading.Event()

    def started() -> None:
        ready.set()
        print(f"sniffing on {iface}", file=sys.stderr if args.json else sys.stdout,
              flush=True)

    sniffer = AsyncSniffer(iface=iface, lfilter=lambda p: TCP in p and IP in p, prn=handle,
                           store=False, count=args.count, started_callback=started)
    signal.signal(signal.SIGTERM, lambda *_: stop_requested.set())
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    try:
        sniffer.start()
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends the capture
            while sniffer.thread.is_alive() and not stop_requested.is_set() and \
                    (deadline is None or time.monotonic() < deadline):
                sniffer.join(timeout=0.1)
        if sniffer.thread.is_alive():
            ready.wait(timeout=5)  # stopping before capture began would not stop it
            with contextlib.suppress(Scapy_Exception):  # it ended meanwhile
                sniffer.stop()
        sniffer.join()
    except OSError as exc:
        sys.exit(f"error: cannot capture on {iface}: {exc.strerror or exc} (run it as root, "
                 "e.g. from the Mininet CLI: h2 ./receive.py)")
    if args.json:
        print(json.dumps({"interface": iface, "count": len(seen),
                          "sports": [p["sport"] for p in seen], "packets": seen}), flush=True)
    else:
        print(f"\n{len(seen)} TCP packet(s) received", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
