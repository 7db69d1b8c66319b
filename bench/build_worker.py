"""Build table entries by name with one P4Runtime library, in that library's own venv.

    PYTHON bench/build_worker.py LIBRARY P4INFO COUNT ROUNDS FORM

LIBRARY is ``ours`` (this repo's utils/p4runtime_lib, bulk ``TableBuilder``),
``ours-single`` (the mycontroller-style ``insert(table_entry(...))`` per entry),
``finsy`` or ``p4runtime-shell``; FORM is ``int`` (``(prefix, 24)``) or ``text``
(``"10.0.1.0/24"``).  Each round builds COUNT p4.v1.Update INSERTs of
MyIngress.ecmp_group / MyIngress.set_ecmp_select(ecmp_base=0, ecmp_count=2) from
names and values; the P4Info is loaded once, before the rounds.  Prints one JSON
object: the rates of every round, the library's version, protobuf's backend, and
each update's serialized bytes hashed (to compare what the libraries built).

It imports only the library it measures (finsy and p4runtime-shell do not see this
repo), so each runs on the protobuf / grpcio its own venv installed.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TABLE, ACTION, FIELD = "MyIngress.ecmp_group", "MyIngress.set_ecmp_select", "hdr.ipv4.dstAddr"
Builder = Callable[[list[Any]], list[Any]]


def values(count: int, form: str) -> list[Any]:
    """The LPM match values: 10.x.y.0/24 for x.y = 0..count-1, as ints or text."""
    prefixes = [(10 << 24) | (i << 8) for i in range(count)]
    if form == "int":
        return [(prefix, 24) for prefix in prefixes]
    return [f"10.{p >> 16 & 255}.{p >> 8 & 255}.0/24" for p in prefixes]


def ours(p4info: Path) -> tuple[Builder, str]:
    """Our bulk API: a TableBuilder resolved once, then one call for all rows."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "utils"))
    from p4runtime_lib import P4Info, TableBuilder

    table = TableBuilder(P4Info.load(p4info), TABLE)

    def build(matches: list[Any]) -> list[Any]:
        return table.inserts(({FIELD: m}, ACTION, {"ecmp_base": 0, "ecmp_count": 2})
                             for m in matches)

    return build, "this repo"


def ours_single(p4info: Path) -> tuple[Builder, str]:
    """Our mycontroller-style helpers, one call per entry."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "utils"))
    from p4runtime_lib import P4Info, insert, table_entry

    info = P4Info.load(p4info)

    def build(matches: list[Any]) -> list[Any]:
        return [insert(table_entry(info, TABLE, match={FIELD: m}, action=ACTION,
                                   params={"ecmp_base": 0, "ecmp_count": 2}))
                for m in matches]

    return build, "this repo"


def finsy(p4info: Path) -> tuple[Builder, str]:
    """finsy's entities, encoded as updates against its P4Schema (as Switch.insert does)."""
    import finsy as fy

    schema = fy.P4Schema(p4info)

    def build(matches: list[Any]) -> list[Any]:
        return [(+fy.P4TableEntry(TABLE, match=fy.Match({FIELD: m}),
                                  action=fy.Action(ACTION, ecmp_base=0, ecmp_count=2))
                 ).encode_update(schema) for m in matches]

    return build, fy.__version__


def p4runtime_shell(p4info: Path) -> tuple[Builder, str]:
    """p4runtime-shell's TableEntry objects, with its P4Info context set offline; the
    update is wrapped as its ``TableEntry.insert`` does before sending."""
    from importlib.metadata import version

    from google.protobuf import text_format
    from p4.config.v1 import p4info_pb2
    from p4.v1 import p4runtime_pb2
    from p4runtime_sh import shell
    from p4runtime_sh.global_options import global_options

    global_options["verbose"] = False  # else it prints every match and param it sets
    proto = p4info_pb2.P4Info()
    text_format.Merge(p4info.read_text(), proto)
    shell.context.set_p4info(proto)

    def build(matches: list[Any]) -> list[Any]:
        updates = []
        for m in matches:
            entry = shell.TableEntry(TABLE)(action=ACTION)
            entry.match[FIELD] = m
            entry.action["ecmp_base"] = "0"
            entry.action["ecmp_count"] = "2"
            update = p4runtime_pb2.Update(type=p4runtime_pb2.Update.INSERT)
            update.entity.table_entry.CopyFrom(entry.msg())
            updates.append(update)
        return updates

    return build, version("p4runtime-shell")


LIBRARIES: dict[str, Callable[[Path], tuple[Builder, str]]] = {
    "ours": ours, "ours-single": ours_single, "finsy": finsy,
    "p4runtime-shell": p4runtime_shell}


def main() -> None:
    library, p4info, count, rounds, form = sys.argv[1:6]
    build, version = LIBRARIES[library](Path(p4info))
    from google.protobuf.internal import api_implementation

    matches = values(int(count), form)
    rates, updates = [], []
    for _ in range(int(rounds)):
        start = time.perf_counter()
        updates = build(matches)
        rates.append(len(matches) / (time.perf_counter() - start))
        assert len(updates) == len(matches)
    digest = hashlib.sha256()
    for update in updates:
        digest.update(update.SerializeToString(deterministic=True))
    print(json.dumps({"library": library, "version": version, "form": form, "rates": rates,
                      "protobuf": api_implementation.Type(), "digest": digest.hexdigest(),
                      "first": updates[0].SerializeToString(deterministic=True).hex()}))


if __name__ == "__main__":
    main()
