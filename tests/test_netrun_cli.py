"""`make run` as a student uses it: the Mininet CLI in a terminal (a pty), the
banner's hints typed as written, ./mycontroller.py from "another terminal", and
'exit' tearing everything down."""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from procs import ENV, REPO

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="Mininet needs root")
try:
    from netrun.ecmp import Ecmp
except ImportError as exc:
    pytest.skip(f"crcmod is missing: {exc}", allow_module_level=True)

PROMPT = "mininet> "


class Terminal:
    """A process on a pseudo-terminal, driven like a user would."""

    def __init__(self, argv: list[str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # child
            os.chdir(REPO)
            os.execvpe(argv[0], argv, ENV)
        self.pending = ""

    def read_until(self, text: str, timeout: float = 60) -> str:
        """Everything up to and including ``text``."""
        deadline = time.monotonic() + timeout
        while text not in self.pending:
            ready, _, _ = select.select([self.fd], [], [], max(0, deadline - time.monotonic()))
            if not ready:
                raise AssertionError(f"no {text!r} within {timeout} s: {self.pending[-800:]}")
            try:
                self.pending += os.read(self.fd, 65536).decode(errors="replace")
            except OSError as exc:  # EIO: the process has gone
                raise AssertionError(f"exited before {text!r}: {self.pending[-800:]}") from exc
        end = self.pending.index(text) + len(text)
        seen, self.pending = self.pending[:end], self.pending[end:]
        return seen.replace("\r\n", "\n")

    def command(self, line: str, timeout: float = 60) -> str:
        """Type a CLI command; its output (without the echo and the next prompt)."""
        os.write(self.fd, line.encode() + b"\n")
        output = self.read_until(PROMPT, timeout)
        return output.split("\n", 1)[1] if "\n" in output else ""

    def wait(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if select.select([self.fd], [], [], 0.1)[0]:
                with contextlib.suppress(OSError):  # EIO once the process has gone
                    self.pending += os.read(self.fd, 65536).decode(errors="replace")
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
        raise AssertionError(f"still running: {self.pending[-800:]}")

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    term = Terminal([sys.executable, "-m", "netrun", "run", "--log-dir", str(tmp_path),
                     "--pcap-dir", str(tmp_path / "pcaps")])
    yield term
    term.kill()
    subprocess.run([sys.executable, "-m", "netrun", "stop", "--log-dir", str(tmp_path)],
                   env=ENV, cwd=REPO, capture_output=True, check=False)


def wait_sniffing(term: Terminal, host: str) -> None:
    """receive.py's 'sniffing on eth0' shows up with the host's next command."""
    seen = ""
    deadline = time.monotonic() + 30
    while "sniffing on eth0" not in seen and time.monotonic() < deadline:
        seen += term.command(f"{host} true")
        time.sleep(0.3)
    assert "sniffing on eth0" in seen


def received(output: str, host_ip: str) -> list[int]:
    return [int(sport) for sport in re.findall(
        rf"got a packet: 10\.0\.1\.1:(\d+) -> {re.escape(host_ip)}:1234 ttl=62 ", output)]


def test_the_banner_hints_work_as_typed(terminal: Terminal, tmp_path: Path) -> None:
    banner = terminal.read_until(PROMPT, 90)
    for line in ("s1 -> gRPC port: 50051 (device id 0)", "s3 -> gRPC port: 50053 (device id 2)",
                 "default interface: eth0\t10.0.2.2\t08:00:00:00:02:02",
                 "./mycontroller.py", "h2 ./receive.py &", "h1 ./send.py 10.0.0.1 \"hello\"",
                 "h2 kill %1; wait", f"{tmp_path}/sN.log"):
        assert line in banner
    assert "sent TCP 10.0.1.1:" in terminal.command("h1 ./send.py 10.0.0.1 \"hello\"")
    for host in ("h2", "h3"):
        terminal.command(f"{host} ./receive.py &")
        wait_sniffing(terminal, host)
    controller = subprocess.run([str(REPO / "mycontroller.py")], capture_output=True,
                                text=True, cwd=REPO, timeout=120, check=False)
    assert controller.returncode == 0, controller.stderr
    sent = terminal.command("h1 ./send.py 10.0.0.1 \"hello\" --count 10")
    sports = [int(s) for s in re.findall(r"sent TCP 10\.0\.1\.1:(\d+) -> 10\.0\.0\.1:1234 "
                                         r"payload='hello'", sent)]
    assert len(set(sports)) == 10, sent
    time.sleep(1)
    predicted = Ecmp.load().split(sports)
    h2 = terminal.command("h2 kill %1; wait")
    h3 = terminal.command("h3 kill %1; wait")
    assert sorted(received(h2, "10.0.2.2")) == sorted(predicted["h2"]), h2
    assert sorted(received(h3, "10.0.3.3")) == sorted(predicted["h3"]), h3
    assert f"{len(predicted['h2'])} TCP packet(s) received" in h2
    os.write(terminal.fd, b"exit\n")
    assert terminal.wait() == 0
    assert not (tmp_path / ".netrun-state.json").exists()
    assert not [n for n in ("s1-eth1", "s1-eth2", "s2-eth3")
                if Path(f"/sys/class/net/{n}").exists()]


def test_ctrl_d_leaves_and_tears_down(terminal: Terminal, tmp_path: Path) -> None:
    terminal.read_until(PROMPT, 90)
    os.write(terminal.fd, b"\x04")
    assert terminal.wait() == 0
    assert not (tmp_path / ".netrun-state.json").exists()
    assert not Path("/sys/class/net/s1-eth2").exists()


def test_make_stop_from_another_terminal_ends_the_cli_run(terminal: Terminal,
                                                          tmp_path: Path) -> None:
    terminal.read_until(PROMPT, 90)
    stop = subprocess.run([sys.executable, "-m", "netrun", "stop", "--log-dir", str(tmp_path)],
                          env=ENV, cwd=REPO, capture_output=True, text=True, timeout=60,
                          check=False)
    assert stop.returncode == 0 and f"stopped the runner (pid {terminal.pid})" in stop.stdout
    assert terminal.wait() == 143
    assert not (tmp_path / ".netrun-state.json").exists()
    assert not Path("/sys/class/net/s1-eth2").exists()
