"""Control-plane benchmarks: entry building (ours, finsy, p4runtime-shell), install rate
end to end, the switch alone, encoding, pipeline push, ./mycontroller.py end to end,
switch memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import (
    BUILD_JSON,
    BUILD_P4INFO,
    ENV,
    REPO,
    Figure,
    cpu_ns,
    free_ports,
    median,
    rss_kib,
    start_switch,
    stop,
)
from venvs import library_python

from netrun.ecmp import load_controller
from p4runtime_lib import P4Info, SwitchConnection, TableBuilder, insert, table_entry
from p4runtime_lib.protos import p4runtime_pb2

ECMP_GROUP_SIZE = 100_000


def big_json() -> bytes:
    """load_balance with room for 100,000 ecmp_group entries (the real one has 1,024)."""
    program = json.loads(BUILD_JSON.read_bytes())
    for pipeline in program["pipelines"]:
        for table in pipeline["tables"]:
            if table["name"] == "MyIngress.ecmp_group":
                table["max_size"] = ECMP_GROUP_SIZE
    return json.dumps(program).encode()


def prefixes(count: int) -> list[int]:
    return [(10 << 24) | (i << 8) for i in range(count)]


def rows(count: int) -> list[tuple[dict, str, dict]]:
    """(match, action, params) of ``count`` ecmp_group entries, by name."""
    return [({"hdr.ipv4.dstAddr": (prefix, 24)}, "MyIngress.set_ecmp_select",
             {"ecmp_base": 0, "ecmp_count": 2}) for prefix in prefixes(count)]


def ours(info: P4Info, count: int) -> p4runtime_pb2.WriteRequest:
    """Our path: entries by name (TableBuilder), canonical bytestrings, one WriteRequest."""
    return TableBuilder(info, "MyIngress.ecmp_group").write_request(rows(count))


def ours_single(info: P4Info, count: int) -> list[p4runtime_pb2.Update]:
    """mycontroller's style: one ``insert(table_entry(...))`` per entry."""
    return [insert(table_entry(info, "MyIngress.ecmp_group", match, action, params))
            for match, action, params in rows(count)]


BUILD_PLAN = (  # (library, value form, rounds per process): p4runtime-shell is slow
    ("ours", "int", 3), ("ours-single", "int", 3), ("finsy", "int", 3),
    ("ours", "text", 3), ("ours-single", "text", 3), ("finsy", "text", 3),
    ("p4runtime-shell", "text", 1))
FORMS = {"int": "(prefix, 24) ints", "text": "'10.x.y.0/24' text"}


def build_rates(figures: list[Figure], repeats: int = 3) -> None:
    """10,000 ecmp_group INSERTs built by name with each library (bench/build_worker.py,
    each in its own venv and process), the processes interleaved ``repeats`` times so
    every library sees the same machine; the best round of each is reported (the
    least disturbed, as timeit does) and the bytes they built are compared."""
    worker = str(Path(__file__).resolve().parent / "build_worker.py")
    pythons: dict[str, Path | None] = {"ours": Path(sys.executable),
                                       "ours-single": Path(sys.executable)}
    skipped: dict[str, str] = {}
    for name in ("finsy", "p4runtime-shell"):
        pythons[name], skipped[name] = library_python(name)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    rates: dict[tuple[str, str], list[float]] = {}
    digests: dict[tuple[str, str], str] = {}
    versions: dict[str, str] = {}
    for _ in range(repeats):
        for library, form, rounds in BUILD_PLAN:
            python = pythons[library]
            if python is None:
                continue
            out = subprocess.run([str(python), worker, library, str(BUILD_P4INFO), "10000",
                                  str(rounds), form], capture_output=True, text=True,
                                 env=env, cwd=tempfile.gettempdir(), timeout=600)
            if out.returncode != 0:
                skipped[library] = f"worker failed: {out.stderr.strip().splitlines()[-1]}"
                pythons[library] = None
                continue
            result = json.loads(out.stdout)
            rates.setdefault((library, form), []).extend(result["rates"])
            digests[(library, form)] = result["digest"]
            versions[library] = f"{result['version']}, protobuf {result['protobuf']}"
    best = {key: max(values) for key, values in rates.items()}

    def anchor(library: str, form: str) -> tuple[str, float | None]:
        if (library, form) not in best:
            return f"{library} skipped: {skipped.get(library) or 'not measured'}", None
        same = "same bytes" if digests[(library, form)] == digests.get(("ours", form)) \
            else "different bytes"
        return f"{library} {versions[library]} ({same})", best[(library, form)]

    for form in ("int", "text"):
        for library, how in (("ours", "TableBuilder rows"),
                             ("ours-single", "insert(table_entry()) each")):
            if (library, form) not in best:
                continue
            name, value = anchor("finsy", form)
            main = library == "ours" and form == "int"
            met = None if value is None or not main else best[(library, form)] >= 2 * value
            figures.append(Figure(
                "build", f"10,000 LPM entries by name, {FORMS[form]}: ours, {how}, best of "
                f"{len(rates[(library, form)])}", best[(library, form)], "entries/s", name,
                value, ">= 2x finsy" if main else "", met))
    name, value = anchor("p4runtime-shell", "text")
    if ("ours", "text") in best:
        figures.append(Figure("build", f"10,000 LPM entries by name, {FORMS['text']}: ours, "
                              "TableBuilder rows, vs p4runtime-shell", best[("ours", "text")],
                              "entries/s", name, value))


