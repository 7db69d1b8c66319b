"""Open streams hold no thread: with 1,000 idle StreamChannels (never arbitrated) and
100 readers reading every table, all from another process, a new controller becomes
primary, pushes the pipeline and writes the exercise's rules within 1 s, and the
switch process's thread count does not grow with the streams.

Readers that each read once a second (monitoring tools): Capabilities answers
within 100 ms.  Readers back to back saturate the server (all RPCs wait their turn
in one queue): Capabilities still answers, within 1 s; the figures are printed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from procs import ENV, REPO, free_port, load_mycontroller, start_switch, stop

from p4runtime_lib import P4Info, SwitchConnection
from p4runtime_lib.protos import p4runtime_pb2

BUILD_JSON = REPO / "build/load_balance.json"
BUILD_P4INFO = REPO / "build/load_balance.p4.p4info.txtpb"
STREAMS, READERS = 1000, 100
WORKERS = 4  # the server's pool (p4switch.runtime.service.WORKERS)


def status(pid: int) -> tuple[int, int]:
    """(threads, RSS in KiB) of a process, from /proc."""
    fields = dict(line.split(":", 1) for line in
                  Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["Threads"]), int(fields["VmRSS"].split()[0])


def key(entry: p4runtime_pb2.TableEntry) -> tuple[int, bytes]:
    return entry.table_id, entry.SerializeToString(deterministic=True)


@pytest.mark.parametrize("read_interval, capabilities_limit", [(1.0, 0.1), (0.0, 1.0)],
                         ids=["readers-every-1s", "readers-back-to-back"])
def test_idle_streams_and_readers_do_not_lock_out_a_controller(
        tmp_path: Path, read_interval: float, capabilities_limit: float) -> None:
    controller = load_mycontroller()
    info = P4Info.load(BUILD_P4INFO)
    updates = controller.RULES["s1"](info)
    expected = sorted((u.entity.table_entry for u in updates
                       if u.type == p4runtime_pb2.Update.INSERT), key=key)
    port = free_port()
    address = f"127.0.0.1:{port}"
    switch = start_switch([str(BUILD_JSON)], port, log=tmp_path / "switch.log")
    load = None
    try:
        with SwitchConnection("s1", address, 0, election_id=(0, 1), p4info=info) as first:
            first.become_primary()  # the tables the readers read: the exercise's s1
            first.set_pipeline(info, BUILD_JSON.read_bytes())
            first.write(updates)
        threads_before, rss_before = status(switch.pid)
        load = subprocess.Popen([sys.executable, str(REPO / "tests/streamload.py"), address,
                                 "--streams", str(STREAMS), "--readers", str(READERS),
                                 "--read-interval", str(read_interval)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                env=ENV, cwd=REPO)
        assert load.stdout is not None and load.stdin is not None
        ready = json.loads(load.stdout.readline() or "{}")
        assert ready.get("streams") == STREAMS and ready.get("readers") == READERS, ready
        time.sleep(1.5)  # the readers at their pace
        threads_loaded, rss_loaded = status(switch.pid)

        with SwitchConnection("s1", address, 0, election_id=(0, 100), p4info=info) as new:
            capabilities = []
            for _ in range(20):
                began = time.monotonic()
                assert new.capabilities() == "1.3.0"
                capabilities.append(time.monotonic() - began)
                time.sleep(0.02)
            began = time.monotonic()
            reply = new.become_primary()
            primary = time.monotonic()
            new.set_pipeline(info, BUILD_JSON.read_bytes())
            pushed = time.monotonic()
            new.write(updates)
            written = time.monotonic()
            entries = sorted(new.read_table_entries(), key=key)
        load.stdin.close()
        summary = json.loads(load.stdout.readline() or "{}")
        assert load.wait(timeout=60) == 0
        print(f"load: {ready['streams']} idle streams on {ready['stream_channels']} "
              f"connections (opened in {ready['open_s']} s) + {ready['readers']} readers on "
              f"{ready['reader_channels']} connections, one read every {read_interval:g} s "
              f"each (0: back to back): {summary}")
        print(f"switch threads {threads_before} before the load, {threads_loaded} under it; "
              f"RSS {rss_before} -> {rss_loaded} KiB")
        print(f"Capabilities x20 under load: max {max(capabilities) * 1000:.1f} ms, median "
              f"{sorted(capabilities)[10] * 1000:.1f} ms")
        print(f"new controller: primary in {(primary - began) * 1000:.0f} ms, pipeline pushed "
              f"in {(pushed - primary) * 1000:.0f} ms, {len(updates)} updates written in "
              f"{(written - pushed) * 1000:.0f} ms: {(written - began) * 1000:.0f} ms in all")
        assert reply.status.code == 0  # "Is primary"
        assert written - began < 1.0
        assert max(capabilities) < capabilities_limit
        assert entries == expected
        assert threads_loaded <= threads_before + WORKERS  # not one per stream
        assert summary["streams_still_open"] == STREAMS
        assert summary["reads"] > READERS and not summary["read_errors"], summary
    finally:
        if load is not None and load.poll() is None:
            load.kill()
            load.wait()
        assert stop(switch) == 0
