"""lbctl's rates and shares from two counter samples (plain data, no switch)."""

from __future__ import annotations

from live.control import sample
from live.state import Balancer, Bucket, NextHop
from live.view import rows

H2, H3 = NextHop(0x0102, 0x0A000202, 2), NextHop(0x0103, 0x0A000303, 3)


def balancer(owners: list[NextHop], packets: list[int]) -> Balancer:
    """A four-bucket group whose bucket i goes to owners[i] and has counted packets[i]."""
    buckets = {i: Bucket(i, hop, n, 100 * n) for i, (hop, n) in enumerate(zip(owners, packets))}
    return Balancer("10.0.0.1/32", 0, 4, buckets, {"h2": H2, "h3": H3}, {"h2": 1, "h3": 1})


def test_a_bucket_that_moves_between_samples_brings_no_old_packets_along() -> None:
    before = sample(balancer([H2, H3, H2, H3], [500, 500, 500, 500]), at=10.0)
    # bucket 1 moved to h2 (same entry modified: its counter keeps its 500 + 10 new)
    after = balancer([H2, H2, H2, H3], [510, 510, 510, 510])
    table = {r.name: r for r in rows(after, before, sample(after, at=11.0))}
    assert (table["h2"].rate, table["h3"].rate) == (30.0, 10.0)
    assert (table["h2"].share, table["h3"].share) == (0.75, 0.25)
    assert (table["h2"].buckets, table["h3"].buckets) == (3, 1)
    assert (table["h2"].packets, table["h3"].packets) == (1530, 510)  # totals held now


def test_a_bucket_written_anew_counts_from_zero() -> None:
    before = sample(balancer([H2, H3, H2, H3], [500, 500, 500, 500]), at=0.0)
    after = balancer([H2, H3, H2, H2], [520, 520, 520, 20])  # bucket 3 deleted, re-inserted
    table = {r.name: r for r in rows(after, before, sample(after, at=2.0))}
    assert (table["h2"].rate, table["h3"].rate) == (30.0, 10.0)


def test_no_traffic_has_no_share() -> None:
    still = balancer([H2, H3, H2, H3], [7, 7, 7, 7])
    table = rows(still, sample(still, at=0.0), sample(still, at=1.0))
    assert [(r.rate, r.share) for r in table] == [(0.0, None), (0.0, None)]
