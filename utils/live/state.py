"""The load balancer as the switch holds it, decoded from a P4Runtime read.

The load-balanced group is s1's ``ecmp_group`` entry for the virtual address
(``set_ecmp_select(ecmp_base, ecmp_count)``); its buckets are the
``ecmp_nhop`` entries ``ecmp_base .. ecmp_base + ecmp_count - 1``
(``set_nhop(nhop_dmac, nhop_ipv4, port)``) with their direct counters.  What
lbctl must remember across runs -- the weights, the weight a drained backend
returns to, every backend's next hop even when it holds no bucket -- is kept on
the switch too, as JSON in the group entry's ``metadata`` bytes, which
P4Runtime stores and reads back untouched (PI and our switch alike).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from p4runtime_lib import P4Info
from p4runtime_lib.codec import decode
from p4runtime_lib.protos import p4runtime_pb2

GROUP_TABLE, NHOP_TABLE = "MyIngress.ecmp_group", "MyIngress.ecmp_nhop"
SELECT_ACTION, NHOP_ACTION = "MyIngress.set_ecmp_select", "MyIngress.set_nhop"


class StateError(Exception):
    """The switch does not hold a load balancer lbctl can work with (one line + hint)."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message, self.hint = message, hint

    def __str__(self) -> str:
        return f"{self.message}. {self.hint}" if self.hint else self.message


@dataclass(frozen=True)
class NextHop:
    """Where ``set_nhop`` sends a packet."""

    dmac: int
    ipv4: int
    port: int

    def to_json(self) -> list[int]:
        return [self.dmac, self.ipv4, self.port]

    @classmethod
    def from_json(cls, value: list[int]) -> NextHop:
        dmac, ipv4, port = value
        return cls(int(dmac), int(ipv4), int(port))

    @property
    def address(self) -> str:
        return str(ipaddress.IPv4Address(self.ipv4))


@dataclass
class Bucket:
    """One ``ecmp_nhop`` entry: its select value, next hop and counters."""

    select: int
    next_hop: NextHop | None  # None: its action is not set_nhop (e.g. drop)
    packets: int = 0
    bytes: int = 0


@dataclass
class Balancer:
    """The group for the virtual address and everything lbctl knows about it."""

    prefix: str
    base: int
    count: int
    buckets: dict[int, Bucket]  # every ecmp_nhop entry, by select value
    backends: dict[str, NextHop]  # in home order
    weights: dict[str, int]
    saved: dict[str, int] = field(default_factory=dict)  # weight to restore, per drained one
    entry: Any = None  # the group's TableEntry as read

    @property
    def selects(self) -> range:
        return range(self.base, self.base + self.count)

    def assignment(self) -> list[str]:
        """Backend name per bucket of the group (select base + i)."""
        names = {hop: name for name, hop in self.backends.items()}
        out = []
        for select in self.selects:
            bucket = self.buckets.get(select)
            if bucket is None or bucket.next_hop not in names:
                raise StateError(f"ecmp_nhop has no next hop lbctl knows for select {select}",
                                 "run ./mycontroller.py to start again from the tutorial")
            out.append(names[bucket.next_hop])
        return out

    def metadata(self) -> bytes:
        """What lbctl keeps in the group entry: weights, saved weights, next hops."""
        return json.dumps({"lbctl": 1, "weights": self.weights, "saved": self.saved,
                           "next_hops": {n: h.to_json() for n, h in self.backends.items()}},
                          separators=(",", ":")).encode()


def _values(info: P4Info, action_id: int, params: Iterable[Any]) -> dict[str, int]:
    action = info.action(action_id)
    return {info.param(action, p.param_id).name: decode(p.value) for p in params}


def decode_bucket(info: P4Info, entry: p4runtime_pb2.TableEntry) -> Bucket:
    """An ``ecmp_nhop`` entry read with its counter data."""
    select = decode(entry.match[0].exact.value)
    hop = None
    action = entry.action.action
    if entry.action.WhichOneof("type") == "action" and \
            info.action(action.action_id).preamble.name == NHOP_ACTION:
        values = _values(info, action.action_id, action.params)
        hop = NextHop(values["nhop_dmac"], values["nhop_ipv4"], values["port"])
    return Bucket(select, hop, entry.counter_data.packet_count, entry.counter_data.byte_count)


def find_group(info: P4Info, entries: Iterable[p4runtime_pb2.TableEntry],
               vip: str) -> p4runtime_pb2.TableEntry:
    """The ``ecmp_group`` entry whose prefix holds ``vip`` (the longest one)."""
    address = int(ipaddress.IPv4Address(vip))
    best = None
    for entry in entries:
        lpm = entry.match[0].lpm
        length = lpm.prefix_len
        mask = ((1 << length) - 1) << (32 - length) if length else 0
        if decode(lpm.value) & mask == address & mask and \
                (best is None or length > best.match[0].lpm.prefix_len):
            best = entry
    if best is None:
        raise StateError(f"s1 has no ecmp_group entry for {vip}",
                         "run ./mycontroller.py first")
    action = best.action.action
    if info.action(action.action_id).preamble.name != SELECT_ACTION:
        raise StateError(f"the ecmp_group entry for {vip} does not load-balance (its action "
                         f"is {info.action(action.action_id).preamble.name})",
                         "run ./mycontroller.py to restore the tutorial's rules")
    return best


def decode_balancer(info: P4Info, groups: Iterable[p4runtime_pb2.TableEntry],
                    nhops: Iterable[p4runtime_pb2.TableEntry], vip: str,
                    names: Mapping[str, str]) -> Balancer:
    """The balancer from a read of both tables; ``names`` maps next-hop IPv4 text to a
    host name (from topology.json), for backends lbctl has not named yet."""
    entry = find_group(info, groups, vip)
    values = _values(info, entry.action.action.action_id, entry.action.action.params)
    buckets = {b.select: b for b in (decode_bucket(info, e) for e in nhops)}
    prefix = f"{ipaddress.IPv4Address(decode(entry.match[0].lpm.value))}/" \
             f"{entry.match[0].lpm.prefix_len}"
    balancer = Balancer(prefix, values["ecmp_base"], values["ecmp_count"], buckets, {}, {},
                        entry=entry)
    kept = _kept(entry.metadata)
    if kept is not None:
        balancer.backends = {n: NextHop.from_json(h) for n, h in kept["next_hops"].items()}
        balancer.weights = {n: int(w) for n, w in kept["weights"].items()}
        balancer.saved = {n: int(w) for n, w in kept["saved"].items()}
        return balancer
    # The tutorial's state: each select of the group is one backend of weight 1.
    for select in balancer.selects:
        bucket = buckets.get(select)
        if bucket is None or bucket.next_hop is None:
            raise StateError(f"ecmp_nhop has no set_nhop entry for select {select}",
                             "run ./mycontroller.py to restore the tutorial's rules")
        hop = bucket.next_hop
        if hop not in balancer.backends.values():
            name = names.get(hop.address, hop.address)
            balancer.backends[name] = hop
            balancer.weights[name] = 0
        name = next(n for n, h in balancer.backends.items() if h == hop)
        balancer.weights[name] += 1
    return balancer


def _kept(metadata: bytes) -> dict[str, Any] | None:
    """lbctl's JSON in the group entry, or None (not written by lbctl)."""
    if not metadata:
        return None
    try:
        kept = json.loads(metadata)
    except ValueError:
        return None
    if not isinstance(kept, dict) or kept.get("lbctl") != 1:
        return None
    return kept
