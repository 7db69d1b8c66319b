"""Helpers for tests that start real switch processes and network namespaces."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

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
