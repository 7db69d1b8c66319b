"""`make stop` (python -m netrun stop): exactly what a run made goes away, whether
the runner was killed, is still running, or was told to stop; nothing else."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from procs import ENV, REPO

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="Mininet needs root")


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its new parent to reap it does not count)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def netrun(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netrun", *args], capture_output=True,
                          text=True, env=ENV, cwd=REPO, timeout=timeout, check=False)


class Run:
    """``netrun run --no-cli`` in the background, up and recorded."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.process = subprocess.Popen(
            [sys.executable, "-m", "netrun", "run", "--no-cli", "--log-dir", str(directory),
             "--pcap-dir", str(directory / "p"), "--quiet-switches"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV, cwd=REPO)
        self.output = ""
        deadline = time.monotonic() + 60
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output += line
            if "Network is up" in line or time.monotonic() > deadline:
                break
        assert "Network is up" in self.output, self.output
        self.state = json.loads((directory / ".netrun-state.json").read_text())
        self.pids = [p["pid"] for p in self.state["processes"] if p["role"] != "runner"]
        self.interfaces = self.state["interfaces"]

    def nothing_left(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(pid) for pid in self.pids):
            time.sleep(0.1)
        assert not [pid for pid in self.pids if alive(pid)]
        assert not [n for n in self.interfaces if Path(f"/sys/class/net/{n}").exists()]
        assert not (self.directory / ".netrun-state.json").exists()


@pytest.fixture
def decoy() -> Iterator[subprocess.Popen]:
    """A process named like a switch that no cleanup may touch."""
    process = subprocess.Popen(["bash", "-c", "exec -a p4switch-decoy sleep 120"])
    yield process
    assert process.poll() is None  # nothing was matched by name
    process.kill()


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    started = Run(tmp_path)
    yield started
    if started.process.poll() is None:
        started.process.kill()
    netrun("stop", "--log-dir", str(tmp_path))


def test_the_state_file_lists_what_the_run_made(run: Run) -> None:
    roles = sorted(p["role"] for p in run.state["processes"])
    assert roles == ["host"] * 3 + ["runner"] + ["shell"] * 3 + ["switch"] * 3
    assert sorted(run.interfaces) == sorted(f"s{s}-eth{p}" for s in (1, 2, 3)
                                            for p in (1, 2, 3))
    hosts = [p for p in run.state["processes"] if p["role"] == "host"]
    assert [h["name"] for h in hosts] == ["h1", "h2", "h3"]
    assert all(h["netns"].startswith("net:[") for h in hosts)


def test_stop_after_the_runner_was_killed(run: Run, decoy: subprocess.Popen) -> None:
    run.process.send_signal(signal.SIGKILL)
    run.process.wait(timeout=10)
    # host shells die with the runner (their pty closes); the switch processes and
    # the switch-to-switch veths stay behind
    switches = [p["pid"] for p in run.state["processes"] if p["role"] == "switch"]
    assert all(alive(pid) for pid in switches)
    assert Path("/sys/class/net/s1-eth2").exists()
    stop = netrun("stop", "--log-dir", str(run.directory))
    assert stop.returncode == 0, stop.stderr
    assert all(f"stopped switch s{n} (pid {pid})" in stop.stdout
               for n, pid in zip((1, 2, 3), switches))
    run.nothing_left()
    assert netrun("stop", "--log-dir", str(run.directory)).stdout == "Nothing to stop.\n"


def test_stop_while_the_runner_is_running(run: Run, decoy: subprocess.Popen) -> None:
    stop = netrun("stop", "--log-dir", str(run.directory))
    assert stop.returncode == 0, stop.stderr
    assert f"stopped the runner (pid {run.process.pid})" in stop.stdout
    assert run.process.wait(timeout=10) == 143  # it tore its own network down
    run.nothing_left()


def test_ctrl_c_tears_everything_down(run: Run) -> None:
    run.process.send_signal(signal.SIGINT)
    assert run.process.wait(timeout=30) == 0
    run.nothing_left()


def test_a_second_run_is_refused_while_one_is_up(run: Run) -> None:
    second = netrun("run", "--no-cli", "--log-dir", str(run.directory))
    assert second.returncode == 1
    assert second.stderr == (f"error: the network is already running (pid "
                             f"{run.process.pid}); run 'make stop' first\n")
    demo = netrun("demo", "--log-dir", str(run.directory))
    assert demo.returncode == 1 and "already running" in demo.stderr
    assert all(alive(pid) for pid in run.pids)


