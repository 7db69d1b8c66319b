"""``python -m netrun``: start the exercise network (``run``) or remove it (``stop``).

    python -m netrun run -t topology.json -j build/load_balance.json [--no-cli]
    python -m netrun stop

``run`` prints the switches and hosts, then opens the Mininet CLI; leaving
the CLI tears everything down.  ``stop`` removes what an earlier run left
behind (e.g. after it was killed), using the state file only.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from .state import RunState, cleanup, cmdline
from .topology import TopologyError, load_topology

REPO = Path(__file__).resolve().parents[2]
STATE_NAME = ".netrun-state.json"


def banner(network) -> str:  # type: ignore[no-untyped-def]
    lines = ["", "======================================================================",
             "Welcome to the load_balance P4Runtime exercise",
             "======================================================================", ""]
    for switch in network.net.switches:
        lines.append(f"  {switch.describe()}  log: {switch.log_path}")
    for host in network.net.hosts:
        lines.append(f"  {host.describe()}")
    lines += ["",
              "The switches run with NO rules: nothing is forwarded yet.",
              "  1. In another terminal:  ./mycontroller.py",
              "  2. Here:  h2 ./receive.py &      (and/or h3 ./receive.py &)",
              "            h1 ./send.py 10.0.0.1 \"hello\"",
              "  Per-packet switch traces: logs/sN.log; captures: pcaps/",
              "  Leave with 'exit' (or Ctrl-D); everything is torn down.", ""]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from mininet.cli import CLI

    from .network import Network, NetworkError, SwitchOptions, switch_executable

    state_path = args.log_dir / STATE_NAME
    if state_path.exists():
        previous = RunState.load(state_path)
        runner = next((p for p in previous.processes if p["role"] == "runner"), None)
        if runner and cmdline(runner["pid"]) == runner["cmdline"]:
            print(f"error: the network is already running (pid {runner['pid']}); "
                  "run 'make stop' first", file=sys.stderr)
            return 1
        print("Removing what an earlier run left behind ...")
        cleanup(state_path)
    try:
        topology = load_topology(args.topo)
        json_path = Path(args.switch_json)
        if not json_path.is_file():
            raise NetworkError(f"{json_path} not found: have you run 'make'?")
        options = SwitchOptions(json_path.resolve(), switch_executable(args.behavioral_exe),
                                args.log_dir.resolve(), args.pcap_dir.resolve(), args.grpc_host,
                                log_console=not args.quiet_switches)
    except (TopologyError, NetworkError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    state = RunState(state_path)
    state.add_process(os.getpid(), "runner")
    network = Network(topology, options, state)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        network.start()
        print(banner(network), flush=True)
        if args.no_cli:
            print("Network is up (no CLI); stop it with 'make stop'.", flush=True)
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
        else:
            CLI(network.net)
    except NetworkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        network.stop()
        cleanup(state_path, verbose=False)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="netrun", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="start the network and the Mininet CLI")
    run_parser.add_argument("-t", "--topo", default=str(REPO / "topology.json"))
    run_parser.add_argument("-j", "--switch-json", default=str(REPO / "build/load_balance.json"))
    run_parser.add_argument("-b", "--behavioral-exe", default=None,
                            help="switch program: simple_switch_grpc or p4switch "
                                 "(default: simple_switch_grpc if installed, else p4switch)")
    run_parser.add_argument("--grpc-host", default="127.0.0.1",
                            help="address the switches' gRPC servers listen on")
    run_parser.add_argument("-l", "--log-dir", type=Path, default=REPO / "logs")
    run_parser.add_argument("-p", "--pcap-dir", type=Path, default=REPO / "pcaps")
    run_parser.add_argument("--no-cli", action="store_true", help="no Mininet CLI; wait for "
                            "SIGINT/SIGTERM")
    run_parser.add_argument("--quiet-switches", action="store_true",
                            help="no per-packet trace in logs/sN.log (faster)")
    demo_parser = sub.add_parser("demo", help="non-interactive before/after demonstration")
    demo_parser.add_argument("--flows", type=int, default=20)
    stop_parser = sub.add_parser("stop", help="remove what a run left behind")
    stop_parser.add_argument("-l", "--log-dir", type=Path, default=REPO / "logs")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("error: Mininet needs root: run with sudo", file=sys.stderr)
        return 1
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(args.flows)
    if args.command == "stop":
        done = cleanup(args.log_dir / STATE_NAME)
        if not done:
            print("Nothing to stop.")
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
