"""What lbctl prints: the status table, the live bars, the JSON and the chart."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .control import Sample
from .state import Balancer

BAR = 40  # characters for 100 %


@dataclass
class Row:
    """One backend between two samples."""

    name: str
    weight: int
    buckets: int
    target: float  # share the weights ask for
    packets: int
    bytes: int
    rate: float  # packets/s between the samples
    share: float | None  # of the packets between the samples (None: no traffic)


def rows(balancer: Balancer, before: Sample | None, now: Sample) -> list[Row]:
    """Per-backend figures; rates and shares from ``before`` to ``now``."""
    held = dict.fromkeys(balancer.backends, 0)
    for name in balancer.assignment():
        held[name] += 1
    total_weight = sum(balancer.weights.values()) or 1
    seconds = now.at - before.at if before is not None else 0.0
    deltas = now.since(before)
    counted = sum(deltas.values())
    return [Row(name, balancer.weights.get(name, 0), held[name],
                balancer.weights.get(name, 0) / total_weight, now.packets[name],
                now.bytes[name], deltas[name] / seconds if seconds > 0 else 0.0,
                deltas[name] / counted if counted else None)
            for name in balancer.backends]


def status_lines(balancer: Balancer, table: Sequence[Row], seconds: float) -> list[str]:
    """The ``status`` table."""
    kind = "bucket table" if balancer.count > len(balancer.backends) else "tutorial split"
    lines = [f"s1 {balancer.prefix}: ecmp_base {balancer.base}, ecmp_count {balancer.count} "
             f"({kind})",
             f"{'backend':8} {'weight':>6} {'buckets':>7} {'target':>7} {'packets':>10} "
             f"{'bytes':>12} {'pkt/s':>9} {'share':>7}"]
    for row in table:
        share = f"{row.share:7.1%}" if row.share is not None else "      -"
        lines.append(f"{row.name:8} {row.weight:6d} {row.buckets:7d} {row.target:7.1%} "
                     f"{row.packets:10d} {row.bytes:12d} {row.rate:9.0f} {share}")
    if balancer.saved:
        kept = ", ".join(f"{n}={w}" for n, w in balancer.saved.items())
        lines.append(f"drained (weight kept for restore): {kept}")
    lines.append(f"(packets and bytes: direct counters of the buckets each backend holds; "
                 f"rate and share over the last {seconds:.1f} s)")
    return lines


def status_json(balancer: Balancer, table: Sequence[Row], seconds: float) -> dict:
    """The ``status --json`` document."""
    return {
        "group": {"prefix": balancer.prefix, "ecmp_base": balancer.base,
                  "ecmp_count": balancer.count},
        "interval": seconds,
        "backends": [{"name": r.name, "weight": r.weight, "buckets": r.buckets,
                      "target": r.target, "packets": r.packets, "bytes": r.bytes,
                      "pps": r.rate, "share": r.share,
                      "next_hop": {"dmac": f"{balancer.backends[r.name].dmac:012x}",
                                   "ipv4": balancer.backends[r.name].address,
                                   "port": balancer.backends[r.name].port}}
                     for r in table],
        "saved": balancer.saved,
    }


def bars(table: Sequence[Row], clock: str) -> list[str]:
    """One ``watch`` frame: packets/s and share per backend as bars."""
    total = sum(r.rate for r in table)
    lines = [f"{clock}  {total:8.0f} pkt/s to the virtual address"]
    for row in table:
        share = row.share or 0.0
        filled = round(share * BAR)
        marker = min(BAR - 1, round(row.target * BAR))
        bar = ["#" if i < filled else "." for i in range(BAR)]
        bar[marker] = "|" if bar[marker] == "." else "+"
        lines.append(f"  {row.name:4} [{''.join(bar)}] {share:6.1%} {row.rate:8.0f} pkt/s "
                     f"(weight {row.weight}, target {row.target:.1%})")
    return lines


@dataclass
class History:
    """Shares over time, for the chart: one entry per interval between two samples."""

    times: list[float] = field(default_factory=list)  # where each interval starts
    end: float = 0.0  # where the last one ends
    shares: dict[str, list[float]] = field(default_factory=dict)
    targets: dict[str, list[float]] = field(default_factory=dict)

    def add(self, start: float, end: float, table: Sequence[Row]) -> None:
        """The shares observed from ``start`` to ``end`` and the targets at ``end``."""
        self.times.append(start)
        self.end = end
        for row in table:
            self.shares.setdefault(row.name, []).append(row.share or 0.0)
            self.targets.setdefault(row.name, []).append(row.target)


def plot(history: History, path: str, title: str = "share of the traffic per backend") -> None:
    """A PNG of the shares (solid) and the weights' targets (dashed) over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4.6))
    start = history.times[0] if history.times else 0.0
    seconds = [t - start for t in [*history.times, history.end]]
    for name, shares in history.shares.items():
        line, = axes.plot(seconds, [100 * s for s in [*shares, shares[-1]]],
                          drawstyle="steps-post", label=f"{name} observed")
        targets = history.targets[name]
        axes.plot(seconds, [100 * s for s in [*targets, targets[-1]]], linestyle="--",
                  drawstyle="steps-post", color=line.get_color(), label=f"{name} target")
    axes.set_xlabel("seconds")
    axes.set_ylabel("share of packets (%)")
    axes.set_ylim(-2, 102)
    axes.set_title(title)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=4, frameon=False)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
