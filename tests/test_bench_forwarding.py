"""bench/forwarding.py's figures from made-up probe delays: the overload-recovery
time, and the ladder's loss-free rate of a slow switch found rather than floored."""

from __future__ import annotations

import random
import sys

import pytest
from procs import REPO

sys.path.insert(0, str(REPO / "bench"))
import forwarding  # noqa: E402

END = 5_000_000_000  # the sender's end, ns


def probes(backlog: int, late_share: float, count: int = 400,
           seed: int = 1) -> list[tuple[int, float | None]]:
    """1 kpps probes from END: ``backlog`` of them 20 ms late, then idle ones of which
    ``late_share`` take 1-5 ms (a shared VM) and 1 % are lost."""
    rng = random.Random(seed)
    out: list[tuple[int, float | None]] = [(END - 1_000_000, 20_000.0)]  # before the end
    for i in range(count):
        if i < backlog:
            delay: float | None = 20_000.0
        elif rng.random() < 0.01:
            delay = None
        else:
            delay = rng.uniform(1000, 5000) if rng.random() < late_share else 150.0
        out.append((END + i * 1_000_000, delay))
    return out


@pytest.mark.parametrize("backlog", [0, 30, 250])
def test_recovery_is_when_the_backlog_ends_whatever_the_noise(backlog: int) -> None:
    """4 % of the idle probes late or lost: recovery within 20 ms of the backlog's end
    (later only while a random stretch has more than 10 late in 100)."""
    for seed in range(5):
        got = forwarding.recovery_ms(probes(backlog, 0.03, seed=seed), END)
        assert backlog <= got <= backlog + 20, seed


def test_no_recovery_while_many_probes_stay_late() -> None:
    assert forwarding.recovery_ms(probes(0, 0.3), END) == float("inf")
    assert forwarding.recovery_ms(probes(400, 0.0), END) == float("inf")
