"""Our switch driven by a P4Runtime client nobody here wrote: finsy, from PyPI.

finsy runs in its own venv (outside the repo, reused between runs) and its own
process (tests/finsy_client.py), against ``python -m p4switch --no-p4``: it has
to push the pipeline itself before any entry can go in.  Its read-back is
compared with entries written out here, and cross-checked with our raw client.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from procs import REPO, free_port, start_switch, stop
from rawclient import Client, load_p4info

from p4runtime_lib.protos import p4runtime_pb2

FINSY = "finsy==0.30.0"  # needs Python >= 3.10; pulls grpcio, protobuf 6, parsy, pyee
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "p4lb-test-finsy"
P4INFO = REPO / "build/load_balance.p4.p4info.txtpb"
P4BLOB = REPO / "build/load_balance.json"
DEVICE_ID = 7  # not the default of either side, so both must pass it
NETWORK_TROUBLE = ("NewConnectionError", "Failed to establish a new connection",
                   "Temporary failure in name resolution", "Name or service not known",
                   "ConnectTimeoutError", "Network is unreachable", "ProxyError",
                   "Could not fetch URL", "SSLError")

# The s1 entries of the exercise, as finsy decodes them: match fields and params by
# finsy's alias (the last part of the name), LPM as [value, prefix length].
MAC_02, MAC_03, MAC_SW = 0x08_00_00_00_02_02, 0x08_00_00_00_03_03, 0x08_00_00_00_01_00
EXPECTED = [
    ("ecmp_group", {"dstAddr": [0x0A_00_00_01, 32]}, "set_ecmp_select",
     {"ecmp_base": 0, "ecmp_count": 2}),
    ("ecmp_nhop", {"ecmp_select": 0}, "set_nhop",
     {"nhop_dmac": MAC_02, "nhop_ipv4": 0x0A_00_02_02, "port": 2}),
    ("ecmp_nhop", {"ecmp_select": 1}, "set_nhop",
     {"nhop_dmac": MAC_03, "nhop_ipv4": 0x0A_00_03_03, "port": 3}),
    ("send_frame", {"egress_port": 2}, "rewrite_mac", {"smac": MAC_SW}),
    ("send_frame", {"egress_port": 3}, "rewrite_mac", {"smac": MAC_SW}),
]


def canonical(rows: list[tuple[str, dict, str, dict]]) -> list[str]:
    return sorted(json.dumps(row, sort_keys=True) for row in rows)


def make_venv() -> Path:
    """CACHE/venv with finsy installed (made once, under a lock); skips without PyPI."""
    CACHE.mkdir(parents=True, exist_ok=True)
    venv = CACHE / "venv"
    python = venv / "bin" / "python"
    with open(CACHE / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another pytest may be building it
        check = [str(python), "-c", "import finsy, sys; sys.exit(finsy.__version__ != "
                 f"{FINSY.split('==')[1]!r})"]
        if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
            return python
        subprocess.run(["rm", "-rf", str(venv)], check=True)
        made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True,
                              text=True)
        assert made.returncode == 0, f"python -m venv failed: {made.stderr}"
        pip = subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check",
                              "-q", FINSY], capture_output=True, text=True, timeout=600)
        if pip.returncode != 0:
            subprocess.run(["rm", "-rf", str(venv)], check=False)
            trouble = [line.strip() for line in (pip.stderr + pip.stdout).splitlines()
                       if any(marker in line for marker in NETWORK_TROUBLE)]
            if trouble:
                pytest.skip(f"cannot reach PyPI to install {FINSY}: {trouble[0][:200]}")
            raise AssertionError(f"pip install {FINSY} failed:\n{pip.stderr}")
        assert subprocess.run(check, capture_output=True).returncode == 0
    return python


def run_finsy(python: Path, address: str, mode: str) -> tuple[dict[str, Any], list[str]]:
    """(finsy's JSON result, its log lines) for one session of tests/finsy_client.py."""
    result = subprocess.run(
        [str(python), str(REPO / "tests/finsy_client.py"), address, str(DEVICE_ID),
         str(P4INFO), str(P4BLOB), mode], capture_output=True, text=True, timeout=60,
        cwd="/", env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr.strip().splitlines()


class Session:
    """Our switch (no program loaded) after one finsy ``write`` session."""

    def __init__(self, python: Path, tmp: Path) -> None:
        self.python = python
        port = free_port()
        self.address = f"127.0.0.1:{port}"
        self.process = start_switch(["--no-p4", "--device-id", str(DEVICE_ID)], port,
                                    log=tmp / "switch.log")
        self.result, self.log = run_finsy(python, self.address, "write")


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    python = make_venv()
    tmp = tmp_path_factory.mktemp("finsy")
    ours = None
    try:
        ours = Session(python, tmp)
        yield ours
    finally:
        if ours is not None:
            assert stop(ours.process) == 0


def unexpected(log: list[str]) -> list[str]:
    """finsy's log lines other than the one saying we serve no gNMI (as PI's BMv2 build)."""
    return [line for line in log
            if not (line.startswith("WARNING:") and line.endswith("gNMI is not implemented"))]


def finsy_rows(entries: list[dict[str, Any]]) -> list[tuple[str, dict, str, dict]]:
    return [(e["table"], e["match"], e["action"], e["params"]) for e in entries]


def test_finsy_becomes_primary_and_pushes_the_pipeline(session: Session) -> None:
    result = session.result
    assert result["finsy"] == FINSY.split("==")[1]
    assert result["is_primary"] is True
    assert result["p4runtime_version"].startswith("1.")
    assert unexpected(session.log) == []
    client = Client(session.address, DEVICE_ID)
    try:
        reply = client.stub.GetForwardingPipelineConfig(
            p4runtime_pb2.GetForwardingPipelineConfigRequest(
                device_id=DEVICE_ID,
                response_type=p4runtime_pb2.GetForwardingPipelineConfigRequest.ALL),
            timeout=10)
    finally:
        client.close()
    assert reply.config.p4info == load_p4info(P4INFO)
    assert reply.config.p4_device_config == P4BLOB.read_bytes()
    assert reply.config.cookie.cookie != 0  # finsy's; the second session relies on it


def test_finsy_reads_back_what_it_inserted(session: Session) -> None:
    entries = session.result["entries"]
    assert canonical(finsy_rows(entries)) == canonical(EXPECTED)
    assert all(not e["is_default_action"] and e["priority"] == 0 for e in entries)
    group = next(e for e in entries if e["table"] == "ecmp_group")
    assert group["action_str"] == "set_ecmp_select(ecmp_base=0x0, ecmp_count=0x2)"
    (default,) = session.result["defaults"]
    assert (default["table"], default["action"], default["is_default_action"]) == (
        "ecmp_group", "NoAction", True)


def test_finsy_sees_already_exists_for_a_duplicate(session: Session) -> None:
    assert session.result["duplicate"] == {
        "code": "UNKNOWN",  # a failed batch, per-update errors in the details
        "details": {"0": {"code": "ALREADY_EXISTS", "message":
                          "Match entry exists, use MODIFY if you wish to change action"}}}


def test_our_raw_client_reads_the_same_entries(session: Session) -> None:
    info = load_p4info(P4INFO)
    tables = {t.preamble.id: t for t in info.tables}
    actions = {a.preamble.id: a for a in info.actions}
    client = Client(session.address, DEVICE_ID)
    try:
        read = client.read(p4runtime_pb2.Entity(table_entry=p4runtime_pb2.TableEntry()))
    finally:
        client.close()
    rows = []
    for entity in read:
        entry = entity.table_entry
        table, action = tables[entry.table_id], actions[entry.action.action.action_id]
        fields = {f.id: f.name.split(".")[-1] for f in table.match_fields}
        params = {p.id: p.name for p in action.params}
        match: dict[str, Any] = {}
        for field in entry.match:
            if field.HasField("lpm"):
                match[fields[field.field_id]] = [int.from_bytes(field.lpm.value, "big"),
                                                 field.lpm.prefix_len]
            else:
                match[fields[field.field_id]] = int.from_bytes(field.exact.value, "big")
        rows.append((table.preamble.alias, match, action.preamble.alias,
                     {params[p.param_id]: int.from_bytes(p.value, "big")
                      for p in entry.action.action.params}))
    assert canonical(rows) == canonical(EXPECTED)


def test_a_second_finsy_session_keeps_pipeline_and_entries(session: Session) -> None:
    """finsy re-pushes the pipeline (wiping entries) unless our cookie matches its own."""
    result, log = run_finsy(session.python, session.address, "read")
    assert result["is_primary"] is True
    assert canonical(finsy_rows(result["entries"])) == canonical(EXPECTED)
    assert unexpected(log) == []
    assert session.process.poll() is None


def test_finsy_modifies_the_default_and_deletes_everything(session: Session) -> None:
    result, log = run_finsy(session.python, session.address, "clear")
    assert [(d["action"], d["is_default_action"]) for d in result["modified_default"]] == [
        ("MyIngress.drop", True)]
    assert result["entries"] == []
    assert [(d["action"], d["is_default_action"]) for d in result["defaults"]] == [
        ("NoAction", True)]  # back to the P4 program's default
    assert unexpected(log) == []
