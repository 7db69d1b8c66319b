"""``make demo-live``: the live load balancer's story, without typing anything.

Mininet with s1-s3, ./mycontroller.py, then steady real-shaped traffic of
1,000 flows from h1 to 10.0.0.1 while ./lbctl.py steps through weights 1:1 ->
3:1 -> drain h3 -> restore h3.  For each step it prints the share each host
received next to the target, the flows that moved next to the fewest that
could have, and the packets lost or misdelivered while the change was applied
(must be 0), then writes a chart of the shares over time.  Where every packet
should go is computed from the table state read back from s1 and the crc16 of
each flow's 5-tuple (ecmp.py), independently of lbctl.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from live.control import LiveSwitch
from live.state import Balancer
from live.view import History, Row, plot

from p4runtime_lib import P4Info, SwitchConnection

from .demo import run_controller
from .ecmp import flow_hash
from .network import Network, NetworkError

REPO = Path(__file__).resolve().parents[2]
STEPS = (  # (what, lbctl arguments, weights after)
    ("weights 3:1", ("weights", "h2=3", "h3=1"), {"h2": 3, "h3": 1}),
    ("drain h3", ("drain", "h3"), {"h2": 3, "h3": 0}),
    ("restore h3", ("restore", "h3"), {"h2": 3, "h3": 1}),
)
BACKENDS = ("h2", "h3")
GUARD = 0.25  # seconds either side of a change that count as "while it is applied"


@dataclass
class Window:
    """One steady period: its weights, the table state, and the sequence numbers in it."""

    name: str
    weights: dict[str, int]
    balancer: Balancer
    first: int  # sequence numbers (the sender's global packet counter)
    last: int

    def host(self, sport: int) -> str:
        """Where the table sends a flow (crc16 of its 5-tuple, base + hash % count)."""
        balancer = self.balancer
        select = balancer.base + flow_hash(sport) % balancer.count
        hop = balancer.buckets[select].next_hop
        return next(name for name, known in balancer.backends.items() if known == hop)


def _traffic(network: Network, host: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "utils")}
    return network.host(host).popen([sys.executable, "-m", "live.traffic", *args],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    cwd=str(REPO), text=True, env=env)


def _lbctl(address: str, *args: str) -> str:
    result = subprocess.run([str(REPO / "lbctl.py"), "--switch", address, *args],
                            capture_output=True, text=True, cwd=REPO, timeout=60, check=False)
    if result.returncode != 0:
        raise NetworkError(f"lbctl {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def run_live_demo(network: Network, flows: int = 1000, rate: float = 2000.0,
                  hold: float = 4.0, chart: Path | None = None) -> int:
    """The whole live demonstration on a network that is not started yet; exit status."""
    chart = chart or network.options.log_dir / "demo-live.png"
    receivers: dict[str, subprocess.Popen] = {}
    sender = None
    try:
        print(f"Starting the network ({' '.join(network.options.executable)}) ...", flush=True)
        network.start()
        controller = run_controller(network)
        if controller.returncode != 0:
            print(f"error: mycontroller.py failed: {controller.stderr.strip()}", file=sys.stderr)
            return 1
        print("./mycontroller.py: the tutorial's rules are on s1-s3", flush=True)
        address = network.grpc_address("s1")
        info = P4Info.load(REPO / "build/load_balance.p4.p4info.txtpb")
        names = {spec.ip.split("/")[0]: name for name, spec in network.topology.hosts.items()}
        live = LiveSwitch(SwitchConnection("s1", address, p4info=info), info, "10.0.0.1",
                          names)
        for host in BACKENDS:
            receivers[host] = _traffic(network, host, "receive")
            if receivers[host].stderr.readline().strip() != "receiving":
                raise NetworkError(f"the receiver on {host} did not start")
        seconds = hold * (len(STEPS) + 1) + 1.0
        print(f"h1 sends {flows} flows to 10.0.0.1 at {rate:.0f} packets/s for "
              f"{seconds:.0f} s (IPv4 id, TCP seq and payload change per packet)", flush=True)
        sender = _traffic(network, "h1", "send", "--flows", str(flows), "--seed", "1",
                          "--rate", str(rate), "--seconds", str(seconds))
        if sender.stderr.readline().strip() != "sending":
            raise NetworkError("the sender on h1 did not start")
        start = time.monotonic()  # the sender's sequence number 0
        guard = int(GUARD * rate)  # packets in flight around a change count as "during"
        windows = [Window("weights 1:1 (tutorial)", {"h2": 1, "h3": 1}, live.read(), 0, 0)]
        changes = []
        for number, (name, args, weights) in enumerate(STEPS, 1):
            time.sleep(max(0.0, start + hold * number - time.monotonic()))
            began = time.monotonic() - start
            _lbctl(address, *args)
            ended = time.monotonic() - start
            low, high = int(began * rate) - guard, int(ended * rate) + guard
            windows[-1].last = low - 1
            changes.append((low, high))
            print(f"  t={began:4.1f} s  ./lbctl.py {' '.join(args)}  ({ended - began:.2f} s)",
                  flush=True)
            windows.append(Window(name, weights, live.read(), high + 1, 0))
        out, err = sender.communicate(timeout=seconds + 30)
        if sender.returncode != 0:
            raise NetworkError(f"the sender on h1 failed: {err.strip()}")
        sent = json.loads(out)
        windows[-1].last = sent["sent"]
        time.sleep(1.0)
        received = {host: _stop(process) for host, process in receivers.items()}
        live.connection.close()
        return report(windows, changes, sent, received, rate, chart)
    except NetworkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        for process in [*receivers.values(), *([sender] if sender else [])]:
            if process.poll() is None:
                process.kill()
                process.wait()
        network.stop()


def _stop(process: subprocess.Popen) -> dict:
    process.terminate()
    out, err = process.communicate(timeout=30)
    if not out.strip():
        raise NetworkError(f"a receiver printed nothing: {err.strip()[-200:]}")
    return json.loads(out.strip().splitlines()[-1])


def report(windows: list[Window], changes: list[tuple[int, int]], sent: dict,
           received: dict[str, dict], rate: float, chart: Path) -> int:
    """Print each step; 0 if nothing was lost or misdelivered."""
    packets = []  # (seq, sport, host)
    for host, summary in received.items():
        for sport, seqs in summary["flows"].items():
            packets += [(seq, int(sport), host) for seq in seqs]
    packets.sort()
    lost = sent["sent"] - len(packets)
    sports = sent["sports"]
    ok = lost == 0
    print(f"\nsent {sent['sent']} packets at {sent['rate']:.0f}/s, received {len(packets)} "
          f"(lost {lost})")
    print(f"{'step':24} {'h2 share':>9} {'target':>7} {'h3 share':>9} {'target':>7} "
          f"{'flows moved':>12} {'fewest':>7} {'lost':>5} {'misdelivered':>13}")
    for index, window in enumerate(windows):
        inside = [(sport, host) for seq, sport, host in packets
                  if window.first <= seq <= window.last]
        share = {h: sum(host == h for _, host in inside) / max(1, len(inside)) for h in BACKENDS}
        total = sum(window.weights.values())
        misplaced = sum(host != window.host(sport) for sport, host in inside)
        moved = fewest = lost_here = wrong = 0
        if index:
            old = windows[index - 1]
            low, high = changes[index - 1]
            moved = sum(old.host(s) != window.host(s) for s in sports)
            before = {h: sum(old.host(s) == h for s in sports) for h in BACKENDS}
            after = {h: sum(window.host(s) == h for s in sports) for h in BACKENDS}
            fewest = sum(max(0, before[h] - after[h]) for h in BACKENDS)
            during = [(sport, host) for seq, sport, host in packets if low <= seq <= high]
            lost_here = (high - low + 1) - len(during) if high < sent["sent"] else 0
            wrong = sum(host not in (old.host(sport), window.host(sport))
                        for sport, host in during)
        ok &= misplaced == 0 and wrong == 0 and lost_here == 0
        print(f"{window.name:24} {share['h2']:9.1%} {window.weights['h2'] / total:7.1%} "
              f"{share['h3']:9.1%} {window.weights['h3'] / total:7.1%} "
              f"{moved:12d} {fewest:7d} {lost_here:5d} {wrong + misplaced:13d}")
    history = History()
    bin_size = max(1, int(rate / 2))
    for first in range(0, sent["sent"], bin_size):
        chunk = [host for seq, _sport, host in packets if first <= seq < first + bin_size]
        window = windows[sum(low <= first for low, _high in changes)]
        total = sum(window.weights.values())
        history.add(first / rate, min(first + bin_size, sent["sent"]) / rate, [
            Row(h, window.weights[h], 0, window.weights[h] / total, 0, 0, 0.0,
                chunk.count(h) / len(chunk) if chunk else 0.0) for h in BACKENDS])
    chart.parent.mkdir(parents=True, exist_ok=True)
    plot(history, str(chart), "h1 -> 10.0.0.1: share per backend while lbctl steers s1")
    print(f"\nchart: {chart}")
    print("Live demo passed: every change hitless (0 lost, 0 misdelivered), the fewest "
          "flows moved." if ok and lost == 0 else "Live demo FAILED.", flush=True)
    return 0 if ok and lost == 0 else 1
