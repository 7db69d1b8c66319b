"""PacketOut / PacketIn through the CPU port, as PI's PacketIOMgr does it.

The P4Info's ``packet_out`` controller header is serialised in front of the
payload (its fields bit-packed in P4Info order, padded to whole bytes) and the
frame enters the switch on the CPU port.  A frame the program sends to the CPU
port loses its ``packet_in`` header, whose fields become PacketIn metadata.
"""

from __future__ import annotations

from p4protos import p4runtime_pb2
from p4protos.bytestrings import int_to_bytes

from .bytestrings import to_int
from .config import PacketMetadata
from .errors import invalid


def packet_out_frame(header: PacketMetadata | None, message: p4runtime_pb2.PacketOut) -> bytes:
    """The frame a PacketOut injects on the CPU port."""
    if header is None:
        if message.metadata:
            raise invalid("Unexpected metadata in PacketOut message")
        return message.payload
    values = {}
    widths = {meta_id: width for meta_id, _name, width in header.fields}
    for metadata in message.metadata:
        width = widths.get(metadata.metadata_id)
        if width is None:
            raise invalid("Unknown metadata id in PacketOut message")
        values[metadata.metadata_id] = to_int(metadata.value, width)
    packed = 0
    nbits = 0
    for meta_id, _name, width in header.fields:
        packed = (packed << width) | values.get(meta_id, 0)
        nbits += width
    pad = -nbits % 8
    return (packed << pad).to_bytes((nbits + pad) // 8, "big") + message.payload


def packet_in_message(header: PacketMetadata | None,
                      frame: bytes) -> p4runtime_pb2.StreamMessageResponse | None:
    """The PacketIn for a frame sent to the CPU port (None if too short for the header)."""
    response = p4runtime_pb2.StreamMessageResponse()
    packet = response.packet
    if header is None:
        packet.payload = frame
        return response
    nbytes = header.nbytes
    if len(frame) < nbytes:
        return None
    packet.payload = frame[nbytes:]
    packed = int.from_bytes(frame[:nbytes], "big")
    remaining = nbytes * 8
    for meta_id, _name, width in header.fields:
        remaining -= width
        value = (packed >> remaining) & ((1 << width) - 1)
        packet.metadata.add(metadata_id=meta_id, value=int_to_bytes(value))
    return response
