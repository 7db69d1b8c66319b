#!/usr/bin/env python3
"""lbctl: watch and steer the running load balancer on s1, over P4Runtime.

    ./lbctl.py status [--json]         weight, buckets, counters, share per backend
    ./lbctl.py watch [--plot FILE]     live bars every second (Ctrl-C ends)
    ./lbctl.py weights h2=3 h3=1       a bucket table reaching 3:1, fewest flows moved
    ./lbctl.py drain h3                h3 to weight 0: only h3's flows move
    ./lbctl.py restore h3              h3 back to the weight it had
    ./lbctl.py reset                   back to the tutorial's two entries
    --dry-run                          print the writes instead of sending them

It reads the switch's state back, writes only the difference, in an order that
never drops or misdelivers a packet, and never pushes the pipeline: run
./mycontroller.py to start over from the tutorial's rules.
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "utils"))
if __name__ == "__main__":
    from bootstrap import use_project_venv

    use_project_venv(__file__)  # grpc and the p4runtime messages live in .venv

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

from live import view  # noqa: E402
from live.buckets import WeightError  # noqa: E402
from live.control import ELECTION_ID, LiveSwitch  # noqa: E402
from live.plan import Plan, plan_drain, plan_reset, plan_restore, plan_weights  # noqa: E402
from live.state import StateError  # noqa: E402

from netrun.topology import TopologyError, load_topology  # noqa: E402
from p4runtime_lib import ControllerError, P4Info, SwitchConnection, WriteError  # noqa: E402
from p4runtime_lib.entries import format_update  # noqa: E402


def connect(args: argparse.Namespace) -> LiveSwitch:
    """s1's connection (nothing is sent until the first read or write)."""
    info = P4Info.load(args.p4info)
    names = {host.ip.split("/")[0]: name
             for name, host in load_topology(args.topology).hosts.items()}
    connection = SwitchConnection("s1", args.switch, args.device_id,
                                  election_id=(0, args.election_id), timeout=args.timeout,
                                  p4info=info)
    return LiveSwitch(connection, info, args.vip, names)


def show_status(live: LiveSwitch, args: argparse.Namespace) -> None:
    """Counters now and ``--interval`` seconds later: totals, rate and share."""
    _, first = live.sample()
    if args.interval > 0:
        time.sleep(args.interval)
    balancer, second = live.sample()
    table = view.rows(balancer, first, second)
    seconds = second.at - first.at
    if args.json:
        print(json.dumps(view.status_json(balancer, table, seconds), indent=2))
    else:
        print("\n".join(view.status_lines(balancer, table, seconds)))


def watch(live: LiveSwitch, args: argparse.Namespace) -> None:
    """Bars every ``--interval`` s until Ctrl-C or ``--duration``; then the chart."""
    history = view.History()
    _, before = live.sample()
    start = before.at
    clear = sys.stdout.isatty()
    try:
        while args.duration is None or before.at - start < args.duration:
            time.sleep(args.interval)
            balancer, now = live.sample()
            table = view.rows(balancer, before, now)
            history.add(before.at - start, now.at - start, table)
            frame = view.bars(table, time.strftime("%H:%M:%S"))
            print(("\x1b[H\x1b[J" if clear else "") + "\n".join(frame), flush=True)
            before = now
    except KeyboardInterrupt:
        print()
    if args.plot:
        view.plot(history, args.plot)
        print(f"chart of {len(history.times)} samples written to {args.plot}")


def change(live: LiveSwitch, plan: Plan, args: argparse.Namespace) -> None:
    """Print what the plan does; write it unless --dry-run."""
    total = len(plan.after)
    weights = " ".join(f"{n}={w}" for n, w in plan.weights.items())
    if not plan.phases:
        print(f"s1: the weights are already {weights}: nothing to change, nothing written")
        return
    print(f"s1: weights {weights}: {len(plan.phases)} writes, {plan.moved} of {total} buckets "
          f"change backend ({plan.moved / total:.1%} of the flows; the fewest possible "
          f"is {plan.fewest})")
    if args.dry_run:
        for number, phase in enumerate(plan.phases, 1):
            print(f"write {number}: {phase.what}")
            for update in phase.updates:
                print(f"  {format_update(live.info, update)}")
        print("(dry run: nothing written)")
        return
    live.apply(plan, lambda line: print(f"  {line}"))
    print("done")


