"""Forwarding benchmark: 64-byte TCP frames of many flows through s1 (load_balance,
two ECMP members) between network namespaces, next to a Linux bridge on the
same veths.

The sender is trafgen (netsniff-ng, TX ring; a 16 KiB ring keeps its bursts near
the requested rate) in namespace S; the receivers are
namespaces R2 and R3, on ports 2 and 3.  Throughput: the highest offered rate
with < 0.1 % loss over 3 s, counted on the receivers' interfaces.  Latency: a
probe sends 1,000 frames/s with a sequence number and timestamps them against
CLOCK_MONOTONIC on both sides (the clock is shared by all namespaces).  The probe's
IPv4 header checksum is right: with br_netfilter loaded, the bridge drops bad ones.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import BUILD_JSON, BUILD_P4INFO, P4SWITCH, Figure, free_ports, sh, start_switch, stop

from p4runtime_lib import P4Info, SwitchConnection, insert, table_entry

RATES = [1_000, 5_000, 10_000, 25_000, 50_000, 75_000, 100_000, 125_000, 150_000, 200_000,
         250_000, 300_000, 400_000]
REFINE = 2  # bisections between the best rung and the first lossy one
SECONDS = 3
LOSS_FREE = 0.001
PREFIX = "bfw"
TRAFGEN_CONF = """{ eth(da=ff:ff:ff:ff:ff:ff, sa=08:00:00:00:01:01, type=0x0800),
  ipv4(saddr=10.0.1.1, daddr=10.0.0.1, proto=6, ttl=64),
  tcp(sp=dinc(10000, 11023, 1), dp=1234), fill(0x00, 6) }
"""
PROBE_SEND = """
import socket, struct, sys, time, json
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(("eth0", 0))
ip = bytearray.fromhex("450000" "2e" "0001000040" "06" "0000" "0a000101" "0a000001")
total = sum(struct.unpack("!10H", ip))
total = (total & 0xFFFF) + (total >> 16)
ip[10:12] = struct.pack("!H", ~((total & 0xFFFF) + (total >> 16)) & 0xFFFF)
head = bytes.fromhex("ffffffffffff080000000101" "0800") + bytes(ip)
sent = {}
for seq in range(%(count)d):
    sport = 20000 + seq %% 64
    frame = head + struct.pack("!HHIIBBHHH", sport, 1234, seq, 0, 0x50, 0x02, 8192, 0, 0)
    frame += struct.pack("!I", seq) + bytes(2)
    sent[seq] = time.perf_counter_ns()
    s.send(frame)
    time.sleep(%(gap)f)
print(json.dumps(sent))
"""
PROBE_RECV = """
import socket, struct, select, time, json
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3)); s.bind(("eth0", 3))
s.settimeout(0.2)
got = {}
print("ready", flush=True)
end = time.monotonic() + %(seconds)f
while time.monotonic() < end:
    try:
        frame = s.recv(2048)
    except socket.timeout:
        continue
    now = time.perf_counter_ns()
    if len(frame) >= 58 and frame[12:14] == b"\\x08\\x00" and frame[23] == 6:
        seq = struct.unpack("!I", frame[54:58])[0]
        got[seq] = now
