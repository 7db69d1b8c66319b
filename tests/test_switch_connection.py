"""SwitchConnection and mycontroller.py against our P4Runtime server over real gRPC.

The server (utils/p4switch) answers like BMv2's PI server: the same status
codes and per-update errors.  Nothing here needs root: the switches have no
ports, only the control plane is exercised.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from p4runtime_lib import (
    ArbitrationTimeout,
    ControllerError,
    NotPrimary,
    P4Info,
    PipelineError,
    SwitchConnection,
    SwitchUnavailable,
    WriteError,
    decode_table_entry,
    default_entry,
    insert,
    modify,
    multicast_group_entry,
    table_entry,
)
from p4runtime_lib.protos import code_pb2, p4runtime_pb2_grpc
from p4switch.runtime import serve
from p4switch.switch import Switch

REPO = Path(__file__).resolve().parent.parent
P4INFO = REPO / "build/load_balance.p4.p4info.txtpb"
BMV2_JSON = REPO / "build/load_balance.json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def info() -> P4Info:
    return P4Info.load(P4INFO)


@pytest.fixture
def address() -> Iterator[str]:
    """A fresh switch (device 0, no program yet) behind a real gRPC server."""
    server = serve(Switch(device_id=0), "127.0.0.1:0")
    yield f"127.0.0.1:{server.bound_port}"
    server.stop(0)


@pytest.fixture
def primary(address: str, info: P4Info) -> Iterator[SwitchConnection]:
    with SwitchConnection("s1", address, 0, election_id=(0, 1), p4info=info) as sw:
        sw.become_primary()
        sw.set_pipeline(info, BMV2_JSON.read_bytes())
        yield sw


def stream_threads(name: str) -> list[threading.Thread]:
    """The reader threads of connections named ``name``."""
    return [t for t in threading.enumerate() if t.name == f"{name}-stream"]


def test_arbitration_pipeline_and_capabilities(address: str, info: P4Info) -> None:
    with SwitchConnection("s1", address, 0, election_id=1, p4info=info) as sw:
        update = sw.become_primary()
        assert update.status.code == code_pb2.OK and sw.is_primary
        assert (update.election_id.high, update.election_id.low) == (0, 1)
        assert sw.capabilities().startswith("1.")
        sw.set_pipeline(info, BMV2_JSON.read_bytes())
        assert sw.get_pipeline().p4info == info.proto


def test_same_election_id_fails_fast_instead_of_hanging(primary: SwitchConnection,
                                                       address: str) -> None:
    """tutorial_spec P6: the tutorial's library hangs here."""
    started = time.monotonic()
    with SwitchConnection("s1", address, 0, election_id=(0, 1), timeout=10) as other, \
            pytest.raises(NotPrimary) as failure:
        other.become_primary()
    assert time.monotonic() - started < 5
    assert str(failure.value) == ("s1: election id 0:1 is already used by another controller "
                                  "on this switch (Election id already exists); stop it or "
                                  "choose another --election-id")
    assert primary.is_primary


def test_backup_names_the_primary_and_cannot_write(primary: SwitchConnection, address: str,
                                                   info: P4Info) -> None:
    with SwitchConnection("s1", address, 0, election_id=(0, 0)) as backup:
        backup.p4info = info
        with pytest.raises(NotPrimary) as failure:
            backup.become_primary()
        assert failure.value.primary == (0, 1)
        assert str(failure.value) == ("s1: another controller is primary (its election id "
                                      "0:1, ours 0:0); stop it or use a higher --election-id")
        entry = table_entry(info, "ecmp_nhop", {"meta.ecmp_select": 0}, "drop")
        with pytest.raises(NotPrimary, match="s1: write refused: "):
            backup.write([insert(entry)])


def test_a_higher_election_id_takes_over(primary: SwitchConnection, address: str) -> None:
    with SwitchConnection("s1", address, 0, election_id=(1, 0)) as newer:
        newer.become_primary()
        deadline = time.monotonic() + 5
        while primary.is_primary and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not primary.is_primary and primary.primary_id == (1, 0)


