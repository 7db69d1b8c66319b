"""Build the exercise's network in Mininet with P4Runtime switches.

Hosts are Mininet hosts in their own network namespaces, with ``eth0``,
offloads and IPv6 off, and the topology's route/ARP commands.  Switches live
in the root namespace and run BMv2's ``simple_switch_grpc`` when it is on
PATH, else our ``python -m p4switch``, with the flags the tutorial passes.
They start with no rules: the controller writes them all.

    with Network("topology.json") as net:
        print(net.host("h1").cmd("ip route"))
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mininet.link import Link
from mininet.log import setLogLevel
from mininet.net import Mininet
from mininet.node import Host, Switch

from .state import RunState, cleanup, live_runner, netns_id
from .topology import Topology, load_topology, natural_key

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 10.0
STATE_NAME = ".netrun-state.json"
SWITCH_ENV = "P4_SWITCH"  # simple_switch_grpc, p4switch, or a path


class NetworkError(RuntimeError):
    """The network cannot start: one line, naming the switch or host."""


@dataclass
class SwitchOptions:
    """How every switch process is started."""

    json_path: Path
    executable: list[str]
    log_dir: Path
    pcap_dir: Path
    grpc_host: str = "127.0.0.1"
    log_console: bool = True
    start_timeout: float = START_TIMEOUT
    help_cache: dict[tuple[str, ...], frozenset[str] | None] = field(
        default_factory=dict, repr=False, compare=False)

    @classmethod
    def defaults(cls, **overrides: Any) -> SwitchOptions:
        """build/load_balance.json, the default switch, logs/ and pcaps/ in the repo."""
        values: dict[str, Any] = {"json_path": REPO / "build" / "load_balance.json",
                                  "log_dir": REPO / "logs", "pcap_dir": REPO / "pcaps"}
        values.update(overrides)
        if "executable" not in values:
            values["executable"] = switch_executable()
        return cls(**values)

    def accepted_flags(self) -> frozenset[str] | None:
        """The long flags the switch executable's ``--help`` lists, asked once per
        executable for this run; None if it gave no usable help (pass every flag)."""
        key = tuple(self.executable)
        if key not in self.help_cache:
            self.help_cache[key] = ask_help(self.executable, self.start_timeout)
        return self.help_cache[key]


def switch_env() -> dict[str, str]:
    """The environment switch processes run in (utils/ on PYTHONPATH for p4switch)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "utils"),
                                                      env.get("PYTHONPATH")]))
    return env


def help_flags(text: str) -> frozenset[str]:
    """Long flags (``--name``) defined in a help text: boost's (BMv2) or argparse's
    layout, one option per line starting with '-'; mentions in descriptions don't count."""
    flags: set[str] = set()
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("-"):
            head = re.split(r"\s{2,}", stripped, maxsplit=1)[0]
            flags.update(f"--{name}" for name in re.findall(r"--([A-Za-z][\w-]*)", head))
    return frozenset(flags)


