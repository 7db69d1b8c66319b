"""The live load balancer under load: a weight change and a drain at 20 kpps.

s1 (ours, and BMv2 where on PATH) on three veths, programmed by
./mycontroller.py; 2,048 flows of real-shaped TCP (per-packet IPv4 id, TCP seq,
payload) from port 1 while ./lbctl.py changes the weights 1:1 -> 3:1 and then
2:1 and then drains h3.  For each change: packets lost, flows moved, the
fewest any table could move, and what changing ``ecmp_count`` alone would
move (weights as one select per unit: 3:1 is h2 h2 h2 h3, crc16 % 4).  Then
how long ``lbctl status`` takes (the command, and the read of both tables).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

from common import ENV, REPO, Figure, free_ports, median, start_switch, stop
from live.control import LiveSwitch

from netrun.ecmp import flow_hash
from netrun.network import ask_help
from p4runtime_lib import P4Info, SwitchConnection

FLOWS, SEED, SECONDS = 2048, 8, 3.0
RATES = {"ours": 20000, "BMv2": 1000}
HOSTS = ("h2", "h3")
STEPS = (("weights 1:1 -> 3:1", ("weights", "h2=3", "h3=1"), {"h2": 3, "h3": 1}),
         ("weights 3:1 -> 2:1", ("weights", "h2=2", "h3=1"), {"h2": 2, "h3": 1}),
         ("drain h3", ("drain", "h3"), {"h2": 1, "h3": 0}))
TRAFFIC = ("env", f"PYTHONPATH={ENV['PYTHONPATH']}", sys.executable, "-m", "live.traffic")


def sh(*command: str) -> None:
    subprocess.run(command, capture_output=True, check=False)


class Lab:
    """Namespaces PREFIX{a,b,c}, each with eth0 and a veth PREFIX{a,b,c} outside."""

    def __init__(self) -> None:
        self.prefix = f"lb{os.getpid() % 10000}"
        self.names = [self.prefix + short for short in "abc"]

    def up(self) -> None:
        for name in self.names:
            sh("ip", "netns", "add", name)
            sh("ip", "link", "add", name, "type", "veth", "peer", "name", "eth0", "netns", name)
            sh("ip", "link", "set", name, "up")
            sh("ip", "netns", "exec", name, "ip", "link", "set", "eth0", "up")
            for side in ((), ("ip", "netns", "exec", name)):
                sh(*side, "ethtool", "-K", "eth0" if side else name, "rx", "off", "tx", "off",
                   "sg", "off")
            sh("ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")

    def popen(self, index: int, *args: str) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", self.names[index], *TRAFFIC, *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def down(self) -> None:
        for name in self.names:
            sh("ip", "link", "del", name)
            sh("ip", "netns", "del", name)


def tool(address: str, *args: str) -> float:
    """Run ./lbctl.py (or ./mycontroller.py for 'program'); seconds it took."""
    command = ([str(REPO / "mycontroller.py"), "--switch", f"s1={address}"] if args == ("program",)
               else [str(REPO / "lbctl.py"), "--switch", address, *args])
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=False,
                            timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {result.stderr.strip()}")
    return time.perf_counter() - start


def hosts_of(live: LiveSwitch, sports: list[int]) -> dict[int, str]:
    """Where s1 sends each flow now: read back, crc16 of the 5-tuple."""
    balancer = live.read()
    names = {hop: name for name, hop in balancer.backends.items()}
    return {s: names[balancer.buckets[balancer.base + flow_hash(s) % balancer.count].next_hop]
            for s in sports}


def change_under_traffic(lab: Lab, address: str, live: LiveSwitch, rate: int,
                         *args: str) -> dict:
    """One lbctl change in the middle of SECONDS of traffic."""
    receivers = [lab.popen(index, "receive") for index in (1, 2)]
    for process in receivers:
        process.stderr.readline()
    sender = lab.popen(0, "send", "--flows", str(FLOWS), "--seed", str(SEED), "--rate",
                       str(rate), "--seconds", str(SECONDS))
    time.sleep(1.0)
    took = tool(address, *args)
    out, _ = sender.communicate(timeout=60)
    time.sleep(0.5)
    got = 0
    for process in receivers:
        process.terminate()
        got += json.loads(process.communicate(timeout=30)[0])["received"]
    sent = json.loads(out)
    return {"sent": sent["sent"], "rate": sent["rate"], "lost": sent["sent"] - got,
            "sports": sent["sports"], "seconds": took}


def naive(weights: dict[str, int], sport: int) -> str:
    """Where weights made with ``ecmp_count`` alone send a flow: one select per unit of
    weight, in host order (3:1 is h2 h2 h2 h3, 1:1 the tutorial's h2 h3)."""
    selects = [h for h in HOSTS for _ in range(weights[h])]
    return selects[flow_hash(sport) % len(selects)]


def measure(kind: str, executable: tuple[str, ...] | None, figures: list[Figure],
            details: dict) -> None:
    """The steps under traffic on a new lab, removed afterwards whatever happens (a
    switch that does not start included)."""
    lab = Lab()
    lab.up()
    try:
        measure_on(lab, kind, executable, figures, details)
    finally:
        lab.down()


def measure_on(lab: Lab, kind: str, executable: tuple[str, ...] | None,
               figures: list[Figure], details: dict) -> None:
    """The switch (ours, or ``executable``) on ``lab``'s veths through STEPS."""
    port = free_ports(2)
    ifaces = [f"-i{n}@{name}" for n, name in enumerate(lab.names, 1)]
    # BMv2's Thrift server off its default 9090, where the build has one (ask_help: a
    # --without-thrift build rejects the flag)
    thrift = executable and "--thrift-port" in (ask_help(list(executable), 10) or ())
    extra = ["--thrift-port", str(port + 1)] if thrift else []
    process = start_switch([*ifaces, "--device-id", "0", "--no-p4", *extra], port,
                           *([executable] if executable else []))
    address = f"127.0.0.1:{port}"
    info = P4Info.load(REPO / "build/load_balance.p4.p4info.txtpb")
    live = LiveSwitch(SwitchConnection("s1", address, p4info=info), info, "10.0.0.1",
                      {"10.0.2.2": "h2", "10.0.3.3": "h3"})
    rate = RATES[kind]
    try:
        tool(address, "program")
        weights = {"h2": 1, "h3": 1}
        for what, args, new in STEPS:
            before = hosts_of(live, list(range(1024, 65536)))  # the sender draws from these
            result = change_under_traffic(lab, address, live, rate, *args)
            sports = result["sports"]
            after = hosts_of(live, sports)
            moved = sum(before[s] != after[s] for s in sports)
            counts = {h: (sum(before[s] == h for s in sports), sum(after[s] == h for s in sports))
                      for h in HOSTS}
            fewest = sum(max(0, b - a) for b, a in counts.values())
            alone = sum(naive(weights, s) != naive(new, s) for s in sports)
            weights = new
            details[f"live {kind} {what}"] = {k: v for k, v in result.items() if k != "sports"} | {
                "moved": moved, "fewest": fewest, "ecmp_count_alone": alone}
            figures.append(Figure("live", f"{kind} {what}: flows moved of {FLOWS}", moved,
                                  "flows", "fewest possible", fewest,
                                  "= fewest", moved == fewest))
            figures.append(Figure("live", f"{kind} {what}: ecmp_count alone would move",
                                  alone, "flows", "lbctl's bucket table", moved))
            figures.append(Figure("live", f"{kind} {what}: packets lost at "
                                          f"{result['rate']:,.0f} pkt/s", result["lost"],
                                  "packets", "sent", result["sent"], "0", result["lost"] == 0))
        command = [tool(address, "status", "--interval", "0") for _ in range(5)]
        reads = []
        for _ in range(20):
            start = time.perf_counter()
            live.read()
            reads.append(time.perf_counter() - start)
        figures.append(Figure("live", f"{kind} ./lbctl.py status (whole command)",
                              median(command) * 1000, "ms", "", None))
        figures.append(Figure("live", f"{kind} status read of 256 buckets + counters",
                              median(reads) * 1000, "ms", "", None))
    finally:
        live.connection.close()
        stop(process)


def run(figures: list[Figure], details: dict) -> None:
    measure("ours", None, figures, details)
    bmv2 = shutil.which("simple_switch_grpc")
    if bmv2:
        measure("BMv2", (bmv2,), figures, details)
    else:
        details["live BMv2"] = "simple_switch_grpc not on PATH: not measured"


if __name__ == "__main__":
    import common

    results: list[Figure] = []
    extra: dict = {}
    run(results, extra)
    print(common.table(results))
    print(json.dumps(extra, indent=1))
