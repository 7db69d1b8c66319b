"""The runner's Python API starting and stopping the network: nothing left behind
after a stop, and a switch that fails to start named in one line, with its log."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from procs import REPO

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="Mininet needs root")
try:
    from netrun.network import Network, NetworkError, SwitchOptions
    from netrun.state import RunState, netns_id, start_time
except ImportError as exc:  # Mininet comes from Debian; `make setup` installs it
    pytest.skip(f"Mininet is not importable: {exc}", allow_module_level=True)

TOPOLOGY = REPO / "topology.json"


def options(directory: Path, **overrides: object) -> SwitchOptions:
    return SwitchOptions.defaults(log_dir=directory, pcap_dir=directory / "pcaps",
                                  **overrides)


def gone(pid: int, start: int | None) -> bool:
    return start_time(pid) is None or start_time(pid) != start


def test_stop_leaves_no_process_interface_or_namespace(tmp_path: Path) -> None:
    network = Network(TOPOLOGY, options(tmp_path, log_console=False)).start()
    hosts = {name: network.host(name).pid for name in ("h1", "h2", "h3")}
    namespaces = {netns_id(pid) for pid in hosts.values()}
    assert len(namespaces) == 3 and netns_id(os.getpid()) not in namespaces
    processes = [(p["pid"], p["start"]) for p in RunState.load(network.state.path).processes
                 if p["role"] != "runner"]
    assert len(processes) == 9  # 3 host shells, 3 switch-node shells, 3 switch processes
    interfaces = network.topology.switch_interfaces()
    network.host("h2").cmd("sleep 300 &")  # a job started from the host's shell
    network.stop()
    assert all(gone(pid, start) for pid, start in processes)
    assert not [name for name in interfaces if Path(f"/sys/class/net/{name}").exists()]
    still = [pid for pid in os.listdir("/proc") if pid.isdigit()
             and netns_id(int(pid)) in namespaces]
    assert still == []
    assert not network.state.path.exists()
    network.stop()  # twice is harmless


def test_start_failure_tears_down_what_was_made(tmp_path: Path) -> None:
    """A switch that exits at once: one line naming it and its log; nothing left."""
    fake = tmp_path / "fake_switch"
    fake.write_text("#!/bin/sh\necho \"error: this switch cannot start\"\nexit 3\n")
    fake.chmod(0o755)
    network = Network(TOPOLOGY, options(tmp_path, executable=[str(fake)]))
    with pytest.raises(NetworkError, match=r"^P4 switch s1 did not start correctly \(exit 3: "
                       r"error: this switch cannot start\); see .*/s1\.log$"):
        network.start()
    assert not [n for n in network.topology.switch_interfaces()
                if Path(f"/sys/class/net/{n}").exists()]
    assert not network.state.path.exists()


def test_a_switch_that_never_listens_times_out(tmp_path: Path) -> None:
    fake = tmp_path / "silent_switch"
    fake.write_text("#!/bin/sh\nexec sleep 61.25\n")
    fake.chmod(0o755)
    network = Network(TOPOLOGY, options(tmp_path, executable=[str(fake)], start_timeout=1))
    with pytest.raises(NetworkError, match=r"^P4 switch s1 did not open gRPC port 50051 within "
                       r"1 s; see .*/s1\.log$"):
        network.start()
    assert not network.state.path.exists()
    sleepers = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert f"{fake}" not in sleepers and "sleep 61.25" not in sleepers
