"""The live load balancer end to end: s1 on three veths, ./mycontroller.py, ./lbctl.py.

For each step (weights 3:1, drain h3, restore h3, weights 1:1, reset) real
traffic runs while lbctl changes the switch: 2,048 flows of real-shaped TCP
(IPv4 id, TCP seq and payload change per packet) from port 1, receivers on
ports 2 (h2) and 3 (h3).  Expected values come from the table state read back
from the switch and crcmod's CRC-16/ARC of each 5-tuple (netrun.ecmp), never
from lbctl's own code:

* every packet sent arrives (0 lost), at the host the state before or the
  state after the change predicts for its flow, and a flow that moves does so
  once (all its packets at the old host come before those at the new one);
* after the change every flow is where the state predicts; the flows' shares
  are within 2 percentage points of the weights;
* the flows that move are exactly those of the buckets that changed, and the
  buckets that changed are the fewest any table reaching the weights changes;
* over a quiet interval the direct counters per backend equal what its host
  received, packets and bytes.

Then ./mycontroller.py restores the tutorial's state exactly.  The same test
runs against BMv2's simple_switch_grpc where it is on PATH (at a rate BMv2
sustains on real-shaped traffic).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from procs import ENV, REPO, Namespaces, free_port, start_switch, stop, wait_port

from netrun.ecmp import flow_hash
from p4runtime_lib import P4Info, SwitchConnection, decode_table_entry
from p4runtime_lib.protos import p4runtime_pb2

FLOWS, SEED = 2048, 8  # flows with source ports drawn at random
BUCKETS = 256
HOSTS = {"10.0.2.2": "h2", "10.0.3.3": "h3"}
PORT_OF = {"h2": "b", "h3": "c"}
INFO = P4Info.load(REPO / "build/load_balance.p4.p4info.txtpb")
BMV2 = shutil.which("simple_switch_grpc")
RATES = {"ours": 20000, "bmv2": 1000}  # packets/s during a change
TRAFFIC = ("env", f"PYTHONPATH={ENV['PYTHONPATH']}", sys.executable, "-m", "live.traffic")


@dataclass
class Table:
    """s1's ecmp state as read back: count, base, select -> host, counters per select."""

    base: int
    count: int
    hosts: dict[int, str]
    packets: dict[int, int]
    bytes: dict[int, int]

    def host(self, sport: int) -> str:
        return self.hosts[self.base + flow_hash(sport) % self.count]

    def per_host(self, counts: dict[int, int]) -> dict[str, int]:
        out = dict.fromkeys(PORT_OF, 0)
        for select in range(self.base, self.base + self.count):
            out[self.hosts[select]] += counts.get(select, 0)
        return out


class Rig:
    """s1 (ours or BMv2) on namespaces PREFIX{a,b,c} = ports 1-3, gRPC on loopback."""

    def __init__(self, ns: Namespaces, address: str, rate: int) -> None:
        self.ns, self.address, self.rate = ns, address, rate

    def run(self, *command: str) -> str:
        result = subprocess.run([str(REPO / command[0]), *command[1:]], capture_output=True,
                                text=True, cwd=REPO, timeout=120, check=False)
        assert result.returncode == 0, f"{command}: {result.stderr}{result.stdout}"
        return result.stdout

    def mycontroller(self) -> str:
        return self.run("mycontroller.py", "--switch", f"s1={self.address}")

    def lbctl(self, *args: str) -> str:
        return self.run("lbctl.py", "--switch", self.address, *args)

    def table(self) -> Table:
        with SwitchConnection("s1", self.address, p4info=INFO) as sw:
            group = [decode_table_entry(INFO, e) for e in sw.read_table_entries("ecmp_group")]
            wanted = p4runtime_pb2.TableEntry(table_id=INFO.table("ecmp_nhop").preamble.id)
            wanted.counter_data.SetInParent()
            nhops = [e.table_entry for e in sw.read([wanted])]
        (vip,) = [g for g in group if g.match["hdr.ipv4.dstAddr"] == "10.0.0.1/32"]
        hosts, packets, octets = {}, {}, {}
        for entry in nhops:
            decoded = decode_table_entry(INFO, entry)
            select = int(decoded.match["meta.ecmp_select"])
            hosts[select] = HOSTS[decoded.params["nhop_ipv4"]]
            packets[select] = entry.counter_data.packet_count
            octets[select] = entry.counter_data.byte_count
        return Table(int(vip.params["ecmp_base"]), int(vip.params["ecmp_count"]), hosts,
                     packets, octets)

    @contextlib.contextmanager
    def receivers(self) -> Iterator[dict[str, dict]]:
        """Receivers on h2's and h3's ports; on exit, their summaries in the dict."""
        got: dict[str, dict] = {}
        processes = {host: self.ns.popen(self.ns.prefix + short, *TRAFFIC, "receive")
                     for host, short in PORT_OF.items()}
        try:
            for process in processes.values():
                assert process.stderr.readline().strip() == "receiving"
            yield got
            time.sleep(0.5)  # the switch's queues drain
        finally:
            for host, process in processes.items():
                process.terminate()
                out, err = process.communicate(timeout=30)
                got[host] = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}

    def send(self, rate: float, seconds: float) -> subprocess.Popen:
        return self.ns.popen(self.ns.prefix + "a", *TRAFFIC, "send", "--flows", str(FLOWS),
                             "--seed", str(SEED), "--rate", str(rate), "--seconds", str(seconds))


