"""Build the exercise's network in Mininet with P4Runtime switches.

Hosts are Mininet hosts in their own network namespaces, with ``eth0``,
offloads and IPv6 off, and the topology's route/ARP commands.  Switches live
in the root namespace and run BMv2's ``simple_switch_grpc`` when it is on
PATH, else our ``python -m p4switch``, with the flags the tutorial passes.
They start with no rules: the controller writes them all.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mininet.link import Link
from mininet.log import setLogLevel
from mininet.net import Mininet
from mininet.node import Host, Switch

from .state import RunState
from .topology import Topology, natural_key

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 10.0


class NetworkError(RuntimeError):
    """The network cannot start: one line, naming the switch or host."""


@dataclass
class SwitchOptions:
    json_path: Path
    executable: list[str]
    log_dir: Path
    pcap_dir: Path
    grpc_host: str
    log_console: bool = True


def switch_executable(choice: str | None = None) -> list[str]:
    """simple_switch_grpc when installed (unless told otherwise), else our switch."""
    choice = choice or os.environ.get("P4_SWITCH")
    if choice and choice != "p4switch":
        found = shutil.which(choice)
        if found is None:
            raise NetworkError(f"switch executable '{choice}' not found on PATH")
        return [found]
    if choice is None and shutil.which("simple_switch_grpc"):
        return [shutil.which("simple_switch_grpc") or "simple_switch_grpc"]
    return [sys.executable, "-m", "p4switch"]


class P4Host(Host):
    """A host with ``eth0``, checksum offloads off and IPv6 off (as the tutorial's)."""

    def config(self, **params: Any) -> Any:
        result = super().config(**params)
        self.defaultIntf().rename("eth0")
        for offload in ("rx", "tx", "sg"):
            self.cmd(f"ethtool --offload eth0 {offload} off")
        for conf in ("all", "default", "lo"):
            self.cmd(f"sysctl -q -w net.ipv6.conf.{conf}.disable_ipv6=1")
        return result

    def describe(self) -> str:
        return f"{self.name}: eth0 {self.IP()} {self.MAC()}"


class P4RuntimeSwitch(Switch):
    """A switch process: -i PORT@IFACE ... -- --grpc-server-addr HOST:PORT."""

    def __init__(self, name: str, device_id: int = 0, grpc_port: int = 50051,
                 thrift_port: int = 9090, options: SwitchOptions | None = None,
                 **params: Any) -> None:
        params["inNamespace"] = False  # switches live in the root namespace
        super().__init__(name, **params)
        self.device_id = device_id
        self.grpc_port = grpc_port
        self.thrift_port = thrift_port
        self.options = options
        self.process: subprocess.Popen | None = None
        self.argv: list[str] = []
        self.log_path: Path | None = None

    def command(self) -> list[str]:
        assert self.options is not None
        options = self.options
        args = list(options.executable)
        for port, intf in sorted(self.intfs.items()):
            if intf.name != "lo":
                args += ["-i", f"{port}@{intf.name}"]
        args += ["--pcap", str(options.pcap_dir),
                 "--nanolog", f"ipc:///tmp/bm-{self.device_id}-log.ipc",
                 "--device-id", str(self.device_id), str(options.json_path)]
        if options.log_console:
            args.append("--log-console")
        args += ["--thrift-port", str(self.thrift_port),
                 "--", "--grpc-server-addr", f"{options.grpc_host}:{self.grpc_port}"]
        return args

    def start(self, controllers: list) -> None:
        assert self.options is not None
        for intf in self.intfList():
            if intf.name != "lo":
                subprocess.run(["ethtool", "--offload", intf.name, "rx", "off", "tx", "off",
                                "sg", "off"], capture_output=True, check=False)
        self.log_path = self.options.log_dir / f"{self.name}.log"
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO / "utils") + os.pathsep + env.get("PYTHONPATH", "")
        self.argv = self.command()
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=env, cwd=REPO,
                                            start_new_session=True)

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until the gRPC port answers; NetworkError naming the log otherwise."""
        assert self.process is not None and self.options is not None
        deadline = time.monotonic() + timeout
        host = self.options.grpc_host if self.options.grpc_host != "0.0.0.0" else "127.0.0.1"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise NetworkError(f"P4 switch {self.name} did not start correctly (exit "
                                   f"{self.process.returncode}); see {self.log_path}")
            try:
                with socket.create_connection((host, self.grpc_port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise NetworkError(f"P4 switch {self.name} did not open gRPC port {self.grpc_port} "
                           f"within {timeout:g} s; see {self.log_path}")

    def stop_process(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def stop(self, deleteIntfs: bool = True) -> None:  # noqa: N803 - Mininet's name
        self.stop_process()
        super().stop(deleteIntfs)

    def describe(self) -> str:
        return f"{self.name} -> gRPC port: {self.grpc_port} (device id {self.device_id})"


class Network:
    """The running exercise network; use as a context manager."""

    def __init__(self, topology: Topology, options: SwitchOptions, state: RunState,
                 base_grpc_port: int = 50051, base_thrift_port: int = 9090) -> None:
        self.topology = topology
        self.options = options
        self.state = state
        self.base_grpc_port = base_grpc_port
        self.base_thrift_port = base_thrift_port
        self.net: Mininet | None = None

    def start(self) -> Network:
        """Build and start everything; on failure, tear down what was made, then raise."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> Network:
        setLogLevel("warning")
        self.options.log_dir.mkdir(parents=True, exist_ok=True)
        self.options.pcap_dir.mkdir(parents=True, exist_ok=True)
        net = Mininet(controller=None, build=False, link=Link, autoSetMacs=False,
                      waitConnected=False)
        self.net = net
        topo = self.topology
        for name in sorted(topo.hosts, key=natural_key):
            spec = topo.hosts[name]
            net.addHost(name, cls=P4Host, ip=spec.ip, mac=spec.mac)
        for device_id, name in enumerate(sorted(topo.switches, key=natural_key)):
            net.addSwitch(name, cls=P4RuntimeSwitch, device_id=device_id,
                          grpc_port=self.base_grpc_port + device_id,
                          thrift_port=self.base_thrift_port + device_id, options=self.options)
        for first, second in topo.links:
            args: dict[str, Any] = {}
            if first.port is not None:
                args["port1"] = first.port
            if second.port is not None:
                args["port2"] = second.port
            net.addLink(first.node, second.node, **args)
        net.build()
        for host in net.hosts:
            self.state.add_process(host.pid, "host")
        self.state.add_interfaces([intf.name for switch in net.switches
                                   for intf in switch.intfList() if intf.name != "lo"])
        for switch in net.switches:
            switch.start([])
            assert switch.process is not None
            self.state.add_process(switch.process.pid, "switch", switch.argv)
        for switch in net.switches:
            switch.wait_ready()
        for name in sorted(topo.hosts, key=natural_key):
            host = net.get(name)
            for command in topo.hosts[name].commands:
                host.cmd(command)
        return self

    def host(self, name: str) -> P4Host:
        assert self.net is not None
        return self.net.get(name)

    def switch(self, name: str) -> P4RuntimeSwitch:
        assert self.net is not None
        return self.net.get(name)

    def stop(self) -> None:
        if self.net is not None:
            net, self.net = self.net, None
            for switch in net.switches:  # processes first: net.stop() may fail half-way
                switch.stop_process()
            net.stop()

    def __enter__(self) -> Network:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
