"""Where load_balance.p4 sends a flow, computed independently of any switch.

s1 hashes (srcAddr, dstAddr, protocol, srcPort, dstPort) with v1model's
``HashAlgorithm.crc16``, which BMv2 implements as CRC-16/ARC (poly 0x8005
reflected, init 0, no final xor); ``ecmp_select = base + hash % count`` with
base 0 and count 2, and the controller maps select 0 to h2, 1 to h3.
crcmod's predefined "crc-16" is exactly CRC-16/ARC.
"""

from __future__ import annotations

import ipaddress
import struct

import crcmod.predefined

VIP = "10.0.0.1"
H1 = "10.0.1.1"
DPORT = 1234
TCP = 6
NEXT_HOPS = ("h2", "h3")  # ecmp_select 0, 1 (mycontroller.py's ecmp_nhop entries on s1)

_crc16 = crcmod.predefined.mkCrcFun("crc-16")


def five_tuple(sport: int, src: str = H1, dst: str = VIP, proto: int = TCP,
               dport: int = DPORT) -> bytes:
    """The 13 bytes s1 hashes: srcIP(4) dstIP(4) proto(1) sport(2) dport(2)."""
    return (ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed
            + struct.pack("!BHH", proto, sport, dport))


def flow_hash(sport: int, src: str = H1, dst: str = VIP, proto: int = TCP,
              dport: int = DPORT) -> int:
    """BMv2's crc16 of a flow's 5-tuple."""
    return _crc16(five_tuple(sport, src, dst, proto, dport))


def predicted_host(sport: int, src: str = H1, dst: str = VIP, proto: int = TCP,
                   dport: int = DPORT) -> str:
    """Where s1 sends the flow: crc16 % 2 -> h2 (0) or h3 (1)."""
    return NEXT_HOPS[flow_hash(sport, src, dst, proto, dport) % len(NEXT_HOPS)]


def predicted_split(sports: list[int]) -> dict[str, list[int]]:
    """Source ports per receiving host, as crc16 predicts them."""
    split: dict[str, list[int]] = {host: [] for host in NEXT_HOPS}
    for sport in sports:
        split[predicted_host(sport)].append(sport)
    return split
