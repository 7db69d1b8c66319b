"""A third-party P4Runtime client run against our switch: finsy (PyPI), in its own venv.

    VENV/bin/python tests/finsy_client.py ADDRESS DEVICE_ID P4INFO P4BLOB [write|read|clear]

Connects, becomes primary, pushes the pipeline (finsy does it when given the
P4Info and the device config, unless the switch's cookie already matches),
then with ``write`` (the default) inserts load_balance's s1 entries and tries
one duplicate insert; ``clear`` sets ecmp_group's default action to drop, reads
it, then runs finsy's ``delete_all`` (wildcard read, deletes, default resets);
every mode then reads all table entries and ecmp_group's default back.  Prints one JSON
object on stdout; finsy's log (warnings and up) goes to stderr as
``LEVEL:message`` lines.  It imports finsy only, never this project's code.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

import finsy as fy

S1_ENTRIES = [
    fy.P4TableEntry("ecmp_group", match=fy.Match({"hdr.ipv4.dstAddr": "10.0.0.1/32"}),
                    action=fy.Action("set_ecmp_select", ecmp_base=0, ecmp_count=2)),
    fy.P4TableEntry("ecmp_nhop", match=fy.Match({"meta.ecmp_select": 0}),
                    action=fy.Action("set_nhop", nhop_dmac="08:00:00:00:02:02",
                                     nhop_ipv4="10.0.2.2", port=2)),
    fy.P4TableEntry("ecmp_nhop", match=fy.Match({"meta.ecmp_select": 1}),
                    action=fy.Action("set_nhop", nhop_dmac="08:00:00:00:03:03",
                                     nhop_ipv4="10.0.3.3", port=3)),
    fy.P4TableEntry("send_frame", match=fy.Match({"standard_metadata.egress_port": 2}),
                    action=fy.Action("rewrite_mac", smac="08:00:00:00:01:00")),
    fy.P4TableEntry("send_frame", match=fy.Match({"standard_metadata.egress_port": 3}),
                    action=fy.Action("rewrite_mac", smac="08:00:00:00:01:00")),
]


def plain(value: Any) -> Any:
    """finsy's decoded values (ints, tuples for LPM) as JSON values."""
    if isinstance(value, tuple):
        return [plain(v) for v in value]
    if isinstance(value, int):
        return int(value)
    return str(value)


def describe(switch: fy.Switch, entry: fy.P4TableEntry) -> dict[str, Any]:
    """One read-back entry in finsy's decoded form and its P4Info-aware strings."""
    table = switch.p4info.tables[entry.table_id]
    match = entry.match or fy.Match()
    action = entry.action
    assert isinstance(action, fy.P4TableAction), action
    return {
        "table": entry.table_id,
        "match": {name: plain(value) for name, value in match.items()},
        "match_str": match.format_dict(table),
        "action": action.name,
        "params": {name: plain(value) for name, value in action.args.items()},
        "action_str": action.format_str(table),
        "is_default_action": entry.is_default_action,
        "priority": entry.priority,
    }


async def session(address: str, device_id: int, p4info: Path, p4blob: Path,
                  mode: str) -> dict[str, Any]:
    """Everything the test checks, from one finsy connection."""
    options = fy.SwitchOptions(p4info=p4info, p4blob=p4blob, device_id=device_id)
    out: dict[str, Any] = {"finsy": fy.__version__}
    async with fy.Switch("s1", address, options) as switch:
        out["is_primary"] = switch.is_primary
        out["election_id"] = switch.election_id
        out["p4runtime_version"] = str(switch.p4runtime_version)
        if mode == "write":
            await insert_and_duplicate(switch, out)
        elif mode == "clear":
            await switch.modify([fy.P4TableEntry("ecmp_group", is_default_action=True,
                                                 action=fy.Action("MyIngress.drop"))])
            out["modified_default"] = [describe(switch, entry) async for entry in switch.read(
                fy.P4TableEntry("ecmp_group", is_default_action=True))]
            await switch.delete_all()
        out["entries"] = [describe(switch, entry)
                          async for entry in switch.read(fy.P4TableEntry())]
        out["defaults"] = [describe(switch, entry) async for entry in switch.read(
            fy.P4TableEntry("ecmp_group", is_default_action=True))]
    return out


async def insert_and_duplicate(switch: fy.Switch, out: dict[str, Any]) -> None:
    """The s1 entries, then the first one's key again (must fail as ALREADY_EXISTS)."""
    await switch.insert(S1_ENTRIES)
    try:
        await switch.insert([fy.P4TableEntry(
            "ecmp_group", match=fy.Match({"hdr.ipv4.dstAddr": "10.0.0.1/32"}),
            action=fy.Action("MyIngress.drop"))])
        out["duplicate"] = None
    except fy.P4ClientError as error:
        out["duplicate"] = {
            "code": error.code.name,
            "details": {str(index): {"code": detail.canonical_code.name,
                                     "message": detail.message}
                        for index, detail in error.details.items()},
        }


def main() -> None:
    address, device_id, p4info, p4blob = sys.argv[1:5]
    mode = sys.argv[5] if len(sys.argv) > 5 else "write"
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s:%(message)s")
    result = asyncio.run(session(address, int(device_id), Path(p4info), Path(p4blob),
                                 mode))
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