@contextlib.contextmanager
def s1_on_veths(tmp_path: Path, kind: str) -> Iterator[Rig]:
    ns = Namespaces(f"lv{os.getpid() % 10000}")
    process = None
    try:
        for short in "abc":
            ns.add(short)
        port = free_port()
        ifaces = [f"-i{n}@{name}" for n, name in enumerate(ns.names, 1)]
        if kind == "ours":
            process = start_switch([*ifaces, "--device-id", "0", "--no-p4"], port,
                                   log=tmp_path / "switch.log")
        else:
            with open(tmp_path / "switch.log", "w") as log:
                process = subprocess.Popen(
                    [BMV2, *ifaces, "--device-id", "0", "--no-p4", "--thrift-port",
                     str(free_port()), "--", "--grpc-server-addr", f"127.0.0.1:{port}"],
                    stdout=log, stderr=subprocess.STDOUT)
            wait_port(port, process)
        yield Rig(ns, f"127.0.0.1:{port}", RATES[kind])
    finally:
        if process is not None:
            stop(process)
        ns.close()


def flow_hosts(received: dict[str, dict]) -> dict[int, list[tuple[int, str]]]:
    """Per flow: (sequence number, host) of every packet received."""
    out: dict[int, list[tuple[int, str]]] = {}
    for host, summary in received.items():
        for sport, seqs in summary.get("flows", {}).items():
            out.setdefault(int(sport), []).extend((seq, host) for seq in seqs)
    return out


def want(weights: dict[str, int]) -> dict[str, int]:
    """Buckets per host for weights (an independent rounding: h2 first gets the rest)."""
    total = sum(weights.values())
    h3 = round(BUCKETS * weights["h3"] / total)
    return {"h2": BUCKETS - h3, "h3": h3}


STEPS = [  # lbctl's arguments, the weights they reach
    (("weights", "h2=3", "h3=1"), {"h2": 3, "h3": 1}),
    (("drain", "h3"), {"h2": 3, "h3": 0}),
    (("restore", "h3"), {"h2": 3, "h3": 1}),
    (("reset",), {"h2": 1, "h3": 1}),  # from 3:1: h3's home buckets go back
    (("weights", "h2=1", "h3=1"), {"h2": 1, "h3": 1}),  # the tutorial as 256 buckets
]


@pytest.mark.parametrize("kind", ["ours", pytest.param("bmv2", marks=pytest.mark.skipif(
    BMV2 is None, reason="simple_switch_grpc is not on PATH (BMv2 is in no registry)"))])
