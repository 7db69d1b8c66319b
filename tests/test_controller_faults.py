"""./mycontroller.py when things go wrong, against real switch processes over real gRPC.

A switch killed or stopped mid-run, a switch restarted empty, a P4Info that does
not fit the pipeline or the controller's rules, a value too wide, a primary
controller that dies, and addresses where no switch answers.  Every failure of
mycontroller must be one line on stderr naming the switch and the cause, a
non-zero exit and no traceback.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import crcmod.predefined
import pytest
from google.protobuf import text_format
from procs import (
    ENV,
    REPO,
    Namespaces,
    capture,
    captured,
    free_port,
    send_frames,
    start_switch,
    stop,
)
from rawclient import Client
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from test_controller import EXPECTED

from p4runtime_lib import (
    P4Info,
    PipelineError,
    ReadError,
    SwitchConnection,
    WriteError,
    decode_table_entry,
    insert,
    table_entry,
)
from p4runtime_lib.protos import code_pb2, p4info_pb2, p4runtime_pb2

P4INFO = REPO / "build/load_balance.p4.p4info.txtpb"
BMV2_JSON = REPO / "build/load_balance.json"
DEVICES = {"s1": 0, "s2": 1, "s3": 2}
DEFAULT = "MyIngress.ecmp_group: (default action) => MyIngress.drop()"
NO_PIPELINE = "FAILED_PRECONDITION: No forwarding pipeline config set for this device"
CONTROLLER_ENV = {**{k: v for k, v in os.environ.items() if k != "LB_VENV_REEXEC"},
                  "PYTHONUNBUFFERED": "1"}
CRC16 = crcmod.predefined.mkCrcFun("crc-16")


class Switches:
    """Switch processes running load_balance.json with no P4Runtime config, as `make run`
    starts them (devices 0-2), each on its own free port."""

    def __init__(self, logs: Path, names: tuple[str, ...] = ("s1", "s2", "s3"),
                 extra: dict[str, list[str]] | None = None) -> None:
        self.logs = logs
        self.extra = extra or {}
        self.ports: dict[str, int] = {}
        while len(set(self.ports.values())) < len(names):
            self.ports = {name: free_port() for name in names}
        self.processes: dict[str, subprocess.Popen] = {}
        self.starts = 0
        for name in names:
            self.start(name)

    def start(self, name: str) -> None:
        self.starts += 1
        self.processes[name] = start_switch(
            [*self.extra.get(name, []), "--device-id", str(DEVICES[name]), str(BMV2_JSON)],
            self.ports[name], log=self.logs / f"{name}-{self.starts}.log")

    def kill(self, name: str) -> None:
        self.processes[name].kill()
        self.processes[name].wait(timeout=10)

    def address(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    def args(self) -> list[str]:
        """``--switch NAME=ADDRESS`` for each switch."""
        return [arg for name in self.ports for arg in ("--switch", f"{name}={self.address(name)}")]

    def close(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)  # a stopped switch must see SIGTERM
            stop(process)


@pytest.fixture
def switches(tmp_path: Path) -> Iterator[Switches]:
    running = Switches(tmp_path)
    yield running
    running.close()


@pytest.fixture
def s1_only(tmp_path: Path) -> Iterator[Switches]:
    running = Switches(tmp_path, ("s1",))
    yield running
    running.close()


def controller(switches: Switches, *args: str, timeout: float = 60
               ) -> subprocess.CompletedProcess:
    """./mycontroller.py for these switches; ``timeout`` only guards against a hang."""
    return subprocess.run([str(REPO / "mycontroller.py"), *switches.args(), *args],
                          capture_output=True, text=True, timeout=timeout, check=False,
                          cwd=REPO, env=CONTROLLER_ENV)


def error_line(returncode: int | None, out: str, err: str) -> str:
    """The one line a failed run printed on stderr (after checking there is only it)."""
    assert returncode not in (0, None), out
    assert "Traceback" not in out and "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


def failed(result: subprocess.CompletedProcess) -> str:
    return error_line(result.returncode, result.stdout, result.stderr)


def expected(name: str) -> list[str]:
    """The rules the exercise wants on a switch (entries sorted, then the default)."""
    return sorted(EXPECTED[name]) + [DEFAULT]


def read_back(switches: Switches, name: str) -> list[str]:
    """What the switch holds, in the shape of ``expected``."""
    info = P4Info.load(P4INFO)
    with SwitchConnection(name, switches.address(name), DEVICES[name], p4info=info) as sw:
        entries = sorted(str(decode_table_entry(info, e)) for e in sw.read_table_entries())
        return entries + [str(decode_table_entry(info, sw.read_default_entry("ecmp_group")))]


def assert_empty(switches: Switches, name: str) -> None:
    """The switch has no P4Runtime pipeline, hence no entries either."""
    with SwitchConnection(name, switches.address(name), DEVICES[name]) as sw:
        with pytest.raises(PipelineError, match=NO_PIPELINE):
            sw.get_pipeline()
        with pytest.raises(ReadError, match=NO_PIPELINE):
            sw.read_table_entries()


def run_until(switches: Switches, line: str, then: Callable[[], None], *args: str
              ) -> tuple[int | None, str, str]:
    """Run mycontroller, call ``then()`` as soon as it prints ``line``; (code, out, err)."""
    process = subprocess.Popen([str(REPO / "mycontroller.py"), *switches.args(), *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=REPO, env=CONTROLLER_ENV)
    guard = threading.Timer(90, process.kill)  # against a hang only
    guard.start()
    try:
        seen = []
        for text in process.stdout:
            seen.append(text)
            if text.startswith(line):
                then()
                break
        out, err = process.communicate()
    finally:
        guard.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
    assert line in "".join(seen), "".join(seen) + err
    return process.returncode, "".join(seen) + out, err


# -- a switch failing in the middle of programming ---------------------------------------

def test_a_switch_killed_mid_programming(switches: Switches) -> None:
    code, out, err = run_until(switches, "Installed 6 rules on s1",
                               lambda: switches.kill("s2"))
    line = error_line(code, out, err)
    assert re.fullmatch(rf"error: s2: no P4Runtime server at {switches.address('s2')} "
                        r"\((pipeline push|write|read) failed: .+\): is the switch running\? "
                        r"Start it with 'make run'", line), line
    assert "Done:" not in out
    assert read_back(switches, "s1") == expected("s1")  # what was done before stays


def test_a_switch_stopped_mid_programming_hits_the_deadline(switches: Switches) -> None:
    stopped = switches.processes["s2"]
    code, out, err = run_until(switches, "Installed 6 rules on s1",
                               lambda: stopped.send_signal(signal.SIGSTOP), "--timeout", "1")
    line = error_line(code, out, err)
    assert re.fullmatch(rf"error: s2: {switches.address('s2')} did not answer the "
                        r"(pipeline push|write|read) within [0-9.]+ s: the switch is up but "
                        r"busy or stuck; try a larger --timeout", line), line
    switches.kill("s2")


# -- a switch restarted: empty again, programmed again -----------------------------------

def test_a_restarted_switch_is_empty_and_the_controller_programs_it_again(
        switches: Switches) -> None:
    assert controller(switches).returncode == 0
    switches.kill("s1")
    switches.start("s1")  # same port, same program, nothing from P4Runtime
    assert_empty(switches, "s1")
    result = controller(switches)
    assert (result.returncode, result.stderr) == (0, "")
    for name in DEVICES:
        assert read_back(switches, name) == expected(name)


def flow(sport: int) -> bytes:
    """h1's packet to the load-balanced address."""
    return bytes(Ether(src="08:00:00:00:01:01", dst="08:00:00:00:01:00")
                 / IP(src="10.0.1.1", dst="10.0.0.1") / TCP(sport=sport, dport=1234) / b"lb")


