"""``python -m p4switch``: a drop-in for ``simple_switch_grpc`` with the same flags.

    python -m p4switch -i 1@s1-eth1 -i 2@s1-eth2 --pcap pcaps --device-id 0 \\
        build/load_balance.json --log-console --thrift-port 9090 \\
        -- --grpc-server-addr 127.0.0.1:50051 --cpu-port 255

Options before ``--`` are BMv2's; after it, the P4Runtime target's.  Unlike
BMv2, gRPC listens on 127.0.0.1 unless an address is given.  Every bad start
(flag, interface, JSON, address, certificate) is one ``p4switch: error:`` line
on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import ssl
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import grpc

from .engine import DROP_PORT, ConfigError, Pipeline
from .io.pcap import PcapObserver
from .io.ports import (
    BEHIND_FRAMES,
    BEHIND_GRACE_MS,
    DEFAULT_MAX_DELAY_MS,
    DataPlane,
    Port,
    PortError,
)
from .switch import PacketLog, Switch

if TYPE_CHECKING:
    from .runtime import Server

DEFAULT_GRPC = "127.0.0.1:9559"
LOG_LEVELS = ("trace", "debug", "info", "warn", "error", "off")
TRACEBACK_ENV = "P4SWITCH_TRACEBACK"


class UsageError(Exception):
    """A bad command line or start-up condition: one line for the user."""


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line as one UsageError line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see 'python -m p4switch --help')")


class FullHelp(argparse.Action):
    """``--help`` before ``--``: BMv2's options, then the target's (as BMv2 prints them)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        parser.print_help()
        print("\nThis target also comes with its own command line parser, make sure you "
              "separate general bmv2 options from target specific options with '--'\n"
              "Target specific options:")
        target_parser().print_help()
        parser.exit()


def warn(message: str) -> None:
    """One warning line on stderr."""
    print(f"p4switch: warning: {message}", file=sys.stderr, flush=True)


def switch_parser() -> argparse.ArgumentParser:
    """BMv2's general options (before ``--``)."""
    parser = Parser(
        prog="p4switch", add_help=False, description="P4Runtime software switch running "
        "BMv2 JSON (v1model); takes simple_switch_grpc's flags.",
        epilog="Target options go after '--' (see 'python -m p4switch -- --help'): "
        f"--grpc-server-addr HOST:PORT (default {DEFAULT_GRPC}: loopback only, unlike "
        "BMv2's 0.0.0.0:9559), --cpu-port N, --grpc-server-ssl, --grpc-server-cert F, "
        "--grpc-server-key F, --grpc-server-cacert F, --grpc-server-with-client-auth.")
    add = parser.add_argument
    add("-h", "--help", action=FullHelp, nargs=0, help="show this help message, then the "
        "target options', and exit")
    add("json", nargs="?", help="BMv2 JSON to run from the start (a controller may "
        "replace it with SetForwardingPipelineConfig)")
    add("-i", "--interface", action="append", default=[], metavar="N@IFACE",
        help="attach interface IFACE as port N (repeat)")
    add("--pcap", nargs="?", const=".", metavar="DIR",
        help="write IFACE_in.pcap / IFACE_out.pcap into DIR (default: current directory)")
    add("--device-id", type=int, default=0, help="P4Runtime device id (default 0)")
    add("--no-p4", action="store_true", help="start without a program")
    add("--log-console", action="store_true", help="per-packet trace on stdout")
    add("--log-file", metavar="FILE", help="per-packet trace appended to FILE")
    add("-L", "--log-level", choices=LOG_LEVELS, default="trace",
        help="'trace' or 'debug' log each packet; higher levels log none")
    for flag in ("--log-flush", "--debugger"):
        add(flag, action="store_true", help="accepted, no effect")
    for flag in ("--thrift-port", "--log-file-max-size", "--log-file-max-files",
                 "--dump-packet-data", "--max-port-count"):
        add(flag, type=int, metavar="N", help="accepted, no effect (no Thrift server)"
            if flag == "--thrift-port" else "accepted, no effect")
    for flag in ("--nanolog", "--notifications-addr", "--debugger-addr"):
        add(flag, metavar="ADDR", help="accepted, no effect")
    for flag in ("--use-files", "--packet-in", "--restore-state"):
        add(flag, metavar="ARG", help="not supported (refused)")
    add("--priority-queues", type=int, metavar="N", help=argparse.SUPPRESS)
    add("--max-delay-ms", type=float, default=DEFAULT_MAX_DELAY_MS, metavar="MS",
        help="p4switch only: when the switch has been behind for longer than "
        f"{BEHIND_GRACE_MS:g} ms (the frames it takes have waited more than MS, with "
        f"{BEHIND_FRAMES:,} more waiting), it drops "
        "at ingress, unprocessed, every frame that has waited more than MS until it has "
        "caught up, and counts them ('overload drops' in the port's counters): an "
        f"overloaded switch queues MS, not seconds (default {DEFAULT_MAX_DELAY_MS:g}; 0 "
        "keeps every frame)")
    add("-v", "--version", action="version", version="p4switch (simple_switch_grpc "
        "flags, BMv2 JSON 2.x)")
    return parser


