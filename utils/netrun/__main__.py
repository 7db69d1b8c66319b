"""``python -m netrun``: start the exercise network (``run``), remove it (``stop``),
or show the exercise without typing anything (``demo``, and ``demo-live`` for
lbctl's live load balancing).

    python -m netrun run [-t topology.json] [-j build/load_balance.json] [--no-cli]
    python -m netrun stop
    python -m netrun demo [--flows 20]
    python -m netrun demo-live [--flows 1000] [--rate 2000]

``run`` prints the switches and hosts, then opens the Mininet CLI; leaving
the CLI tears everything down.  ``stop`` removes what a run started (also
after the runner was killed), using the state file only.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .state import cleanup
from .topology import TopologyError, load_topology

if TYPE_CHECKING:  # Mininet is imported only once we know we are root
    from .network import Network, SwitchOptions

REPO = Path(__file__).resolve().parents[2]
STATE_NAME = ".netrun-state.json"


def _shown(path: Path) -> str:
    """A path relative to the current directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def banner(network: Network) -> str:
    """The switches and hosts, then what to do next."""
    lines = [switch.describe() for switch in network.net.switches]
    lines += [host.describe() for host in network.net.hosts]
    options = network.options
    controller = "./mycontroller.py"
    if options.grpc_host not in ("127.0.0.1", "0.0.0.0", "localhost"):
        controller += "".join(f" --switch {name}={network.grpc_address(name)}"
                              for name in network.switch_names())
    lines += ["", "=" * 70, "Welcome to the load_balance P4Runtime exercise", "=" * 70, "",
              "The switches run with NO rules: nothing is forwarded yet.",
              f"  1. In another terminal:  {controller}",
              "  2. Here:  h2 ./receive.py &                     (h3 too)",
              "            h1 ./send.py 10.0.0.1 \"hello\" --count 10   (ten flows)",
              "            h2 kill %1; wait      (ends receive.py: what h2 got, and a count)",
              f"  Switch logs: {_shown(options.log_dir)}/sN.log (tail -f); captures: "
              f"{_shown(options.pcap_dir)}/sN-ethM_in.pcap / _out.pcap",
              "  Leave with 'exit' (or Ctrl-D): everything is torn down.", ""]
    if options.grpc_host in ("0.0.0.0", "::"):
        lines.insert(-1, f"  Note: gRPC listens on {options.grpc_host}: any machine that "
                     "reaches this one can program the switches.")
    return "\n".join(lines)


def _options(args: argparse.Namespace) -> SwitchOptions:
    from .network import SwitchOptions, switch_executable

    return SwitchOptions(Path(args.switch_json).resolve(),
                         switch_executable(args.switch_exe), args.log_dir.resolve(),
                         args.pcap_dir.resolve(), args.grpc_host,
                         log_console=not args.quiet_switches,
                         start_timeout=args.start_timeout)


def run(args: argparse.Namespace) -> int:
    """Start the network, print the banner, run the CLI (or wait), tear down."""
    from mininet.cli import CLI

    from .network import Network, NetworkError

    try:
        network = Network(load_topology(args.topo), _options(args))
    except (TopologyError, NetworkError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGHUP, lambda *_: sys.exit(129))
    try:
        network.start()
        print(banner(network), flush=True)
        if args.no_cli:
            print("Network is up (no CLI); stop it with Ctrl-C or 'make stop'.", flush=True)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.pause()
        else:
            CLI(network.net)
    except NetworkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # let the teardown finish
        network.stop()
    return 0


def demo(args: argparse.Namespace) -> int:
    """``make demo``: before/after the controller, checked against crc16."""
    from .demo import run_demo
    from .network import Network, NetworkError

    try:
        network = Network(load_topology(args.topo), _options(args))
    except (TopologyError, NetworkError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.command == "demo-live":
        from .demo_live import run_live_demo

        return run_live_demo(network, args.flows, args.rate, chart=args.chart)
    return run_demo(network, args.flows)


def parser() -> argparse.ArgumentParser:
    """Command-line interface: run / demo / stop."""
    top = argparse.ArgumentParser(prog="netrun", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="start the network and the Mininet CLI")
    demo_parser = sub.add_parser("demo", help="non-interactive before/after demonstration")
    demo_parser.add_argument("--flows", type=int, default=20, help="flows sent each time")
    live_parser = sub.add_parser("demo-live", help="lbctl steering s1 under steady traffic")
    live_parser.add_argument("--flows", type=int, default=1000, help="flows in the traffic")
    live_parser.add_argument("--rate", type=float, default=2000.0, help="packets/s from h1")
    live_parser.add_argument("--chart", type=Path, default=None,
                             help="where the chart goes (default logs/demo-live.png)")
    for sub_parser in (run_parser, demo_parser, live_parser):
        add = sub_parser.add_argument
        add("-t", "--topo", default=str(REPO / "topology.json"))
        add("-j", "--switch-json", default=str(REPO / "build" / "load_balance.json"),
            help="BMv2 JSON the switches start with (the controller pushes it again)")
        add("-b", "--switch-exe", "--behavioral-exe", dest="switch_exe", default=None,
            help="switch program: simple_switch_grpc, p4switch or a path (default: "
                 "$P4_SWITCH, else simple_switch_grpc if on PATH, else p4switch)")
        add("--grpc-host", default="127.0.0.1", help="address the switches' gRPC servers "
            "listen on (default loopback; 0.0.0.0 accepts remote controllers)")
        add("--start-timeout", type=float, default=10.0, metavar="SECONDS",
            help="how long a switch may take to open its gRPC port")
        add("-l", "--log-dir", type=Path, default=REPO / "logs")
        add("-p", "--pcap-dir", type=Path, default=REPO / "pcaps")
        add("--quiet-switches", action="store_true",
            help="no per-packet trace in logs/sN.log (faster)")
    run_parser.add_argument("--no-cli", action="store_true",
                            help="no Mininet CLI: wait for Ctrl-C, SIGTERM or 'make stop'")
    stop_parser = sub.add_parser("stop", help="remove what a run started")
    stop_parser.add_argument("-l", "--log-dir", type=Path, default=REPO / "logs")
    return top


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = parser().parse_args(argv)
    if os.geteuid() != 0:
        print("error: Mininet needs root: run with sudo", file=sys.stderr)
        return 1
    if args.command == "stop":
        if not cleanup(args.log_dir / STATE_NAME):
            print("Nothing to stop.")
        return 0
    try:
        import mininet.net  # noqa: F401
    except ImportError:
        print("error: Mininet is not importable: run 'make setup' (Debian package mininet; "
              "the .venv must see system site packages)", file=sys.stderr)
        return 1
    return run(args) if args.command == "run" else demo(args)


if __name__ == "__main__":
    sys.exit(main())
