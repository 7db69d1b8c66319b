#!/usr/bin/env python3
"""load_balance controller: program s1, s2 and s3 over P4Runtime.

h1 sends to the virtual address 10.0.0.1; s1 spreads the flows over h2 and h3
by a crc16 hash of their 5-tuple.  This controller becomes primary on each
switch, pushes the pipeline (P4Info + BMv2 JSON), writes every rule through
three small helpers -- one batched WriteRequest per switch -- and reads the
tables back.

    make run            # in one terminal: Mininet with s1-s3, no rules yet
    ./mycontroller.py   # in another: program the switches
"""

import importlib.util
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv"


def use_the_venv() -> None:
    """Re-run this script under the project's .venv python (it has grpc and the protos)."""
    python = VENV / "bin" / "python"
    in_venv = Path(sys.prefix).resolve() == VENV.resolve()
    if not in_venv and python.exists() and not os.environ.get("MYCONTROLLER_REEXEC"):
        os.environ["MYCONTROLLER_REEXEC"] = "1"
        os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])
    if importlib.util.find_spec("grpc") is None:
        sys.exit(f"{sys.executable} has no grpc module. Have you run 'make setup'?")


if __name__ == "__main__":
    use_the_venv()
sys.path.insert(0, str(HERE / "utils"))

import argparse  # noqa: E402

from p4build import BuildFiles, sha256  # noqa: E402

from p4runtime_lib import (  # noqa: E402
    ControllerError,
    P4Info,
    SwitchConnection,
    WriteError,
    default_entry,
    format_table_entry,
    insert,
    modify,
    table_entry,
)
from p4runtime_lib.protos import p4runtime_pb2  # noqa: E402

Update = p4runtime_pb2.Update
BUILD = BuildFiles(HERE / "load_balance.p4", HERE / "build")

# (name, gRPC address, device id) of each switch, as `make run` starts them
SWITCHES = (
    ("s1", "127.0.0.1:50051", 0),
    ("s2", "127.0.0.1:50052", 1),
    ("s3", "127.0.0.1:50053", 2),
)


def write_ecmp_group_rules(p4info: P4Info, switch: str) -> list[Update]:
    """Traffic to the switch's address picks one of `ecmp_count` paths; the rest drops."""
    groups = {
        "s1": ("10.0.0.1/32", 0, 2),  # the load-balanced virtual address: 2 paths
        "s2": ("10.0.2.2/32", 0, 1),  # h2
        "s3": ("10.0.3.3/32", 0, 1),  # h3
    }
    prefix, base, count = groups[switch]
    return [
        insert(table_entry(p4info, "MyIngress.ecmp_group",
                           match={"hdr.ipv4.dstAddr": prefix},
                           action="MyIngress.set_ecmp_select",
                           params={"ecmp_base": base, "ecmp_count": count})),
        # a default entry is always there: it is changed with MODIFY, never inserted
        modify(default_entry(p4info, "MyIngress.ecmp_group", "MyIngress.drop")),
    ]


def write_ecmp_nhop_rules(p4info: P4Info, switch: str) -> list[Update]:
    """Hash result -> next hop: its MAC, its IPv4 address, the port towards it."""
    nhops = {
        "s1": [(0, "00:00:00:00:01:02", "10.0.2.2", 2),
               (1, "00:00:00:00:01:03", "10.0.3.3", 3)],
        "s2": [(0, "08:00:00:00:02:02", "10.0.2.2", 1)],
        "s3": [(0, "08:00:00:00:03:03", "10.0.3.3", 1)],
    }
    return [insert(table_entry(p4info, "MyIngress.ecmp_nhop",
                               match={"meta.ecmp_select": select},
                               action="MyIngress.set_nhop",
                               params={"nhop_dmac": dmac, "nhop_ipv4": ip, "port": port}))
            for select, dmac, ip, port in nhops[switch]]


def write_send_frame_rules(p4info: P4Info, switch: str) -> list[Update]:
    """The source MAC of frames leaving each port."""
    smacs = {
        "s1": [(2, "00:00:00:01:02:00"), (3, "00:00:00:01:03:00")],
        "s2": [(1, "00:00:00:02:01:00")],
        "s3": [(1, "00:00:00:03:01:00")],
    }
    return [insert(table_entry(p4info, "MyEgress.send_frame",
                               match={"standard_metadata.egress_port": port},
                               action="MyEgress.rewrite_mac",
                               params={"smac": smac}))
            for port, smac in smacs[switch]]


def switch_updates(p4info: P4Info, switch: str) -> list[Update]:
    """Every update for one switch, in the order they are written."""
    return (write_ecmp_group_rules(p4info, switch)
            + write_ecmp_nhop_rules(p4info, switch)
            + write_send_frame_rules(p4info, switch))


def read_table_rules(p4info: P4Info, sw: SwitchConnection) -> None:
    """Print every entry of every table by name, then each table's default."""
    print(f"\n----- Reading tables rules for {sw.name} -----")
    for entry in sw.read_table_entries():
        print(f"  {format_table_entry(p4info, entry)}")
    for table in p4info.proto.tables:
        print(f"  {format_table_entry(p4info, sw.read_default_entry(table.preamble.id))}")