def target_parser() -> argparse.ArgumentParser:
    """simple_switch_grpc's target options (after ``--``)."""
    parser = Parser(prog="p4switch [options] -- ", description="Target options "
                    "(simple_switch_grpc's).")
    add = parser.add_argument
    add("--grpc-server-addr", default=DEFAULT_GRPC, metavar="HOST:PORT",
        help=f"P4Runtime server address (default {DEFAULT_GRPC}: loopback only, unlike "
        "BMv2's 0.0.0.0:9559; give 0.0.0.0:PORT to accept remote controllers)")
    add("--cpu-port", type=int, metavar="N", help="port number of the CPU port for "
        "packet-in/out over the StreamChannel (not 0, not an interface's)")
    add("--drop-port", type=int, default=DROP_PORT, metavar="N",
        help=f"only {DROP_PORT} (v1model's) is supported")
    add("--grpc-server-ssl", action="store_true", help="serve P4Runtime over TLS")
    add("--grpc-server-cert", metavar="PEM", help="server certificate chain (TLS)")
    add("--grpc-server-key", metavar="PEM", help="server private key (TLS)")
    add("--grpc-server-cacert", metavar="PEM", help="CA to verify clients against")
    add("--grpc-server-with-client-auth", action="store_true",
        help="require a client certificate signed by --grpc-server-cacert")
    add("--dp-grpc-server-addr", metavar="HOST:PORT", help="not supported (refused)")
    for flag in ("--priority-queues", "--max-mc-groups", "--max-l1-entries",
                 "--max-l2-entries"):
        add(flag, type=int, metavar="N", help="accepted, no effect")
    for flag in ("--disable-swap", "--enable-swap"):
        add(flag, action="store_true", help="accepted, no effect")
    return parser


def parse_interfaces(specs: list[str]) -> dict[int, str]:
    """``["1@s1-eth1", ...]`` -> ``{1: "s1-eth1"}``; UsageError on a bad or repeated one."""
    ports: dict[int, str] = {}
    for spec in specs:
        number, at, name = spec.partition("@")
        if not at or not number.strip().isdigit() or not name:
            raise UsageError(f"bad interface '{spec}': expected N@IFACE, e.g. 1@s1-eth1")
        if int(number) in ports:
            raise UsageError(f"port {int(number)} given twice (-i {spec})")
        if name in ports.values():
            raise UsageError(f"interface '{name}' given twice (-i {spec})")
        ports[int(number)] = name
    return ports