def test_live_changes_under_traffic(tmp_path: Path, kind: str) -> None:
    with s1_on_veths(tmp_path, kind) as rig:
        rig.mycontroller()
        tutorial = rig.table()
        assert tutorial.count == 2
        for args, weights in STEPS:
            before = rig.table()
            seconds = 3.0
            with rig.receivers() as received:
                sender = rig.send(rig.rate, seconds)
                started = time.monotonic()
                time.sleep(1.0)
                rig.lbctl(*args)
                settled = time.monotonic() - started + 0.2  # s into the sending
                out, err = sender.communicate(timeout=60)
                assert sender.returncode == 0, err
            sent = json.loads(out)
            sports = sent["sports"]
            after = rig.table()
            flows = flow_hosts(received)
            arrived = sum(len(v) for v in flows.values())
            misdelivered = moved_twice = 0
            for sport, packets in flows.items():
                allowed = {before.host(sport), after.host(sport)}
                misdelivered += sum(host not in allowed for _, host in packets)
                if len(allowed) == 2:
                    old, new = before.host(sport), after.host(sport)
                    last_old = max((s for s, h in packets if h == old), default=-1)
                    first_new = min((s for s, h in packets if h == new), default=1 << 62)
                    moved_twice += last_old > first_new
            moved = sum(before.host(s) != after.host(s)
                        for s in sports)
            changed = {b for b in range(max(before.count, after.count))
                       if before.hosts[before.base + b % before.count]
                       != after.hosts[after.base + b % after.count]}
            in_changed = sum(flow_hash(s) % max(before.count, after.count) in changed
                             for s in sports)
            shares = {h: sum(after.host(s) == h for s in sports)
                      / FLOWS for h in PORT_OF}
            final = {h: sum(after.hosts[after.base + b] == h for b in range(after.count))
                     for h in PORT_OF}
            print(f"{kind} lbctl {' '.join(args)}: sent {sent['sent']} at {sent['rate']:.0f} "
                  f"pkt/s, arrived {arrived}, misdelivered {misdelivered}; flows moved "
                  f"{moved} of {FLOWS}, buckets changed {len(changed)}; shares "
                  f"{ {h: f'{v:.1%}' for h, v in shares.items()} }")
            assert arrived == sent["sent"], f"{sent['sent'] - arrived} packets lost"
            assert misdelivered == 0 and moved_twice == 0
            assert moved == in_changed  # exactly the flows of the changed buckets
            if args[0] != "reset":
                assert after.count == BUCKETS and final == want(weights)
                have = {h: sum(before.hosts[before.base + b % before.count] == h
                               for b in range(BUCKETS)) for h in PORT_OF}
                fewest = sum(max(0, have[h] - final[h]) for h in PORT_OF)
                assert len(changed) == fewest
                total = sum(weights.values())
                for host, share in shares.items():
                    assert abs(share - weights[host] / total) <= 0.02, (host, share)
            else:
                assert after.count == 2 and after.hosts == tutorial.hosts
            late = [(sport, host) for sport, packets in flows.items()  # after the change
                    for seq, host in packets if seq > settled * sent["rate"]]
            assert late and all(host == after.host(sport) for sport, host in late)

            # The counters over a quiet interval: exactly what each host received.
            start = rig.table()
            with rig.receivers() as quiet:
                sender = rig.send(rig.rate / 4, 1.0)
                out, err = sender.communicate(timeout=60)
            end = rig.table()
            status = json.loads(rig.lbctl("status", "--json", "--interval", "0"))
            shown = {b["name"]: (b["packets"], b["bytes"]) for b in status["backends"]}
            assert shown == {h: (end.per_host(end.packets)[h], end.per_host(end.bytes)[h])
                             for h in PORT_OF}
            for host in PORT_OF:
                delta_packets = end.per_host(end.packets)[host] - \
                    start.per_host(start.packets)[host]
                delta_bytes = end.per_host(end.bytes)[host] - start.per_host(start.bytes)[host]
                assert delta_packets == quiet[host]["received"], (host, delta_packets)
                assert delta_bytes == 64 * quiet[host]["received"], (host, delta_bytes)

        rig.mycontroller()  # the tutorial's state, exactly
        again = rig.table()
        assert (again.base, again.count, again.hosts) == (0, 2, tutorial.hosts)
        assert sum(again.packets.values()) == 0  # a fresh pipeline: counters from 0


def lbctl_failure(rig: Rig, *args: str) -> str:
    """lbctl's stderr for a command that must fail with one line, exit 1."""
    result = subprocess.run([str(REPO / "lbctl.py"), "--switch", rig.address, *args],
                            capture_output=True, text=True, cwd=REPO, timeout=60, check=False)
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    return result.stderr.strip()


def test_watch_dry_run_and_refusals(tmp_path: Path) -> None:
    with s1_on_veths(tmp_path, "ours") as rig:
        rig.mycontroller()
        before = rig.table()
        plan = rig.lbctl("weights", "h2=3", "h3=1", "--dry-run")
        assert plan.count("INSERT MyIngress.ecmp_nhop") == BUCKETS - 2
        assert plan.count("MODIFY MyIngress.ecmp_nhop") == 64
        assert rig.table() == before  # nothing written
        assert "nothing to change" in rig.lbctl("restore", "h3")  # h3 is not drained
        assert rig.table() == before

        chart = tmp_path / "shares.png"
        with rig.receivers():
            sender = rig.send(2000, 4.0)
            watch = rig.lbctl("watch", "--duration", "3", "--plot", str(chart))
            sender.communicate(timeout=60)
        frames = [line for line in watch.splitlines() if line.lstrip().startswith("h2")]
        assert len(frames) >= 2
        predicted = sum(before.host(s) == "h2" for s in range(1024, 65536)) / 64512
        share = float(frames[-1].split("]")[1].split("%")[0]) / 100
        assert abs(share - predicted) < 0.05, (frames[-1], predicted)
        assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

        assert "unknown backend 'h9'" in lbctl_failure(rig, "drain", "h9")
        assert "weight above 0" in lbctl_failure(rig, "weights", "h2=0", "h3=0")
        with SwitchConnection("other", rig.address, election_id=(0, 99), p4info=INFO) as other:
            other.become_primary()
            assert "another controller is primary" in lbctl_failure(rig, "drain", "h3")
        after = rig.table()
        assert (after.base, after.count, after.hosts) == (before.base, before.count, before.hosts)
        result = subprocess.run([str(REPO / "lbctl.py"), "--switch", "127.0.0.1:1", "--timeout",
                                 "1", "status"], capture_output=True, text=True, timeout=60,
                                check=False)
        assert result.returncode == 1 and "no P4Runtime server" in result.stderr