def ask_help(executable: list[str], timeout: float) -> frozenset[str] | None:
    """Run ``EXECUTABLE --help``; its flags, or None if it fails, hangs or lists none."""
    try:
        result = subprocess.run([*executable, "--help"], capture_output=True, text=True,
                                errors="replace", env=switch_env(), cwd=REPO,
                                stdin=subprocess.DEVNULL, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    flags = help_flags(result.stdout + "\n" + result.stderr)
    return flags if result.returncode == 0 and flags else None


def switch_executable(choice: str | None = None) -> list[str]:
    """The switch command: ``choice``, else $P4_SWITCH, else simple_switch_grpc if
    it is on PATH, else our ``python -m p4switch`` (under the repo's .venv)."""
    choice = choice or os.environ.get(SWITCH_ENV) or None
    if choice and choice != "p4switch":
        found = shutil.which(choice)
        if found is None:
            raise NetworkError(f"switch executable '{choice}' not found on PATH "
                               f"(from --switch-exe or ${SWITCH_ENV})")
        return [found]
    if choice is None and shutil.which("simple_switch_grpc"):
        return [shutil.which("simple_switch_grpc") or "simple_switch_grpc"]
    venv = REPO / ".venv" / "bin" / "python"
    return [str(venv) if venv.exists() else sys.executable, "-m", "p4switch"]


def _sysfs_int(interface: str, attribute: str) -> int | None:
    try:
        return int(Path(f"/sys/class/net/{interface}/{attribute}").read_text())
    except (OSError, ValueError):
        return None


def veth_pair(first: str, second: str) -> bool:
    """True if ``first`` and ``second`` are the two ends of one veth in this namespace."""
    ends = [(_sysfs_int(name, "ifindex"), _sysfs_int(name, "iflink"))
            for name in (first, second)]
    (index_a, peer_a), (index_b, peer_b) = ends
    return None not in (index_a, index_b) and peer_a == index_b and peer_b == index_a


def loopback_for(host: str) -> str:
    """Where to connect to a server bound to ``host`` (a wildcard means loopback)."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def port_in_use(host: str, port: int) -> bool:
    """A listening socket already holds host:port (probed with bind, as a server would)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


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

    def run_checked(self, command: str) -> str:
        """Run a shell command; NetworkError with its output if it fails."""
        output = self.cmd(command)
        status = self.cmd("echo $?").strip()
        if status != "0":
            raise NetworkError(f"{self.name}: '{command}' failed (exit {status}): "
                               f"{' '.join(output.split()) or 'no output'}")
        return output

    def describe(self) -> str:
        return f"**********\n{self.name}\ndefault interface: eth0\t{self.IP()}\t{self.MAC()}" \
               "\n**********"


class P4RuntimeSwitch(Switch):
    """A switch process: -i PORT@IFACE ... -- --grpc-server-addr HOST:PORT."""

    def __init__(self, name: str, device_id: int = 0, grpc_port: int = 50051,
                 thrift_port: int = 9090, options: SwitchOptions | None = None,
                 json_path: str | Path | None = None, cpu_port: int | None = None,
                 priority_queues: int | None = None, **params: Any) -> None:
        params["inNamespace"] = False  # switches live in the root namespace
        super().__init__(name, **params)
        self.device_id = device_id
        self.grpc_port = grpc_port
        self.thrift_port = thrift_port
        self.options = options or SwitchOptions.defaults()
        self.json_path = Path(json_path) if json_path else self.options.json_path
        self.cpu_port = cpu_port
        self.priority_queues = priority_queues
        self.process: subprocess.Popen | None = None
        self.argv: list[str] = []
        self.log_path = self.options.log_dir / f"{name}.log"

    def command(self) -> list[str]:
        """The tutorial's simple_switch_grpc command line (p4runtime_switch.py's order),
        keeping only the flags the executable's ``--help`` lists: optional ones
        (--pcap, --nanolog, --log-console, --thrift-port) are left out, a missing
        --grpc-server-addr or topology-requested --cpu-port/--priority-queues is a
        NetworkError."""
        options = self.options
        accepted = options.accepted_flags()
        exe = " ".join(options.executable)

        def optional(flag: str, *values: str) -> list[str]:
            return [flag, *values] if accepted is None or flag in accepted else []

        def needed(flag: str, value: str, why: str) -> list[str]:
            if accepted is not None and flag not in accepted:
                raise NetworkError(f"{self.name}: the switch '{exe}' does not accept {flag} "
                                   f"(not in its --help), needed for {why}; use a "
                                   f"simple_switch_grpc build or p4switch (${SWITCH_ENV})")
            return [flag, value]

        args = list(options.executable)
        for port, intf in sorted(self.intfs.items()):
            if intf.name != "lo":
                args += ["-i", f"{port}@{intf.name}"]
        args += optional("--pcap", str(options.pcap_dir))
        args += optional("--nanolog", f"ipc:///tmp/bm-{self.device_id}-log.ipc")
        args += optional("--device-id", str(self.device_id))
        args.append(str(self.json_path))
        if options.log_console:
            args += optional("--log-console")
        args += optional("--thrift-port", str(self.thrift_port))
        args += ["--", *needed("--grpc-server-addr", f"{options.grpc_host}:{self.grpc_port}",
                               "P4Runtime")]
        if self.cpu_port is not None:
            args += needed("--cpu-port", str(self.cpu_port), "the topology's cpu_port")
        if self.priority_queues is not None:
            args += needed("--priority-queues", str(self.priority_queues),
                           "the topology's priority_queues")
        return args

    def start(self, controllers: list) -> None:
        """Start the switch process (stdout and stderr to logs/NAME.log)."""
        for intf in self.intfList():
            if intf.name != "lo":
                subprocess.run(["ethtool", "--offload", intf.name, "rx", "off", "tx", "off",
                                "sg", "off"], capture_output=True, check=False)
        self.argv = self.command()
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=switch_env(),
                                            cwd=REPO,
                                            start_new_session=True)

    def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until the gRPC port accepts connections; NetworkError naming the log."""
        assert self.process is not None
        timeout = self.options.start_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        address = (loopback_for(self.options.grpc_host), self.grpc_port)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise NetworkError(f"P4 switch {self.name} did not start correctly (exit "
                                   f"{self.process.returncode}: {self.last_log_line()}); "
                                   f"see {self.log_path}")
            try:
                with socket.create_connection(address, timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise NetworkError(f"P4 switch {self.name} did not open gRPC port {self.grpc_port} "
                           f"within {timeout:g} s; see {self.log_path}")

    def last_log_line(self) -> str:
        """The switch's last line of output (usually its error), shortened."""
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return lines[-1][:300] if lines else "no output"

    def stop_process(self) -> None:
        """SIGTERM the switch process, SIGKILL after 5 s."""
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
    """The running exercise network; use as a context manager.

    ``topology`` is a Topology or a path to topology.json; ``options`` default
    to SwitchOptions.defaults(), ``state`` to ``<log_dir>/.netrun-state.json``.
    """

    def __init__(self, topology: Topology | str | Path,
                 options: SwitchOptions | None = None, state: RunState | None = None,
                 base_grpc_port: int = 50051, base_thrift_port: int = 9090) -> None:
        self.topology = topology if isinstance(topology, Topology) else load_topology(topology)
        self.options = options or SwitchOptions.defaults()
        self.state = state or RunState(self.options.log_dir / STATE_NAME)
        self.base_grpc_port = base_grpc_port
        self.base_thrift_port = base_thrift_port
        self.net: Mininet | None = None
        self.owns_state = False

    def switch_names(self) -> list[str]:
        """Switches in natural order: s1, s2, ..., s10 (device ids 0, 1, ...)."""
        return sorted(self.topology.switches, key=natural_key)

    def grpc_address(self, name: str) -> str:
        """HOST:PORT where switch ``name`` serves P4Runtime."""
        port = self.base_grpc_port + self.switch_names().index(name)
        return f"{loopback_for(self.options.grpc_host)}:{port}"

    def preflight(self) -> None:
        """Refuse to start over something that exists: one line with a hint."""
        runner = live_runner(self.state.path)
        if runner is not None:
            raise NetworkError(f"the network is already running (pid {runner}); "
                               "run 'make stop' first")
        if self.state.path.exists() and cleanup(self.state.path, verbose=False):
            print(f"netrun: removed what an earlier run left behind ({self.state.path})",
                  file=sys.stderr)
        for tool in ("mnexec", "ethtool", "ip"):
            if shutil.which(tool) is None:
                raise NetworkError(f"'{tool}' not found: run 'make setup' (Debian packages "
                                   "mininet, ethtool, iproute2)")
        programs = [self.options.json_path] + [Path(spec["program"]) for spec in
                                               self.topology.switches.values()
                                               if "program" in spec]
        for program in programs:
            if not program.is_file():
                raise NetworkError(f"{program} not found: run 'make build'")
        for index, name in enumerate(self.switch_names()):
            port = self.base_grpc_port + index
            if port_in_use(self.options.grpc_host, port):
                raise NetworkError(f"gRPC port {port} for {name} is already in use: is "
                                   "another network or switch running? ('make stop')")
        for pair in self.topology.switch_links():
            if veth_pair(*pair):  # a killed run's switch-to-switch link: exactly ours
                subprocess.run(["ip", "link", "del", pair[0]], check=False)
                print(f"netrun: removed link {pair[0]}--{pair[1]} that an earlier run left "
                      "behind", file=sys.stderr)
        for name in self.topology.switch_interfaces():
            if Path(f"/sys/class/net/{name}").exists():
                raise NetworkError(f"interface {name} already exists (left by a run that "
                                   "was not stopped? 'make stop'; else 'ip link del "
                                   f"{name}')")

    def start(self) -> Network:
        """Build and start everything; on failure, tear down what was made, then raise."""
        self.preflight()
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> Network:
        setLogLevel("output")  # "warning" would also hide the CLI's command output
        self.options.log_dir.mkdir(parents=True, exist_ok=True)
        self.options.pcap_dir.mkdir(parents=True, exist_ok=True)
        state, topo = self.state, self.topology
        self.owns_state = True
        state.add_process(os.getpid(), "runner")
        state.add_interfaces(topo.switch_interfaces())
        net = Mininet(controller=None, build=False, link=Link, autoSetMacs=False,
                      waitConnected=False)
        self.net = net
        for name in sorted(topo.hosts, key=natural_key):
            spec = topo.hosts[name]
            host = net.addHost(name, cls=P4Host, ip=spec.ip, mac=spec.mac)
            state.add_process(host.pid, "host", name=name, netns=netns_id(host.pid) or "")
        for device_id, name in enumerate(self.switch_names()):
            params = topo.switches[name]
            switch = net.addSwitch(name, cls=P4RuntimeSwitch, device_id=device_id,
                                   grpc_port=self.base_grpc_port + device_id,
                                   thrift_port=self.base_thrift_port + device_id,
                                   options=self.options,
                                   json_path=params.get("program"),
                                   cpu_port=params.get("cpu_port"),
                                   priority_queues=params.get("priority_queues"))
            state.add_process(switch.pid, "shell", name=name)
        for first, second in topo.links:
            ports = {"port1": first.port, "port2": second.port}
            net.addLink(first.node, second.node,
                        **{key: value for key, value in ports.items() if value is not None})
        net.build()
        for switch in net.switches:
            switch.start([])
            assert switch.process is not None
            state.add_process(switch.process.pid, "switch", name=switch.name)
        for switch in net.switches:
            switch.wait_ready()
            state.refresh(switch.process.pid)
        for name in sorted(topo.hosts, key=natural_key):
            for command in topo.hosts[name].commands:
                self.host(name).run_checked(command)
        return self

    def host(self, name: str) -> P4Host:
        """A Mininet host (``.cmd()``, ``.popen()``, ``.IP()``)."""
        assert self.net is not None, "the network is not running"
        return self.net.get(name)

    def switch(self, name: str) -> P4RuntimeSwitch:
        """A switch node (``.process``, ``.grpc_port``, ``.log_path``)."""
        assert self.net is not None, "the network is not running"
        return self.net.get(name)

    def stop(self) -> None:
        """Stop switch processes, then Mininet (hosts, links); forget the state file."""
        try:
            if self.net is not None:
                net, self.net = self.net, None
                for switch in net.switches:  # processes first: net.stop() may fail half-way
                    switch.stop_process()
                net.stop()
        finally:
            if self.owns_state:  # whatever Mininet left (nothing, normally)
                self.owns_state = False
                cleanup(self.state.path, verbose=False)

    def __enter__(self) -> Network:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
