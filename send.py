#!/usr/bin/env python3
"""Send TCP packets from this host's eth0: ./send.py 10.0.0.1 "hello" [--count N].

Each packet is one flow (dport 1234, a random source port in 49152-65535,
all distinct), sent to the broadcast MAC as the tutorial's send.py does; the
switch does not look at the destination MAC.  --sport S fixes the source
port (with --count N: N packets of that one flow).  Prints what it sent,
source ports included, so the hash split can be checked; --json prints one
JSON object instead.

--rate PPS --seconds S sends steady traffic instead, for ./lbctl.py watch:
the --count flows in turn at PPS packets/s for S seconds, with the IPv4
identification and the TCP sequence number changing on every packet, as real
TCP does (raw socket, utils/live/traffic.py; scapy's sendp manages ~2,000/s).
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

from scapy.all import (  # noqa: E402
    IP,
    TCP,
    Ether,
    get_if_addr,
    get_if_hwaddr,
    get_if_list,
    sendp,
)

EPHEMERAL = range(49152, 65536)
sys.path.insert(0, str(HERE / "utils"))


def interface() -> str:
    """The first interface whose name contains eth0 (as the tutorial's send.py)."""
    for name in get_if_list():
        if "eth0" in name:
            return name
    sys.exit("Cannot find eth0 interface")


def port(text: str) -> int:
    """argparse type: a TCP port number."""
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0-65535)")
    return value


def source_ports(count: int, fixed: int | None) -> list[int]:
    """``count`` distinct random ephemeral ports, or ``fixed`` ``count`` times."""
    if fixed is not None:
        return [fixed] * count
    return random.sample(EPHEMERAL, count)


def main() -> int:
    parser = argparse.ArgumentParser(description="send TCP packets (one flow each) on eth0")
    parser.add_argument("destination", help="IP address or host name, e.g. 10.0.0.1")
    parser.add_argument("message", help="payload text, e.g. \"hello\"")
    parser.add_argument("--count", type=int, default=1,
                        help=f"number of packets, each a new flow (1-{len(EPHEMERAL)})")
    parser.add_argument("--sport", type=port, help="fixed source port (default: random)")
    parser.add_argument("--dport", type=port, default=1234)
    parser.add_argument("--verbose", action="store_true", help="show2() each packet")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object with the source ports sent")
    parser.add_argument("--rate", type=float, metavar="PPS",
                        help="steady traffic: PPS packets/s over the --count flows")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="how long steady traffic lasts (default 10)")
    args = parser.parse_args()
    if not 1 <= args.count <= len(EPHEMERAL):
        parser.error(f"--count must be between 1 and {len(EPHEMERAL)}")
    if args.rate is not None and not (args.rate > 0 and args.seconds > 0):
        parser.error("--rate and --seconds must be above 0")
    try:
        address = socket.gethostbyname(args.destination)
    except OSError:
        sys.exit(f"error: cannot resolve {args.destination}")
    iface = interface()
    sports = source_ports(args.count, args.sport)
    if args.rate is not None:
        return steady(iface, address, sports, args)
    packets = [Ether(src=get_if_hwaddr(iface), dst="ff:ff:ff:ff:ff:ff")
               / IP(dst=address) / TCP(dport=args.dport, sport=sport) / args.message
               for sport in sports]
    if not args.json:
        print(f"sending on interface {iface} to {address}")
    try:
        sendp(packets, iface=iface, verbose=False)
    except OSError as exc:
        sys.exit(f"error: cannot send on {iface}: {exc.strerror or exc} (run it as root, "
                 "e.g. from the Mininet CLI: h1 ./send.py ...)")
    if args.json:
        print(json.dumps({"interface": iface, "destination": address, "dport": args.dport,
                          "sports": sports}))
        return 0
    for packet in packets:
        print(f"sent TCP {packet[IP].src}:{packet[TCP].sport} -> {address}:{args.dport} "
              f"payload={args.message!r}")
        if args.verbose:
            packet.show2()
    return 0


def steady(iface: str, address: str, sports: list[int], args: argparse.Namespace) -> int:
    """--rate: paced packets over the flows, id and seq changing per packet."""
    from live.traffic import Segments, send

    segments = Segments(sports, src_mac=get_if_hwaddr(iface), dst_mac="ff:ff:ff:ff:ff:ff",
                        src=get_if_addr(iface), dst=address, dport=args.dport,
                        tail=args.message.encode())
    if not args.json:
        print(f"sending on interface {iface} to {address}: {len(sports)} flows at "
              f"{args.rate:.0f} packets/s for {args.seconds:g} s", flush=True)
    try:
        result = send(iface, segments, args.rate, args.seconds, quiet=True)
    except OSError as exc:
        sys.exit(f"error: cannot send on {iface}: {exc.strerror or exc} (run it as root, "
                 "e.g. from the Mininet CLI: h1 ./send.py ...)")
    if args.json:
        print(json.dumps({"interface": iface, "destination": address, "dport": args.dport,
                          **result}))
    else:
        print(f"sent {result['sent']} packets in {result['seconds']:.1f} s "
              f"({result['rate']:.0f} packets/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
