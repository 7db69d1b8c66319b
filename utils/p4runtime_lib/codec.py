"""Values <-> P4Runtime bytestrings: a pure codec, no I/O.

P4Runtime carries every value as a big-endian bytestring.  The *canonical*
form is the shortest one (zero is a single zero byte); servers also accept
zero-padded strings and BMv2's server returns canonical ones on Read.

* ``encode`` turns an int, MAC text (``"08:00:00:00:01:01"``), IPv4 / IPv6
  text or object, decimal / ``0x`` text, or bytes into the canonical
  bytestring, after checking that it fits the field's bit width.
* ``decode`` reads canonical or padded bytestrings back into ints;
  ``format_value`` shows an int as a MAC, IPv4, IPv6 or decimal text that
  ``encode`` reads back (round trip).
* ``encode_lpm`` / ``encode_ternary`` / ``encode_range`` handle the
  ``"10.0.0.0/8"``, ``"value &&& mask"`` and ``"low..high"`` forms.
"""

from __future__ import annotations

import ipaddress
import re
import socket

from p4protos.bytestrings import bytes_to_int, int_to_bytes

from .errors import CodecError, ValueTooWide

MAC_RE = re.compile(r"^[0-9a-fA-F]{1,2}([:-][0-9a-fA-F]{1,2}){5}$")
HINTS = ("int", "hex", "mac", "ipv4", "ipv6")

Value = int | str | bytes | ipaddress.IPv4Address | ipaddress.IPv6Address

__all__ = [
    "CodecError", "ValueTooWide", "canonical", "decode", "decode_text", "encode",
    "encode_lpm", "encode_range", "encode_ternary", "format_value",
    "guess_hint", "int_to_bytes", "parse_int", "parse_prefix",
]


def _for(what: str) -> str:
    return f" for {what}" if what else ""


def canonical(data: bytes) -> bytes:
    """Strip leading zero bytes; zero stays one byte."""
    return bytes(data).lstrip(b"\x00") or b"\x00"


def parse_int(value: Value, bitwidth: int | None = None, what: str = "") -> int:
    """An int from an int, bytes, IP object or text (decimal, 0x-hex, MAC, IPv4, IPv6)."""
    if type(value) is int:
        number = value
    elif type(value) is str:
        number = _parse_text(value.strip(), what)
    elif isinstance(value, bool | int):
        number = int(value)
    elif isinstance(value, bytes | bytearray):
        number = int.from_bytes(value, "big")
    elif isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        number = int(value)
    elif isinstance(value, str):
        number = _parse_text(value.strip(), what)
    else:
        raise CodecError(f"cannot encode {value!r} ({type(value).__name__}){_for(what)}",
                         "use an int, bytes, or MAC / IP / decimal / 0x-hex text")
    if number < 0:
        raise CodecError(f"negative value {value!r}{_for(what)}",
                         "P4Runtime values are unsigned")
    if bitwidth is not None and number >> bitwidth:
        raise ValueTooWide(value, bitwidth, what)
    return number


def _parse_text(text: str, what: str) -> int:
    if "." in text:  # IPv4 (strict dotted decimal, as ipaddress reads it), fast
        try:
            return int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
        except (OSError, ValueError):
            pass  # not IPv4: the checks below answer (e.g. with the error)
    if MAC_RE.match(text):
        return int("".join(f"{int(part, 16):02x}" for part in re.split(r"[:-]", text)), 16)
    try:
        if text.lower().startswith("0x"):
            return int(text, 16)
        if text.isdigit():
            return int(text)
        return int(ipaddress.ip_address(text))
    except ValueError:
        raise CodecError(f"cannot read {text!r} as a number, MAC or IP address{_for(what)}",
                         "examples: 42, 0x2a, 08:00:00:00:01:01, 10.0.0.1, 2001:db8::1"
                         ) from None


def encode(value: Value, bitwidth: int, what: str = "") -> bytes:
    """Canonical bytestring of ``value`` for a ``bitwidth``-bit field (ValueTooWide)."""
    return int_to_bytes(parse_int(value, bitwidth, what))


def decode(data: bytes, bitwidth: int | None = None) -> int:
    """The int in a canonical or padded bytestring (ValueTooWide if it does not fit)."""
    if bitwidth is None:
        return int.from_bytes(data, "big")
    number = bytes_to_int(data, bitwidth)
    if number is None:
        raise ValueTooWide(bytes(data), bitwidth)
    return number


# -- match kinds -------------------------------------------------------------------

