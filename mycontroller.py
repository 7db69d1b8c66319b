#!/usr/bin/env python3
"""load_balance controller: program s1, s2 and s3 over P4Runtime.

Becomes primary on each switch, pushes the pipeline (P4Info + BMv2 JSON), writes
every rule below -- one batched WriteRequest per switch -- and reads them back.
    make run            # in one terminal: Mininet with s1-s3, no rules yet
    ./mycontroller.py   # in another: program the switches
"""

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "utils"))
if __name__ == "__main__":
    from bootstrap import use_project_venv

    use_project_venv(__file__)  # grpc and the p4runtime messages live in .venv

from p4build import BuildError, BuildFiles, check_stamp  # noqa: E402

import p4runtime_lib as p4rt  # noqa: E402

BUILD = BuildFiles(HERE / "load_balance.p4", HERE / "build")  # p4c's output: build/
Batch = list  # one switch's p4runtime Updates, sent as ONE WriteRequest

# (name, gRPC address, device id) of each switch, as `make run` starts them
SWITCHES = (
    ("s1", "127.0.0.1:50051", 0),
    ("s2", "127.0.0.1:50052", 1),
    ("s3", "127.0.0.1:50053", 2),
)


def write_ecmp_group_rules(p4info: p4rt.P4Info, sw: Batch, dst_ip_addr: str, ecmp_base: int,
                           ecmp_count: int) -> None:
    """Traffic to ``dst_ip_addr`` picks one of ``ecmp_count`` paths from ``ecmp_base``."""
    entry = p4rt.table_entry(p4info, "MyIngress.ecmp_group",
                             match={"hdr.ipv4.dstAddr": dst_ip_addr},
                             action="MyIngress.set_ecmp_select",
                             params={"ecmp_base": ecmp_base, "ecmp_count": ecmp_count})
    sw.append(p4rt.insert(entry))


def write_ecmp_group_default_drop(p4info: p4rt.P4Info, sw: Batch) -> None:
    """Any other destination is dropped (a default entry is MODIFIED, never inserted)."""
    sw.append(p4rt.modify(p4rt.default_entry(p4info, "MyIngress.ecmp_group", "MyIngress.drop")))


def write_ecmp_nhop_rules(p4info: p4rt.P4Info, sw: Batch, ecmp_select: int, nhop_ip: str,
                          nhop_mac: str, egress_port: int) -> None:
    """Hash result ``ecmp_select`` -> next hop: its IPv4 address, MAC and port."""
    entry = p4rt.table_entry(p4info, "MyIngress.ecmp_nhop",
                             match={"meta.ecmp_select": ecmp_select},
                             action="MyIngress.set_nhop",
                             params={"nhop_dmac": nhop_mac, "nhop_ipv4": nhop_ip,
                                     "port": egress_port})
    sw.append(p4rt.insert(entry))


def write_send_frame_rules(p4info: p4rt.P4Info, sw: Batch, egress_port: int, smac: str) -> None:
    """Frames leaving ``egress_port`` get source MAC ``smac``."""
    entry = p4rt.table_entry(p4info, "MyEgress.send_frame",
                             match={"standard_metadata.egress_port": egress_port},
                             action="MyEgress.rewrite_mac", params={"smac": smac})
    sw.append(p4rt.insert(entry))


def s1_rules(p4info: p4rt.P4Info) -> Batch:
    """s1: 10.0.0.1 is the virtual address, spread over 2 paths (to h2 and to h3)."""
    s1: Batch = []
    write_ecmp_group_rules(p4info, s1, "10.0.0.1/32", ecmp_base=0, ecmp_count=2)
    write_ecmp_group_default_drop(p4info, s1)
    write_ecmp_nhop_rules(p4info, s1, 0, "10.0.2.2", "00:00:00:00:01:02", egress_port=2)
    write_ecmp_nhop_rules(p4info, s1, 1, "10.0.3.3", "00:00:00:00:01:03", egress_port=3)
    write_send_frame_rules(p4info, s1, egress_port=2, smac="00:00:00:01:02:00")
    write_send_frame_rules(p4info, s1, egress_port=3, smac="00:00:00:01:03:00")
    return s1


def s2_rules(p4info: p4rt.P4Info) -> Batch:
    """s2: delivers 10.0.2.2 to h2."""
    s2: Batch = []
    write_ecmp_group_rules(p4info, s2, "10.0.2.2/32", ecmp_base=0, ecmp_count=1)
    write_ecmp_group_default_drop(p4info, s2)
    write_ecmp_nhop_rules(p4info, s2, 0, "10.0.2.2", "08:00:00:00:02:02", egress_port=1)
    write_send_frame_rules(p4info, s2, egress_port=1, smac="00:00:00:02:01:00")
    return s2


def s3_rules(p4info: p4rt.P4Info) -> Batch:
    """s3: delivers 10.0.3.3 to h3."""
    s3: Batch = []
    write_ecmp_group_rules(p4info, s3, "10.0.3.3/32", ecmp_base=0, ecmp_count=1)
    write_ecmp_group_default_drop(p4info, s3)
    write_ecmp_nhop_rules(p4info, s3, 0, "10.0.3.3", "08:00:00:00:03:03", egress_port=1)
    write_send_frame_rules(p4info, s3, egress_port=1, smac="00:00:00:03:01:00")
    return s3


RULES = {"s1": s1_rules, "s2": s2_rules, "s3": s3_rules}  # the exercise's 14 rules


def read_table_rules(p4info: p4rt.P4Info, sw: p4rt.SwitchConnection) -> None:
    """Print every entry of every table by name, then each table's default."""
    print(f"\n----- Reading tables rules for {sw.name} -----")
    for entry in sw.read_table_entries():
        print(f"  {p4rt.format_table_entry(p4info, entry)}")
    for table in p4info.proto.tables:
        print(f"  {p4rt.format_table_entry(p4info, sw.read_default_entry(table.preamble.id))}")


def main(args: argparse.Namespace) -> None:
    """Connect, become primary, push the pipeline, write the rules, read them back."""
    p4info = p4rt.P4Info.load(args.p4info)
    bmv2_json = Path(args.bmv2_json).read_bytes()
    rules = {}  # built before any switch is touched: a bad P4Info changes nothing
    for name in args.switches:
        try:
            rules[name] = RULES[name](p4info)
        except p4rt.ControllerError as error:  # a P4Info without the helpers' names or widths
            raise p4rt.ControllerError(f"{name}: {error.message}", error.hint) from None
    connections = []
    try:
        # 1. Connect to every switch and become its primary controller.
        for name, (address, device_id) in args.switches.items():
            dump = HERE / "logs" / f"{name}-p4runtime-requests.txt" if args.proto_dump else None
            sw = p4rt.SwitchConnection(name, address, device_id,
                                       election_id=(0, args.election_id),
                                       proto_dump_file=dump, timeout=args.timeout,
                                       p4info=p4info)
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
    if args.bmv2_json == BUILD.json and BUILD.source.is_file():
        try:
            check_stamp(BUILD)
        except BuildError as error:
            parser.exit(1, f"error: {error}\n")  # the .p4 changed since build/ was made

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
    except p4rt.WriteError as error:
        print("error: " + "\n".join(error.lines()), file=sys.stderr)
        sys.exit(1)
    except (p4rt.ControllerError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
