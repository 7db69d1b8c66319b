"""topology.json, as the p4lang tutorials write it.

    {"hosts": {"h1": {"ip": "10.0.1.1/24", "mac": "08:00:00:00:01:01",
                      "commands": ["route add default gw 10.0.1.10 dev eth0", ...]}},
     "switches": {"s1": {}, ...},
     "links": [["h1", "s1-p1"], ["s1-p2", "s2-p2"], ...]}

A link end is a host name or ``sN-pM`` (switch sN, port M).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

PORT_RE = re.compile(r"^(?P<node>[^-]+)-p(?P<port>\d+)$")


class TopologyError(ValueError):
    """topology.json cannot be used (one line naming the problem)."""


@dataclass
class HostSpec:
    name: str
    ip: str
    mac: str
    commands: list[str] = field(default_factory=list)


@dataclass
class LinkEnd:
    node: str
    port: int | None  # None for a host (its only interface, eth0)


@dataclass
class Topology:
    hosts: dict[str, HostSpec]
    switches: dict[str, dict]
    links: list[tuple[LinkEnd, LinkEnd]]

    def switch_ports(self, switch: str) -> list[int]:
        return sorted(end.port for link in self.links for end in link
                      if end.node == switch and end.port is not None)


def natural_key(name: str) -> tuple[str, int]:
    match = re.match(r"^(\D*)(\d*)$", name)
    return (match.group(1), int(match.group(2) or 0)) if match else (name, 0)


def _end(text: str, hosts: dict[str, HostSpec], switches: dict[str, dict]) -> LinkEnd:
    if text in hosts:
        return LinkEnd(text, None)
    match = PORT_RE.match(text)
    if not match or match.group("node") not in switches:
        raise TopologyError(f"link end '{text}' is neither a host nor a switch port sN-pM")
    return LinkEnd(match.group("node"), int(match.group("port")))


def load_topology(path: str | Path) -> Topology:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise TopologyError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise TopologyError(f"{path} is not valid JSON: {exc}") from None
    hosts = {}
    for name, spec in data.get("hosts", {}).items():
        if "ip" not in spec or "mac" not in spec:
            raise TopologyError(f"host '{name}' needs an 'ip' and a 'mac'")
        hosts[name] = HostSpec(name, spec["ip"], spec["mac"], list(spec.get("commands", [])))
    switches = dict(data.get("switches", {}))
    for name, spec in switches.items():
        for key in ("runtime_json", "cli_input"):
            if key in spec:
                raise TopologyError(f"switch '{name}' has '{key}': rules come from "
                                    "./mycontroller.py in this exercise; remove it")
    links = []
    for link in data.get("links", []):
        if len(link) < 2:
            raise TopologyError(f"link {link} needs two ends")
        links.append((_end(link[0], hosts, switches), _end(link[1], hosts, switches)))
    used: set[tuple[str, int]] = set()
    for link in links:
        for end in link:
            if end.port is not None:
                if (end.node, end.port) in used:
                    raise TopologyError(f"port {end.port} of {end.node} is used twice")
                used.add((end.node, end.port))
    return Topology(hosts, switches, links)