def test_unreachable_switch_is_one_line_within_the_timeout() -> None:
    port = free_port()
    started = time.monotonic()
    with SwitchConnection("s2", f"127.0.0.1:{port}", 1, timeout=1.0) as sw, \
            pytest.raises(SwitchUnavailable) as failure:
        sw.become_primary()
    assert time.monotonic() - started < 3
    assert str(failure.value) == (f"s2: no P4Runtime server at 127.0.0.1:{port} (waited 1 s): "
                                  "is the switch running? Start it with 'make run'")
    assert not stream_threads("s2")


def test_a_server_that_never_answers_arbitration_times_out() -> None:
    """A gRPC server whose StreamChannel stays silent (no real switch behaves so)."""

    class Silent(p4runtime_pb2_grpc.P4RuntimeServicer):
        def StreamChannel(self, request_iterator, context):  # noqa: N802
            for _ in request_iterator:
                pass
            return iter(())

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    p4runtime_pb2_grpc.add_P4RuntimeServicer_to_server(Silent(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with SwitchConnection("s3", f"127.0.0.1:{port}", 2, timeout=0.5) as sw, \
                pytest.raises(ArbitrationTimeout, match="s3: 127.0.0.1:.* did not answer the "
                                                        "arbitration within 0.5 s"):
            sw.become_primary()
    finally:
        server.stop(0)


class Refusing(p4runtime_pb2_grpc.P4RuntimeServicer):
    """A server that words its refusals unlike PI: only the codes say what happened."""

    def StreamChannel(self, request_iterator, context):  # noqa: N802
        next(request_iterator)
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "duplicate ElectionID 0:7")

    def SetForwardingPipelineConfig(self, request, context):  # noqa: N802
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "pipeline change in progress")

    def Write(self, request, context):  # noqa: N802
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "no program")


