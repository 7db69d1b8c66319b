#!/usr/bin/env python3
"""load_balance controller: program s1-s3 over P4Runtime.

Traffic from h1 to the virtual address 10.0.0.1 is spread between h2 and h3
by a crc16 hash of its 5-tuple.  This controller becomes primary on each
switch, pushes the pipeline (P4Info + BMv2 JSON), writes every rule through
three small helpers, then reads the tables back.

    ./mycontroller.py [--p4info build/load_balance.p4.p4info.txtpb]
                      [--bmv2-json build/load_balance.json]
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV_PYTHON = HERE / ".venv" / "bin" / "python"
if Path(sys.prefix) != VENV_PYTHON.parent.parent and VENV_PYTHON.exists():
    os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])  # use the project's venv
sys.path.insert(0, str(HERE / "utils"))

import argparse  # noqa: E402

from p4runtime_lib import (  # noqa: E402
    ControllerError,
    EntryError,
    P4Info,
    P4InfoError,
    SwitchConnection,
    WriteError,
    decode_table_entry,
    default_entry,
    insert,
    modify,
    table_entry,
)

# name, gRPC address, device id -- as `make run` starts them
SWITCHES = [("s1", "127.0.0.1:50051", 0),
            ("s2", "127.0.0.1:50052", 1),
            ("s3", "127.0.0.1:50053", 2)]


def write_ecmp_group_rules(p4info, switch):
    """10.0.0.1 is spread over 2 paths on s1; s2 and s3 each have one path."""
    groups = {
        "s1": ("10.0.0.1/32", 0, 2),
        "s2": ("10.0.2.2/32", 0, 1),
        "s3": ("10.0.3.3/32", 0, 1),
    }
    prefix, base, count = groups[switch]
    return [
        insert(table_entry(p4info, "MyIngress.ecmp_group",
                           match={"hdr.ipv4.dstAddr": prefix},
                           action="MyIngress.set_ecmp_select",
                           params={"ecmp_base": base, "ecmp_count": count})),
        # everything else is dropped (default entries are written with MODIFY)
        modify(default_entry(p4info, "MyIngress.ecmp_group", "MyIngress.drop")),
    ]


def write_ecmp_nhop_rules(p4info, switch):
    """Hash result -> next hop: its MAC, its address, the port towards it."""
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


def write_send_frame_rules(p4info, switch):
    """Source MAC of frames leaving each port."""
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


def read_table_rules(p4info, switch):
    """Print every entry of every table, by name."""
    print(f"\n----- Reading tables rules for {switch.name} -----")
    for entry in switch.read_table_entries():
        print(f"  {decode_table_entry(p4info, entry)}")
    for table in p4info.proto.tables:
        default = switch.read_default_entry(table.preamble.id)
        print(f"  {decode_table_entry(p4info, default)}")


def program_switch(p4info, bmv2_json, name, address, device_id, args):
    dump = HERE / f"logs/{name}-p4runtime-requests.txt" if args.proto_dump else None
    with SwitchConnection(name, address, device_id, election_id=(0, args.election_id),
                          timeout=args.timeout, proto_dump=dump, p4info=p4info) as switch:
        switch.become_primary()
        switch.set_pipeline(p4info.proto, bmv2_json)
        print(f"Installed P4 program using SetForwardingPipelineConfig on {name}")
        updates = (write_ecmp_group_rules(p4info, name)
                   + write_ecmp_nhop_rules(p4info, name)
                   + write_send_frame_rules(p4info, name))
        switch.write(updates)  # one batched WriteRequest per switch
        print(f"Installed {len(updates)} entries on {name} in one WriteRequest")
        read_table_rules(p4info, switch)


def main(args):
    p4info = P4Info.load(args.p4info)
    bmv2_json = Path(args.bmv2_json).read_bytes()
    for name, address, device_id in SWITCHES:
        if args.switch and name not in args.switch:
            continue
        host, _, port = address.rpartition(":")
        if args.grpc_base_port:
            address = f"{host}:{args.grpc_base_port + device_id}"
        program_switch(p4info, bmv2_json, name, address, device_id, args)
    print("\nAll switches programmed: h1 -> 10.0.0.1 now reaches h2 or h3.")


def parse_args():
    parser = argparse.ArgumentParser(description="P4Runtime controller for load_balance")
    parser.add_argument("--p4info", default=str(HERE / "build/load_balance.p4.p4info.txtpb"),
                        help="P4Info file (text format)")
    parser.add_argument("--bmv2-json", default=str(HERE / "build/load_balance.json"),
                        help="BMv2 JSON file")
    parser.add_argument("--switch", action="append", choices=[s for s, _, _ in SWITCHES],
                        help="program only this switch (repeat); default: all")
    parser.add_argument("--grpc-base-port", type=int, default=0,
                        help="gRPC port of s1 (s2 and s3 follow); default 50051")
    parser.add_argument("--election-id", type=int, default=1,
                        help="election id (low 64 bits); the highest id is primary")
    parser.add_argument("--timeout", type=float, default=5.0,
                        help="seconds to wait for each switch")
    parser.add_argument("--proto-dump", action="store_true",
                        help="log requests in logs/sN-p4runtime-requests.txt")
    args = parser.parse_args()
    for flag, path in (("p4info", args.p4info), ("BMv2 JSON", args.bmv2_json)):
        if not Path(path).is_file():
            parser.print_help()
            print(f"\n{flag} file not found: {path}\nHave you run 'make'?")
            parser.exit(1)
    return args


if __name__ == "__main__":
    try:
        main(parse_args())
    except KeyboardInterrupt:
        print(" Shutting down.")
        sys.exit(130)
    except WriteError as error:
        print("\n".join(error.lines()), file=sys.stderr)
        sys.exit(1)
    except (ControllerError, P4InfoError, EntryError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