def through_s1(frame: bytes, sport: int) -> tuple[int, bytes]:
    """(port, frame) s1 should send, from the tutorial's rules: the crc16 of the 5-tuple
    picks h2's path (port 2) or h3's (port 3), rewriting MACs, destination and TTL."""
    key = bytes([10, 0, 1, 1, 10, 0, 0, 1, 6]) + sport.to_bytes(2, "big") + (1234).to_bytes(
        2, "big")
    port = 2 if CRC16(key) % 2 == 0 else 3
    packet = Ether(frame)
    packet.src = f"00:00:00:01:0{port}:00"
    packet.dst = f"00:00:00:00:01:0{port}"
    packet[IP].dst = f"10.0.{port}.{port}"
    packet[IP].ttl -= 1
    del packet[IP].chksum
    return port, bytes(packet)


def tcp_frames(frames: list[bytes]) -> list[bytes]:
    return [f for f in frames if TCP in Ether(f)]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces")
def test_a_restarted_switch_forwards_real_packets_once_programmed_again(tmp_path: Path) -> None:
    ns = Namespaces(f"cf{os.getpid() % 10000}")
    switches = None
    try:
        for short in "abc":
            ns.add(short)
        ports = [f"-i{number}@{name}" for number, name in enumerate(ns.names, start=1)]
        switches = Switches(tmp_path, extra={"s1": ports})
        assert controller(switches).returncode == 0
        switches.kill("s1")
        switches.start("s1")
        assert_empty(switches, "s1")
        sports = [50000 + n for n in range(12)]
        # before the controller runs again, the restarted s1 forwards nothing
        listeners = [capture(ns, name, 2) for name in ns.names[1:]]
        send_frames(ns, ns.names[0], [flow(s) for s in sports[:3]])
        assert [tcp_frames(captured(listener)) for listener in listeners] == [[], []]

        result = controller(switches)
        assert (result.returncode, result.stderr) == (0, "")
        listeners = [capture(ns, name, 3) for name in ns.names[1:]]
        send_frames(ns, ns.names[0], [flow(s) for s in sports])
        got = {port: tcp_frames(captured(listener))
               for port, listener in zip((2, 3), listeners)}
        want: dict[int, list[bytes]] = {2: [], 3: []}
        for sport in sports:
            port, frame = through_s1(flow(sport), sport)
            want[port].append(frame)
        assert got == want
    finally:
        if switches is not None:
            switches.close()
        ns.close()


