"""The exact P4Runtime messages mycontroller.py builds, and its command line.

Expected messages are written out field by field with the P4Info ids p4c gives
these names and literal canonical bytestrings -- not with the library.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from procs import REPO, load_mycontroller

from p4runtime_lib import P4Info, write_request
from p4runtime_lib.protos import p4runtime_pb2

INSERT, MODIFY = p4runtime_pb2.Update.INSERT, p4runtime_pb2.Update.MODIFY

ECMP_GROUP, ECMP_NHOP, SEND_FRAME = 41423289, 42718419, 49202009
INGRESS_DROP, SET_ECMP_SELECT, SET_NHOP, REWRITE_MAC = 25652968, 28332005, 24952588, 22398708


@pytest.fixture(scope="module")
def controller() -> ModuleType:
    return load_mycontroller()


@pytest.fixture(scope="module")
def info() -> P4Info:
    return P4Info.load(REPO / "build/load_balance.p4.p4info.txtpb")


def update(kind: int, table_id: int, action_id: int, params: list[bytes],
           match: p4runtime_pb2.FieldMatch | None = None,
           default: bool = False) -> p4runtime_pb2.Update:
    """An Update built by hand; params get ids 1, 2, ... in order."""
    entry = p4runtime_pb2.TableEntry()
    entry.table_id = table_id
    if default:
        entry.is_default_action = True
    if match is not None:
        entry.match.append(match)
    entry.action.action.action_id = action_id
    for param_id, value in enumerate(params, start=1):
        param = entry.action.action.params.add()
        param.param_id = param_id
        param.value = value
    result = p4runtime_pb2.Update()
    result.type = kind
    result.entity.table_entry.CopyFrom(entry)
    return result


def lpm(value: bytes, length: int) -> p4runtime_pb2.FieldMatch:
    match = p4runtime_pb2.FieldMatch(field_id=1)
    match.lpm.value, match.lpm.prefix_len = value, length
    return match


def exact(value: bytes) -> p4runtime_pb2.FieldMatch:
    match = p4runtime_pb2.FieldMatch(field_id=1)
    match.exact.value = value
    return match


ECMP_GROUP_RULES = {
    "s1": [update(INSERT, ECMP_GROUP, SET_ECMP_SELECT, [b"\x00", b"\x02"],
                  lpm(b"\x0a\x00\x00\x01", 32)),
           update(MODIFY, ECMP_GROUP, INGRESS_DROP, [], default=True)],
    "s2": [update(INSERT, ECMP_GROUP, SET_ECMP_SELECT, [b"\x00", b"\x01"],
                  lpm(b"\x0a\x00\x02\x02", 32)),
           update(MODIFY, ECMP_GROUP, INGRESS_DROP, [], default=True)],
    "s3": [update(INSERT, ECMP_GROUP, SET_ECMP_SELECT, [b"\x00", b"\x01"],
                  lpm(b"\x0a\x00\x03\x03", 32)),
           update(MODIFY, ECMP_GROUP, INGRESS_DROP, [], default=True)],
}
ECMP_NHOP_RULES = {
    "s1": [update(INSERT, ECMP_NHOP, SET_NHOP, [b"\x01\x02", b"\x0a\x00\x02\x02", b"\x02"],
                  exact(b"\x00")),
           update(INSERT, ECMP_NHOP, SET_NHOP, [b"\x01\x03", b"\x0a\x00\x03\x03", b"\x03"],
                  exact(b"\x01"))],
    "s2": [update(INSERT, ECMP_NHOP, SET_NHOP,
                  [b"\x08\x00\x00\x00\x02\x02", b"\x0a\x00\x02\x02", b"\x01"], exact(b"\x00"))],
    "s3": [update(INSERT, ECMP_NHOP, SET_NHOP,
                  [b"\x08\x00\x00\x00\x03\x03", b"\x0a\x00\x03\x03", b"\x01"], exact(b"\x00"))],
}
SEND_FRAME_RULES = {
    "s1": [update(INSERT, SEND_FRAME, REWRITE_MAC, [b"\x01\x02\x00"], exact(b"\x02")),
           update(INSERT, SEND_FRAME, REWRITE_MAC, [b"\x01\x03\x00"], exact(b"\x03"))],
    "s2": [update(INSERT, SEND_FRAME, REWRITE_MAC, [b"\x02\x01\x00"], exact(b"\x01"))],
    "s3": [update(INSERT, SEND_FRAME, REWRITE_MAC, [b"\x03\x01\x00"], exact(b"\x01"))],
}


def of_table(updates: list, table_id: int) -> list:
    """The updates (entries and default entries) of one table, in order."""
    return [u for u in updates if u.entity.table_entry.table_id == table_id]


@pytest.mark.parametrize("switch", ["s1", "s2", "s3"])
def test_ecmp_group_rules(controller: ModuleType, info: P4Info, switch: str) -> None:
    assert of_table(controller.RULES[switch](info), ECMP_GROUP) == ECMP_GROUP_RULES[switch]


@pytest.mark.parametrize("switch", ["s1", "s2", "s3"])
def test_ecmp_nhop_rules(controller: ModuleType, info: P4Info, switch: str) -> None:
    assert of_table(controller.RULES[switch](info), ECMP_NHOP) == ECMP_NHOP_RULES[switch]


@pytest.mark.parametrize("switch", ["s1", "s2", "s3"])
def test_send_frame_rules(controller: ModuleType, info: P4Info, switch: str) -> None:
    assert of_table(controller.RULES[switch](info), SEND_FRAME) == SEND_FRAME_RULES[switch]


@pytest.mark.parametrize("switch, device_id", [("s1", 0), ("s2", 1), ("s3", 2)])
def test_one_write_request_per_switch(controller: ModuleType, info: P4Info, switch: str,
                                      device_id: int) -> None:
    """What SwitchConnection.write sends for a switch: one request, every update."""
    expected = p4runtime_pb2.WriteRequest()
    expected.device_id = device_id
    expected.election_id.high, expected.election_id.low = 0, 1
    for rules in (ECMP_GROUP_RULES, ECMP_NHOP_RULES, SEND_FRAME_RULES):
        expected.updates.extend(rules[switch])
    built = write_request(controller.RULES[switch](info), device_id, (0, 1))
    assert built == expected
    assert built.SerializeToString(deterministic=True) == \
        expected.SerializeToString(deterministic=True)
    assert len(expected.updates) == {"s1": 6, "s2": 4, "s3": 4}[switch]


def test_reference_p4info_gives_the_same_requests(controller: ModuleType, info: P4Info,
                                                  reference: Path) -> None:
    """p4c's output for the tutorial's own solution has the same names and ids."""
    theirs = P4Info.load(reference / "load_balance.p4info.txtpb")
    for switch in ("s1", "s2", "s3"):
        assert controller.RULES[switch](theirs) == \
            controller.RULES[switch](info)


def test_switch_addresses(controller: ModuleType) -> None:
    args = controller.parse_args([])
    assert args.switches == {"s1": ("127.0.0.1:50051", 0), "s2": ("127.0.0.1:50052", 1),
                             "s3": ("127.0.0.1:50053", 2)}
    assert args.p4info == REPO / "build/load_balance.p4.p4info.txtpb"
    args = controller.parse_args(["--grpc-base-port", "9559"])
    assert args.switches == {"s1": ("127.0.0.1:9559", 0), "s2": ("127.0.0.1:9560", 1),
                             "s3": ("127.0.0.1:9561", 2)}
    args = controller.parse_args(["--grpc-base-port", "9559", "--switch", "s3=10.1.1.1:1",
                                  "--switch", "s2"])
    assert args.switches == {"s3": ("10.1.1.1:1", 2), "s2": ("127.0.0.1:9560", 1)}


def run_controller(*args: str, python: str = sys.executable) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "LB_VENV_REEXEC"}
    return subprocess.run([python, str(REPO / "mycontroller.py"), *args], capture_output=True,
                          text=True, timeout=60, check=False, cwd="/", env=env)


def test_missing_build_files_are_one_line_with_a_hint(tmp_path: Path) -> None:
    """The tutorial controller's words, on stderr, exit 1."""
    result = run_controller("--p4info", str(tmp_path / "nope.txtpb"))
    assert result.returncode == 1
    assert result.stderr == f"p4info file not found: {tmp_path / 'nope.txtpb'}. " \
                            "Have you run 'make'?\n"
    result = run_controller("--bmv2-json", str(tmp_path / "nope.json"))
    assert result.returncode == 1 and "BMv2 JSON file not found" in result.stderr


def test_a_bad_p4info_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txtpb"
    bad.write_text("tables { preamble { id: x } }\n")
    result = run_controller("--p4info", str(bad))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: {bad} is not valid P4Info text: 1:")
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="no system python3")
def test_runs_itself_under_the_venv_python(tmp_path: Path) -> None:
    """Started by a python without grpc, it re-executes under .venv/bin/python."""
    probe = subprocess.run(["/usr/bin/python3", "-c", "import grpc"], capture_output=True,
                           check=False)
    if probe.returncode == 0:
        pytest.skip("the system python has grpc: nothing to prove")
    bad = tmp_path / "bad.txtpb"
    bad.write_text("not a p4info\n")
    result = run_controller("--p4info", str(bad), python="/usr/bin/python3")
    assert "ModuleNotFoundError" not in result.stderr
    assert result.returncode == 1 and result.stderr.startswith("error: ")


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.1:99999", ":50051", "host:port"])
def test_a_malformed_switch_address_is_a_usage_error(address: str) -> None:
    result = run_controller("--switch", f"s1={address}")
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        f"mycontroller.py: error: --switch s1={address}: the address must be HOST:PORT "
        "with a port 1-65535, e.g. s2=127.0.0.1:50052")
    assert "Traceback" not in result.stderr
