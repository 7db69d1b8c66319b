"""Per-packet state: the PHV plus the registers BMv2 keeps beside it."""

from __future__ import annotations

from typing import Any

from .layout import Layout

# BMv2's PKT_INSTANCE_TYPE_* values (simple_switch.h).
NORMAL, INGRESS_CLONE, EGRESS_CLONE, COALESCED, RECIRC, REPLICATION, RESUBMIT = range(7)


class PacketState:
    """What one packet carries through the pipeline.

    ``f`` and ``v`` are the field and validity slots of ``Layout``; ``data`` is
    the frame as received and ``off`` how many bytes the parser consumed (the
    payload is ``data[off:]``).  The remaining attributes mirror the packet
    registers of simple_switch (clone, resubmit, recirculate, digest requests).
    """

    __slots__ = (
        "f", "v", "nxt", "unxt", "vl_bits", "data", "off", "length", "exit",
        "clone_session", "clone_field_list", "resubmit", "recirculate", "digest",
        "truncate", "log", "now",
    )

    def __init__(self, template: PacketTemplate, data: bytes) -> None:
        self.f: list[int] = template.fields[:]
        self.v: list[int] = template.valid[:]
        self.nxt: list[int] = template.stacks[:]
        self.unxt: list[int] = template.union_stacks[:]
        self.vl_bits: dict[int, int] = {}
        self.data = data
        self.off = 0
        self.length = len(data)
        self.exit = False
        self.clone_session = 0
        self.clone_field_list = 0
        self.resubmit = 0
        self.recirculate = 0
        self.digest = 0
        self.truncate: int | None = None
        self.log: Any = None
        self.now = 0.0  # the caller's time of arrival (seconds), for timestamps and meters

    @property
    def payload(self) -> bytes:
        return self.data[self.off:]

    def copy(self) -> PacketState:
        """A copy with its own PHV (BMv2 ``clone_with_phv``)."""
        other = PacketState.__new__(PacketState)
        other.f = self.f[:]
        other.v = self.v[:]
        other.nxt = self.nxt[:]
        other.unxt = self.unxt[:]
        other.vl_bits = dict(self.vl_bits)
        other.data = self.data
        other.off = self.off
        other.length = self.length
        other.exit = False
        other.clone_session = 0
        other.clone_field_list = 0
        other.resubmit = 0
        other.recirculate = 0
        other.digest = 0
        other.truncate = self.truncate
        other.log = self.log
        other.now = self.now
        return other


class PacketTemplate:
    """Initial slot values for a new packet: fields zero, metadata valid."""

    def __init__(self, layout: Layout) -> None:
        self.fields = [0] * layout.nslots
        self.valid = [1 if h.metadata else 0 for h in layout.headers]
        self.stacks = [0] * len(layout.stacks)
        self.union_stacks = [0] * len(layout.union_stacks)
        self.metadata_slots = [f.slot for h in layout.headers if h.metadata for f in h.fields]

    def new(self, data: bytes) -> PacketState:
        return PacketState(self, data)

    def reset_metadata(self, packet: PacketState) -> None:
        """Zero every metadata field (BMv2 ``PHV::reset_metadata``)."""
        fields = packet.f
        for slot in self.metadata_slots:
            fields[slot] = 0