def test_a_run_left_behind_is_removed_before_the_next_start(run: Run, tmp_path: Path) -> None:
    run.process.send_signal(signal.SIGKILL)
    run.process.wait(timeout=10)
    again = Run(tmp_path)
    try:
        assert "removed what an earlier run left behind" in again.output
        assert not [pid for pid in run.pids if alive(pid) and pid not in again.pids]
    finally:
        again.process.send_signal(signal.SIGTERM)
        assert again.process.wait(timeout=30) == 143
    again.nothing_left()


def test_a_busy_port_or_interface_is_refused_in_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 50052))
        squatter.listen()
        result = netrun("run", "--no-cli", "--log-dir", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr == ("error: gRPC port 50052 for s2 is already in use: is another "
                             "network or switch running? ('make stop')\n")
    subprocess.run(["ip", "link", "add", "s3-eth2", "type", "veth", "peer", "name",
                    "nrtest-s3peer"], check=True)
    try:
        result = netrun("run", "--no-cli", "--log-dir", str(tmp_path))
        assert Path("/sys/class/net/s3-eth2").exists()  # not ours: left alone
    finally:
        subprocess.run(["ip", "link", "del", "s3-eth2"], check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("error: interface s3-eth2 already exists")
    assert not (tmp_path / ".netrun-state.json").exists()
    assert not Path("/sys/class/net/s1-eth1").exists()


def test_a_link_left_by_a_run_nobody_stopped_is_replaced(tmp_path: Path) -> None:
    """A killed session leaves s1-eth2--s2-eth2 (both ends in the root namespace) and
    no state file here: exactly our link, so the next run removes it and starts."""
    subprocess.run(["ip", "link", "add", "s1-eth2", "type", "veth", "peer", "name",
                    "s2-eth2"], check=True)
    started = None
    try:
        started = Run(tmp_path)
        assert "netrun: removed link s1-eth2--s2-eth2 that an earlier run left behind" \
            in started.output
    finally:
        if started is not None:
            started.process.send_signal(signal.SIGTERM)
            started.process.wait(timeout=30)
        else:
            subprocess.run(["ip", "link", "del", "s1-eth2"], check=False)
    started.nothing_left()


def test_bad_topology_is_one_line(tmp_path: Path) -> None:
    topo = tmp_path / "topology.json"
    topo.write_text(json.dumps({"hosts": {}, "switches": {"s1": {"runtime_json": "x"}},
                                "links": []}))
    result = netrun("run", "--no-cli", "-t", str(topo), "--log-dir", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr == ("error: switch 's1' has 'runtime_json': rules come from "
                             "./mycontroller.py in this exercise; remove it\n")


def test_without_root_it_says_so_in_one_line(tmp_path: Path) -> None:
    for command in ("run", "demo", "stop"):
        result = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534",
                                 "--clear-groups", sys.executable, "-m", "netrun", command,
                                 "--log-dir", str(tmp_path)], capture_output=True, text=True,
                                env=ENV, cwd=REPO, timeout=60, check=False)
        assert (result.returncode, result.stderr) == \
            (1, "error: Mininet needs root: run with sudo\n")


def test_demo_live_tells_the_story_and_leaves_nothing(tmp_path: Path) -> None:
    """``make demo-live`` end to end in Mininet: every change hitless, the chart written,
    and nothing left behind (no switch process, no s1-eth interface)."""
    chart = tmp_path / "live.png"
    demo = netrun("demo-live", "--log-dir", str(tmp_path), "--pcap-dir", str(tmp_path / "p"),
                  "--quiet-switches", "--rate", "1500", "--chart", str(chart), timeout=240)
    print(demo.stdout)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    steps = [line.split() for line in demo.stdout.splitlines()
             if line.startswith(("weights 3:1", "drain h3", "restore h3"))]
    assert len(steps) == 3
    for fields in steps:
        moved, fewest, lost, wrong = map(int, fields[-4:])
        assert moved == fewest and moved > 150 and lost == 0 and wrong == 0
    assert chart.read_bytes()[:4] == b"\x89PNG"
    assert not Path("/sys/class/net/s1-eth1").exists()