def parse_prefix(value: object, bitwidth: int, what: str = "") -> tuple[int, int]:
    """(value, prefix length) of ``"10.0.0.0/8"``, ``(value, length)``, an IP network,
    or a bare value (full length).  Bits set after the prefix are an error."""
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        number, length = int(value.network_address), value.prefixlen
        parse_int(number, bitwidth, what)
    elif isinstance(value, tuple | list) and len(value) == 2:
        number, length = parse_int(value[0], bitwidth, what), _length(value[1], what)
    elif isinstance(value, str) and "/" in value:
        text, _, length_text = value.partition("/")
        number, length = parse_int(text, bitwidth, what), _length(length_text, what)
    else:
        number, length = parse_int(value, bitwidth, what), bitwidth  # type: ignore[arg-type]
    if not 0 <= length <= bitwidth:
        raise CodecError(f"prefix length {length} is not within 0..{bitwidth}{_for(what)}")
    if number & ((1 << (bitwidth - length)) - 1):
        network = format_value(number & ~((1 << (bitwidth - length)) - 1), bitwidth,
                               _text_hint(value))
        raise CodecError(f"{value!r} has bits set after its /{length} prefix{_for(what)}",
                         f"did you mean {network}/{length}?")
    return number, length


def _length(value: object, what: str) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise CodecError(f"prefix length {value!r} is not a number{_for(what)}") from None


def _text_hint(value: object) -> str | None:
    text = value[0] if isinstance(value, tuple | list) else value
    if isinstance(text, str):
        text = text.partition("/")[0]
        if MAC_RE.match(text.strip()):
            return "mac"
        if "." in text:
            return "ipv4"
        if ":" in text:
            return "ipv6"
    return None


def encode_lpm(value: object, bitwidth: int, what: str = "") -> tuple[bytes, int]:
    """(canonical value, prefix length) for an LPM field."""
    number, length = parse_prefix(value, bitwidth, what)
    return int_to_bytes(number), length


def encode_ternary(value: object, bitwidth: int, what: str = "") -> tuple[bytes, bytes]:
    """(value, mask) from ``"v &&& m"``, ``(v, m)``, ``"10.0.0.0/8"`` or a bare value."""
    if isinstance(value, str) and "&&&" in value:
        value = tuple(part.strip() for part in value.split("&&&", 1))
    if isinstance(value, tuple | list) and len(value) == 2:
        number, mask = parse_int(value[0], bitwidth, what), parse_int(value[1], bitwidth, what)
    elif isinstance(value, str) and "/" in value:
        number, length = parse_prefix(value, bitwidth, what)
        mask = ((1 << length) - 1) << (bitwidth - length)
    else:
        number, mask = parse_int(value, bitwidth, what), (1 << bitwidth) - 1  # type: ignore[arg-type]
    if number & ~mask:
        raise CodecError(f"ternary value {value!r} has bits outside its mask{_for(what)}",
                         "clear the value's bits where the mask is 0")
    return int_to_bytes(number), int_to_bytes(mask)


def encode_range(value: object, bitwidth: int, what: str = "") -> tuple[bytes, bytes]:
    """(low, high) from ``(low, high)`` or ``"low..high"``; low <= high."""
    if isinstance(value, str) and ".." in value:
        value = tuple(part.strip() for part in value.split("..", 1))
    if not (isinstance(value, tuple | list) and len(value) == 2):
        raise CodecError(f"range {value!r} is not (low, high) or 'low..high'{_for(what)}")
    low, high = parse_int(value[0], bitwidth, what), parse_int(value[1], bitwidth, what)
    if low > high:
        raise CodecError(f"range {value!r} has low > high{_for(what)}")
    return int_to_bytes(low), int_to_bytes(high)


# -- formatting --------------------------------------------------------------------

def guess_hint(name: str, bitwidth: int) -> str | None:
    """The display a field's name and width suggest: 48 bits -> MAC; a 32-bit
    (128-bit) field whose name mentions an address or IP -> IPv4 (IPv6)."""
    lowered = name.lower()
    looks_like_address = any(word in lowered for word in ("addr", "ip", "mac"))
    if bitwidth == 48 and (looks_like_address or "dmac" in lowered or "smac" in lowered):
        return "mac"
    if bitwidth == 32 and looks_like_address:
        return "ipv4"
    if bitwidth == 128 and looks_like_address:
        return "ipv6"
    return None


def format_value(number: int, bitwidth: int, hint: str | None = None) -> str:
    """Text for ``number``: by ``hint`` (int/hex/mac/ipv4/ipv6), else MAC for a
    48-bit field and decimal otherwise.  ``encode`` reads the text back."""
    if hint is not None and hint not in HINTS:
        raise CodecError(f"unknown display hint {hint!r}", f"use one of {', '.join(HINTS)}")
    if hint is None:
        hint = "mac" if bitwidth == 48 else "int"
    if hint == "mac" and number < 1 << 48:
        return ":".join(f"{b:02x}" for b in number.to_bytes(6, "big"))
    if hint == "ipv4" and number < 1 << 32:
        return str(ipaddress.IPv4Address(number))
    if hint == "ipv6" and number < 1 << 128:
        return str(ipaddress.IPv6Address(number))
    if hint == "hex":
        return hex(number)
    return str(number)


def decode_text(data: bytes, bitwidth: int, hint: str | None = None) -> str:
    """``format_value(decode(data, bitwidth), bitwidth, hint)``."""
    return format_value(decode(data, bitwidth), bitwidth, hint)
