"""`make stop` after the runner was killed: exactly what the run made goes away."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
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


def test_stop_removes_exactly_what_a_killed_run_left(tmp_path: Path) -> None:
    decoy = subprocess.Popen(["bash", "-c", "exec -a p4switch-decoy sleep 120"])
    runner = subprocess.Popen([sys.executable, "-m", "netrun", "run", "--no-cli",
                               "--log-dir", str(tmp_path), "--pcap-dir", str(tmp_path / "p"),
                               "--quiet-switches"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=ENV, cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        for line in runner.stdout:
            if "Network is up" in line or time.monotonic() > deadline:
                break
        state = json.loads((tmp_path / ".netrun-state.json").read_text())
        pids = [p["pid"] for p in state["processes"] if p["role"] != "runner"]
        assert len(pids) == 6 and len(state["interfaces"]) == 9
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=10)
        # host shells die with the runner (their pty closes); switches and their
        # root-namespace interfaces stay behind
        switches = [p["pid"] for p in state["processes"] if p["role"] == "switch"]
        assert all(alive(pid) for pid in switches)
        assert all(Path(f"/sys/class/net/{name}").exists() for name in state["interfaces"])
        stop = subprocess.run([sys.executable, "-m", "netrun", "stop", "--log-dir",
                               str(tmp_path)], capture_output=True, text=True, env=ENV,
                              cwd=REPO, timeout=60, check=False)
        assert stop.returncode == 0, stop.stderr
        time.sleep(0.5)
        assert not any(alive(pid) for pid in pids)
        assert not any(Path(f"/sys/class/net/{name}").exists() for name in state["interfaces"])
        assert not (tmp_path / ".netrun-state.json").exists()
        assert decoy.poll() is None  # nothing matched by name
    finally:
        if runner.poll() is None:
            runner.kill()
        decoy.kill()
        subprocess.run([sys.executable, "-m", "netrun", "stop", "--log-dir", str(tmp_path)],
                       capture_output=True, env=ENV, cwd=REPO, check=False)
