"""Helpers for tests that start real switch processes and network namespaces."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from netrun.ecmp import load_controller
from p4runtime_lib import P4Info, SwitchConnection, insert, table_entry

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO / "utils")}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, process: subprocess.Popen, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise RuntimeError(f"switch exited early: {output}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.3):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"port {port} did not open")


def start_switch(args: list[str], grpc_port: int, log: Path | None = None,
                 target: list[str] | None = None) -> subprocess.Popen:
    """``python -m p4switch ARGS -- --grpc-server-addr 127.0.0.1:PORT TARGET``, ready to use."""
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "p4switch", *args, "--", "--grpc-server-addr",
         f"127.0.0.1:{grpc_port}", *(target or [])], stdout=out, stderr=subprocess.STDOUT,
        env=ENV, cwd=REPO)
    wait_port(grpc_port, process)
    return process


def stop(process: subprocess.Popen) -> int:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def sh(*command: str, check: bool = True) -> str:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {result.stderr.strip()}")
    return result.stdout


class Namespaces:
    """Network namespaces with a veth each to the root namespace; removed on close.

    ``add("a")`` creates namespace PREFIX-a with interface ``eth0`` inside and
    ``PREFIX-a`` in the root namespace (the switch's side).
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.names: list[str] = []

    def add(self, short: str, ip: str | None = None, mac: str | None = None,
            mtu: int | None = None) -> str:
        name = f"{self.prefix}{short}"
        sh("ip", "netns", "add", name)
        self.names.append(name)
        sh("ip", "link", "add", name, "type", "veth", "peer", "name", "eth0", "netns", name)
        for side in ([], ["ip", "netns", "exec", name]):
            iface = name if not side else "eth0"
            if mtu:
                sh(*side, "ip", "link", "set", iface, "mtu", str(mtu))
            sh(*side, "ip", "link", "set", iface, "up")
            sh(*side, "ethtool", "-K", iface, "rx", "off", "tx", "off", "sg", "off", check=False)
        sh("ip", "netns", "exec", name, "sysctl", "-q", "-w",
           "net.ipv6.conf.all.disable_ipv6=1")
        if mac:
            sh("ip", "netns", "exec", name, "ip", "link", "set", "eth0", "address", mac)
        if ip:
            sh("ip", "netns", "exec", name, "ip", "addr", "add", ip, "dev", "eth0")
        return name

    def run(self, name: str, *command: str, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", name, *command], capture_output=True,
                              text=True, check=False, **kwargs)

    def popen(self, name: str, *command: str) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", name, *command], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def close(self) -> None:
        for name in self.names:
            subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        self.names.clear()


def send_frames(ns: Namespaces, name: str, frames: list[bytes]) -> None:
    """Send raw frames out of ``eth0`` in namespace ``name`` (scapy)."""
    code = ("import sys\nfrom scapy.all import sendp, Raw\n"
            f"frames = [bytes.fromhex(h) for h in {[f.hex() for f in frames]!r}]\n"
            "sendp([Raw(f) for f in frames], iface='eth0', verbose=False)\n")
    result = ns.run(name, sys.executable, "-c", code)
    assert result.returncode == 0, result.stderr


def capture(ns: Namespaces, name: str, seconds: float) -> subprocess.Popen:
    """Sniff ``eth0`` in namespace ``name`` for ``seconds``; returns once sniffing."""
    code = ("import json, time\nfrom scapy.all import AsyncSniffer\n"
            "s = AsyncSniffer(iface='eth0', store=True)\ns.start()\n"
            "print('ready', flush=True)\n"
            f"time.sleep({seconds})\nframes = s.stop()\n"
            "print(json.dumps([bytes(f).hex() for f in frames]))\n")
    process = ns.popen(name, sys.executable, "-c", code)
    assert process.stdout.readline().strip() == "ready"
    return process


def captured(process: subprocess.Popen) -> list[bytes]:
    """The frames a ``capture`` process saw."""
    out, err = process.communicate(timeout=30)
    return [bytes.fromhex(h) for h in json.loads(out.strip().splitlines()[-1])]


# -- load_balance's s1 on three veths ---------------------------------------------------

@contextlib.contextmanager
def load_balance_s1(tmp_path: Path, prefix: str, pcap: bool = True
                    ) -> Iterator[tuple[Namespaces, SwitchConnection, subprocess.Popen, Path]]:
    """The switch running load_balance.json on namespaces PREFIX{a,b,c} as ports 1-3
    (port 1 with a 9000-byte MTU), programmed with the exercise's s1 entries over
    gRPC; yields (namespaces, primary connection, process, pcap dir).  Its output
    goes to TMP_PATH/switch.log; it must exit cleanly on SIGTERM."""
    ns = Namespaces(prefix)
    process = None
    try:
        for short, mtu in (("a", 9000), ("b", None), ("c", None)):
            ns.add(short, mtu=mtu)
        port = free_port()
        pcaps = tmp_path / "pcaps"
        process = start_switch([f"-i1@{ns.names[0]}", f"-i2@{ns.names[1]}", f"-i3@{ns.names[2]}",
                                *(["--pcap", str(pcaps)] if pcap else []), "--device-id", "0",
                                str(REPO / "build/load_balance.json")], port,
                               log=tmp_path / "switch.log")
        info = P4Info.load(REPO / "build/load_balance.p4.p4info.txtpb")
        connection = SwitchConnection("s1", f"127.0.0.1:{port}", p4info=info)
        connection.become_primary()
        connection.set_pipeline(info.proto, (REPO / "build/load_balance.json").read_bytes())
        connection.write([
            insert(table_entry(info, "ecmp_group", {"hdr.ipv4.dstAddr": "10.0.0.1/32"},
                               "set_ecmp_select", {"ecmp_base": 0, "ecmp_count": 2})),
            insert(table_entry(info, "ecmp_nhop", {"meta.ecmp_select": 0}, "set_nhop",
                               {"nhop_dmac": "08:00:00:00:02:02", "nhop_ipv4": "10.0.2.2",
                                "port": 2})),
            insert(table_entry(info, "ecmp_nhop", {"meta.ecmp_select": 1}, "set_nhop",
                               {"nhop_dmac": "08:00:00:00:03:03", "nhop_ipv4": "10.0.3.3",
                                "port": 3})),
            insert(table_entry(info, "send_frame", {"standard_metadata.egress_port": 2},
                               "rewrite_mac", {"smac": "08:00:00:00:01:00"})),
            insert(table_entry(info, "send_frame", {"standard_metadata.egress_port": 3},
                               "rewrite_mac", {"smac": "08:00:00:00:01:00"})),
        ])
        yield ns, connection, process, pcaps
        connection.close()
        assert stop(process) == 0  # SIGTERM: clean exit
    finally:
        if process is not None:
            stop(process)  # after a failure too
        ns.close()


def flow(sport: int) -> bytes:
    """h1's TCP segment to 10.0.0.1 from source port ``sport`` (broadcast MAC, as send.py)."""
    return bytes(Ether(src="08:00:00:00:01:01", dst="ff:ff:ff:ff:ff:ff")
                 / IP(src="10.0.1.1", dst="10.0.0.1") / TCP(sport=sport, dport=1234) / b"hi")


def expected_out(frame: bytes, port: int) -> bytes:
    """What s1 must send out of ``port`` for ``frame`` (built with scapy, not the switch)."""
    packet = Ether(frame)
    packet.src = "08:00:00:00:01:00"
    packet.dst = "08:00:00:00:02:02" if port == 2 else "08:00:00:00:03:03"
    packet[IP].dst = "10.0.2.2" if port == 2 else "10.0.3.3"
    packet[IP].ttl -= 1
    del packet[IP].chksum
    return bytes(packet)


def load_mycontroller() -> ModuleType:
    """./mycontroller.py imported as a module (its helpers, without running main)."""
    return load_controller(REPO)