def run(args: argparse.Namespace) -> None:
    live = connect(args)
    try:
        if args.command == "status":
            show_status(live, args)
        elif args.command == "watch":
            watch(live, args)
        else:
            balancer = live.read()
            if args.command == "weights":
                plan = plan_weights(live.info, balancer, args.weights)
            elif args.command == "drain":
                plan = plan_drain(live.info, balancer, args.backend)
            elif args.command == "restore":
                plan = plan_restore(live.info, balancer, args.backend)
            else:
                plan = plan_reset(live.info, balancer)
            change(live, plan, args)
    finally:
        live.connection.close()


def weight(text: str) -> tuple[str, int]:
    """``h2=3`` -> ("h2", 3)."""
    name, _, value = text.partition("=")
    if not name or not value.isdigit():
        raise argparse.ArgumentTypeError(f"'{text}' is not NAME=WEIGHT, e.g. h2=3")
    return name, int(value)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="watch and steer s1's load balancer live")
    parser.add_argument("--switch", default="127.0.0.1:50051", metavar="HOST:PORT",
                        help="s1's gRPC address (default 127.0.0.1:50051)")
    parser.add_argument("--device-id", type=int, default=0, help="s1's device id (0)")
    parser.add_argument("--election-id", type=int, default=ELECTION_ID,
                        help=f"election id for changes (default {ELECTION_ID}, above "
                             "mycontroller.py's 1)")
    parser.add_argument("--vip", default="10.0.0.1", help="the load-balanced address")
    parser.add_argument("--p4info", type=Path,
                        default=HERE / "build/load_balance.p4.p4info.txtpb")
    parser.add_argument("--topology", type=Path, default=HERE / "topology.json",
                        help="names the backends by their address (default topology.json)")
    parser.add_argument("--timeout", type=float, default=5.0,
                        help="seconds to wait for the switch (default 5)")
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser("status", help="per backend: weight, buckets, counters")
    status.add_argument("--json", action="store_true", help="one JSON document")
    status.add_argument("--interval", type=float, default=1.0,
                        help="seconds between the two counter reads (default 1)")
    watching = commands.add_parser("watch", help="live bars of packets/s and share")
    watching.add_argument("--interval", type=float, default=1.0, help="refresh (default 1 s)")
    watching.add_argument("--duration", type=float, default=None,
                          help="stop after this many seconds (default: Ctrl-C)")
    watching.add_argument("--plot", metavar="FILE.png", help="chart of the shares at the end")
    for name, text in (("weights", "set weights, e.g. h2=3 h3=1"),
                       ("drain", "weight 0 for one backend"),
                       ("restore", "a drained backend back to its weight"),
                       ("reset", "back to the tutorial's ecmp_count 2 entries")):
        sub = commands.add_parser(name, help=text)
        if name == "weights":
            sub.add_argument("weights", nargs="+", type=weight, metavar="NAME=WEIGHT")
        elif name in ("drain", "restore"):
            sub.add_argument("backend", help="e.g. h3")
        sub.add_argument("--dry-run", action="store_true",
                         help="print the updates instead of writing them")
    args = parser.parse_args(argv)
    if args.command == "weights":
        args.weights = dict(args.weights)
    for what, path in (("p4info", args.p4info), ("topology", args.topology)):
        if not path.is_file():
            parser.exit(1, f"error: {what} file not found: {path}. Have you run 'make'?\n")
    if getattr(args, "interval", 1.0) <= 0 and args.command == "watch":
        parser.error("--interval must be above 0")
    return args


if __name__ == "__main__":
    try:
        run(parse_args())
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:  # e.g. `./lbctl.py ... --dry-run | head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
    except WriteError as error:
        print("error: " + "\n".join(error.lines()), file=sys.stderr)
        sys.exit(1)
    except (ControllerError, StateError, WeightError, TopologyError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