def main(args: argparse.Namespace) -> None:
    """Connect, become primary, push the pipeline, write the rules, read them back."""
    p4info = P4Info.load(args.p4info)
    bmv2_json = Path(args.bmv2_json).read_bytes()
    rules = {}  # built before any switch is touched: a bad P4Info changes nothing
    for name in args.switches:
        try:
            rules[name] = switch_updates(p4info, name)
        except ControllerError as error:  # a P4Info without the helpers' names or widths
            raise ControllerError(f"{name}: {error.message}", error.hint) from None
    connections = []
    try:
        # 1. Connect to every switch and become its primary controller.
        for name, (address, device_id) in args.switches.items():
            dump = HERE / "logs" / f"{name}-p4runtime-requests.txt" if args.proto_dump else None
            sw = SwitchConnection(name, address, device_id, election_id=(0, args.election_id),
                                  proto_dump_file=dump, timeout=args.timeout, p4info=p4info)
            connections.append(sw)
            sw.become_primary()
            print(f"{name}: primary controller of device {device_id} at {address}")

        # 2. Push the pipeline (this also wipes old rules), then write the rules.
        for sw in connections:
            sw.set_pipeline(p4info, bmv2_json)
            print(f"Installed P4 program using SetForwardingPipelineConfig on {sw.name}")
            sw.write(rules[sw.name])  # ONE batched WriteRequest per switch
            print(f"Installed {len(rules[sw.name])} rules on {sw.name} in one WriteRequest")

        # 3. Read everything back.
        for sw in connections:
            read_table_rules(p4info, sw)
    finally:
        for sw in connections:
            sw.close()
    print(f"\nDone: programmed {', '.join(args.switches)}.")
    if len(args.switches) == len(SWITCHES):
        print("h1 -> 10.0.0.1 now reaches h2 or h3, chosen by a hash of the 5-tuple.")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line; missing build files end here with a hint."""
    parser = argparse.ArgumentParser(description="P4Runtime controller for load_balance")
    parser.add_argument("--p4info", type=Path, default=BUILD.p4info,
                        help="P4Info file from p4c (default: build/load_balance.p4.p4info.txtpb)")
    parser.add_argument("--bmv2-json", type=Path, default=BUILD.json,
                        help="BMv2 JSON file from p4c (default: build/load_balance.json)")
    parser.add_argument("--grpc-base-port", type=int, default=None, metavar="PORT",
                        help="gRPC port of s1 on 127.0.0.1 (s2 and s3 follow); default 50051")
    parser.add_argument("--switch", action="append", default=[], metavar="NAME[=ADDRESS]",
                        help="program only this switch, optionally at another gRPC address, "
                             "e.g. s2 or s2=127.0.0.1:60052 (repeat); default: all three")
    parser.add_argument("--election-id", type=int, default=1,
                        help="election id (the highest id is primary); default 1")
    parser.add_argument("--timeout", type=float, default=5.0,
                        help="seconds to wait for each switch; default 5")
    parser.add_argument("--proto-dump", action="store_true",
                        help="append every request to logs/sN-p4runtime-requests.txt")
    args = parser.parse_args(argv)

    for what, path in (("p4info", args.p4info), ("BMv2 JSON", args.bmv2_json)):
        if not path.is_file():
            parser.exit(1, f"{what} file not found: {path}. Have you run 'make'?\n")
    if args.bmv2_json == BUILD.json and BUILD.stamp.is_file() and BUILD.source.is_file() \
            and BUILD.stamp.read_text().split()[:1] != [sha256(BUILD.source)]:
        parser.exit(1, f"{BUILD.json} was not compiled from the current {BUILD.source.name}. "
                       "Have you run 'make'?\n")

    args.switches = {name: (address, device_id) for name, address, device_id in SWITCHES}
    if args.grpc_base_port is not None:
        for name, (_, device_id) in args.switches.items():
            args.switches[name] = (f"127.0.0.1:{args.grpc_base_port + device_id}", device_id)
    chosen = {}
    for item in args.switch:
        name, _, address = item.partition("=")
        if name not in args.switches:
            parser.error(f"--switch {item}: expected NAME[=HOST:PORT], NAME one of s1, s2, s3")
        host, _, port = address.rpartition(":")
        if address and not (host and port.isdigit() and 0 < int(port) < 65536):
            parser.error(f"--switch {item}: the address must be HOST:PORT with a port "
                         "1-65535, e.g. s2=127.0.0.1:50052")
        chosen[name] = (address or args.switches[name][0], args.switches[name][1])
    if chosen:
        args.switches = chosen
    return args


if __name__ == "__main__":
    try:
        main(parse_args())
    except KeyboardInterrupt:
        print(" Shutting down.")
        sys.exit(130)
    except WriteError as error:
        print("error: " + "\n".join(error.lines()), file=sys.stderr)
        sys.exit(1)
    except (ControllerError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
