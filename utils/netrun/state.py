"""What a run created, on disk, so ``make stop`` can remove exactly that.

The runner records its own PID, its switch processes, Mininet's node shells
(each host shell holds the host's network namespace) and the root-namespace
interfaces it makes, each before it can be left behind.  ``cleanup`` signals
only recorded PIDs whose command line and start time are still the recorded
ones, and deletes only recorded interfaces: it never matches processes or
interfaces by name (unlike ``mn -c``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

RUNNER_GRACE = 15.0  # a live runner tears its own network down first
PROCESS_GRACE = 5.0  # then SIGKILL


def cmdline(pid: int) -> str | None:
    """/proc/PID/cmdline with NULs as spaces, or None if the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.replace(b"\x00", b" ").decode(errors="replace").strip()


def start_time(pid: int) -> int | None:
    """When PID started (clock ticks since boot), or None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return None if fields[0] == "Z" else int(fields[19])


def netns_id(pid: int) -> str | None:
    """The network namespace of PID, e.g. ``net:[4026532281]``."""
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


class RunState:
    """The state file: processes ({pid, role, cmdline, start, ...}) and interfaces."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.processes: list[dict] = []
        self.interfaces: list[str] = []

    def add_process(self, pid: int, role: str, command: list[str] | None = None,
                    **extra: str) -> None:
        """Record a process; give ``command`` when it may not have exec'd yet."""
        line = " ".join(command) if command is not None else (cmdline(pid) or "")
        self.processes.append({"pid": pid, "role": role, "cmdline": line,
                               "start": start_time(pid), **extra})
        self.save()

    def refresh(self, pid: int) -> None:
        """Record a process's current command line (after a wrapper re-exec'd itself)."""
        for entry in self.processes:
            if entry["pid"] == pid and start_time(pid) == entry["start"]:
                entry["cmdline"] = cmdline(pid) or entry["cmdline"]
        self.save()

    def add_interfaces(self, names: list[str]) -> None:
        """Record root-namespace interfaces (before creating them)."""
        self.interfaces.extend(n for n in names if n not in self.interfaces)
        self.save()

    def save(self) -> None:
        """Write atomically (a reader never sees half a file)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"processes": self.processes,
                                   "interfaces": self.interfaces}, indent=1))
        tmp.replace(self.path)

    @classmethod
    def load(cls, path: Path) -> RunState:
        """Read a state file; OSError or ValueError if it is missing or unreadable."""
        state = cls(path)
        data = json.loads(Path(path).read_text())
        state.processes = list(data.get("processes", []))
        state.interfaces = list(data.get("interfaces", []))
        return state


def is_ours(entry: dict) -> bool:
    """The recorded process still runs the recorded command (not a reused PID)."""
    pid = entry["pid"]
    if cmdline(pid) != entry["cmdline"]:
        return False
    recorded = entry.get("start")
    return start_time(pid) is not None and (recorded is None or start_time(pid) == recorded)


def live_runner(path: Path) -> int | None:
    """PID of the runner that owns ``path`` if it is still running (and is not us)."""
    try:
        state = RunState.load(path)
    except (OSError, ValueError):
        return None
    for entry in state.processes:
        if entry["role"] == "runner" and entry["pid"] != os.getpid() and is_ours(entry):
            return entry["pid"]
    return None


def _signal_and_wait(entries: list[dict], sig: int, grace: float) -> list[dict]:
    """Send ``sig`` to each entry; return those still running after ``grace`` seconds."""
    for entry in entries:
        with contextlib.suppress(ProcessLookupError):
            os.kill(entry["pid"], sig)
    deadline = time.monotonic() + grace
    alive = entries
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [e for e in alive if is_ours(e)]
    return alive


def _squatters(host: dict) -> list[str]:
    """Processes still in a host's namespace, from its shell's session (not killed)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        pid = int(proc.name)
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (proc / "stat").read_text()
            session = int(stat[stat.rindex(")") + 2:].split()[3])
            if session == host["pid"] and netns_id(pid) == host["netns"]:
                found.append(f"{host['name']}'s namespace is still held by pid {pid} "
                             f"({cmdline(pid)}), started from its shell: end it with "
                             f"'kill {pid}'")
    return found


def cleanup(path: Path, verbose: bool = True) -> list[str]:
    """Stop what the state file lists; returns what was done (one line each).

    A live runner is asked first (SIGTERM) so it tears its network down itself;
    what is left is then stopped entry by entry: switch processes (SIGTERM),
    node shells (SIGHUP, as Mininet does), SIGKILL after a grace period, and
    finally the recorded interfaces.  The caller's own PID is never signalled.
    """
    path = Path(path)
    done: list[str] = []
    runner = live_runner(path)
    if runner is not None:
        gone = not _signal_and_wait([e for e in RunState.load(path).processes
                                     if e["pid"] == runner], signal.SIGTERM, RUNNER_GRACE)
        done.append(f"stopped the runner (pid {runner})" if gone else
                    f"runner pid {runner} did not stop within {RUNNER_GRACE:g} s")
    if not path.exists():
        return _report(done, verbose)
    try:
        state = RunState.load(path)
    except (OSError, ValueError):
        path.unlink(missing_ok=True)
        return _report(done + [f"state file {path} unreadable: removed"], verbose)
    me = os.getpid()
    alive = [e for e in state.processes if e["pid"] != me and is_ours(e)]
    switches = [e for e in alive if e["role"] not in ("host", "shell", "runner")]
    shells = [e for e in alive if e["role"] in ("host", "shell", "runner")]
    left = _signal_and_wait(switches, signal.SIGTERM, PROCESS_GRACE)
    left += _signal_and_wait(shells, signal.SIGHUP, PROCESS_GRACE)
    _signal_and_wait(left, signal.SIGKILL, PROCESS_GRACE)
    done += [f"stopped {e['role']} {e.get('name', '')} (pid {e['pid']})".replace("  ", " ")
             for e in alive]
    for name in state.interfaces:
        if Path(f"/sys/class/net/{name}").exists():
            subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)
            done.append(f"removed interface {name}")
    for host in state.processes:
        if host["role"] == "host" and host.get("netns"):
            done += _squatters(host)
    path.unlink(missing_ok=True)
    return _report(done, verbose)


def _report(done: list[str], verbose: bool) -> list[str]:
    if verbose:
        for line in done:
            print(line)
    return done
