"""What a run created, on disk, so ``make stop`` can remove exactly that.

The runner records its switch processes, Mininet's host shells and the
interfaces it made before anything else can go wrong.  ``cleanup`` kills only
recorded PIDs whose command line is still the recorded one, and deletes only
recorded interfaces: it never matches processes or interfaces by name pattern
(unlike ``mn -c``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path


def cmdline(pid: int) -> str | None:
    """/proc/PID/cmdline with NULs as spaces, or None if the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.replace(b"\x00", b" ").decode(errors="replace").strip()


class RunState:
    """The state file: processes ({pid, cmdline, role}) and interfaces."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.processes: list[dict] = []
        self.interfaces: list[str] = []

    def add_process(self, pid: int, role: str, command: list[str] | None = None) -> None:
        """Record a process; give ``command`` when it may not have exec'd yet."""
        line = " ".join(command) if command is not None else (cmdline(pid) or "")
        self.processes.append({"pid": pid, "role": role, "cmdline": line})
        self.save()

    def add_interfaces(self, names: list[str]) -> None:
        self.interfaces.extend(n for n in names if n not in self.interfaces)
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"processes": self.processes,
                                   "interfaces": self.interfaces}, indent=1))
        tmp.replace(self.path)

    @classmethod
    def load(cls, path: Path) -> RunState:
        state = cls(path)
        data = json.loads(path.read_text())
        state.processes = list(data.get("processes", []))
        state.interfaces = list(data.get("interfaces", []))
        return state


def _ours(entry: dict) -> bool:
    current = cmdline(entry["pid"])
    return current is not None and current == entry["cmdline"]


def cleanup(path: Path, verbose: bool = True) -> list[str]:
    """Stop what the state file lists; returns what was done (one line each)."""
    done: list[str] = []
    if not path.exists():
        return done
    try:
        state = RunState.load(path)
    except (OSError, ValueError):
        path.unlink(missing_ok=True)
        return ["state file unreadable: removed"]
    # switches and the runner first (TERM, then KILL), host shells last
    order = sorted(state.processes, key=lambda e: e["role"] == "host")
    alive = [e for e in order if _ours(e)]
    for entry in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(entry["pid"], signal.SIGTERM)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and any(_ours(e) for e in alive):
        time.sleep(0.1)
    for entry in alive:
        if _ours(entry):
            with contextlib.suppress(ProcessLookupError):
                os.kill(entry["pid"], signal.SIGKILL)
        done.append(f"stopped {entry['role']} (pid {entry['pid']})")
    for name in state.interfaces:
        if Path(f"/sys/class/net/{name}").exists():
            subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)
            done.append(f"removed interface {name}")
    path.unlink(missing_ok=True)
    if verbose:
        for line in done:
            print(line)
    return done
