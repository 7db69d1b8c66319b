"""P4Runtime bytestrings in the switch: accepted padded or canonical, returned canonical
(``p4protos.bytestrings.int_to_bytes``), refused in PI's words when too wide."""

from __future__ import annotations

from p4protos.bytestrings import bytes_to_int

from .errors import invalid


def to_int(value: bytes, bitwidth: int) -> int:
    """Decode a bytestring; INVALID_ARGUMENT if its value needs more than ``bitwidth`` bits."""
    number = bytes_to_int(value, bitwidth)
    if number is None:
        raise invalid(f"Bytestring provided does not fit within {bitwidth} bits")
    return number
