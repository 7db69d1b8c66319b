"""``make demo``: the exercise, start to finish, without typing anything.

1. Build the network (no CLI).  2. Send N flows from h1 to 10.0.0.1: with no
rules, none arrive.  3. Run ./mycontroller.py.  4. Send N flows again and count
what reaches h2 and h3.  5. Compare with the split that CRC-16 (BMv2's crc16,
CRC-16/ARC) over each packet's 5-tuple predicts: select = crc16 % 2, 0 -> h2.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import crcmod.predefined

from .network import Network, NetworkError, SwitchOptions, switch_executable
from .state import RunState, cleanup
from .topology import load_topology

REPO = Path(__file__).resolve().parents[2]
CRC16 = crcmod.predefined.mkCrcFun("crc-16")  # CRC-16/ARC, BMv2's "crc16"
VIP = "10.0.0.1"


def predicted_host(sport: int, src: str = "10.0.1.1", dst: str = VIP, proto: int = 6,
                   dport: int = 1234) -> str:
    """Where s1 sends a flow: crc16(src, dst, proto, sport, dport) % 2 -> h2 (0) or h3 (1)."""
    key = socket.inet_aton(src) + socket.inet_aton(dst) + bytes([proto]) + \
        struct.pack("!HH", sport, dport)
    return "h2" if CRC16(key) % 2 == 0 else "h3"


def _receive(network: Network, host: str, seconds: float) -> subprocess.Popen:
    return network.host(host).popen([str(REPO / "receive.py"), "--json", "--timeout",
                                      str(seconds)], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, cwd=str(REPO))


def _send(network: Network, count: int, message: str) -> list[int]:
    output = network.host("h1").cmd(f"{REPO / 'send.py'} {VIP} {message} --count {count} --json")
    for line in output.splitlines():
        if line.startswith("{"):
            return json.loads(line)["sports"]
    raise NetworkError(f"send.py failed on h1: {output.strip()}")


def exchange(network: Network, count: int,
             message: str) -> tuple[list[int], dict[str, list[int]]]:
    """Send ``count`` flows from h1: (source ports sent, ports h2 and h3 received)."""
    receivers = {host: _receive(network, host, 4.0) for host in ("h2", "h3")}
    time.sleep(1.5)  # let the sniffers start
    sent = _send(network, count, message)
    received = {}
    for host, process in receivers.items():
        out, _err = process.communicate(timeout=30)
        data = json.loads(out.decode().strip().splitlines()[-1]) if out.strip() else {}
        received[host] = [p["sport"] for p in data.get("packets", [])
                          if p["payload"] == message]
    return sent, received


def run_demo(flows: int = 20) -> int:
    log_dir = REPO / "logs"
    state_path = log_dir / ".netrun-state.json"
    cleanup(state_path, verbose=False)
    options = SwitchOptions((REPO / "build/load_balance.json").resolve(), switch_executable(),
                            log_dir, REPO / "pcaps", "127.0.0.1")
    network = Network(load_topology(REPO / "topology.json"), options, RunState(state_path))
    ok = True
    try:
        print(f"Starting the network ({' '.join(options.executable[-2:])}) ...", flush=True)
        network.start()
        _sent, before = exchange(network, flows, "before")
        arrived = len(before["h2"]) + len(before["h3"])
        print(f"Before the controller: {flows} flows sent, {arrived} arrived "
              f"(h2: {len(before['h2'])}, h3: {len(before['h3'])})")
        ok &= arrived == 0
        controller = subprocess.run([str(REPO / "mycontroller.py")], capture_output=True,
                                    text=True, cwd=REPO, timeout=60)
        if controller.returncode != 0:
            print(f"mycontroller.py failed:\n{controller.stderr}", file=sys.stderr)
            return 1
        print("./mycontroller.py programmed s1, s2 and s3")
        sent, after = exchange(network, flows, "after")
        predicted = {"h2": [s for s in sent if predicted_host(s) == "h2"],
                     "h3": [s for s in sent if predicted_host(s) == "h3"]}
        arrived = len(after["h2"]) + len(after["h3"])
        print(f"After the controller: {flows} flows sent, {arrived} arrived")
        for host in ("h2", "h3"):
            match = sorted(after[host]) == sorted(predicted[host])
            print(f"  {host}: {len(after[host]):3d} received, {len(predicted[host]):3d} "
                  f"predicted by crc16 -> {'match' if match else 'MISMATCH'}")
            ok &= match
        ok &= arrived == flows
        print("Demo " + ("passed: the split is exactly the one crc16 predicts."
                         if ok else "FAILED."))
        return 0 if ok else 1
    except NetworkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        network.stop()
        cleanup(state_path, verbose=False)