def _read_pem(flag: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {flag} {path}: {exc.strerror}") from None


def server_credentials(options: argparse.Namespace) -> grpc.ServerCredentials | None:
    """TLS credentials from BMv2's --grpc-server-* flags (None without --grpc-server-ssl)."""
    given = [options.grpc_server_cacert, options.grpc_server_cert, options.grpc_server_key]
    if not options.grpc_server_ssl:
        if any(given):  # BMv2's wording
            warn("SSL/TLS is disabled for gRPC server, so provided .pem files will be "
                 "ignored (add --grpc-server-ssl)")
        if options.grpc_server_with_client_auth:
            warn("SSL/TLS is disabled for gRPC server, so cannot request client auth")
        return None
    for flag, value in (("cert", options.grpc_server_cert), ("key", options.grpc_server_key)):
        if not value:
            raise UsageError(f"When enabling SSL/TLS for gRPC server, --grpc-server-{flag} "
                             "is required")
    if options.grpc_server_with_client_auth and not options.grpc_server_cacert:
        raise UsageError("--grpc-server-with-client-auth needs --grpc-server-cacert "
                         "(the CA that signed the clients' certificates)")
    cert = _read_pem("--grpc-server-cert", options.grpc_server_cert)
    key = _read_pem("--grpc-server-key", options.grpc_server_key)
    root = _read_pem("--grpc-server-cacert", options.grpc_server_cacert) \
        if options.grpc_server_cacert else None
    try:  # gRPC would only fail at the first handshake; check the PEM files now
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(options.grpc_server_cert, options.grpc_server_key)
        if root is not None:
            context.load_verify_locations(cadata=root.decode("ascii", "replace"))
    except (ssl.SSLError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or str(exc)
        raise UsageError(f"bad TLS files ({reason}): check that --grpc-server-cert and "
                         "--grpc-server-key are a matching PEM pair") from None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=root,
        require_client_auth=options.grpc_server_with_client_auth)


def check_options(options: argparse.Namespace, target: argparse.Namespace,
                  interfaces: dict[int, str]) -> None:
    """BMv2's cross-option checks, as UsageErrors."""
    if not options.json and not options.no_p4 and str(options.pcap).endswith(".json"):
        raise UsageError(f"--pcap took '{options.pcap}' as its directory; put the JSON "
                         "file elsewhere on the line or write --pcap=DIR")
    if not options.json and not options.no_p4:
        raise UsageError("please specify an input JSON configuration file, e.g. "
                         "build/load_balance.json, or --no-p4")
    if options.json and options.no_p4:
        warn(f"ignoring input config {options.json} as '--no-p4' was used")
        options.json = None
    if options.log_console and options.log_file:
        raise UsageError("--log-console and --log-file are exclusive")
    if not 0 <= options.max_delay_ms <= 60_000:
        raise UsageError(f"--max-delay-ms {options.max_delay_ms:g}: must be 0..60000 "
                         "(0 keeps every frame)")
    for flag in ("use_files", "packet_in", "restore_state"):
        if getattr(options, flag) is not None:
            raise UsageError(f"--{flag.replace('_', '-')} is not supported by p4switch "
                             "(use simple_switch_grpc for it)")
    if target.dp_grpc_server_addr is not None:
        raise UsageError("--dp-grpc-server-addr is not supported by p4switch")
    if target.drop_port != DROP_PORT:
        raise UsageError(f"--drop-port {target.drop_port}: p4switch only supports "
                         f"{DROP_PORT}, v1model's drop port")
    cpu = target.cpu_port
    if cpu is not None:
        if not 0 < cpu < DROP_PORT:
            raise UsageError(f"--cpu-port {cpu}: must be 1..{DROP_PORT - 1} (9 bits, "
                             f"not 0, not the drop port)")
        if cpu in interfaces:
            raise UsageError(f"--cpu-port {cpu} is also interface {interfaces[cpu]}'s "
                             "port; pick a number no -i uses (e.g. 255)")


def load_pipeline(path: Path) -> Pipeline:
    """The BMv2 JSON at ``path``; UsageError (one line, with a hint) otherwise."""
    try:
        return Pipeline.from_json(path.read_bytes(), start=time.monotonic())
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}; have you run 'make'?") \
            from None
    except ConfigError as exc:
        raise UsageError(f"{path}: {exc}") from None


class Running:
    """Everything a started switch owns, to be stopped in order."""

    def __init__(self) -> None:
        self.ports: list[Port] = []
        self.server: Server | None = None
        self.dataplane: DataPlane | None = None
        self.pcap: PcapObserver | None = None
        self.log_file: TextIO | None = None
        self.final_counters: list[str] = []

    def stop(self) -> None:
        """Stop gRPC, the data plane, the ports; flush and close pcaps and logs."""
        if self.server is not None:
            self.server.stop(grace=0.5).wait(2)
        if self.dataplane is not None:
            self.dataplane.stop()
        self.final_counters = self.summary()
        for port in self.ports:
            port.close()
        if self.pcap is not None:
            self.pcap.close()
        if self.log_file is not None:
            self.log_file.close()

    def summary(self) -> list[str]:
        """One line of counters per port (printed at exit)."""
        lines = []
        for port in self.ports:
            counts = port.stats()
            details = ", ".join(f"{key.replace('_', ' ')} {value}"
                                for key, value in counts.items() if value)
            lines.append(f"Port {port.number} ({port.name}): {details or 'no traffic'}")
        return lines


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """BMv2's options and the target's (after the first ``--``)."""
    if "--" in argv:
        split = argv.index("--")
        return argv[:split], argv[split + 1:]
    return argv, []


