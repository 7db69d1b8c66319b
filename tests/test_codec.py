"""The value codec: canonical bytestrings, widths, MAC/IP text, prefixes."""

from __future__ import annotations

import pytest

from p4runtime_lib.codec import (
    CodecError,
    ValueTooWide,
    canonical,
    decode,
    encode,
    format_value,
    pad,
    parse_prefix,
)


@pytest.mark.parametrize("value, width, expected", [
    (0, 9, b"\x00"),
    (2, 9, b"\x02"),
    (511, 9, b"\x01\xff"),
    ("08:00:00:00:01:01", 48, b"\x08\x00\x00\x00\x01\x01"),
    ("00:00:00:00:01:02", 48, b"\x01\x02"),
    ("10.0.0.1", 32, b"\x0a\x00\x00\x01"),
    ("0.0.0.7", 32, b"\x07"),
    ("::1", 128, b"\x01"),
    ("0x1f", 8, b"\x1f"),
    ("42", 16, b"\x2a"),
    (b"\x00\x00\x05", 16, b"\x05"),
])
def test_encode_is_canonical(value, width, expected) -> None:
    assert encode(value, width) == expected


@pytest.mark.parametrize("value", [0, 1, 255, 256, 2**47, 2**48 - 1])
def test_round_trip(value: int) -> None:
    assert decode(encode(value, 48)) == value
    assert decode(pad(encode(value, 48), 48)) == value
    assert len(pad(encode(value, 48), 48)) == 6


@pytest.mark.parametrize("value, width", [(512, 9), (-1, 8), ("10.0.0.1", 16), (2**14, 14)])
def test_too_wide_or_negative(value, width) -> None:
    with pytest.raises(CodecError):
        encode(value, width)


def test_too_wide_names_the_field() -> None:
    with pytest.raises(ValueTooWide, match="does not fit in 9 bits for port"):
        encode(600, 9, "port")


def test_unreadable_text() -> None:
    with pytest.raises(CodecError, match="cannot read 'ten'"):
        encode("ten", 32)


def test_canonical_and_pad() -> None:
    assert canonical(b"\x00\x00") == b"\x00"
    assert canonical(b"\x00\x01\x00") == b"\x01\x00"
    assert pad(b"\x02", 9) == b"\x00\x02"
    with pytest.raises(ValueTooWide):
        pad(b"\x01\x00\x00", 16)


def test_prefixes() -> None:
    assert parse_prefix("10.0.0.0/8", 32) == (0x0A000000, 8)
    assert parse_prefix(("10.0.0.1", 32), 32) == (0x0A000001, 32)
    assert parse_prefix("10.0.0.1", 32) == (0x0A000001, 32)
    with pytest.raises(CodecError, match="bits set after its /8 prefix"):
        parse_prefix("10.0.0.1/8", 32)
    with pytest.raises(CodecError, match="not within 0..32"):
        parse_prefix("10.0.0.0/33", 32)


def test_formatting_follows_the_kind_of_value() -> None:
    assert format_value(0x080000000101, 48, "nhop_dmac") == "08:00:00:00:01:01"
    assert format_value(0x0A000001, 32, "hdr.ipv4.dstAddr") == "10.0.0.1"
    assert format_value(2, 32, "ecmp_count") == "2"
    assert format_value(3, 9, "port") == "3"