# -- a P4Info that does not fit ------------------------------------------------------------

def edited_program(folder: Path, edit_info: Callable[[p4info_pb2.P4Info], None],
                   edit_json: Callable[[dict[str, Any]], Any]) -> list[str]:
    """load_balance's P4Info and BMv2 JSON, both edited the same way, as mycontroller
    arguments."""
    info = p4info_pb2.P4Info()
    info.CopyFrom(P4Info.load(P4INFO).proto)
    edit_info(info)
    document = json.loads(BMV2_JSON.read_text())
    document = edit_json(document) or document
    (folder / "edited.p4info.txtpb").write_text(text_format.MessageToString(info))
    (folder / "edited.json").write_text(json.dumps(document))
    return ["--p4info", str(folder / "edited.p4info.txtpb"),
            "--bmv2-json", str(folder / "edited.json")]


def renamed(value: Any, old: str, new: str) -> Any:
    """A JSON document with every string ``old`` replaced by ``new``."""
    if isinstance(value, dict):
        return {key: renamed(item, old, new) for key, item in value.items()}
    if isinstance(value, list):
        return [renamed(item, old, new) for item in value]
    return new if value == old else value


def json_names(document: dict[str, Any]) -> set[str]:
    return ({a["name"] for a in document["actions"]}
            | {t["name"] for p in document["pipelines"] for t in p["tables"]})


def test_a_p4info_of_another_program_is_refused_before_any_switch_is_touched(
        switches: Switches) -> None:
    assert controller(switches).returncode == 0
    other = REPO / "tests/p4/tables.p4.p4info.txtpb"
    result = controller(switches, "--p4info", str(other))
    line = failed(result)
    assert line.startswith("error: s1: no table named 'MyIngress.ecmp_group' in the P4Info "
                           "(did you mean "), line
    assert "Installed P4 program" not in result.stdout
    for switch in DEVICES:  # nothing was pushed: every rule is still there
        assert read_back(switches, switch) == expected(switch)


