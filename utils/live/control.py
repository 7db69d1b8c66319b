"""The thin I/O shell: read the balancer from a switch, write a plan's phases.

Reads need no arbitration (any client may read), so ``status`` and ``watch``
never take the primary role from anyone; a change becomes primary with lbctl's
own election id, writes each phase as one WriteRequest (waiting for its answer
before the next), and leaves.  It never pushes a pipeline and never deletes
anything a plan does not name.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from p4runtime_lib import P4Info, SwitchConnection
from p4runtime_lib.protos import p4runtime_pb2

from .plan import Plan
from .state import GROUP_TABLE, NHOP_TABLE, Balancer, decode_balancer

ELECTION_ID = 2  # above mycontroller.py's default (1)


@dataclass
class Sample:
    """The group's direct counters at one moment: per bucket, and per backend of the
    buckets each one holds now."""

    at: float
    buckets: dict[int, tuple[str, int, int]]  # select -> (backend, packets, bytes)
    packets: dict[str, int]
    bytes: dict[str, int]

    def since(self, before: Sample | None) -> dict[str, int]:
        """Packets per backend from ``before`` to now, bucket by bucket, each bucket's
        packets going to the backend that holds it now: a bucket that moved between
        the samples does not shift its old total from one backend to the other, and
        one written anew (counter back to 0) counts from 0."""
        out = dict.fromkeys(self.packets, 0)
        for select, (name, packets, _) in self.buckets.items():
            old = before.buckets.get(select) if before is not None else None
            out[name] += packets - old[1] if old is not None and old[1] <= packets else packets
        return out


def sample(balancer: Balancer, at: float) -> Sample:
    """The counters of the group's buckets, per bucket and per backend."""
    names = {hop: name for name, hop in balancer.backends.items()}
    packets = dict.fromkeys(balancer.backends, 0)
    octets = dict.fromkeys(balancer.backends, 0)
    buckets = {}
    for select in balancer.selects:
        bucket = balancer.buckets.get(select)
        name = names.get(bucket.next_hop) if bucket is not None else None
        if name is not None:
            buckets[select] = (name, bucket.packets, bucket.bytes)
            packets[name] += bucket.packets
            octets[name] += bucket.bytes
    return Sample(at, buckets, packets, octets)


class LiveSwitch:
    """One switch that holds the load-balanced group (s1)."""

    def __init__(self, connection: SwitchConnection, info: P4Info, vip: str,
                 names: Mapping[str, str]) -> None:
        self.connection, self.info, self.vip, self.names = connection, info, vip, names
        self._primary = False

    def read(self) -> Balancer:
        """The balancer as the switch holds it now, counters included."""
        groups = self.connection.read_table_entries(GROUP_TABLE)
        wanted = p4runtime_pb2.TableEntry(table_id=self.info.table(NHOP_TABLE).preamble.id)
        wanted.counter_data.SetInParent()
        nhops = [e.table_entry for e in self.connection.read([wanted])]
        return decode_balancer(self.info, groups, nhops, self.vip, self.names)

    def sample(self, clock: Callable[[], float] = time.monotonic) -> tuple[Balancer, Sample]:
        balancer = self.read()
        return balancer, sample(balancer, clock())

    def apply(self, plan: Plan, progress: Callable[[str], None] = lambda line: None) -> None:
        """Write each phase in order, one WriteRequest each."""
        if not self._primary:
            self.connection.become_primary()
            self._primary = True
        for phase in plan.phases:
            self.connection.write(phase.updates)
            count = len(phase.updates)
            progress(f"{phase.what}: {count} update{'' if count == 1 else 's'} written")
