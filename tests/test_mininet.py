"""The exercise end to end in Mininet: before/after the controller, the exact split,
and the hosts' configuration."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator

import pytest
from procs import REPO

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="Mininet needs root")
try:
    from netrun.demo import exchange, predicted_host
    from netrun.network import Network, SwitchOptions, switch_executable
    from netrun.state import RunState
    from netrun.topology import load_topology
except ImportError as exc:  # Mininet comes from Debian; `make setup` installs it
    pytest.skip(f"Mininet is not importable: {exc}", allow_module_level=True)


@pytest.fixture(scope="module")
def network(tmp_path_factory) -> Iterator[Network]:
    logs = tmp_path_factory.mktemp("logs")
    options = SwitchOptions((REPO / "build/load_balance.json").resolve(), switch_executable(),
                            logs, logs / "pcaps", "127.0.0.1")
    net = Network(load_topology(REPO / "topology.json"), options,
                  RunState(logs / ".netrun-state.json"))
    net.start()
    yield net
    net.stop()


def test_hosts_are_configured_like_the_tutorial(network: Network) -> None:
    h1 = network.host("h1")
    assert "inet 10.0.1.1/24" in h1.cmd("ip addr show eth0")
    assert "08:00:00:00:01:01" in h1.cmd("ip link show eth0")
    assert "default via 10.0.1.10 dev eth0" in h1.cmd("ip route")
    assert "08:00:00:00:01:00" in h1.cmd("arp -n 10.0.1.10")
    offloads = h1.cmd("ethtool -k eth0")
    assert "rx-checksumming: off" in offloads and "tx-checksumming: off" in offloads
    assert h1.cmd("sysctl -n net.ipv6.conf.all.disable_ipv6").strip() == "1"


def test_nothing_arrives_before_and_the_split_is_crc16_after(network: Network) -> None:
    _sent, before = exchange(network, 12, "before")
    assert before == {"h2": [], "h3": []}
    result = subprocess.run([str(REPO / "mycontroller.py")], capture_output=True, text=True,
                            timeout=60, check=False, cwd=REPO)
    assert result.returncode == 0, result.stderr
    sent, after = exchange(network, 30, "after")
    assert sorted(after["h2"]) == sorted(s for s in sent if predicted_host(s) == "h2")
    assert sorted(after["h3"]) == sorted(s for s in sent if predicted_host(s) == "h3")
    assert after["h2"] and after["h3"]
    # what h2 receives: rewritten by s1 then s2, TTL 62
    output = network.host("h1").cmd(f"{REPO / 'send.py'} 10.0.0.1 ttl --sport 50000 --json")
    assert json.loads(output.strip().splitlines()[-1])["sports"] == [50000]