def open_log(options: argparse.Namespace, running: Running) -> PacketLog | None:
    """The per-packet trace asked for, if the log level includes debug messages."""
    if options.log_level not in ("trace", "debug"):
        return None
    if options.log_file:
        try:
            running.log_file = open(options.log_file, "a", buffering=1)  # noqa: SIM115
        except OSError as exc:
            raise UsageError(f"cannot write --log-file {options.log_file}: "
                             f"{exc.strerror}") from None
        return PacketLog(running.log_file)
    return PacketLog(sys.stdout) if options.log_console else None


def start(argv: list[str], running: Running) -> Switch:
    """Parse the command line and start the switch; UsageError on a bad start."""
    own, target = split_argv(argv)
    options = switch_parser().parse_args(own)
    if target:
        print("Calling target program-options parser", flush=True)
    target_options = target_parser().parse_args(target)
    interfaces = parse_interfaces(options.interface)
    check_options(options, target_options, interfaces)
    credentials = server_credentials(target_options)
    pipeline = load_pipeline(Path(options.json)) if options.json else None
    switch = Switch(options.device_id, target_options.cpu_port, open_log(options, running),
                    notice=lambda message: print(f"p4switch: note: {message}", flush=True))
    switch.set_pipeline(pipeline)
    for number, name in sorted(interfaces.items()):
        try:
            port = Port(number, name, warn=warn)
        except PortError as exc:
            raise UsageError(str(exc)) from None
        running.ports.append(port)
        switch.add_port(number, port)
        print(f"Adding interface {name} as port {number}", flush=True)
    if options.pcap is not None:
        try:
            running.pcap = PcapObserver(Path(options.pcap), interfaces)
        except OSError as exc:
            raise UsageError(f"cannot write pcap files into '{options.pcap}': "
                             f"{exc.strerror}") from None
        switch.observers.append(running.pcap)
    from .runtime import BadAddress, ServeError, serve  # gRPC only once the ports are up

    try:
        running.server = serve(switch, target_options.grpc_server_addr, credentials)
    except ServeError as exc:
        hint = "" if isinstance(exc, BadAddress) else \
            " (is another switch running on that port? pick another with --grpc-server-addr)"
        raise UsageError(f"{exc}{hint}") from None
    host = target_options.grpc_server_addr.rpartition(":")[0]
    bound = getattr(running.server, "bound_port", None)
    address = f"{host}:{bound}" if bound else target_options.grpc_server_addr
    print(f"Server listening on {address}", flush=True)
    running.dataplane = DataPlane(running.ports, switch.receive_batch,
                                  after_round=running.pcap.flush if running.pcap else None,
                                  warn=warn, max_delay_ms=options.max_delay_ms)
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
        print(f"p4switch: error: {exc}", file=sys.stderr, flush=True)
        running.stop()
        return 2
    except BrokenPipeError:  # `p4switch --help | head`: stop quietly
        running.stop()
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # a bug: still one line, the traceback on request
        running.stop()
        if os.environ.get(TRACEBACK_ENV):
            raise
        print(f"p4switch: error: unexpected {type(exc).__name__}: {exc} (run with "
              f"{TRACEBACK_ENV}=1 for the traceback)", file=sys.stderr, flush=True)
        return 1
    try:
        while not stopping.wait(0.5):  # short waits keep signal handlers running
            pass
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not
            signal.signal(signum, signal.SIG_IGN)       # interrupt the clean-up
        running.stop()
    with contextlib.suppress(OSError):  # stdout may be a closed pipe by now
        for line in running.final_counters:
            print(line, flush=True)
    return 0
