"""send.py and receive.py on a real veth between two network namespaces (each side
named eth0, as on Mininet hosts): what is sent, what is printed, and one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from procs import REPO

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="namespaces need root")
PREFIX = f"nrsr{os.getpid() % 100000}"
SENDER, RECEIVER, EMPTY = f"{PREFIX}s", f"{PREFIX}r", f"{PREFIX}e"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def wire() -> Iterator[None]:
    """SENDER eth0 (10.0.1.1, h1's MAC) <-> RECEIVER eth0; EMPTY has only lo."""
    for name in (SENDER, RECEIVER, EMPTY):
        ip("netns", "add", name)
    try:
        ip("link", "add", "eth0", "netns", SENDER, "type", "veth", "peer", "name", "eth0",
           "netns", RECEIVER)
        for name in (SENDER, RECEIVER):
            ip("-n", name, "link", "set", "eth0", "up")
            subprocess.run(["ip", "netns", "exec", name, "ethtool", "-K", "eth0", "rx", "off",
                            "tx", "off", "sg", "off"], capture_output=True, check=False)
        ip("-n", SENDER, "link", "set", "eth0", "address", "08:00:00:00:01:01")
        ip("-n", SENDER, "addr", "add", "10.0.1.1/24", "dev", "eth0")
        ip("-n", SENDER, "route", "add", "default", "via", "10.0.1.10", "dev", "eth0")
        ip("-n", SENDER, "neigh", "add", "10.0.1.10", "lladdr", "08:00:00:00:01:00",
           "dev", "eth0")
        yield
    finally:
        for name in (SENDER, RECEIVER, EMPTY):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def run(namespace: str, script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", namespace, str(REPO / script), *args],
                          capture_output=True, text=True, timeout=60, check=False, cwd="/")


def receiver(*args: str) -> subprocess.Popen:
    """receive.py in RECEIVER, returned once it is capturing."""
    process = subprocess.Popen(["ip", "netns", "exec", RECEIVER, str(REPO / "receive.py"),
                                *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd="/")
    stream = process.stderr if "--json" in args else process.stdout
    assert stream is not None
    assert stream.readline() == "sniffing on eth0\n"
    return process


def test_flows_get_distinct_ephemeral_source_ports_and_arrive_as_sent(wire: None) -> None:
    listener = receiver("--json", "--count", "5", "--timeout", "30")
    sent = run(SENDER, "send.py", "10.0.0.1", "hello there", "--count", "5", "--json")
    assert sent.returncode == 0, sent.stderr
    summary = json.loads(sent.stdout)
    sports = summary["sports"]
    assert summary["interface"] == "eth0" and summary["destination"] == "10.0.0.1"
    assert len(set(sports)) == 5 and all(49152 <= s <= 65535 for s in sports)
    out, _err = listener.communicate(timeout=30)
    assert listener.returncode == 0
    got = json.loads(out)
    assert got["count"] == 5 and got["sports"] == sports
    for packet in got["packets"]:
        assert (packet["src"], packet["dst"], packet["dport"], packet["ttl"],
                packet["payload"], packet["src_mac"], packet["dst_mac"]) == \
            ("10.0.1.1", "10.0.0.1", 1234, 64, "hello there", "08:00:00:00:01:01",
             "ff:ff:ff:ff:ff:ff")


def test_steady_traffic_is_paced_with_id_and_seq_changing_per_packet(wire: None) -> None:
    listener = receiver("--json", "--timeout", "6")
    sent = run(SENDER, "send.py", "10.0.0.1", "hi", "--count", "20", "--rate", "400",
               "--seconds", "2", "--json")
    assert sent.returncode == 0, sent.stderr
    result = json.loads(sent.stdout)
    assert 0.9 * 800 <= result["sent"] <= 1.02 * 800 and result["send_errors"] == 0
    out, _err = listener.communicate(timeout=30)
    got = json.loads(out)["packets"]
    print(f"sent {result['sent']} in {result['seconds']:.2f} s, received {len(got)}")
    assert len(got) == result["sent"]
    per_flow = Counter(p["sport"] for p in got)
    assert set(per_flow) == set(result["sports"]) and len(per_flow) == 20
    assert max(per_flow.values()) - min(per_flow.values()) <= 1  # the flows in turn
    assert len({p["id"] for p in got}) == len({p["seq"] for p in got}) == len(got)
    assert all(p["payload"].endswith("hi") and (p["src"], p["dst"], p["dport"]) ==
               ("10.0.1.1", "10.0.0.1", 1234) for p in got)


def test_one_readable_line_per_packet_and_a_count_on_ctrl_c(wire: None) -> None:
    listener = receiver()
    sent = run(SENDER, "send.py", "10.0.0.1", "hi", "--sport", "50000", "--count", "2")
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout == ("sending on interface eth0 to 10.0.0.1\n"
                           + "sent TCP 10.0.1.1:50000 -> 10.0.0.1:1234 payload='hi'\n" * 2)
    time.sleep(1)
    listener.send_signal(signal.SIGINT)
    out, err = listener.communicate(timeout=30)
    assert listener.returncode == 0, err
    line = ("got a packet: 10.0.1.1:50000 -> 10.0.0.1:1234 ttl=64 08:00:00:00:01:01 -> "
            "ff:ff:ff:ff:ff:ff payload='hi'\n")
    assert out == line * 2 + "\n2 TCP packet(s) received\n"


def test_receive_stops_on_sigterm_and_timeout_with_a_json_summary(wire: None) -> None:
    listener = receiver("--json")
    listener.send_signal(signal.SIGTERM)
    out, _err = listener.communicate(timeout=30)
    assert listener.returncode == 0
    assert json.loads(out) == {"interface": "eth0", "count": 0, "sports": [], "packets": []}
    started = time.monotonic()
    quiet = run(RECEIVER, "receive.py", "--timeout", "1")
    assert quiet.returncode == 0 and quiet.stdout.endswith("\n0 TCP packet(s) received\n")
    assert time.monotonic() - started < 20


def test_no_eth0_is_one_line(wire: None) -> None:
    for script, args in (("send.py", ("10.0.0.1", "x")), ("receive.py", ())):
        result = run(EMPTY, script, *args)
        assert (result.returncode, result.stdout, result.stderr) == \
            (1, "", "Cannot find eth0 interface\n")


def test_bad_arguments_are_usage_errors(wire: None) -> None:
    for args in (("10.0.0.1",), ("10.0.0.1", "x", "--count", "0"),
                 ("10.0.0.1", "x", "--sport", "70000"), ("10.0.0.1", "x", "--rate", "0")):
        result = run(SENDER, "send.py", *args)
        assert result.returncode == 2 and "usage: send.py" in result.stderr
        assert "Traceback" not in result.stderr
    result = run(SENDER, "send.py", "no-such-host.invalid", "x")
    assert (result.returncode, result.stderr) == (1, "error: cannot resolve "
                                                  "no-such-host.invalid\n")