def test_a_p4info_that_does_not_match_the_json_is_refused_by_the_switch(
        switches: Switches, tmp_path: Path) -> None:
    """The controller's names are all there, but the P4Info has an action the JSON lacks:
    the switch refuses the push in one line naming it, and keeps its rules."""
    assert controller(switches).returncode == 0

    def add_action(info: p4info_pb2.P4Info) -> None:
        extra = info.actions.add()
        extra.preamble.id, extra.preamble.name = 0x01FFFFFF, "MyIngress.not_compiled"
        extra.preamble.alias = "not_compiled"

    program = edited_program(tmp_path, add_action, lambda document: None)
    program[2:] = ["--bmv2-json", str(BMV2_JSON)]  # the JSON as compiled
    line = failed(controller(switches, *program))
    assert line == ("error: s1: pipeline push failed: INVALID_ARGUMENT: Invalid forwarding "
                    "pipeline config: P4Info action 'MyIngress.not_compiled' is not in the "
                    "BMv2 JSON"), line
    assert "MyIngress.not_compiled" not in json_names(json.loads(BMV2_JSON.read_text()))
    for switch in DEVICES:  # the refused push changed nothing
        assert read_back(switches, switch) == expected(switch)


def test_a_p4info_without_the_controllers_table_says_which_and_suggests(
        switches: Switches, tmp_path: Path) -> None:
    def rename_table(info: p4info_pb2.P4Info) -> None:
        table = next(t for t in info.tables if t.preamble.name == "MyIngress.ecmp_group")
        table.preamble.name, table.preamble.alias = "MyIngress.ecmp_groups", "ecmp_groups"

    program = edited_program(tmp_path, rename_table, lambda document: renamed(
        document, "MyIngress.ecmp_group", "MyIngress.ecmp_groups"))
    result = controller(switches, *program)
    line = failed(result)
    assert line.startswith("error: s1: no table named 'MyIngress.ecmp_group' in the P4Info "
                           "(did you mean 'MyIngress.ecmp_groups'"), line
    # the rules are built before any switch is touched: nothing was pushed or wiped
    assert "Installed P4 program" not in result.stdout


# -- a value too wide ------------------------------------------------------------------

def test_a_rule_value_too_wide_for_the_program_is_one_line(switches: Switches,
                                                           tmp_path: Path) -> None:
    """A program whose ecmp_count is 1 bit: s1's rule needs 2 paths."""
    def narrow_info(info: p4info_pb2.P4Info) -> None:
        action = next(a for a in info.actions if a.preamble.name == "MyIngress.set_ecmp_select")
        next(p for p in action.params if p.name == "ecmp_count").bitwidth = 1

    def narrow_json(document: dict[str, Any]) -> None:
        action = next(a for a in document["actions"]
                      if a["name"] == "MyIngress.set_ecmp_select")
        next(p for p in action["runtime_data"] if p["name"] == "ecmp_count")["bitwidth"] = 1

    line = failed(controller(switches, *edited_program(tmp_path, narrow_info, narrow_json)))
    assert line == ("error: s1: value 2 does not fit in 1 bits for parameter 'ecmp_count' of "
                    "'MyIngress.set_ecmp_select'; the largest 1-bit value is 1")


