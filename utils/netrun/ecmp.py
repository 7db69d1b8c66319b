"""Where load_balance.p4 sends a flow, computed independently of any switch.

s1 hashes (srcAddr, dstAddr, protocol, srcPort, dstPort) with v1model's
``HashAlgorithm.crc16``, which BMv2 implements as CRC-16/ARC (poly 0x8005
reflected, init 0, no final xor), and picks ``ecmp_select = base + hash % count``.
crcmod's predefined "crc-16" is exactly CRC-16/ARC.

The rules themselves -- the virtual address, base, count and which next hop each
``ecmp_select`` leads to -- have one home, ``mycontroller.py``: ``Ecmp.load()``
builds s1's batch with the controller's own helpers and reads it back.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import crcmod.predefined

from p4runtime_lib import ControllerError, P4Info, decode_table_entry

from .topology import TopologyError, load_topology

REPO = Path(__file__).resolve().parents[2]
H1 = "10.0.1.1"
DPORT = 1234  # send.py's destination port
TCP = 6
BALANCER = "s1"

_crc16 = crcmod.predefined.mkCrcFun("crc-16")


def five_tuple(sport: int, src: str = H1, dst: str = "10.0.0.1", proto: int = TCP,
               dport: int = DPORT) -> bytes:
    """The 13 bytes s1 hashes: srcIP(4) dstIP(4) proto(1) sport(2) dport(2)."""
    return (ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed
            + struct.pack("!BHH", proto, sport, dport))


def flow_hash(sport: int, src: str = H1, dst: str = "10.0.0.1", proto: int = TCP,
              dport: int = DPORT) -> int:
    """BMv2's crc16 of a flow's 5-tuple."""
    return _crc16(five_tuple(sport, src, dst, proto, dport))


def load_controller(repo: Path = REPO) -> ModuleType:
    """``repo/mycontroller.py`` imported as a module: its helpers and RULES, main not run."""
    spec = importlib.util.spec_from_file_location("mycontroller", repo / "mycontroller.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class RulesError(ValueError):
    """The controller's rules cannot be read as a load balancer (one line why)."""


@dataclass(frozen=True)
class Ecmp:
    """s1's load balancing as the controller's rules set it up."""

    vip: str  # the virtual address flows are sent to
    base: int
    count: int
    hosts: Mapping[int, str]  # ecmp_select -> the host its next hop leads to

    @classmethod
    def from_updates(cls, p4info: P4Info, updates: Iterable, host_of_ip: Mapping[str, str]
                     ) -> Ecmp:
        """Read the VIP's ``ecmp_group`` entry and the ``ecmp_nhop`` entries of a batch."""
        vip, base, count, hosts = None, 0, 0, {}
        for update in updates:
            entry = decode_table_entry(p4info, update.entity.table_entry)
            if entry.table == "MyIngress.ecmp_group" and not entry.is_default:
                vip = entry.match["hdr.ipv4.dstAddr"].partition("/")[0]
                base, count = int(entry.params["ecmp_base"]), int(entry.params["ecmp_count"])
            elif entry.table == "MyIngress.ecmp_nhop":
                select = int(entry.match["meta.ecmp_select"])
                hosts[select] = host_of_ip[entry.params["nhop_ipv4"]]
        if vip is None or any(base + i not in hosts for i in range(count)):
            raise RulesError(f"the rules do not balance a VIP over next hops: "
                             f"vip={vip}, base={base}, count={count}, next hops={hosts}")
        return cls(vip, base, count, hosts)

    @classmethod
    def load(cls, repo: Path = REPO) -> Ecmp:
        """s1's balancing from ``mycontroller.py`` (its rules), P4Info and topology.json."""
        try:
            controller = load_controller(repo)
            p4info = P4Info.load(controller.BUILD.p4info)
            topology = load_topology(repo / "topology.json")
        except (OSError, ControllerError, TopologyError) as error:
            raise RulesError(f"cannot read the exercise's rules: {error}") from None
        host_of_ip = {host.ip.partition("/")[0]: name for name, host in topology.hosts.items()}
        return cls.from_updates(p4info, controller.RULES[BALANCER](p4info), host_of_ip)

    @property
    def next_hops(self) -> list[str]:
        """The hosts flows are spread over, in ``ecmp_select`` order."""
        return [self.hosts[self.base + i] for i in range(self.count)]

    def host(self, sport: int, src: str = H1, proto: int = TCP, dport: int = DPORT) -> str:
        """Where s1 sends the flow: ``hosts[base + crc16 % count]``."""
        return self.hosts[self.base + flow_hash(sport, src, self.vip, proto, dport) % self.count]

    def split(self, sports: Iterable[int]) -> dict[str, list[int]]:
        """Source ports per receiving host, as crc16 predicts them."""
        split: dict[str, list[int]] = {host: [] for host in self.next_hops}
        for sport in sports:
            split[self.host(sport)].append(sport)
        return split
