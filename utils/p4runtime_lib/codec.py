"""Values <-> P4Runtime bytestrings: a pure codec, no I/O.

P4Runtime carries every value as a big-endian bytestring.  The *canonical*
form is the shortest one (zero is a single zero byte); servers must also
accept zero-padded strings.  ``encode`` produces canonical strings from ints,
MAC / IPv4 / IPv6 text and bytes, after checking that the value fits the
field's bit width; ``decode`` accepts either form.
"""

from __future__ import annotations

import ipaddress
import re

MAC_RE = re.compile(r"^[0-9a-fA-F]{1,2}([:-][0-9a-fA-F]{1,2}){5}$")

Value = int | str | bytes


class CodecError(ValueError):
    """A value that cannot be encoded (one line: what, and why)."""


class ValueTooWide(CodecError):
    """A value that needs more bits than the field has."""

    def __init__(self, value: object, bitwidth: int, what: str = "") -> None:
        where = f" for {what}" if what else ""
        super().__init__(f"value {value!r} does not fit in {bitwidth} bits{where}")
        self.value = value
        self.bitwidth = bitwidth


def canonical(data: bytes) -> bytes:
    """Strip leading zero bytes (zero stays one byte)."""
    stripped = data.lstrip(b"\x00")
    return stripped or b"\x00"


def int_to_bytes(number: int) -> bytes:
    """The canonical bytestring of a non-negative int."""
    return number.to_bytes(max(1, (number.bit_length() + 7) // 8), "big")


def pad(data: bytes, bitwidth: int) -> bytes:
    """Zero-pad to the field's full byte width (what the tutorial library sends)."""
    nbytes = (bitwidth + 7) // 8
    data = canonical(data)
    if len(data) > nbytes:
        raise ValueTooWide(data, bitwidth)
    return data.rjust(nbytes, b"\x00")


def parse_int(value: Value, bitwidth: int | None = None, what: str = "") -> int:
    """An int from an int, bytes, or text (decimal, 0x-hex, MAC, IPv4, IPv6)."""
    if isinstance(value, bool):
        number = int(value)
    elif isinstance(value, int):
        number = value
    elif isinstance(value, bytes | bytearray):
        number = int.from_bytes(value, "big")
    elif isinstance(value, str):
        number = _parse_text(value.strip(), what)
    else:
        raise CodecError(f"cannot encode {value!r} ({type(value).__name__})"
                         + (f" for {what}" if what else ""))
    if number < 0:
        raise CodecError(f"negative value {value!r}" + (f" for {what}" if what else ""))
    if bitwidth is not None and number >> bitwidth:
        raise ValueTooWide(value, bitwidth, what)
    return number


def _parse_text(text: str, what: str) -> int:
    if MAC_RE.match(text):
        return int("".join(f"{int(part, 16):02x}" for part in re.split(r"[:-]", text)), 16)
    try:
        if text.lower().startswith("0x"):
            return int(text, 16)
        if text.isdigit():
            return int(text)
        return int(ipaddress.ip_address(text))
    except ValueError:
        raise CodecError(f"cannot read {text!r} as a number, MAC or IP address"
                         + (f" for {what}" if what else "")) from None


def encode(value: Value, bitwidth: int, what: str = "") -> bytes:
    """Canonical bytestring of ``value`` for a ``bitwidth``-bit field."""
    return int_to_bytes(parse_int(value, bitwidth, what))


def decode(data: bytes, bitwidth: int | None = None) -> int:
    """The int in a (canonical or padded) bytestring."""
    number = int.from_bytes(data, "big")
    if bitwidth is not None and number >> bitwidth:
        raise ValueTooWide(data, bitwidth)
    return number


def parse_prefix(value: object, bitwidth: int, what: str = "") -> tuple[int, int]:
    """``"10.0.0.0/8"``, ``(value, prefix_len)`` or a bare value (full length)."""
    if isinstance(value, tuple | list) and len(value) == 2:
        number, length = parse_int(value[0], bitwidth, what), int(value[1])
    elif isinstance(value, str) and "/" in value:
        text, _, length_text = value.partition("/")
        number, length = parse_int(text, bitwidth, what), int(length_text)
    else:
        number, length = parse_int(value, bitwidth, what), bitwidth  # type: ignore[arg-type]
    if not 0 <= length <= bitwidth:
        raise CodecError(f"prefix length {length} is not within 0..{bitwidth}"
                         + (f" for {what}" if what else ""))
    host_bits = bitwidth - length
    if number & ((1 << host_bits) - 1):
        raise CodecError(f"{value!r} has bits set after its /{length} prefix"
                         + (f" for {what}" if what else ""))
    return number, length


def format_value(number: int, bitwidth: int, name: str = "") -> str:
    """Human form: MAC for 48 bits, dotted quad for IPv4 addresses, else decimal."""
    lowered = name.lower()
    if bitwidth == 48 and ("mac" in lowered or "addr" in lowered or not lowered):
        raw = number.to_bytes(6, "big")
        return ":".join(f"{b:02x}" for b in raw)
    if bitwidth == 32 and ("ip" in lowered or "addr" in lowered):
        return str(ipaddress.IPv4Address(number))
    if bitwidth == 128 and ("ip" in lowered or "addr" in lowered):
        return str(ipaddress.IPv6Address(number))
    return str(number)