print(json.dumps(got))
"""


class Lab:
    """Namespaces S, R2, R3 with veths to the root namespace (the switch's ports)."""

    def __init__(self) -> None:
        self.spaces = {name: f"{PREFIX}-{name}" for name in ("s", "r2", "r3")}

    def up(self) -> None:
        self.down()
        for index, space in enumerate(self.spaces.values(), start=1):
            outside = f"{PREFIX}{index}"
            sh("ip", "netns", "add", space)
            sh("ip", "link", "add", outside, "type", "veth", "peer", "name", "eth0",
               "netns", space)
            sh("ip", "link", "set", outside, "up")
            sh("ip", "netns", "exec", space, "ip", "link", "set", "eth0", "up")
            # receivers' own MACs differ from the frames' destination: the kernel
            # drops them early as "other host" instead of running its IP stack
            sh("ip", "netns", "exec", space, "ip", "link", "set", "eth0", "address",
               f"02:00:00:00:00:0{index}")
            for side in ((), ("ip", "netns", "exec", space)):
                iface = "eth0" if side else outside
                sh(*side, "ethtool", "-K", iface, "rx", "off", "tx", "off", "sg", "off",
                   check=False)
            sh("ip", "netns", "exec", space, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")

    def ports(self) -> list[str]:
        return [f"{PREFIX}{index}" for index in (1, 2, 3)]

    def rx(self, *names: str) -> int:
        return sum(int(sh("ip", "netns", "exec", self.spaces[name], "cat",
                          "/sys/class/net/eth0/statistics/rx_packets")) for name in names)

    def down(self) -> None:
        for index, space in enumerate(self.spaces.values(), start=1):
            subprocess.run(["ip", "link", "del", f"{PREFIX}{index}"], capture_output=True)
            subprocess.run(["ip", "netns", "del", space], capture_output=True)
        subprocess.run(["ip", "link", "del", f"{PREFIX}br"], capture_output=True)


def throughput(lab: Lab, receivers: tuple[str, ...], conf: Path) -> tuple[float, list]:
    """The highest rate with < 0.1 % loss: up the ladder until loss, then bisect between
    the best rung and the first lossy one, so a slow switch's rate is found, not 0."""
    steps: list[dict] = []

    def loss_at(rate: int) -> float:
        before = lab.rx(*receivers)
        count = rate * SECONDS
        subprocess.run(["ip", "netns", "exec", lab.spaces["s"], "trafgen", "--dev", "eth0",
                        "--conf", str(conf), "-b", f"{rate}pps", "-n", str(count), "-P", "1",
                        "-q", "-S", "16KiB"], capture_output=True, check=True)
        time.sleep(1.0)
        received = lab.rx(*receivers) - before
        loss = 1 - received / count
        steps.append({"rate": rate, "received": received, "loss": loss})
        return loss

    best, lossy = 0, None
    for rate in RATES:
        loss = loss_at(rate)
        if loss < LOSS_FREE:
            best, lossy = rate, None  # the first lossy rung above the best counts
        elif lossy is None:
            lossy = rate
        if loss > 0.05:
            break
    for _ in range(REFINE if lossy is not None else 0):
        middle = (best + lossy) // 2
        if middle in (best, lossy):
            break
        if loss_at(middle) < LOSS_FREE:
            best = middle
        else:
            lossy = middle
    return float(best), steps


def latency(lab: Lab, receivers: tuple[str, ...], count: int = 2000) -> tuple[float, float]:
    seconds = count / 1000 + 2
    listeners = [subprocess.Popen(["ip", "netns", "exec", lab.spaces[name], sys.executable,
                                   "-c", PROBE_RECV % {"seconds": seconds}],
                                  stdout=subprocess.PIPE, text=True) for name in receivers]
    for listener in listeners:
        assert listener.stdout.readline().strip() == "ready"
    sender = subprocess.run(["ip", "netns", "exec", lab.spaces["s"], sys.executable, "-c",
                             PROBE_SEND % {"count": count, "gap": 0.001}],
                            capture_output=True, text=True, check=True)
    sent = {int(k): v for k, v in json.loads(sender.stdout).items()}
    delays = []
    for listener in listeners:
        got = json.loads(listener.communicate(timeout=seconds + 10)[0].strip().splitlines()[-1])
        delays += [(t - sent[int(seq)]) / 1000 for seq, t in got.items() if int(seq) in sent]
    delays.sort()
    if not delays:
        return float("nan"), float("nan")
    return delays[len(delays) // 2], delays[min(len(delays) - 1, int(len(delays) * 0.99))]


def program(port: int) -> None:
    info = P4Info.load(BUILD_P4INFO)
    with SwitchConnection("s1", f"127.0.0.1:{port}", 0) as connection:
        connection.become_primary()
        connection.set_pipeline(info.proto, BUILD_JSON.read_bytes())
        rules = [
            table_entry(info, "ecmp_group", {"hdr.ipv4.dstAddr": "10.0.0.1/32"},
                        "set_ecmp_select", {"ecmp_base": 0, "ecmp_count": 2}),
            table_entry(info, "ecmp_nhop", {"meta.ecmp_select": 0}, "set_nhop",
                        {"nhop_dmac": "08:00:00:00:02:02", "nhop_ipv4": "10.0.2.2", "port": 2}),
            table_entry(info, "ecmp_nhop", {"meta.ecmp_select": 1}, "set_nhop",
                        {"nhop_dmac": "08:00:00:00:03:03", "nhop_ipv4": "10.0.3.3", "port": 3}),
            table_entry(info, "send_frame", {"standard_metadata.egress_port": 2},
                        "rewrite_mac", {"smac": "00:00:00:01:02:00"}),
            table_entry(info, "send_frame", {"standard_metadata.egress_port": 3},
                        "rewrite_mac", {"smac": "00:00:00:01:03:00"}),
        ]
        connection.write([insert(rule) for rule in rules])


def measure(lab: Lab, conf: Path, executable: tuple[str, ...] = P4SWITCH
            ) -> tuple[float, list, float, float]:
    """Throughput steps and latency p50/p99 of a P4 switch on the lab's veths, programmed
    with s1's rules (our switch unless ``executable`` names another, e.g. BMv2)."""
    port = free_ports(1)
    ports = lab.ports()
    args = [f"-i1@{ports[0]}", f"-i2@{ports[1]}", f"-i3@{ports[2]}", "--device-id", "0",
            str(BUILD_JSON)]
    switch = start_switch(args, port, executable)
    try:
        program(port)
        rate, steps = throughput(lab, ("r2", "r3"), conf)
        p50, p99 = latency(lab, ("r2", "r3"))
    finally:
        stop(switch)
    return rate, steps, p50, p99


def bmv2_figures(lab: Lab, conf: Path, executable: str, figures: list[Figure],
                 details: dict) -> None:
    """The same throughput and latency with BMv2's simple_switch_grpc on the same veths."""
    rate, steps, p50, p99 = measure(lab, conf, (executable,))
    details.setdefault("forwarding_steps", {})["simple_switch_grpc"] = steps
    ours = {figure.name: figure.value for figure in figures}
    figures.append(Figure("forwarding", "BMv2 simple_switch_grpc, < 0.1% loss", rate, "pps",
                          "ours", ours["load_balance on s1, < 0.1% loss"]))
    figures.append(Figure("forwarding", "BMv2 latency p50 at 1,000 pps", p50, "us",
                          "ours", ours["latency p50 at 1,000 pps"]))
    figures.append(Figure("forwarding", "BMv2 latency p99 at 1,000 pps", p99, "us",
                          "ours", ours["latency p99 at 1,000 pps"]))


def run(figures: list[Figure], details: dict) -> None:
    lab = Lab()
    conf = Path("/tmp/bench-trafgen.cfg")
    conf.write_text(TRAFGEN_CONF)
    try:
        lab.up()
        ours, ours_steps, ours_p50, ours_p99 = measure(lab, conf)
        ports = lab.ports()
        bridge = f"{PREFIX}br"
        sh("ip", "link", "add", bridge, "type", "bridge")
        for name in ports[:2]:
            sh("ip", "link", "set", name, "master", bridge)
        sh("ip", "link", "set", bridge, "up")
        linux, linux_steps = throughput(lab, ("r2",), conf)
        linux_p50, linux_p99 = latency(lab, ("r2",))
        sh("ip", "link", "del", bridge)
        details.setdefault("forwarding_steps", {}).update(p4switch=ours_steps,
                                                          bridge=linux_steps)
        figures.append(Figure("forwarding", "load_balance on s1, < 0.1% loss", ours, "pps",
                              "Linux bridge, same veths", linux,
                              ">= 100,000 pps", ours >= 100_000))
        figures.append(Figure("forwarding", "latency p50 at 1,000 pps", ours_p50, "us",
                              "Linux bridge", linux_p50, "< BMv2's 300-900 us",
                              ours_p50 < 300))
        figures.append(Figure("forwarding", "latency p99 at 1,000 pps", ours_p99, "us",
                              "Linux bridge", linux_p99))
        bmv2 = shutil.which("simple_switch_grpc")
        if bmv2 is None:
            print("  simple_switch_grpc not on PATH: no BMv2 figures", flush=True)
        else:
            bmv2_figures(lab, conf, bmv2, figures, details)
    finally:
        lab.down()
