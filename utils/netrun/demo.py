"""``make demo``: the exercise, start to finish, without typing anything.

1. Build the network (no CLI).  2. Send N flows from h1 to 10.0.0.1: with no
rules, none arrive.  3. Run ./mycontroller.py.  4. Send N flows again and count
what reaches h2 and h3.  5. Compare with the split that crc16 over each
packet's 5-tuple predicts (see ecmp.py).  Exit status 0 only if both match.
"""

from __future__ import annotations

import json
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

from .ecmp import Ecmp, RulesError
from .network import Network, NetworkError

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 20.0  # scapy's import alone takes a second or two on a busy machine
SETTLE = 1.5  # after the last packet is sent, before the receivers stop


def start_receiver(network: Network, host: str) -> subprocess.Popen:
    """``receive.py --json`` on ``host``, returned once it is capturing."""
    process = network.host(host).popen([str(REPO / "receive.py"), "--json"],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       cwd=str(REPO), text=True)
    assert process.stderr is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stderr, selectors.EVENT_READ)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if selector.select(timeout=deadline - time.monotonic()):
                line = process.stderr.readline()
                if line.startswith("sniffing on"):
                    return process
                if not line:  # it exited
                    break
    process.kill()
    _out, err = process.communicate()
    raise NetworkError(f"receive.py did not start on {host}: "
                       f"{' '.join(err.split())[-200:] or 'no output'}")


def stop_receiver(process: subprocess.Popen) -> list[dict]:
    """Stop a receiver (SIGTERM) and return the packets it printed."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        out, err = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    lines = out.strip().splitlines()
    if not lines:
        raise NetworkError(f"receive.py printed no summary: {' '.join(err.split())[-200:]}")
    return json.loads(lines[-1])["packets"]


def send_flows(network: Network, vip: str, count: int, message: str) -> list[int]:
    """``send.py VIP MESSAGE --count N --json`` on h1: the source ports it used."""
    output = network.host("h1").run_checked(
        f"{REPO / 'send.py'} {vip} {message} --count {count} --json")
    for line in reversed(output.splitlines()):
        if line.startswith("{"):
            return json.loads(line)["sports"]
    raise NetworkError(f"send.py printed no summary on h1: {output.strip()[-200:]}")


def exchange(network: Network, ecmp: Ecmp, count: int,
             message: str) -> tuple[list[int], dict[str, list[int]]]:
    """Send ``count`` flows from h1 to the VIP: (source ports sent, ports each next hop
    received)."""
    receivers: dict[str, subprocess.Popen] = {}
    try:
        for host in ecmp.next_hops:
            receivers[host] = start_receiver(network, host)
        sent = send_flows(network, ecmp.vip, count, message)
        time.sleep(SETTLE)
        received = {host: [p["sport"] for p in stop_receiver(process)
                           if p["payload"] == message]
                    for host, process in receivers.items()}
    finally:
        for process in receivers.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    return sent, received


def run_controller(network: Network) -> subprocess.CompletedProcess:
    """./mycontroller.py, pointed at this network's switches."""
    command = [str(REPO / "mycontroller.py")]
    for name in network.switch_names():
        command += ["--switch", f"{name}={network.grpc_address(name)}"]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=120,
                          check=False)


def compare(ecmp: Ecmp, sent: list[int], received: dict[str, list[int]]) -> bool:
    """Print received vs predicted per host; True if they are the same ports."""
    predicted = ecmp.split(sent)
    ok = True
    for host in ecmp.next_hops:
        got, want = sorted(received[host]), sorted(predicted[host])
        match = got == want
        print(f"  {host}: {len(got):3d} received, {len(want):3d} predicted by crc16 -> "
              f"{'match' if match else 'MISMATCH'}")
        if not match:
            print(f"      unexpected sports: {sorted(set(got) - set(want))}; "
                  f"missing: {sorted(set(want) - set(got))}")
        ok &= match
    return ok


def run_demo(network: Network, flows: int = 20) -> int:
    """The whole demonstration on a network that is not started yet; exit status."""
    try:
        ecmp = Ecmp.load(REPO)  # what mycontroller.py's rules make s1 do
        print(f"Starting the network ({' '.join(network.options.executable)}) ...",
              flush=True)
        network.start()
        _sent, before = exchange(network, ecmp, flows, "before")
        arrived = sum(len(ports) for ports in before.values())
        print(f"Before the controller: {flows} flows h1 -> {ecmp.vip}, {arrived} arrived "
              f"(expected 0: the switches have no rules)", flush=True)
        ok = arrived == 0
        print("Running ./mycontroller.py ...", flush=True)
        controller = run_controller(network)
        if controller.returncode != 0:
            print(f"error: mycontroller.py failed (exit {controller.returncode}): "
                  f"{controller.stderr.strip() or controller.stdout.strip()}", file=sys.stderr)
            return 1
        sent, after = exchange(network, ecmp, flows, "after")
        arrived = sum(len(ports) for ports in after.values())
        print(f"After the controller: {flows} flows h1 -> {ecmp.vip}, {arrived} arrived "
              f"(sports {min(sent)}-{max(sent)})", flush=True)
        ok &= compare(ecmp, sent, after) and arrived == flows
        print("Demo passed: nothing before the controller, and after it exactly the split "
              "crc16 predicts." if ok else "Demo FAILED.", flush=True)
        return 0 if ok else 1
    except (NetworkError, RulesError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        network.stop()
