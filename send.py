#!/usr/bin/env python3
"""Send TCP packets from this host's eth0: ./send.py 10.0.0.1 "hello" [--count N].

Each packet is one flow (dport 1234, a random source port unless --sport is
given), sent to the broadcast MAC as the tutorial's send.py does; the switch
does not look at the destination MAC.  Prints what it sent, source ports
included, so the hash split can be checked.
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
import json  # noqa: E402
import random  # noqa: E402
import socket  # noqa: E402

from scapy.all import IP, TCP, Ether, get_if_hwaddr, get_if_list, sendp  # noqa: E402


def interface() -> str:
    for name in get_if_list():
        if "eth0" in name:
            return name
    sys.exit("Cannot find eth0 interface")


def main() -> int:
    parser = argparse.ArgumentParser(description="send TCP packets (one flow each)")
    parser.add_argument("destination", help="IP address or host name, e.g. 10.0.0.1")
    parser.add_argument("message", nargs="?", default="hello", help="payload text")
    parser.add_argument("--count", type=int, default=1, help="number of packets / flows")
    parser.add_argument("--sport", type=int, help="fixed source port (default: random)")
    parser.add_argument("--dport", type=int, default=1234)
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object with the source ports sent")
    args = parser.parse_args()
    try:
        address = socket.gethostbyname(args.destination)
    except OSError:
        sys.exit(f"error: cannot resolve {args.destination}")
    iface = interface()
    if args.sport is not None:
        sports = [args.sport] * args.count
    else:
        sports = random.sample(range(49152, 65536), args.count)
    packets = [Ether(src=get_if_hwaddr(iface), dst="ff:ff:ff:ff:ff:ff")
               / IP(dst=address) / TCP(dport=args.dport, sport=sport) / args.message
               for sport in sports]
    sendp(packets, iface=iface, verbose=False)
    if args.json:
        print(json.dumps({"interface": iface, "destination": address, "sports": sports}))
    else:
        for sport in sports:
            print(f"sent on {iface} to {address}: TCP sport={sport} dport={args.dport} "
                  f"payload={args.message!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
