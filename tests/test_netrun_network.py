"""The exercise network through netrun's Python API, in real Mininet: the hosts'
tutorial configuration, the switches' command lines, nothing forwarded before the
controller, the exact crc16 split after it, and a teardown that leaves nothing."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from procs import REPO

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="Mininet needs root")
try:
    from netrun.demo import exchange, run_controller
    from netrun.ecmp import Ecmp
    from netrun.network import Network, SwitchOptions
    from netrun.state import RunState
except ImportError as exc:  # Mininet comes from Debian; `make setup` installs it
    pytest.skip(f"Mininet is not importable: {exc}", allow_module_level=True)

TOPOLOGY = REPO / "topology.json"


def options(directory: Path, **overrides: object) -> SwitchOptions:
    return SwitchOptions.defaults(log_dir=directory, pcap_dir=directory / "pcaps",
                                  **overrides)


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    with Network(TOPOLOGY, options(tmp_path_factory.mktemp("net"))) as net:
        yield net


def test_hosts_are_configured_like_the_tutorial(network: Network) -> None:
    for name, ip, mac, gateway, gateway_mac in [
            ("h1", "10.0.1.1/24", "08:00:00:00:01:01", "10.0.1.10", "08:00:00:00:01:00"),
            ("h2", "10.0.2.2/24", "08:00:00:00:02:02", "10.0.2.20", "08:00:00:00:02:00"),
            ("h3", "10.0.3.3/24", "08:00:00:00:03:03", "10.0.3.30", "08:00:00:00:03:00")]:
        host = network.host(name)
        assert host.cmd("ls /sys/class/net").split() == ["eth0", "lo"]
        assert f"inet {ip}" in host.cmd("ip addr show eth0")
        assert mac in host.cmd("ip link show eth0")
        assert host.cmd("ip route show default").split()[:5] == \
            ["default", "via", gateway, "dev", "eth0"]
        neighbour = host.cmd(f"ip neigh show {gateway} dev eth0")
        assert gateway_mac in neighbour and "PERMANENT" in neighbour
        offloads = host.cmd("ethtool -k eth0")
        for feature in ("rx-checksumming", "tx-checksumming", "scatter-gather"):
            assert f"{feature}: off" in offloads
        for conf in ("all", "default", "lo"):
            assert host.cmd(f"sysctl -n net.ipv6.conf.{conf}.disable_ipv6").strip() == "1"


def test_switches_run_with_the_tutorials_flags(network: Network, tmp_path: Path) -> None:
    state = RunState.load(network.state.path)
    switches = {p["name"]: p for p in state.processes if p["role"] == "switch"}
    for device_id, name in enumerate(("s1", "s2", "s3")):
        switch = network.switch(name)
        flags = ["-i", f"1@{name}-eth1", "-i", f"2@{name}-eth2", "-i", f"3@{name}-eth3",
                 "--pcap", str(network.options.pcap_dir),
                 "--nanolog", f"ipc:///tmp/bm-{device_id}-log.ipc",
                 "--device-id", str(device_id), str(REPO / "build" / "load_balance.json"),
                 "--log-console", "--thrift-port", str(9090 + device_id), "--",
                 "--grpc-server-addr", f"127.0.0.1:{50051 + device_id}"]
        assert switch.argv == [*network.options.executable, *flags]
        running = Path(f"/proc/{switch.process.pid}/cmdline").read_bytes().split(b"\0")
        assert [arg.decode() for arg in running[-len(flags) - 1:-1]] == flags
        assert switches[name]["pid"] == switch.process.pid
        assert network.grpc_address(name) == f"127.0.0.1:{50051 + device_id}"
        assert switch.log_path == network.options.log_dir / f"{name}.log"
    assert sorted(state.interfaces) == sorted(f"s{s}-eth{p}" for s in (1, 2, 3)
                                              for p in (1, 2, 3))


def test_nothing_arrives_before_and_the_split_is_crc16_after(network: Network) -> None:
    ecmp = Ecmp.load()  # mycontroller.py's rules for s1
    _sent, before = exchange(network, ecmp, 12, "before")
    assert before == {"h2": [], "h3": []}
    result = run_controller(network)
    assert result.returncode == 0, result.stderr
    sent, after = exchange(network, ecmp, 30, "after")
    assert len(set(sent)) == 30
    predicted = ecmp.split(sent)
    assert sorted(after["h2"]) == sorted(predicted["h2"])
    assert sorted(after["h3"]) == sorted(predicted["h3"])
    assert after["h2"] and after["h3"]


def test_a_fixed_flow_always_takes_its_predicted_path(network: Network) -> None:
    """sport 50000 hashes to 0x8a04 (h2), 50001 to h3 (spec examples); TTL 64 - 2."""
    run_controller(network)
    ecmp = Ecmp.load()
    for sport in (50000, 50001):
        host = ecmp.host(sport)
        receiver = network.host(host).popen(
            [str(REPO / "receive.py"), "--json", "--count", "3", "--timeout", "20"],
            cwd=str(REPO), text=True)
        assert "sniffing on eth0" in receiver.stderr.readline()
        network.host("h1").cmd(f"{REPO / 'send.py'} 10.0.0.1 fixed --sport {sport} "
                               "--count 3 --json")
        out, _err = receiver.communicate(timeout=30)
        packets = json.loads(out)["packets"]
        assert [(p["sport"], p["ttl"], p["dst"], p["payload"]) for p in packets] == \
            [(sport, 62, "10.0.2.2" if host == "h2" else "10.0.3.3", "fixed")] * 3
