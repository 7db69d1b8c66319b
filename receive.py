#!/usr/bin/env python3
"""Print every TCP packet arriving on this host's eth0, and a count on exit.

    ./receive.py                 until Ctrl-C
    ./receive.py --timeout 5 --json   (for scripts: one JSON summary at the end)
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

from scapy.all import IP, TCP, AsyncSniffer, get_if_list  # noqa: E402


def interface() -> str:
    for name in get_if_list():
        if "eth0" in name:
            return name
    sys.exit("Cannot find eth0 interface")


def main() -> int:
    parser = argparse.ArgumentParser(description="print TCP packets received on eth0")
    parser.add_argument("--count", type=int, default=0, help="stop after N packets")
    parser.add_argument("--timeout", type=float, help="stop after this many seconds")
    parser.add_argument("--verbose", action="store_true", help="show every field (show2)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary at the end")
    args = parser.parse_args()
    iface = interface()
    seen: list[dict] = []

    def handle(packet) -> None:  # type: ignore[no-untyped-def]
        ip, tcp = packet[IP], packet[TCP]
        seen.append({"src": ip.src, "dst": ip.dst, "sport": tcp.sport, "dport": tcp.dport,
                     "ttl": ip.ttl, "payload": bytes(tcp.payload).decode(errors="replace")})
        if not args.json:
            print(f"got a packet: {ip.src}:{tcp.sport} -> {ip.dst}:{tcp.dport} ttl={ip.ttl} "
                  f"src_mac={packet.src} payload={bytes(tcp.payload)!r}", flush=True)
            if args.verbose:
                packet.show2()

    if not args.json:
        print(f"sniffing on {iface}", flush=True)
    sniffer = AsyncSniffer(iface=iface, lfilter=lambda p: TCP in p and IP in p, prn=handle,
                           store=False, count=args.count)
    signal.signal(signal.SIGTERM, lambda *_: sniffer.stop())
    sniffer.start()
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends the capture
        sniffer.join(timeout=args.timeout)
    if sniffer.running:
        sniffer.stop()
    if args.json:
        print(json.dumps({"interface": iface, "count": len(seen),
                          "sports": [p["sport"] for p in seen], "packets": seen}))
    else:
        print(f"\n{len(seen)} TCP packet(s) received", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
