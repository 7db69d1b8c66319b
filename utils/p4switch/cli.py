"""``python -m p4switch``: a drop-in for ``simple_switch_grpc`` with the same flags.

    python -m p4switch -i 1@s1-eth1 -i 2@s1-eth2 --pcap pcaps --device-id 0 \\
        build/load_balance.json --log-console --thrift-port 9090 \\
        -- --grpc-server-addr 127.0.0.1:50051 --cpu-port 255

Options before ``--`` are BMv2's; after it, the P4Runtime target's.  Unlike
BMv2, gRPC listens on 127.0.0.1 unless an address is given.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import TextIO

import grpc

from .engine import ConfigError, Pipeline
from .io.pcap import PcapObserver
from .io.ports import DataPlane, Port, PortError
from .switch import PacketLog, Switch

DEFAULT_GRPC = "127.0.0.1:9559"


class UsageError(Exception):
    """A bad command line or start-up condition: one line for the user."""


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line as one UsageError line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see 'python -m p4switch --help')")


def switch_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="p4switch", description="P4Runtime software switch running BMv2 JSON "
        "(v1model); takes simple_switch_grpc's flags.",
        epilog="Target options go after '--': --grpc-server-addr HOST:PORT (default "
        f"{DEFAULT_GRPC}, loopback only), --cpu-port N, --grpc-server-ssl ...")
    parser.add_argument("json", nargs="?", help="BMv2 JSON to run from the start")
    parser.add_argument("-i", "--interface", action="append", default=[], metavar="N@IFACE",
                        help="attach interface IFACE as port N (repeat)")
    parser.add_argument("--pcap", nargs="?", const=".", metavar="DIR",
                        help="write IFACE_in.pcap / IFACE_out.pcap into DIR")
    parser.add_argument("--device-id", type=int, default=0)
    parser.add_argument("--no-p4", action="store_true", help="start without a program")
    parser.add_argument("--log-console", action="store_true", help="per-packet trace on stdout")
    parser.add_argument("--log-file", metavar="FILE", help="per-packet trace into FILE")
    parser.add_argument("-L", "--log-level", help="accepted for compatibility")
    parser.add_argument("--thrift-port", type=int, help="accepted; there is no Thrift server")
    parser.add_argument("--nanolog", metavar="ADDR", help="accepted, no effect")
    parser.add_argument("--debugger", action="store_true", help="accepted, no effect")
    parser.add_argument("--notifications-addr", help="accepted, no effect")
    return parser


def target_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="p4switch -- ", add_help=False)
    parser.add_argument("--grpc-server-addr", default=DEFAULT_GRPC)
    parser.add_argument("--cpu-port", type=int)
    parser.add_argument("--priority-queues", type=int, help="accepted, no effect")
    parser.add_argument("--grpc-server-ssl", action="store_true")
    parser.add_argument("--grpc-server-cacert")
    parser.add_argument("--grpc-server-cert")
    parser.add_argument("--grpc-server-key")
    parser.add_argument("--grpc-server-with-client-auth", action="store_true")
    return parser


def parse_interfaces(specs: list[str]) -> dict[int, str]:
    ports: dict[int, str] = {}
    for spec in specs:
        number, at, name = spec.partition("@")
        if not at or not number.isdigit() or not name:
            raise UsageError(f"bad interface '{spec}': expected N@IFACE, e.g. 1@s1-eth1")
        if int(number) in ports:
            raise UsageError(f"port {number} given twice")
        ports[int(number)] = name
    return ports


def server_credentials(options: argparse.Namespace) -> grpc.ServerCredentials | None:
    if not options.grpc_server_ssl:
        return None
    try:
        key = Path(options.grpc_server_key).read_bytes()
        cert = Path(options.grpc_server_cert).read_bytes()
        root = Path(options.grpc_server_cacert).read_bytes() if options.grpc_server_cacert \
            else None
    except (TypeError, OSError) as exc:
        raise UsageError(f"TLS needs --grpc-server-cert and --grpc-server-key files: {exc}") \
            from None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=root,
        require_client_auth=options.grpc_server_with_client_auth)


class Running:
    """Everything a started switch owns, to be stopped in order."""

    def __init__(self) -> None:
        self.ports: list[Port] = []
        self.server: grpc.Server | None = None
        self.dataplane: DataPlane | None = None
        self.pcap: PcapObserver | None = None
        self.log_file: TextIO | None = None

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(grace=0.5).wait(2)
        if self.dataplane is not None:
            self.dataplane.stop()
        for port in self.ports:
            port.close()
        if self.pcap is not None:
            self.pcap.close()
        if self.log_file is not None:
            self.log_file.close()


def start(argv: list[str], running: Running) -> Switch:
    """Parse the command line and start the switch; UsageError on a bad start."""
    if "--" in argv:
        split = argv.index("--")
        own, target = argv[:split], argv[split + 1:]
    else:
        own, target = argv, []
    options = switch_parser().parse_args(own)
    target_options, unknown = target_parser().parse_known_args(target)
    if unknown:
        raise UsageError(f"unknown target option(s): {' '.join(unknown)}")
    if options.json and options.no_p4:
        raise UsageError("give either a JSON file or --no-p4, not both")
    interfaces = parse_interfaces(options.interface)
    pipeline = None
    if options.json:
        path = Path(options.json)
        try:
            pipeline = Pipeline.from_json(path.read_bytes())
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror}; have you run 'make'?") \
                from None
        except ConfigError as exc:
            raise UsageError(f"{path}: {exc}") from None
    log = None
    if options.log_file:
        running.log_file = open(options.log_file, "a", buffering=1)  # noqa: SIM115
        log = PacketLog(running.log_file)
    elif options.log_console:
        log = PacketLog(sys.stdout)
    switch = Switch(options.device_id, target_options.cpu_port, log)
    switch.set_pipeline(pipeline)
    for number, name in sorted(interfaces.items()):
        try:
            port = Port(number, name)
        except PortError as exc:
            raise UsageError(str(exc)) from None
        running.ports.append(port)
        switch.add_port(number, port)
        print(f"Adding interface {name} as port {number}", flush=True)
    if options.pcap is not None:
        running.pcap = PcapObserver(Path(options.pcap), interfaces)
        switch.observers.append(running.pcap)
    from .runtime import ServeError, serve  # grpc server only once ports are up

    try:
        running.server = serve(switch, target_options.grpc_server_addr,
                               server_credentials(target_options))
    except ServeError as exc:
        hint = " (is another switch running on that port?)" if "in use" in str(exc) else ""
        raise UsageError(f"{exc}{hint}") from None
    print(f"Server listening on {target_options.grpc_server_addr}", flush=True)
    running.dataplane = DataPlane(running.ports, switch.receive_batch)
    running.dataplane.start()
    return switch


def main(argv: list[str] | None = None) -> int:
    """Run until SIGINT/SIGTERM; one line and a non-zero exit on a bad start."""
    args = sys.argv[1:] if argv is None else argv
    running = Running()
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    try:
        start(args, running)
    except UsageError as exc:
        print(f"p4switch: error: {exc}", file=sys.stderr)
        running.stop()
        return 2
    try:
        while not stopping.wait(0.5):  # short waits keep signal handlers running
            pass
    finally:
        running.stop()
    return 0
