"""Shared pieces of the benchmarks: figures, switch processes, timing."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "utils")]
ENV = {**os.environ, "PYTHONPATH": str(REPO / "utils"), "GRPC_VERBOSITY": "NONE"}
BUILD_JSON = REPO / "build/load_balance.json"
BUILD_P4INFO = REPO / "build/load_balance.p4.p4info.txtpb"


@dataclass
class Figure:
    """One measured figure next to the anchor measured in the same run."""

    section: str
    name: str
    value: float
    unit: str
    anchor_name: str = ""
    anchor_value: float | None = None
    target: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        if self.anchor_value in (None, 0):
            return None
        return self.value / self.anchor_value  # type: ignore[operator]


def machine() -> dict[str, str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import google.protobuf
    import grpc
    from google.protobuf.internal import api_implementation
    return {"cpu": cpu, "cores": str(os.cpu_count()), "kernel": platform.release(),
            "python": platform.python_version(), "grpcio": grpc.__version__,
            "protobuf": f"{google.protobuf.__version__} ({api_implementation.Type()})"}


def free_ports(count: int) -> int:
    """A base port with ``count`` consecutive free ports after it."""
    for base in range(43000, 60000, 11):
        sockets = []
        try:
            for offset in range(count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free ports")


P4SWITCH = (sys.executable, "-m", "p4switch")


def start_switch(args: list[str], port: int, executable: tuple[str, ...] = P4SWITCH
                 ) -> subprocess.Popen:
    """Our switch (or ``executable``, e.g. BMv2's simple_switch_grpc) serving on ``port``."""
    process = subprocess.Popen([*executable, *args, "--",
                                "--grpc-server-addr", f"127.0.0.1:{port}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV,
                               cwd=REPO)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("switch did not start")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 15 s; returns once the process is reaped."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def sh(*command: str, check: bool = True) -> str:
    """Run a command (ip, ethtool, ...); its stdout, RuntimeError with stderr if it fails."""
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {result.stderr.strip()}")
    return result.stdout


def proc_status(pid: int) -> tuple[int, int]:
    """(threads, RSS KiB) of a process, from /proc."""
    fields = dict(line.split(":", 1) for line in
                  Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["Threads"]), int(fields["VmRSS"].split()[0])


def rss_kib(pid: int) -> int:
    return proc_status(pid)[1]


def cpu_ns(pid: int) -> int:
    """CPU time a process has used so far, every thread, in ns (schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):  # a thread that ended
            total += int((task / "schedstat").read_text().split()[0])
    return total


def median(values: list[float]) -> float:
    return statistics.median(values)


def write_results(figures: list[Figure], path: Path) -> dict:
    data = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(),
            "figures": [{**asdict(f), "ratio": f.ratio} for f in figures]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))
    return data


def table(figures: list[Figure]) -> str:
    def fmt(value: float | None) -> str:
        if value is None:
            return "-"
        if value >= 1000:
            return f"{value:,.0f}"
        return f"{value:.3g}"

    rows = [("figure", "value", "unit", "anchor (same run)", "anchor", "ratio", "target", "met")]
    for f in figures:
        ratio = f"{f.ratio:.2f}x" if f.ratio is not None else "-"
        met = {True: "yes", False: "NO", None: "-"}[f.met]
        rows.append((f"{f.section}: {f.name}", fmt(f.value), f.unit, f.anchor_name,
                     fmt(f.anchor_value), ratio, f.target, met))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)
