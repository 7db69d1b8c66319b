"""P4Runtime bytestrings: big-endian; the canonical form is the shortest (zero is one
zero byte); readers accept zero-padded ones too (P4Runtime spec, "Bytestrings")."""

from __future__ import annotations


def int_to_bytes(number: int) -> bytes:
    """The canonical bytestring of a non-negative int."""
    return number.to_bytes(max(1, (number.bit_length() + 7) // 8), "big")


def bytes_to_int(data: bytes, bitwidth: int) -> int | None:
    """The int in a canonical or padded bytestring, or None if it needs more than
    ``bitwidth`` bits (each side raises its own error for that)."""
    number = int.from_bytes(data, "big")
    return None if number >> bitwidth else number