def tutorial_style(info: P4Info, count: int) -> list[p4runtime_pb2.WriteRequest]:
    """The tutorial library's shape: zero-padded values, one update per WriteRequest."""
    table = info.table("MyIngress.ecmp_group")
    action = info.action("MyIngress.set_ecmp_select")
    requests = []
    for prefix in prefixes(count):
        request = p4runtime_pb2.WriteRequest(device_id=0)
        request.election_id.low = 1
        update = request.updates.add(type=p4runtime_pb2.Update.INSERT)
        entry = update.entity.table_entry
        entry.table_id = table.preamble.id
        match = entry.match.add(field_id=1)
        match.lpm.value = prefix.to_bytes(4, "big")
        match.lpm.prefix_len = 24
        entry.action.action.action_id = action.preamble.id
        entry.action.action.params.add(param_id=1, value=(0).to_bytes(2, "big"))
        entry.action.action.params.add(param_id=2, value=(2).to_bytes(4, "big"))
        requests.append(request)
    return requests


def end_to_end(connection: SwitchConnection, info: P4Info, device_config: bytes,
               switch_pid: int, build: object, repeats: int) -> dict[str, float]:
    """Median over ``repeats`` of one 10,000-entry install (build + one WriteRequest +
    the switch): entries/s, and where the time went -- the client's CPU building and
    in the write call (serialize, gRPC), the switch's CPU during the write."""
    runs: list[tuple[float, float, float, float]] = []
    for _ in range(repeats):
        connection.set_pipeline(info.proto, device_config)  # wipes the table
        start, cpu = time.perf_counter(), time.process_time()
        request = build(info, 10_000)  # type: ignore[operator]
        built = time.process_time()
        server = cpu_ns(switch_pid)
        connection.write(request)
        wall = time.perf_counter() - start
        runs.append((wall, built - cpu, time.process_time() - built,
                     (cpu_ns(switch_pid) - server) / 1e9))
    runs.sort()
    wall, build_cpu, write_cpu, server_cpu = runs[len(runs) // 2]
    return {"rate": 10_000 / wall, "build_ms": build_cpu * 1e3, "write_ms": write_cpu * 1e3,
            "server_ms": server_cpu * 1e3, "wall_ms": wall * 1e3}


def install_rates(figures: list[Figure]) -> None:
    info = P4Info.load(BUILD_P4INFO)
    device_config = big_json()
    port = free_ports(1)
    switch = start_switch(["--no-p4"], port)
    try:
        connection = SwitchConnection("bench", f"127.0.0.1:{port}", 0)
        connection.become_primary()
        connection.set_pipeline(info.proto, device_config)
        rss_empty = rss_kib(switch.pid)
        for count in (10, 1000, 10000):
            connection.set_pipeline(info.proto, device_config)  # wipes the table
            start = time.perf_counter()
            connection.write(ours(info, count))
            batched = count / (time.perf_counter() - start)
            if count == 10000:
                rss_full = rss_kib(switch.pid)
            connection.set_pipeline(info.proto, device_config)
            start = time.perf_counter()  # built and sent, as a controller does: like ours
            for request in tutorial_style(info, count):
                connection.stub.Write(request, timeout=10)
            one_by_one = count / (time.perf_counter() - start)
            figures.append(Figure(
                "install", f"{count:,} LPM entries, one WriteRequest", batched, "entries/s",
                "one update per RPC, padded (tutorial style)", one_by_one,
                ">= 50x" if count == 10000 else "",
                batched / one_by_one >= 50 if count == 10000 else None))
        bulk = end_to_end(connection, info, device_config, switch.pid, ours, 7)
        single = end_to_end(connection, info, device_config, switch.pid, ours_single, 7)
        figures.append(Figure(
            "install", "end to end: 10,000 LPM entries by name (TableBuilder) + one "
            "WriteRequest + our switch, median of 7", bulk["rate"], "entries/s",
            "the same with insert(table_entry()) per entry", single["rate"], ">= 80,000/s",
            bulk["rate"] >= 80_000))
        for key, what in (("build_ms", "client CPU building the WriteRequest"),
                          ("write_ms", "client CPU in write() (serialize, gRPC)"),
                          ("server_ms", "switch CPU during the write"),
                          ("wall_ms", "wall clock, all of it")):
            figures.append(Figure("install", f"end to end, 10,000: {what}", bulk[key], "ms",
                                  "insert(table_entry()) per entry", single[key]))
        figures.append(Figure("memory", "switch RSS growth for 10,000 entries",
                              (rss_full - rss_empty) / 1024, "MiB", "RSS with 0 entries",
                              rss_empty / 1024, "<= 12 MiB growth",
                              (rss_full - rss_empty) / 1024 <= 12))
        pushes = []
        small = BUILD_JSON.read_bytes()
        for _ in range(20):
            start = time.perf_counter()
            connection.set_pipeline(info.proto, small)
            pushes.append((time.perf_counter() - start) * 1000)
        figures.append(Figure("pipeline", "SetForwardingPipelineConfig of load_balance, median",
                              median(pushes), "ms", "", None, "<= 10 ms", median(pushes) <= 10))
        connection.close()
    finally:
        stop(switch)


def raw_inserts(info: P4Info, count: int) -> p4runtime_pb2.WriteRequest:
    """A WriteRequest of ``count`` canonical LPM inserts built with protobuf alone."""
    table = info.table("MyIngress.ecmp_group").preamble.id
    action = info.action("MyIngress.set_ecmp_select").preamble.id
    request = p4runtime_pb2.WriteRequest(device_id=0)
    request.election_id.low = 1
    for prefix in prefixes(count):
        entry = request.updates.add(type=p4runtime_pb2.Update.INSERT).entity.table_entry
        entry.table_id = table
        match = entry.match.add(field_id=1)
        match.lpm.value, match.lpm.prefix_len = prefix.to_bytes(4, "big"), 24
        entry.action.action.action_id = action
        entry.action.action.params.add(param_id=1, value=b"\x00")
        entry.action.action.params.add(param_id=2, value=b"\x02")
    return request


def server_rates(figures: list[Figure]) -> None:
    """The switch alone: a pre-built WriteRequest of 10,000 inserts, then a read of them
    (the client's encoding, measured above, is left out)."""
    info = P4Info.load(BUILD_P4INFO)
    device_config = big_json()
    port = free_ports(1)
    switch = start_switch(["--no-p4"], port)
    try:
        connection = SwitchConnection("bench", f"127.0.0.1:{port}", 0)
        connection.become_primary()
        request = raw_inserts(info, 10_000)
        read = p4runtime_pb2.ReadRequest(device_id=0)
        read.entities.add().table_entry.SetInParent()
        writes, reads = [], []
        for _ in range(7):
            connection.set_pipeline(info.proto, device_config)  # wipes the table
            start = time.perf_counter()
            connection.stub.Write(request, timeout=60)
            writes.append(time.perf_counter() - start)
            start = time.perf_counter()
            count = sum(len(r.entities) for r in connection.stub.Read(read, timeout=60))
            reads.append(time.perf_counter() - start)
            assert count == 10_000, count
        connection.close()
    finally:
        stop(switch)
    write_rate, read_rate = 10_000 / median(writes), 10_000 / median(reads)
    figures.append(Figure("install", "switch alone: 10,000 LPM inserts, pre-built WriteRequest, "
                          "median", write_rate, "entries/s", target=">= 80,000/s",
                          met=write_rate >= 80_000))
    figures.append(Figure("install", "switch alone: read 10,000 entries back, median",
                          read_rate, "entries/s"))


ENCODE = """
import os, sys, time
sys.path.insert(0, {utils!r})
from p4runtime_lib.protos import p4runtime_pb2
from google.protobuf.internal import api_implementation
request = p4runtime_pb2.WriteRequest(device_id=0)
start = time.perf_counter()
for i in range(10000):
    update = request.updates.add(type=1)
    entry = update.entity.table_entry
    entry.table_id = 41423289
    match = entry.match.add(field_id=1)
    match.lpm.value = ((10 << 24) | (i << 8)).to_bytes(4, "big")
    match.lpm.prefix_len = 24
    entry.action.action.action_id = 28332005
    entry.action.action.params.add(param_id=1, value=b"\\x00")
    entry.action.action.params.add(param_id=2, value=b"\\x02")
data = request.SerializeToString()
print(api_implementation.Type(), 10000 / (time.perf_counter() - start))
"""


def encode_cost(figures: list[Figure]) -> None:
    rates = {}
    for backend in ("upb", "python"):
        env = {k: v for k, v in ENV.items() if k != "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"}
        if backend == "python":
            env["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"
        out = subprocess.run([sys.executable, "-c", ENCODE.format(utils=str(REPO / "utils"))],
                             capture_output=True, text=True, env=env, check=True).stdout.split()
        assert out[0] == backend, out
        rates[backend] = float(out[1])
    figures.append(Figure("encode", "build + serialize 10,000 updates (upb backend)",
                          rates["upb"], "updates/s", "pure-Python protobuf backend",
                          rates["python"]))


def whole_programming(figures: list[Figure]) -> None:
    base = free_ports(3)
    switches = [start_switch(["--no-p4", "--device-id", str(i)], base + i) for i in range(3)]
    try:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            subprocess.run([str(REPO / "mycontroller.py"), "--grpc-base-port", str(base)],
                           capture_output=True, check=True, cwd=tempfile.gettempdir())
            times.append(time.perf_counter() - start)
        startup = []
        for _ in range(5):
            start = time.perf_counter()
            subprocess.run([str(REPO / ".venv/bin/python"), "-c", "import grpc"],
                           capture_output=True, check=True)
            startup.append(time.perf_counter() - start)
        figures.append(Figure("controller", "./mycontroller.py programs s1-s3, start to exit",
                              median(times), "s", "python start + import grpc",
                              median(startup), "< 1 s", median(times) < 1))
    finally:
        for switch in switches:
            stop(switch)


STREAMS, READERS = 1000, 100


def under_load(figures: list[Figure]) -> None:
    """Capabilities, and a new controller programming s1 as ``./mycontroller.py`` does,
    while 1,000 idle StreamChannels are open and 100 readers read every table back to
    back, all from another process (``tests/streamload.py``)."""
    info = P4Info.load(BUILD_P4INFO)
    config = BUILD_JSON.read_bytes()
    rules = load_controller(REPO).RULES["s1"](info)
    port = free_ports(1)
    address = f"127.0.0.1:{port}"
    switch = start_switch([str(BUILD_JSON)], port)
    load = None
    try:
        with SwitchConnection("first", address, 0, election_id=(0, 1), p4info=info) as first:
            first.become_primary()  # the tables the readers read: the exercise's s1
            first.set_pipeline(info, config)
            first.write(rules)
        load = subprocess.Popen([sys.executable, str(REPO / "tests/streamload.py"), address,
                                 "--streams", str(STREAMS), "--readers", str(READERS),
                                 "--read-interval", "0"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, env=ENV, cwd=REPO)
        assert load.stdout is not None and load.stdin is not None
        ready = json.loads(load.stdout.readline() or "{}")
        assert ready.get("streams") == STREAMS, ready
        time.sleep(1.5)  # the readers at their pace
        with SwitchConnection("bench", address, 0, election_id=(0, 100), p4info=info) as new:
            waits = []
            for _ in range(50):
                start = time.perf_counter()
                new.capabilities()
                waits.append(time.perf_counter() - start)
                time.sleep(0.02)
            start = time.perf_counter()
            new.become_primary()
            new.set_pipeline(info, config)
            new.write(rules)
            programmed = time.perf_counter() - start
        load.stdin.close()
        summary = json.loads(load.stdout.readline() or "{}")
        assert not summary.get("read_errors"), summary
    finally:
        if load is not None and load.poll() is None:
            load.kill()
            load.wait()
        stop(switch)
    worst = max(waits) * 1000
    figures.append(Figure("server", f"Capabilities, {STREAMS:,} idle streams + {READERS} "
                          "readers back to back, slowest of 50", worst, "ms", "median",
                          median(waits) * 1000, "<= 100 ms", worst <= 100))
    figures.append(Figure("server", "a new controller under the same load: primary, pipeline "
                          "push, s1's rules", programmed * 1000, "ms",
                          f"reads served meanwhile, p50 {summary.get('read_ms_p50')} ms", None,
                          "<= 1 s", programmed <= 1))


def run(figures: list[Figure]) -> None:
    build_rates(figures)
    install_rates(figures)
    server_rates(figures)
    encode_cost(figures)
    whole_programming(figures)
    under_load(figures)


if __name__ == "__main__":
    result: list[Figure] = []
    run(result)
    for figure in result:
        print(figure)
