"""./mycontroller.py against three running switches, over real gRPC."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
from procs import REPO, start_switch, stop

from p4runtime_lib import P4Info, SwitchConnection, WriteError, decode_table_entry, insert
from p4runtime_lib import table_entry as build_entry

EXPECTED = {
    "s1": ["MyIngress.ecmp_group: hdr.ipv4.dstAddr=10.0.0.1/32 => "
           "MyIngress.set_ecmp_select(ecmp_base=0, ecmp_count=2)",
           "MyIngress.ecmp_nhop: meta.ecmp_select=0 => MyIngress.set_nhop("
           "nhop_dmac=00:00:00:00:01:02, nhop_ipv4=10.0.2.2, port=2)",
           "MyIngress.ecmp_nhop: meta.ecmp_select=1 => MyIngress.set_nhop("
           "nhop_dmac=00:00:00:00:01:03, nhop_ipv4=10.0.3.3, port=3)",
           "MyEgress.send_frame: standard_metadata.egress_port=2 => "
           "MyEgress.rewrite_mac(smac=00:00:00:01:02:00)",
           "MyEgress.send_frame: standard_metadata.egress_port=3 => "
           "MyEgress.rewrite_mac(smac=00:00:00:01:03:00)"],
    "s2": ["MyIngress.ecmp_group: hdr.ipv4.dstAddr=10.0.2.2/32 => "
           "MyIngress.set_ecmp_select(ecmp_base=0, ecmp_count=1)",
           "MyIngress.ecmp_nhop: meta.ecmp_select=0 => MyIngress.set_nhop("
           "nhop_dmac=08:00:00:00:02:02, nhop_ipv4=10.0.2.2, port=1)",
           "MyEgress.send_frame: standard_metadata.egress_port=1 => "
           "MyEgress.rewrite_mac(smac=00:00:00:02:01:00)"],
    "s3": ["MyIngress.ecmp_group: hdr.ipv4.dstAddr=10.0.3.3/32 => "
           "MyIngress.set_ecmp_select(ecmp_base=0, ecmp_count=1)",
           "MyIngress.ecmp_nhop: meta.ecmp_select=0 => MyIngress.set_nhop("
           "nhop_dmac=08:00:00:00:03:03, nhop_ipv4=10.0.3.3, port=1)",
           "MyEgress.send_frame: standard_metadata.egress_port=1 => "
           "MyEgress.rewrite_mac(smac=00:00:00:03:01:00)"],
}


def three_free_ports() -> int:
    for base in range(41000, 60000, 7):
        try:
            socks = [socket.socket() for _ in range(3)]
            for offset, sock in enumerate(socks):
                sock.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no three consecutive free ports")


@pytest.fixture
def switches() -> Iterator[int]:
    base = three_free_ports()
    processes = [start_switch(["--no-p4", "--device-id", str(i)], base + i) for i in range(3)]
    yield base
    for process in processes:
        assert stop(process) == 0


def controller(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([str(REPO / "mycontroller.py"), *args], capture_output=True, text=True,
                          timeout=timeout, check=False, cwd=REPO)


def read_back(base: int) -> dict[str, list[str]]:
    info = P4Info.load(REPO / "build/load_balance.p4.p4info.txtpb")
    out = {}
    for device_id, name in enumerate(("s1", "s2", "s3")):
        with SwitchConnection(name, f"127.0.0.1:{base + device_id}", device_id) as connection:
            entries = [str(decode_table_entry(info, e)) for e in connection.read_table_entries()]
            default = connection.read_default_entry(info.table("ecmp_group").preamble.id)
            entries.append(str(decode_table_entry(info, default)))
        out[name] = entries
    return out


def test_programs_every_switch_and_reads_back(switches: int) -> None:
    result = controller("--grpc-base-port", str(switches))
    assert result.returncode == 0, result.stderr
    back = read_back(switches)
    for name, entries in EXPECTED.items():
        assert sorted(back[name][:-1]) == sorted(entries)
        assert back[name][-1] == "MyIngress.ecmp_group: (default action) => MyIngress.drop()"
        assert f"Installed P4 program using SetForwardingPipelineConfig on {name}" in \
            result.stdout
    # a second run starts from a fresh pipeline and ends in the same state
    again = controller("--grpc-base-port", str(switches))
    assert again.returncode == 0, again.stderr
    assert read_back(switches) == back


def test_a_switch_that_is_down(switches: int) -> None:
    unused = three_free_ports()
    start = time.monotonic()
    result = controller("--grpc-base-port", str(unused), "--timeout", "2")
    assert time.monotonic() - start < 10
    assert result.returncode != 0
    assert result.stderr.strip() == (
        f"error: s1: no P4Runtime server at 127.0.0.1:{unused} (waited 2 s): is the switch "
        "running? Start it with 'make run'")


def hold_stream(port: int, election_low: int) -> SwitchConnection:
    connection = SwitchConnection("other", f"127.0.0.1:{port}", 0, election_id=(0, election_low))
    connection.become_primary()
    return connection


def test_another_primary_and_a_taken_election_id(switches: int) -> None:
    other = hold_stream(switches, 5)
    try:
        result = controller("--grpc-base-port", str(switches), "--switch", "s1")
        assert result.returncode == 1
        assert result.stderr.strip() == ("error: s1: another controller is primary (its election "
                                         "id 0:5, ours 0:1); stop it or use a higher "
                                         "--election-id")
        result = controller("--grpc-base-port", str(switches), "--switch", "s1",
                            "--election-id", "5")
        assert result.returncode == 1
        assert "election id 0:5 is already used by another controller" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        other.close()
    result = controller("--grpc-base-port", str(switches), "--switch", "s1")
    assert result.returncode == 0  # once the other controller left, ours takes over


def test_duplicate_entry_is_readable(switches: int) -> None:
    assert controller("--grpc-base-port", str(switches)).returncode == 0
    info = P4Info.load(REPO / "build/load_balance.p4.p4info.txtpb")
    with SwitchConnection("s1", f"127.0.0.1:{switches}", 0, p4info=info) as connection:
        connection.become_primary()
        entry = build_entry(info, "ecmp_group", {"hdr.ipv4.dstAddr": "10.0.0.1/32"},
                            "MyIngress.drop")
        with pytest.raises(WriteError) as failure:
            connection.write([insert(entry)])
    assert failure.value.lines() == [
        "s1: 1 of 1 updates failed",
        "  update 0: ALREADY_EXISTS: Match entry exists, use MODIFY if you wish to change "
        "action [INSERT MyIngress.ecmp_group: hdr.ipv4.dstAddr=10.0.0.1/32 => "
        "MyIngress.drop()]"]


def test_ctrl_c_is_a_clean_shutdown() -> None:
    # an address that never answers keeps the controller waiting for the switch
    process = subprocess.Popen([str(REPO / "mycontroller.py"), "--grpc-base-port", "9",
                                "--timeout", "30"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=REPO)
    time.sleep(2.5)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=15)
    assert process.returncode == 130
    assert "Shutting down." in out
    assert "Traceback" not in err


def test_missing_build_files(tmp_path) -> None:
    result = controller("--p4info", str(tmp_path / "nope.txtpb"))
    assert result.returncode == 1
    assert "Have you run 'make'?" in result.stderr

