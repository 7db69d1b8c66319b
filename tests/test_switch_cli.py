"""``python -m p4switch`` as a process: bad starts, TLS, signals, the program from the start."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from procs import ENV, REPO, Namespaces, free_port, start_switch, stop
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap

from p4runtime_lib import ControllerError, SwitchConnection

PYTHON = sys.executable
BUILD_JSON = REPO / "build/load_balance.json"
BUILD_P4INFO = REPO / "build/load_balance.p4.p4info.txtpb"


def run_cli(*args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "p4switch", *args], capture_output=True, text=True,
                          env=ENV, cwd=REPO, timeout=timeout, check=False)


def one_line_error(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("p4switch: error: ") and message in lines[0], lines[0]


@pytest.mark.parametrize("args, message", [
    ([], "please specify an input JSON configuration file, e.g. build/load_balance.json, "
         "or --no-p4"),
    (["--pcap", "build/load_balance.json"], "--pcap took 'build/load_balance.json' as its "
                                            "directory"),
    (["--no-p4", "--log-console", "--log-file", "x.log"], "--log-console and --log-file "
                                                          "are exclusive"),
    (["--no-p4", "-L", "loud"], "argument -L/--log-level: invalid choice: 'loud'"),
    (["--no-p4", "--use-files", "1"], "--use-files is not supported by p4switch"),
    (["--no-p4", "-i", "1@lo", "-i", "2@lo"], "interface 'lo' given twice"),
    (["--no-p4", "-i", "1@lo", "-i", "1@lo2"], "port 1 given twice"),
    (["--no-p4", "--log-file", "/no/such/dir/s1.log"], "cannot write --log-file "
                                                       "/no/such/dir/s1.log"),
    (["--no-p4", "--pcap", "/proc/no/pcaps"], "cannot write pcap files into '/proc/no/pcaps'"),
    ([str(BUILD_P4INFO)], "not a BMv2 JSON file"),
    (["--no-p4", "--", "--no-such-target-flag"], "unrecognized arguments: "
                                                 "--no-such-target-flag"),
    (["--no-p4", "--", "--cpu-port", "0"], "--cpu-port 0: must be 1..510"),
    (["--no-p4", "-i", "3@lo", "--", "--cpu-port", "3"], "--cpu-port 3 is also interface "
                                                         "lo's port"),
    (["--no-p4", "--", "--drop-port", "100"], "only supports 511"),
    (["--no-p4", "--", "--dp-grpc-server-addr", "127.0.0.1:1"], "not supported"),
    (["--no-p4", "--", "--grpc-server-addr", "nonsense"], "bad address 'nonsense'"),
    (["--no-p4", "--", "--grpc-server-ssl"], "When enabling SSL/TLS for gRPC server, "
                                             "--grpc-server-cert is required"),
    (["--no-p4", "--", "--grpc-server-ssl", "--grpc-server-cert", "/no/cert.pem",
      "--grpc-server-key", "/no/key.pem"], "cannot read --grpc-server-cert /no/cert.pem"),
])
def test_bad_start_is_one_line(args: list[str], message: str) -> None:
    one_line_error(run_cli(*args), message)


def test_a_busy_port_hints_at_another_switch_a_bad_address_does_not() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = run_cli("--no-p4", "--", "--grpc-server-addr", f"127.0.0.1:{port}")
    one_line_error(taken, f"cannot listen on 127.0.0.1:{port}")
    assert "(is another switch running on that port?" in taken.stderr
    malformed = run_cli("--no-p4", "--", "--grpc-server-addr", "nonsense")
    one_line_error(malformed, "bad address 'nonsense'")
    assert "another switch" not in malformed.stderr


def test_help_names_the_loopback_default_and_the_target_options() -> None:
    own = run_cli("--help")
    assert own.returncode == 0 and "127.0.0.1:9559" in own.stdout
    assert "loopback" in own.stdout and "0.0.0.0:9559" in own.stdout
    target = run_cli("--no-p4", "--", "--help")
    assert target.returncode == 0
    for flag in ("--grpc-server-addr", "--cpu-port", "--grpc-server-ssl",
                 "--grpc-server-with-client-auth"):
        assert flag in target.stdout


def test_accepts_the_tutorial_command_line(tmp_path: Path) -> None:
    """What run_exercise.py passes, plus flags BMv2 users add; then a clean SIGTERM."""
    port = free_port()
    log = tmp_path / "s1.log"
    process = start_switch(["--pcap", str(tmp_path), "--nanolog", "ipc:///tmp/bm-0-log.ipc",
                            "--device-id", "0", str(BUILD_JSON), "--log-console",
                            "--thrift-port", "9090", "-L", "debug", "--debugger",
                            "--log-flush", "--max-port-count", "64"], port, log=log,
                           target=["--cpu-port", "255", "--priority-queues", "1",
                                   "--max-mc-groups", "64"])
    assert stop(process) == 0
    text = log.read_text()
    assert "Calling target program-options parser" in text
    assert f"Server listening on 127.0.0.1:{port}" in text
    assert "Traceback" not in text and "error" not in text


# -- TLS ---------------------------------------------------------------------------------

def openssl(*args: str) -> None:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"openssl cannot make certificates: {result.stderr[-200:]}")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by it."""
    folder = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
            "/CN=test-ca", "-keyout", str(folder / "ca.key"), "-out", str(folder / "ca.pem"))
    for name, extension in (("server", "subjectAltName=IP:127.0.0.1"),
                            ("client", "extendedKeyUsage=clientAuth")):
        (folder / f"{name}.ext").write_text(extension + "\n")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", str(folder / f"{name}.key"), "-out", str(folder / f"{name}.csr"))
        openssl("x509", "-req", "-in", str(folder / f"{name}.csr"), "-CA",
                str(folder / "ca.pem"), "-CAkey", str(folder / "ca.key"), "-CAcreateserial",
                "-days", "1", "-extfile", str(folder / f"{name}.ext"),
                "-out", str(folder / f"{name}.pem"))
    return folder


