"""The writes for a change, ordered make-before-break, as plain data.

A change is a list of phases; each phase is one WriteRequest, sent only after
the previous one is acknowledged, so every packet sees a table state in which
its flow goes to its old backend or its new one, never to a missing entry:

* growing (tutorial -> bucket table): 1. insert the new buckets, each going
  where its flow goes today; 2. raise ``ecmp_count``; 3. move the fewest buckets;
* changing weights on a bucket table: move the fewest buckets (one phase);
* shrinking (``reset``): 1. move every bucket to its home backend; 2. lower
  ``ecmp_count``; 3. delete the buckets no longer hashed to.

A single-entry MODIFY is atomic for the data plane on BMv2 and on our switch,
so no phase needs batch atomicity (BMv2 offers none).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from p4runtime_lib import P4Info, delete, insert, modify, table_entry
from p4runtime_lib.protos import p4runtime_pb2

from . import buckets
from .buckets import WeightError
from .state import GROUP_TABLE, NHOP_ACTION, NHOP_TABLE, SELECT_ACTION, Balancer, NextHop

Update = p4runtime_pb2.Update


@dataclass
class Phase:
    """One WriteRequest of a change."""

    what: str
    updates: list[Update]


@dataclass
class Plan:
    """A change: its phases, the bucket assignment before and after, and its cost."""

    phases: list[Phase]
    before: list[str]  # backend per bucket (over the new bucket count) before
    after: list[str]
    weights: dict[str, int]
    fewest: int  # the least number of buckets any change to these weights moves
    notes: list[str] = field(default_factory=list)

    @property
    def moved(self) -> int:
        return buckets.moved(self.before, self.after)


def nhop_entry(info: P4Info, select: int, hop: NextHop) -> p4runtime_pb2.TableEntry:
    """``ecmp_nhop``: select -> set_nhop(hop)."""
    return table_entry(info, NHOP_TABLE, {"meta.ecmp_select": select}, NHOP_ACTION,
                       {"nhop_dmac": hop.dmac, "nhop_ipv4": hop.ipv4, "port": hop.port})


def group_entry(info: P4Info, balancer: Balancer, count: int,
                metadata: bytes) -> p4runtime_pb2.TableEntry:
    """``ecmp_group``: the virtual address -> set_ecmp_select(base, count), lbctl's data."""
    entry = table_entry(info, GROUP_TABLE, {"hdr.ipv4.dstAddr": balancer.prefix}, SELECT_ACTION,
                        {"ecmp_base": balancer.base, "ecmp_count": count})
    entry.metadata = metadata
    return entry


def plan_weights(info: P4Info, balancer: Balancer, weights: Mapping[str, int],
                 saved: Mapping[str, int] | None = None) -> Plan:
    """Reach ``weights`` (every backend not named keeps its weight)."""
    unknown = set(weights) - set(balancer.backends)
    if unknown:
        raise WeightError(f"unknown backend '{sorted(unknown)[0]}' (the backends are "
                         f"{', '.join(balancer.backends)})")
    wanted = {name: int(weights.get(name, balancer.weights.get(name, 0)))
              for name in balancer.backends}
    names = list(balancer.backends)
    kept = dict(balancer.saved if saved is None else saved)
    if wanted == balancer.weights and kept == balancer.saved and \
            balancer.count >= buckets.BUCKETS:
        return unchanged(balancer)
    count = buckets.bucket_count(balancer.count) if balancer.count < buckets.BUCKETS \
        else balancer.count
    before = buckets.expand(balancer.assignment(), count)
    after = buckets.rebalance(before, wanted, names)
    changed = Balancer(balancer.prefix, balancer.base, count, balancer.buckets,
                       balancer.backends, wanted, kept)
    phases = []
    if count > balancer.count:
        make = []
        for i in range(balancer.count, count):
            select = balancer.base + i
            entry = nhop_entry(info, select, balancer.backends[before[i]])
            make.append(modify(entry) if select in balancer.buckets else insert(entry))
        phases.append(Phase(f"add buckets {balancer.base + balancer.count}.."
                            f"{balancer.base + count - 1}, each to where its flows go now",
                            make))
        phases.append(Phase(f"ecmp_count {balancer.count} -> {count}", [
            modify(group_entry(info, changed, count, balancer.metadata()))]))
    moves = [modify(nhop_entry(info, balancer.base + i, balancer.backends[name]))
             for i, name in enumerate(after) if name != before[i]]
    phases.append(Phase(f"move {len(moves)} buckets", moves + [
        modify(group_entry(info, changed, count, changed.metadata()))]))
    return Plan(phases, before, after, wanted, buckets.fewest_moves(before, wanted, names))


def unchanged(balancer: Balancer) -> Plan:
    """A plan that writes nothing (lbctl says there is nothing to change)."""
    current = balancer.assignment()
    return Plan([], current, current, dict(balancer.weights), 0)


def plan_drain(info: P4Info, balancer: Balancer, name: str) -> Plan:
    """Weight 0 for ``name``; its weight is kept for ``restore``."""
    if name not in balancer.backends:
        raise WeightError(f"unknown backend '{name}' (the backends are "
                         f"{', '.join(balancer.backends)})")
    saved = dict(balancer.saved)
    if balancer.weights.get(name, 0) > 0:
        saved[name] = balancer.weights[name]
    return plan_weights(info, balancer, {name: 0}, saved)


def plan_restore(info: P4Info, balancer: Balancer, name: str) -> Plan:
    """``name`` back to the weight it had before ``drain`` (1 if none was kept)."""
    if name not in balancer.backends:
        raise WeightError(f"unknown backend '{name}' (the backends are "
                         f"{', '.join(balancer.backends)})")
    saved = dict(balancer.saved)
    weight = saved.pop(name, None)
    if weight is None and balancer.weights.get(name, 0) > 0:
        return unchanged(balancer)  # not drained
    if weight is None:
        weight = 1
    return plan_weights(info, balancer, {name: weight}, saved)


def plan_reset(info: P4Info, balancer: Balancer) -> Plan:
    """Back to the tutorial's group: one select per backend, in home order."""
    names = list(balancer.backends)
    before = balancer.assignment()
    after = [names[i % len(names)] for i in range(balancer.count)]
    home = len(names)
    reset = Balancer(balancer.prefix, balancer.base, home, balancer.buckets,
                     balancer.backends, dict.fromkeys(names, 1))
    moves = [modify(nhop_entry(info, balancer.base + i, balancer.backends[name]))
             for i, name in enumerate(after) if name != before[i]]
    phases = [Phase(f"move {len(moves)} buckets to their home backend", moves)]
    if balancer.count > home:
        phases.append(Phase(f"ecmp_count {balancer.count} -> {home}", [
            modify(group_entry(info, reset, home, b""))]))
        phases.append(Phase(f"delete buckets {balancer.base + home}.."
                            f"{balancer.base + balancer.count - 1}",
                            [delete(nhop_entry(info, balancer.base + i,
                                               balancer.backends[after[i]]))
                             for i in range(home, balancer.count)]))
    else:
        phases.append(Phase("forget lbctl's weights", [
            modify(group_entry(info, reset, balancer.count, b""))]))
    fewest = sum(a != b for a, b in zip(before, after))
    return Plan([p for p in phases if p.updates], before, after, reset.weights, fewest)
