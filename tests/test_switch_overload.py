"""The switch process overloaded on real veths: it drops at the port, counts the drops,
and forwards at once again soon after the overload (issue 9 point 4).

What drops, by design: h1 sends ~200-300 kpps, the switch forwards ~70-150 kpps (megaflow
hits; less on a loaded machine), so port 1's ring (16,384 slots, also at MTU 9000) is
full within ~0.1 s and then holds ~110-250 ms of work: from then on the kernel drops at
the port (kernel drops).  After 500 ms behind the data plane drops at ingress what
waited more than 20 ms (overload drops) and the queue shrinks to that.  Both are
counted; the overload drops are what keeps the end of the flood from leaving the ring's
~0.2 s of backlog (or 0.8 s on a slow-path flood) behind it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from procs import Namespaces, load_balance_s1

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces")

# h1: 2 s of real-shaped TCP (IPv4 id and TCP seq change per frame: every frame is a
# flow-cache miss) as fast as Python sends, then a probe every 5 ms (its TCP seq
# numbers it); every frame carries its CLOCK_REALTIME send time as payload.  Checksums
# are left 0: load_balance does not check them.
FLOOD = r"""
import json, socket, struct, sys, time
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
sock.bind(("eth0", 0))
head = bytes.fromhex("ffffffffffff080000000101" "0800")
def frame(ident, sport, seq):
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 48, ident & 0xFFFF, 0, 64, 6, 0,
                     bytes([10, 0, 1, 1]), bytes([10, 0, 0, 1]))
    tcp = struct.pack("!HHIIBBHHH", sport, 1234, seq, 0, 0x50, 0x18, 8192, 0, 0)
    return head + ip + tcp + struct.pack("!Q", time.time_ns())
sent, end = 0, time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    for _ in range(100):
        sock.send(frame(sent, 10000 + sent % 1024, sent))
        sent += 1
ended = time.time_ns()
for seq in range(int(sys.argv[2])):
    time.sleep(0.005)
    sock.send(frame(seq, 20000 + seq % 64, seq))
print(json.dumps({"sent": sent, "end_ns": ended}), flush=True)
"""
# h2, h3: the probes that come out (a socket filter keeps the flood out of Python),
# with CLOCK_REALTIME on arrival.
LISTEN = r"""
import ctypes, json, socket, struct, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3)); s.bind(("eth0", 3))
code = [(0x28, 0, 0, 34), (0x35, 0, 2, 20000), (0x35, 1, 0, 20064), (0x06, 0, 0, 65535),
        (0x06, 0, 0, 0)]
program = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in code))
s.setsockopt(socket.SOL_SOCKET, 26, struct.pack("HL", len(code), ctypes.addressof(program)))
s.settimeout(0.2)
print("ready", flush=True)
got, end = {}, time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    try:
        data = s.recv(2048)
    except socket.timeout:
        continue
    if len(data) >= 62:
        got[struct.unpack("!I", data[38:42])[0]] = (
            time.time_ns() - struct.unpack("!Q", data[54:62])[0])
print(json.dumps(got), flush=True)
"""
FLOOD_SECONDS = 3  # the overload: 3 s
PROBES = 100


@pytest.fixture
def s1(tmp_path: Path) -> Iterator[tuple]:
    with load_balance_s1(tmp_path, f"o{os.getpid() % 10000}", pcap=False) as value:
        yield value


def run_in(ns: Namespaces, name: str, code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(["ip", "netns", "exec", name, sys.executable, "-c", code, *args],
                            stdout=subprocess.PIPE, text=True)


def test_overloaded_switch_drops_at_ingress_counts_it_and_recovers(s1, tmp_path: Path) -> None:
    ns, connection, process, _pcaps = s1
    listeners = [run_in(ns, name, LISTEN, str(FLOOD_SECONDS + 3)) for name in ns.names[1:]]
    for listener in listeners:
        assert listener.stdout.readline().strip() == "ready"
    flood = run_in(ns, ns.names[0], FLOOD, str(FLOOD_SECONDS), str(PROBES))
    report = json.loads(flood.communicate(timeout=60)[0])
    delays: dict[int, int] = {}
    for listener in listeners:
        delays.update({int(k): v for k, v in
                       json.loads(listener.communicate(timeout=30)[0].splitlines()[-1]).items()})
    connection.close()
    process.terminate()
    process.wait(timeout=20)
    log = (tmp_path / "switch.log").read_text()
    counters = re.search(r"^Port 1 \(.*?\): (.*)$", log, re.M).group(1)
    counts = {key: int(value) for key, value in re.findall(r"([a-z ]+?) (\d+)(?:, |$)",
                                                           counters)}
    summary = f"{report}, {counts}, probe delays by sequence {delays}"
    # the ring overflowed (kernel drops), the switch stayed behind for 500 ms and dropped
    # at ingress (overload drops), said so once; nothing is counted twice: the rest the
    # veth dropped before the ring
    assert counts.get("kernel drops", 0) > 0 and counts.get("overload drops", 0) > 0, summary
    assert log.count("the switch is behind") == 1, log
    assert counts["received"] + counts["overload drops"] + counts.get("kernel drops", 0) \
        <= report["sent"] + PROBES, summary
    # probe k left 5 ms x (k + 1) after the flood; from 100 ms on every one comes out,
    # and at once: most under 1 ms, none held more than a scheduling hiccup (a loaded
    # machine: 20 ms); the ring's backlog would hold the first ones ~200 ms
    after = [delays.get(seq) for seq in range(20, PROBES)]
    assert None not in after, f"probes lost after 100 ms: {summary}"
    assert max(after) < 20e6 and sorted(after)[len(after) // 2] < 1e6, summary