def tls_target(pki: Path, client_auth: bool) -> list[str]:
    target = ["--grpc-server-ssl", "--grpc-server-cert", str(pki / "server.pem"),
              "--grpc-server-key", str(pki / "server.key")]
    if client_auth:
        target += ["--grpc-server-cacert", str(pki / "ca.pem"), "--grpc-server-with-client-auth"]
    return target


def test_tls_with_client_authentication(pki: Path) -> None:
    port = free_port()
    process = start_switch(["--no-p4"], port, target=tls_target(pki, client_auth=True))
    address = f"127.0.0.1:{port}"
    try:
        ca = (pki / "ca.pem").read_bytes()
        trusted = grpc.ssl_channel_credentials(
            root_certificates=ca, private_key=(pki / "client.key").read_bytes(),
            certificate_chain=(pki / "client.pem").read_bytes())
        with SwitchConnection("s1", address, 0, credentials=trusted) as switch:
            switch.become_primary()
            assert switch.capabilities().startswith("1.")
        anonymous = grpc.ssl_channel_credentials(root_certificates=ca)
        with SwitchConnection("s1", address, 0, credentials=anonymous, timeout=2) as switch, \
                pytest.raises(ControllerError):
            switch.become_primary()
        with SwitchConnection("s1", address, 0, timeout=2) as plain, \
                pytest.raises(ControllerError):
            plain.become_primary()
    finally:
        assert stop(process) == 0


def test_tls_files_are_checked_at_start(pki: Path) -> None:
    mismatched = ["--grpc-server-ssl", "--grpc-server-cert", str(pki / "server.pem"),
                  "--grpc-server-key", str(pki / "client.key")]
    one_line_error(run_cli("--no-p4", "--", *mismatched), "bad TLS files")
    no_ca = tls_target(pki, client_auth=False) + ["--grpc-server-with-client-auth"]
    one_line_error(run_cli("--no-p4", "--", *no_ca), "needs --grpc-server-cacert")


