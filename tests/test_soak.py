"""Forwarding under control-plane load (issue 10 point 3), and the soak's 60 s version
(point 5): bench/soak.py's ``run`` with the switch process on veths, real-shaped
traffic at 5,000 packets/s over 1,000 flows, while 1,000-entry batches are written
and deleted back to back, every table is read every 100 ms, a second controller
connects every second, 100 idle streams stay open, and mycontroller.py's steps
re-program s1 ten times (+1 in the warm-up).

Every packet must arrive once, at the host crc16 (crcmod) picks for its flow,
rewritten as the rules say; packets dropped between a VERIFY_AND_COMMIT push and
the rules' write are counted apart, and the pushes' forwarding gaps must stay
within 50 ms (all but one: one may miss it on a loaded shared machine); switch
RSS within 5 MiB of its value after the warm-up.

The ledger that decides "lost" is tested on its own first, with made-up arrivals.
"""

from __future__ import annotations

import os
import sys

import pytest
from procs import REPO

sys.path.insert(0, str(REPO / "bench"))
import soak  # noqa: E402

from p4switch.runtime.service import WORKERS  # noqa: E402

SECONDS, PUSHES = 60.0, 10


def arrivals(host: str, packets: list[tuple[float, int, int]], ok: bool = True) -> bytes:
    """RECORDs as a receiver writes them: (time, seq, sport) at ``host``."""
    return b"".join(soak.RECORD.pack(t, seq, sport, ok) for t, seq, sport in packets)


def test_ledger_tells_push_windows_from_loss() -> None:
    sports = soak.flow_ports(8, 1)
    hosts = {s: soak.expected_host(s) for s in sports}
    other = {"h2": "h3", "h3": "h2"}
    ledger = soak.Ledger(1000, hosts)
    push = soak.Push(start=1.2995, pushed=1.305, end=1.3105, warmup=False)
    missing = {50, 51, *range(300, 310), *range(395, 400)}
    for seq in range(400):  # seq arrives at 1 s + seq ms at its flow's host (100: not)
        sport = sports[seq % 8]
        host = hosts[sport] if seq != 100 else other[hosts[sport]]
        if seq not in missing:
            ledger.take(host, arrivals(host, [(1 + seq / 1000, seq, sport)]))
    ledger.take(hosts[sports[0]], arrivals(hosts[sports[0]], [(1.4, 0, sports[0])]))  # twice
    ledger.take("h2", arrivals("h2", [(1.4, 1000, sports[0]), (1.4, 7, 3)]))  # not sent
    ledger.settle(400, [push])
    assert (ledger.lost, ledger.lost_runs) == (2, [(50, 2)])  # no push near 50, 51
    assert (ledger.push_lost, push.lost) == (10, 10)  # 299 came at 1.299, 310 at 1.310
    assert ledger.settled == 395  # nothing came after 395..399: not decided yet
    assert (ledger.misdelivered, ledger.duplicated, ledger.unknown) == (1, 1, 2)
    assert ledger.push_gap(push) == pytest.approx(0.011)
    ledger.scan_gaps(1.399, [push])
    assert ledger.largest_other_gap == pytest.approx(0.003)  # 49 -> 52


@pytest.mark.parametrize("gaps, fails", [
    ((0.010, 0.020, 0.049), False), ((0.010, 0.020, 0.120), False),  # one late push allowed
    ((0.010, 0.060, 0.070), True), ((0.051, 0.052, 0.010), True)])
def test_push_gaps_above_the_target_fail_the_soak(gaps: tuple[float, ...], fails: bool) -> None:
    config = soak.Config(seconds=1.0, pushes=3)

    def report(values: tuple[float, ...]) -> soak.Report:
        return soak.Report(config, pushes=[soak.Push(1.0, 1.0, 1.0, False, gap=g)
                                           for g in values])

    extra = len(report(gaps).failures()) - len(report((0.01, 0.01, 0.01)).failures())
    assert extra == (1 if fails else 0)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and veths")
def test_forwarding_under_control_plane_load_for_60_s() -> None:
    config = soak.Config(seconds=SECONDS, pushes=PUSHES, report_every=20.0)
    report = soak.run(config)  # prints what it tried, a line per 20 s, the summary
    measured = [p for p in report.pushes if not p.warmup]
    assert report.lost == 0, report.lost_runs[:10]
    assert report.misdelivered == report.not_rewritten == report.duplicated == 0
    assert report.received + report.push_lost == report.sent
    assert report.sent >= 0.95 * config.rate * (config.warmup + SECONDS)
    assert report.flows_seen == config.flows
    assert len(measured) == PUSHES and len(report.pushes) == PUSHES + 1
    gaps = sorted(p.gap for p in report.pushes if p.gap is not None)
    print(f"push gaps (ms): {[round(g * 1000, 1) for g in gaps]}")
    assert len(gaps) == len(report.pushes)
    # the target is 50 ms; on a shared 2-core machine one push may miss it (see README)
    assert gaps[len(gaps) // 2] <= config.gap_target
    assert sum(1 for g in gaps if g > config.gap_target) <= 1
    assert report.rss_growth_mib < config.rss_limit_mib
    assert report.threads_after <= report.threads_before + WORKERS  # the pool, lazily
    # the loads ran, all the time
    assert report.batches >= config.seconds  # at least one insert+delete pair a second
    assert max(report.entities_per_read) == config.batch + 5  # a read saw a whole batch
    assert report.reads >= 0.9 * (config.warmup + SECONDS) / config.read_interval
    assert report.second_connects >= 0.9 * (config.warmup + SECONDS) / config.second_interval
    assert report.idle_open == config.idle_streams
    assert not report.errors, report.errors
    assert not report.failures()