@pytest.fixture
def refusing() -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    p4runtime_pb2_grpc.add_P4RuntimeServicer_to_server(Refusing(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(0)


def test_errors_are_told_apart_by_code_not_by_wording(refusing: str, info: P4Info) -> None:
    with SwitchConnection("s4", refusing, 0, election_id=(0, 7), timeout=5) as sw:
        with pytest.raises(NotPrimary) as taken:
            sw.become_primary()
        assert str(taken.value) == ("s4: election id 0:7 is already used by another "
                                    "controller on this switch (duplicate ElectionID 0:7); "
                                    "stop it or choose another --election-id")
        with pytest.raises(PipelineError) as push:
            sw.set_pipeline(info, b"{}")
        assert str(push.value) == ("s4: pipeline push failed: FAILED_PRECONDITION: pipeline "
                                   "change in progress")
        with pytest.raises(WriteError) as write:
            sw.write([modify(default_entry(info, "ecmp_group", "drop"))])
        assert str(write.value) == ("s4: write failed: FAILED_PRECONDITION: no program; "
                                    "push the pipeline first (SetForwardingPipelineConfig)")


def test_write_read_back_and_per_update_errors(primary: SwitchConnection,
                                               info: P4Info) -> None:
    group = insert(table_entry(info, "ecmp_group", {"hdr.ipv4.dstAddr": "10.0.0.1/32"},
                               "set_ecmp_select", {"ecmp_base": 0, "ecmp_count": 2}))
    nhop = insert(table_entry(info, "ecmp_nhop", {"meta.ecmp_select": 0}, "set_nhop",
                              {"nhop_dmac": "00:00:00:00:01:02", "nhop_ipv4": "10.0.2.2",
                               "port": 2}))
    primary.write([group, nhop, modify(default_entry(info, "ecmp_group", "drop"))])
    read = [str(decode_table_entry(info, e)) for e in primary.read_table_entries()]
    assert read == [
        "MyIngress.ecmp_group: hdr.ipv4.dstAddr=10.0.0.1/32 => "
        "MyIngress.set_ecmp_select(ecmp_base=0, ecmp_count=2)",
        "MyIngress.ecmp_nhop: meta.ecmp_select=0 => MyIngress.set_nhop("
        "nhop_dmac=00:00:00:00:01:02, nhop_ipv4=10.0.2.2, port=2)"]
    assert len(primary.read_table_entries("ecmp_nhop")) == 1
    assert str(decode_table_entry(info, primary.read_default_entry("ecmp_group"))) == \
        "MyIngress.ecmp_group: (default action) => MyIngress.drop()"

    fresh = insert(table_entry(info, "ecmp_nhop", {"meta.ecmp_select": 1}, "drop"))
    bad_default = insert(default_entry(info, "ecmp_nhop", "drop"))
    with pytest.raises(WriteError) as failure:
        primary.write([group, fresh, bad_default])
    error = failure.value
    assert str(error) == "s1: 2 of 3 updates failed"
    assert [(e.index, e.code_name, e.message) for e in error.errors] == [
        (0, "ALREADY_EXISTS", "Match entry exists, use MODIFY if you wish to change action"),
        (2, "INVALID_ARGUMENT", "Cannot use INSERT for default entry")]
    assert error.errors[0].update == group
    assert error.lines()[1] == (
        "  update 0: ALREADY_EXISTS: Match entry exists, use MODIFY if you wish to change "
        "action [INSERT MyIngress.ecmp_group: hdr.ipv4.dstAddr=10.0.0.1/32 => "
        "MyIngress.set_ecmp_select(ecmp_base=0, ecmp_count=2)]")
    assert error.lines()[2] == ("  update 2: INVALID_ARGUMENT: Cannot use INSERT for default "
                                "entry [INSERT MyIngress.ecmp_nhop: (default action) => "
                                "MyIngress.drop()]")
    assert len(primary.read_table_entries("ecmp_nhop")) == 2  # the good update went in


def test_every_error_of_a_large_failed_batch_reaches_the_controller(
        primary: SwitchConnection, info: P4Info) -> None:
    """5,000 failing updates: ~0.5 MB of per-update errors in the trailers, far above
    gRPC's default 16 KiB metadata limit, which would turn them into RESOURCE_EXHAUSTED."""
    frame = insert(table_entry(info, "send_frame", {"standard_metadata.egress_port": 1},
                               "rewrite_mac", {"smac": "00:00:00:02:01:00"}))
    with pytest.raises(WriteError) as failure:
        primary.write([frame] * 5000)
    assert str(failure.value) == "s1: 4999 of 5000 updates failed"
    assert [e.index for e in failure.value.errors] == list(range(1, 5000))
    assert {e.code_name for e in failure.value.errors} == {"ALREADY_EXISTS"}


def test_write_before_the_pipeline_says_so(address: str, info: P4Info) -> None:
    with SwitchConnection("s1", address, 0, p4info=info) as sw:
        sw.become_primary()
        with pytest.raises(WriteError, match="FAILED_PRECONDITION.*; push the pipeline first"):
            sw.write([modify(default_entry(info, "ecmp_group", "drop"))])


def test_proto_dump_appends_every_request(address: str, info: P4Info,
                                          tmp_path: Path) -> None:
    dump = tmp_path / "logs" / "s1-p4runtime-requests.txt"
    for run in range(2):
        with SwitchConnection("s1", address, 0, proto_dump_file=dump, p4info=info) as sw:
            sw.become_primary()
            sw.set_pipeline(info, BMV2_JSON.read_bytes())
            sw.write([modify(default_entry(info, "ecmp_group", "drop"))])
            sw.read_table_entries()
        text = dump.read_text()
        assert text.count("/p4.v1.P4Runtime/Write\n") == run + 1
    assert text.count("/p4.v1.P4Runtime/StreamChannel\n") == 2
    assert text.count("/p4.v1.P4Runtime/SetForwardingPipelineConfig\n") == 2
    assert text.count("/p4.v1.P4Runtime/Read\n") == 2
    assert f'p4_device_config: "<{BMV2_JSON.stat().st_size} bytes, not shown>"' in text
    assert "is_default_action: true" in text and "table_id: 41423289" in text


def test_close_ends_the_stream_thread(address: str) -> None:
    sw = SwitchConnection("closing", address, 0)
    sw.become_primary()
    assert len(stream_threads("closing")) == 1
    sw.close()
    sw.close()
    assert not stream_threads("closing")


def test_switch_going_away_is_unavailable(info: P4Info) -> None:
    server = serve(Switch(device_id=0), "127.0.0.1:0")
    with SwitchConnection("s1", f"127.0.0.1:{server.bound_port}", 0, p4info=info,
                          timeout=2) as sw:
        sw.become_primary()
        server.stop(0)
        with pytest.raises(SwitchUnavailable, match="s1: no P4Runtime server at 127.0.0.1:[0-9]+ "
                                                    r"\(pipeline push failed: "):
            sw.set_pipeline(info, BMV2_JSON.read_bytes())


class RecordingPort:
    """A port that keeps what the switch sends."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def send(self, frame: bytes) -> None:
        self.frames.append(frame)


def test_packet_io_and_multicast_groups() -> None:
    info = P4Info.load(REPO / "tests/p4/replicate.p4.p4info.txtpb")
    switch = Switch(device_id=0, cpu_port=64)
    ports = {n: RecordingPort() for n in (1, 2, 3)}
    for number, port in ports.items():
        switch.add_port(number, port)
    server = serve(switch, "127.0.0.1:0")
    try:
        with SwitchConnection("s9", f"127.0.0.1:{server.bound_port}", 0, p4info=info) as sw:
            sw.become_primary()
            sw.set_pipeline(info, (REPO / "tests/p4/replicate.json").read_bytes())
            frame = bytes.fromhex("0a0000000002" "0a0000000001" "9999") + bytes(5) + b"hi"
            sw.packet_out(frame, {"egress_port": 2})
            deadline = time.monotonic() + 5
            while not ports[2].frames and time.monotonic() < deadline:
                time.sleep(0.01)
            assert ports[2].frames == [frame] and not ports[1].frames

            sw.write([insert(table_entry(info, "fwd", {"hdr.ethernet.dstAddr": 0x0A0000000002},
                                         "to_cpu")),
                      insert(multicast_group_entry(7, [1, (3, 2)]))])
            switch.receive(1, frame)
            packet = sw.packet_in(timeout=5)
            assert packet is not None and packet.payload == frame
            assert [(m.metadata_id, m.value) for m in packet.metadata] == [(1, b"\x01"),
                                                                           (2, b"\x00")]
            (group,) = sw.read_pre_entries()
            assert group == multicast_group_entry(7, [1, (3, 2)])
            with pytest.raises(ControllerError, match="packet_out has no metadata 'port' "
                                                      r"\(it has: egress_port, _pad\)"):
                sw.packet_out(frame, {"port": 1})
    finally:
        server.stop(0)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    """A self-signed certificate for 127.0.0.1 (openssl), as (key, cert)."""
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    result = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                             "-keyout", str(key), "-out", str(cert), "-days", "1",
                             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                            capture_output=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"openssl cannot make a certificate: {result.stderr.decode()[-200:]}")
    return key.read_bytes(), cert.read_bytes()


def test_tls_credentials(tls_files: tuple[bytes, bytes]) -> None:
    key, cert = tls_files
    server = serve(Switch(device_id=0), "127.0.0.1:0",
                   credentials=grpc.ssl_server_credentials([(key, cert)]))
    address = f"127.0.0.1:{server.bound_port}"
    try:
        credentials = grpc.ssl_channel_credentials(root_certificates=cert)
        with SwitchConnection("s1", address, 0, credentials=credentials) as sw:
            sw.become_primary()
            assert sw.capabilities().startswith("1.")
        with SwitchConnection("s1", address, 0, timeout=1) as plain, \
                pytest.raises(SwitchUnavailable, match="waited 1 s"):
            plain.become_primary()
    finally:
        server.stop(0)


# -- mycontroller.py as a process --------------------------------------------------

@pytest.fixture
def three_switches() -> Iterator[list[str]]:
    servers = [serve(Switch(device_id=i), "127.0.0.1:0") for i in range(3)]
    yield [f"127.0.0.1:{s.bound_port}" for s in servers]
    for server in servers:
        server.stop(0)


def controller(addresses: list[str], *extra: str) -> list[str]:
    args = [sys.executable, str(REPO / "mycontroller.py")]
    for name, address in zip(("s1", "s2", "s3"), addresses):
        args += ["--switch", f"{name}={address}"]
    return args + list(extra)


def test_mycontroller_programs_three_switches_twice(three_switches: list[str],
                                                    info: P4Info) -> None:
    for _ in range(2):  # the pipeline push wipes the tables: the second run is clean too
        result = subprocess.run(controller(three_switches), capture_output=True, text=True,
                                timeout=60, check=False, cwd="/")
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        for name, count in (("s1", 6), ("s2", 4), ("s3", 4)):
            assert f"Installed {count} rules on {name} in one WriteRequest" in result.stdout
    assert ("  MyIngress.ecmp_group: hdr.ipv4.dstAddr=10.0.0.1/32 => "
            "MyIngress.set_ecmp_select(ecmp_base=0, ecmp_count=2)") in result.stdout
    with SwitchConnection("s2", three_switches[1], 1, p4info=info) as s2:
        entries = [str(decode_table_entry(info, e)) for e in s2.read_table_entries()]
        default = str(decode_table_entry(info, s2.read_default_entry("ecmp_group")))
    assert entries == [
        "MyIngress.ecmp_group: hdr.ipv4.dstAddr=10.0.2.2/32 => "
        "MyIngress.set_ecmp_select(ecmp_base=0, ecmp_count=1)",
        "MyIngress.ecmp_nhop: meta.ecmp_select=0 => MyIngress.set_nhop("
        "nhop_dmac=08:00:00:00:02:02, nhop_ipv4=10.0.2.2, port=1)",
        "MyEgress.send_frame: standard_metadata.egress_port=1 => "
        "MyEgress.rewrite_mac(smac=00:00:00:02:01:00)"]
    assert default == "MyIngress.ecmp_group: (default action) => MyIngress.drop()"


def test_mycontroller_with_a_switch_down(three_switches: list[str]) -> None:
    down = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = subprocess.run(controller([three_switches[0], down, three_switches[2]],
                                       "--timeout", "2"),
                            capture_output=True, text=True, timeout=60, check=False)
    assert time.monotonic() - started < 8
    assert result.returncode == 1
    assert result.stderr == (f"error: s2: no P4Runtime server at {down} (waited 2 s): is the "
                             "switch running? Start it with 'make run'\n")


def test_mycontroller_ctrl_c_is_clean(three_switches: list[str]) -> None:
    down = f"127.0.0.1:{free_port()}"
    process = subprocess.Popen(controller([down, *three_switches[1:]], "--timeout", "30"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        time.sleep(2)  # connecting to s1, which never answers
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert out.strip() == "Shutting down." and "Traceback" not in err


def test_counter_reads_by_name(address: str) -> None:
    tables = P4Info.load(REPO / "tests/p4/tables.p4.p4info.txtpb")
    with SwitchConnection("s1", address, 0, p4info=tables) as sw:
        sw.become_primary()
        sw.set_pipeline(tables, (REPO / "tests/p4/tables.json").read_bytes())
        (cell,) = sw.read_counters("port_packets", index=3)
        assert (cell.counter_id, cell.index.index) == (308240890, 3)
        assert (cell.data.packet_count, cell.data.byte_count) == (0, 0)
        assert len(sw.read_counters("port_packets")) == 16