def test_too_wide_bytestrings_are_refused_per_update_and_shown(s1_only: Switches) -> None:
    """Values the library would not encode, sent anyway: PI's words, and the value shown."""
    info = P4Info.load(P4INFO)
    with SwitchConnection("s1", s1_only.address("s1"), 0, p4info=info) as sw:
        sw.become_primary()
        sw.set_pipeline(info, BMV2_JSON.read_bytes())
        frame = table_entry(info, "send_frame", {"standard_metadata.egress_port": 2},
                            "rewrite_mac", {"smac": "00:00:00:01:02:00"})
        frame.match[0].exact.value = (512).to_bytes(2, "big")  # port is 9 bits
        nhop = table_entry(info, "ecmp_nhop", {"meta.ecmp_select": 0}, "set_nhop",
                           {"nhop_dmac": "00:00:00:00:01:02", "nhop_ipv4": "10.0.2.2",
                            "port": 2})
        nhop.action.action.params[2].value = (0x7FFF).to_bytes(2, "big")
        with pytest.raises(WriteError) as failure:
            sw.write([insert(frame), insert(nhop)])
        assert failure.value.lines() == [
            "s1: 2 of 2 updates failed",
            "  update 0: INVALID_ARGUMENT: Bytestring provided does not fit within 9 bits "
            "[INSERT MyEgress.send_frame: standard_metadata.egress_port=0x0200 => "
            "MyEgress.rewrite_mac(smac=00:00:00:01:02:00)]",
            "  update 1: INVALID_ARGUMENT: Bytestring provided does not fit within 9 bits "
            "[INSERT MyIngress.ecmp_nhop: meta.ecmp_select=0 => MyIngress.set_nhop("
            "nhop_dmac=00:00:00:00:01:02, nhop_ipv4=10.0.2.2, port=0x7fff)]"]
        assert sw.read_table_entries() == []


# -- a primary controller that dies ----------------------------------------------------

HOLD_PRIMARY = """
import sys, time
from p4runtime_lib import SwitchConnection
sw = SwitchConnection("s1", sys.argv[1], 0, election_id=(0, 100))
sw.become_primary()
print("primary", flush=True)
time.sleep(120)
"""


def arbitration(message: object) -> tuple[int, str, int]:
    """(status code, message, primary's election id low) of a stream notification."""
    assert isinstance(message, p4runtime_pb2.StreamMessageResponse), message
    update = message.arbitration
    return update.status.code, update.status.message, update.election_id.low


def test_a_killed_primary_hands_over_to_the_backup_and_mycontroller_in_turn(
        s1_only: Switches) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD_PRIMARY, s1_only.address("s1")],
                              stdout=subprocess.PIPE, text=True, env=ENV)
    backup = Client(s1_only.address("s1"))
    try:
        assert holder.stdout.readline().strip() == "primary"
        assert arbitration(backup.become_primary(low=10)) == (code_pb2.ALREADY_EXISTS,
                                                              "Is backup", 100)
        holder.kill()  # no clean close: the switch sees the connection drop
        holder.wait(timeout=10)
        assert arbitration(backup.stream.receive(timeout=30)) == (code_pb2.OK, "Is primary", 10)

        # mycontroller with a higher id takes over, programs s1, and on exit hands back
        result = controller(s1_only, "--election-id", "20")
        assert (result.returncode, result.stderr) == (0, "")
        assert arbitration(backup.stream.receive(timeout=30)) == (code_pb2.ALREADY_EXISTS,
                                                                  "Is backup", 20)
        assert arbitration(backup.stream.receive(timeout=30)) == (code_pb2.OK, "Is primary", 10)
        assert read_back(s1_only, "s1") == expected("s1")
    finally:
        backup.close()
        if holder.poll() is None:
            holder.kill()
            holder.wait()


# -- nobody answering at the address ------------------------------------------------------

@pytest.fixture
def silent_listener() -> Iterator[str]:
    """A TCP port that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.getsockname()[1]}"
    server.shutdown(socket.SHUT_RDWR)
    server.close()
    for connection in accepted:
        connection.close()
    thread.join(timeout=5)


@pytest.mark.parametrize("where", ["refused", "unresolvable", "black hole", "not grpc"])
def test_a_wrong_address_is_one_line_within_the_timeout(where: str,
                                                        silent_listener: str) -> None:
    address = {"refused": "127.0.0.1:1", "unresolvable": "no-such-switch.invalid:50051",
               "black hole": "192.0.2.1:50051", "not grpc": silent_listener}[where]
    result = subprocess.run([str(REPO / "mycontroller.py"), "--switch", f"s1={address}",
                             "--timeout", "2"], capture_output=True, text=True, timeout=30,
                            check=False, cwd=REPO, env=CONTROLLER_ENV)
    assert failed(result) == (f"error: s1: no P4Runtime server at {address} (waited 2 s): is "
                              "the switch running? Start it with 'make run'")
