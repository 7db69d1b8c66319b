"""Bucket tables: which next hop each hash bucket goes to, and moving the fewest.

A flow lands in bucket ``crc16(5-tuple) % B``; the bucket's ``ecmp_nhop`` entry
names its next hop.  With B a multiple of the tutorial's ``ecmp_count`` C, bucket
b first goes where select ``b % C`` went, so turning the tutorial's two entries
into a bucket table moves no flow.  Reaching new weights then reassigns the
fewest buckets: a backend over its target gives up buckets (first those that
are not "home" for it, lowest first -- b % N names a bucket's home among the N
backends -- then its home ones, highest first), a backend under its target
takes them (home buckets first).  So, with two backends, a drain followed by a
restore gives every bucket back to where it was.

Everything here is plain data in, plain data out (as aioquic's core).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

BUCKETS = 256  # per group: shares in steps of 1/256 (0.4 percentage points)


class WeightError(ValueError):
    """Weights that no bucket table can reach (one line)."""


def bucket_count(current_count: int, wanted: int = BUCKETS) -> int:
    """Buckets for a group that hashes over ``current_count`` entries today: the
    smallest multiple of it that is at least ``wanted`` (so no flow moves)."""
    if current_count < 1:
        raise ValueError("ecmp_count must be at least 1")
    return -(-wanted // current_count) * current_count


def targets(weights: Mapping[str, int], buckets: int) -> dict[str, int]:
    """Buckets per backend, proportional to ``weights`` (largest remainder)."""
    if any(weight < 0 for weight in weights.values()):
        raise WeightError("weights cannot be negative")
    total = sum(weights.values())
    if total == 0:
        raise WeightError("at least one backend needs a weight above 0")
    exact = {name: buckets * weight / total for name, weight in weights.items()}
    counts = {name: int(share) for name, share in exact.items()}
    left = buckets - sum(counts.values())
    by_remainder = sorted(weights, key=lambda name: (counts[name] - exact[name], name))
    for name in by_remainder[:left]:
        counts[name] += 1
    return counts


def rebalance(current: Sequence[str], weights: Mapping[str, int],
              backends: Sequence[str]) -> list[str]:
    """A new assignment (bucket -> backend) reaching ``weights`` with the fewest
    buckets changed; ``backends`` in their home order (bucket b's home is
    ``backends[b % len(backends)]``)."""
    unknown = set(weights) - set(backends)
    if unknown:
        raise WeightError(f"unknown backend {sorted(unknown)[0]}")
    want = targets({name: weights.get(name, 0) for name in backends}, len(current))
    have = Counter(current)
    home = {b: backends[b % len(backends)] for b in range(len(current))}
    new = list(current)
    freed: list[int] = []
    for name in backends:
        surplus = have[name] - want[name]
        if surplus > 0:  # away-from-home buckets first (lowest first), then home ones
            mine = [b for b in range(len(current)) if current[b] == name]  # (highest first)
            mine.sort(key=lambda b: (home[b] == name, -b if home[b] == name else b))
            freed += mine[:surplus]
    freed.sort()
    need = {name: want[name] - have[name] for name in backends if want[name] > have[name]}
    for name in need:  # home buckets first
        for b in [b for b in freed if home[b] == name][:need[name]]:
            new[b] = name
            freed.remove(b)
            need[name] -= 1
    for name, count in need.items():
        for b in freed[:count]:
            new[b] = name
        del freed[:count]
    return new


def moved(old: Sequence[str], new: Sequence[str]) -> int:
    """Buckets whose backend changes."""
    return sum(a != b for a, b in zip(old, new))


def fewest_moves(current: Sequence[str], weights: Mapping[str, int],
                 backends: Sequence[str]) -> int:
    """The least number of buckets any assignment reaching ``weights`` changes."""
    want = targets({name: weights.get(name, 0) for name in backends}, len(current))
    have = Counter(current)
    return sum(max(0, have[name] - want[name]) for name in backends)


def expand(assignment: Sequence[str], buckets: int) -> list[str]:
    """The same flow mapping over ``buckets`` (a multiple of the current count)."""
    if buckets % len(assignment):
        raise ValueError(f"{buckets} buckets is not a multiple of {len(assignment)}")
    return [assignment[b % len(assignment)] for b in range(buckets)]
