"""P4Runtime bytestrings: accepted padded or canonical, returned canonical."""

from __future__ import annotations

from .errors import invalid


def to_int(value: bytes, bitwidth: int) -> int:
    """Decode a bytestring; INVALID_ARGUMENT if its value needs more than ``bitwidth`` bits."""
    number = int.from_bytes(value, "big")
    if number >> bitwidth:
        raise invalid(f"Bytestring provided does not fit within {bitwidth} bits")
    return number


def canonical(number: int) -> bytes:
    """The shortest bytestring for ``number`` (zero is one zero byte), as PI returns."""
    return number.to_bytes(max(1, (number.bit_length() + 7) // 8), "big")
