"""topology.json, as the p4lang tutorials write it.

    {"hosts": {"h1": {"ip": "10.0.1.1/24", "mac": "08:00:00:00:01:01",
                      "commands": ["route add default gw 10.0.1.10 dev eth0", ...]}},
     "switches": {"s1": {}, ...},
     "links": [["h1", "s1-p1"], ["s1-p2", "s2-p2"], ...]}

A link end is a host name or ``sN-pM`` (switch sN, port M).  A switch may set
``program`` (its own BMv2 JSON, relative to topology.json), ``cpu_port`` and
``priority_queues``, as in the tutorial; rule files (``runtime_json``,
``cli_input``) are refused: in this exercise the controller writes every rule.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PORT_RE = re.compile(r"^(?P<node>[^-]+)-p(?P<port>\d+)$")
SWITCH_KEYS = ("program", "cpu_port", "priority_queues")


class TopologyError(ValueError):
    """topology.json cannot be used (one line naming the problem)."""


@dataclass
class HostSpec:
    """A host: address with prefix length, MAC, shell commands run once it is up."""

    name: str
    ip: str
    mac: str
    commands: list[str] = field(default_factory=list)


@dataclass
class LinkEnd:
    """One end of a link: a host (port None: its only interface, eth0) or a switch port."""

    node: str
    port: int | None


@dataclass
class Topology:
    """Hosts, switches (name -> options) and links, in file order."""

    hosts: dict[str, HostSpec]
    switches: dict[str, dict]
    links: list[tuple[LinkEnd, LinkEnd]]

    def switch_ports(self, switch: str) -> list[int]:
        """The port numbers a switch uses, sorted."""
        return sorted(end.port for link in self.links for end in link
                      if end.node == switch and end.port is not None)

    def switch_interfaces(self) -> list[str]:
        """Root-namespace interface names Mininet gives the switch ports (sN-ethM)."""
        return [f"{name}-eth{port}" for name in sorted(self.switches, key=natural_key)
                for port in self.switch_ports(name)]

    def switch_links(self) -> list[tuple[str, str]]:
        """Switch-to-switch links as their two root-namespace interface names."""
        return [(f"{a.node}-eth{a.port}", f"{b.node}-eth{b.port}") for a, b in self.links
                if a.port is not None and b.port is not None]


def natural_key(name: str) -> tuple[str, int]:
    """Sort key putting s2 before s10 (Mininet's natural order)."""
    match = re.match(r"^(\D*)(\d*)$", name)
    return (match.group(1), int(match.group(2) or 0)) if match else (name, 0)


def _end(text: Any, hosts: dict[str, HostSpec], switches: dict[str, dict]) -> LinkEnd:
    if isinstance(text, str) and text in hosts:
        return LinkEnd(text, None)
    match = PORT_RE.match(text) if isinstance(text, str) else None
    if not match or match.group("node") not in switches:
        raise TopologyError(f"link end {text!r} is neither a host nor a switch port sN-pM "
                            f"(hosts: {', '.join(hosts)}; switches: {', '.join(switches)})")
    return LinkEnd(match.group("node"), int(match.group("port")))


def _section(data: dict, key: str, kind: type) -> Any:
    value = data.get(key, kind())
    if not isinstance(value, kind):
        raise TopologyError(f"'{key}' must be a JSON {'object' if kind is dict else 'array'}")
    return value


def _host(name: str, spec: Any) -> HostSpec:
    if not isinstance(spec, dict) or "ip" not in spec or "mac" not in spec:
        raise TopologyError(f"host '{name}' needs an 'ip' and a 'mac'")
    commands = spec.get("commands", [])
    if not isinstance(commands, list) or not all(isinstance(c, str) for c in commands):
        raise TopologyError(f"host '{name}': 'commands' must be a list of strings")
    return HostSpec(name, str(spec["ip"]), str(spec["mac"]), list(commands))


def _switch(name: str, spec: Any, base: Path) -> dict:
    if not isinstance(spec, dict):
        raise TopologyError(f"switch '{name}' must be a JSON object, e.g. {{}}")
    for key in ("runtime_json", "cli_input"):
        if key in spec:
            raise TopologyError(f"switch '{name}' has '{key}': rules come from "
                                "./mycontroller.py in this exercise; remove it")
    unknown = [key for key in spec if key not in SWITCH_KEYS]
    if unknown:
        raise TopologyError(f"switch '{name}': unknown key '{unknown[0]}' "
                            f"(known: {', '.join(SWITCH_KEYS)})")
    result = dict(spec)
    if "program" in result:
        result["program"] = str((base / str(result["program"])).resolve())
    for key in ("cpu_port", "priority_queues"):
        if key in result and (not isinstance(result[key], int) or result[key] < 0):
            raise TopologyError(f"switch '{name}': '{key}' must be a non-negative integer")
    return result


def load_topology(path: str | Path) -> Topology:
    """Read and check topology.json; TopologyError (one line) if it cannot be used."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise TopologyError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise TopologyError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise TopologyError(f"{path}: expected a JSON object with hosts, switches, links")
    hosts = {name: _host(name, spec) for name, spec in _section(data, "hosts", dict).items()}
    switches = {name: _switch(name, spec, path.parent)
                for name, spec in _section(data, "switches", dict).items()}
    clash = set(hosts) & set(switches)
    if clash:
        raise TopologyError(f"'{sorted(clash)[0]}' is both a host and a switch")
    links = []
    for link in _section(data, "links", list):
        if not isinstance(link, list) or len(link) < 2:
            raise TopologyError(f"link {link!r} needs two ends, e.g. [\"h1\", \"s1-p1\"]")
        links.append((_end(link[0], hosts, switches), _end(link[1], hosts, switches)))
    _check_links(links)
    linked = {end.node for link in links for end in link}
    for name in [*hosts, *switches]:
        if name not in linked:
            raise TopologyError(f"'{name}' has no link")
    return Topology(hosts, switches, links)


def _check_links(links: list[tuple[LinkEnd, LinkEnd]]) -> None:
    used: set[tuple[str, int | None]] = set()
    for first, second in links:
        if first.port is None and second.port is None:
            raise TopologyError(f"link [{first.node}, {second.node}] joins two hosts: "
                                "hosts connect to switch ports")
        for end in (first, second):
            if (end.node, end.port) in used:
                what = f"port {end.port} of {end.node}" if end.port is not None else \
                    f"host {end.node} (it has a single eth0)"
                raise TopologyError(f"{what} is linked twice")
            used.add((end.node, end.port))
