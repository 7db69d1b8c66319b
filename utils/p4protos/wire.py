"""Protobuf wire-format varints, for the hand encoder (p4runtime_lib.builder) and the
switch's INSERT fast path (p4switch.runtime.table_entries.insert_wire)."""

from __future__ import annotations

ONE_BYTE = tuple(bytes((n,)) for n in range(128))


def varint(number: int) -> bytes:
    """Protobuf's varint of an int (a negative int64 as its 10-byte two's complement)."""
    if number < 0:
        number += 1 << 64
    if number < 128:
        return ONE_BYTE[number]
    out = bytearray()
    while number > 0x7F:
        out.append(number & 0x7F | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """(value, position after it) of the varint at ``data[pos]``; IndexError if cut
    short, ValueError past 10 bytes."""
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ValueError("varint longer than 10 bytes")