# -- signals, the program before any controller, pcap at exit ------------------------------

@pytest.fixture
def one_port() -> Iterator[tuple[Namespaces, str]]:
    if os.geteuid() != 0:
        pytest.skip("needs root for namespaces")
    ns = Namespaces(f"c{os.getpid() % 100000}")
    try:
        yield ns, ns.add("a")
    finally:
        ns.close()


def send(ns: Namespaces, name: str, frame: bytes) -> None:
    code = ("import socket\ns = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n"
            f"s.bind(('eth0', 0))\ns.send(bytes.fromhex('{frame.hex()}'))\n")
    result = ns.run(name, PYTHON, "-c", code)
    assert result.returncode == 0, result.stderr


FRAME = bytes(Ether(src="08:00:00:00:01:01", dst="08:00:00:00:01:00")
              / IP(src="10.0.1.1", dst="10.0.0.1") / TCP(sport=50000, dport=1234))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_it_cleanly(one_port: tuple[Namespaces, str], tmp_path: Path,
                                   signum: int) -> None:
    ns, name = one_port
    port = free_port()
    log = tmp_path / "s1.log"
    process = start_switch([f"-i1@{name}", "--pcap", str(tmp_path), str(BUILD_JSON)], port,
                           log=log)
    send(ns, name, FRAME)
    time.sleep(0.3)
    process.send_signal(signum)
    assert process.wait(timeout=10) == 0
    assert [bytes(p) for p in rdpcap(str(tmp_path / f"{name}_in.pcap"))] == [FRAME]
    text = log.read_text()
    assert f"Port 1 ({name}): received 1" in text and "Traceback" not in text
    with socket.socket() as probe:  # the gRPC port is free again
        probe.bind(("127.0.0.1", port))


@pytest.mark.parametrize("program", ["json", "--no-p4"])
def test_the_json_runs_before_any_controller(one_port: tuple[Namespaces, str],
                                             tmp_path: Path, program: str) -> None:
    """As BMv2: the program on the command line processes packets from the start
    (no P4Runtime client ever connects here); with --no-p4 packets are dropped."""
    ns, name = one_port
    log = tmp_path / "s1.log"
    args = [str(BUILD_JSON)] if program == "json" else ["--no-p4"]
    process = start_switch([f"-i1@{name}", *args, "--log-console"], free_port(), log=log)
    try:
        send(ns, name, FRAME)
        time.sleep(0.5)
    finally:
        assert stop(process) == 0
    text = log.read_text()
    assert "Processing packet received on port 1" in text
    if program == "json":
        assert "Applying table 'MyIngress.ecmp_group'" in text
    else:
        assert "no P4 program loaded" in text


def test_json_with_no_p4_warns_and_starts_without_a_program(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "s1.log"
    process = start_switch(["--no-p4", str(BUILD_JSON)], port, log=log)
    try:
        with SwitchConnection("s1", f"127.0.0.1:{port}", 0) as switch:
            switch.become_primary()
            with pytest.raises(ControllerError, match="No forwarding pipeline config set"):
                switch.get_pipeline()
    finally:
        assert stop(process) == 0
    assert "warning: ignoring input config" in log.read_text()


def test_without_root_the_ports_say_so_in_one_line() -> None:
    if os.geteuid() != 0 or not Path("/usr/bin/setpriv").exists():
        pytest.skip("needs root and setpriv to drop to an unprivileged user")
    result = subprocess.run(["/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                             "--clear-groups", PYTHON, "-m", "p4switch", "-i", "1@lo", "--no-p4"],
                            capture_output=True, text=True, env=ENV, cwd=REPO, timeout=20,
                            check=False)
    one_line_error(result, "cannot open interface 'lo': Operation not permitted (run as root")
