"""The bucket assignment as plain data (no switch): properties over random weights."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st
from live.buckets import BUCKETS, bucket_count, expand, rebalance, targets

NAMES = ("h2", "h3", "h4", "h5")
weights_for = st.integers(2, 4).flatmap(lambda n: st.lists(
    st.integers(0, 9), min_size=n, max_size=n).filter(any).map(
        lambda ws: dict(zip(NAMES, ws))))


@given(weights_for)
def test_targets_split_every_bucket_within_one_of_the_exact_share(weights) -> None:
    counts = targets(weights, BUCKETS)
    assert sum(counts.values()) == BUCKETS
    total = sum(weights.values())
    for name, weight in weights.items():
        assert abs(counts[name] - BUCKETS * weight / total) < 1


@given(weights_for, weights_for)
def test_rebalance_reaches_the_weights_moving_only_what_it_must(first, second) -> None:
    names = list(first)
    second = {n: second.get(n, 0) for n in names} if any(
        second.get(n, 0) for n in names) else dict.fromkeys(names, 1)
    home = [names[b % len(names)] for b in range(BUCKETS)]
    start = rebalance(home, first, names)
    end = rebalance(start, second, names)
    assert Counter(end) == Counter({n: c for n, c in targets(second, BUCKETS).items() if c})
    have, want = Counter(start), targets(second, BUCKETS)
    # a bucket moves only from a backend over its target to one under it
    assert sum(a != b for a, b in zip(start, end)) == \
        sum(max(0, have[n] - want[n]) for n in names)
    for a, b in zip(start, end):
        if a != b:
            assert have[a] > want[a] and have[b] < want[b]


@given(st.integers(1, 9), st.integers(1, 9), st.sampled_from(NAMES[:2]))
def test_drain_then_restore_gives_every_bucket_back(h2, h3, name) -> None:
    """With two backends (the exercise's h2 and h3); with more, the fewest still move."""
    weights = {"h2": h2, "h3": h3}
    names = list(weights)
    home = [names[b % len(names)] for b in range(BUCKETS)]
    start = rebalance(home, weights, names)
    drained = rebalance(start, {**weights, name: 0}, names)
    assert name not in drained
    assert all(a == b for a, b in zip(start, drained) if a != name)  # others stay put
    assert rebalance(drained, weights, names) == start


def test_the_tutorials_split_becomes_a_bucket_table_without_moving_a_flow() -> None:
    tutorial = ["h2", "h3"]  # select 0 -> h2, 1 -> h3
    table = expand(tutorial, bucket_count(2))
    assert len(table) == BUCKETS
    for crc in range(0, 65536, 7):  # crc16 % 256 % 2 == crc16 % 2
        assert table[crc % BUCKETS] == tutorial[crc % 2]
    assert bucket_count(3) == 258 and bucket_count(300) == 300
