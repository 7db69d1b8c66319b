"""The value codec: canonical bytestrings, widths, MAC/IP text, match-kind forms."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p4runtime_lib.codec import (
    canonical,
    decode,
    decode_text,
    encode,
    encode_lpm,
    encode_range,
    encode_ternary,
    format_value,
    guess_hint,
    parse_int,
    parse_prefix,
)
from p4runtime_lib.errors import CodecError, ControllerError, ValueTooWide


@pytest.mark.parametrize("value, width, expected", [
    (0, 9, b"\x00"),
    (2, 9, b"\x02"),
    (511, 9, b"\x01\xff"),
    (True, 1, b"\x01"),
    ("08:00:00:00:01:01", 48, b"\x08\x00\x00\x00\x01\x01"),
    ("00:00:00:00:01:02", 48, b"\x01\x02"),
    ("00-00-00-00-01-02", 48, b"\x01\x02"),
    ("00:00:00:00:00:00", 48, b"\x00"),
    ("10.0.0.1", 32, b"\x0a\x00\x00\x01"),
    ("0.0.0.7", 32, b"\x07"),
    (ipaddress.IPv4Address("10.0.2.2"), 32, b"\x0a\x00\x02\x02"),
    ("::1", 128, b"\x01"),
    ("2001:db8::1", 128, bytes.fromhex("20010db8000000000000000000000001")),
    ("0x1f", 8, b"\x1f"),
    ("42", 16, b"\x2a"),
    (b"\x00\x00\x05", 16, b"\x05"),
    (b"\x00", 8, b"\x00"),
])
def test_encode_is_canonical(value, width, expected) -> None:
    assert encode(value, width) == expected


@pytest.mark.parametrize("value, width, expected", [
    (0, 16, b"\x00\x00"),
    (2, 32, b"\x00\x00\x00\x02"),
    (1, 14, b"\x00\x01"),
    (2, 9, b"\x00\x02"),
    ("00:00:00:00:01:02", 48, b"\x00\x00\x00\x00\x01\x02"),
])
def test_padded_form_is_the_tutorial_encoding(value, width, expected) -> None:
    """tutorial_spec §5.2: convert.py sends ceil(bitwidth/8) bytes; we read them and
    send the canonical form of the same value."""
    assert full_width(parse_int(value, width), width) == expected
    assert decode(expected, width) == parse_int(value, width)
    assert encode(value, width) == canonical(expected)


def full_width(number: int, width: int) -> bytes:
    """The tutorial's padded bytestring (ceil(width/8) bytes), built without the codec."""
    return number.to_bytes((width + 7) // 8, "big")


@given(st.integers(min_value=1, max_value=128).flatmap(
    lambda width: st.tuples(st.just(width), st.integers(0, (1 << width) - 1))))
def test_round_trip_any_width(width_value: tuple[int, int]) -> None:
    width, value = width_value
    data = encode(value, width)
    assert data == canonical(data) and (len(data) == 1 or data[0] != 0)
    assert decode(data, width) == value
    assert decode(full_width(value, width), width) == value
    assert len(data) <= len(full_width(value, width)) == (width + 7) // 8
    for hint in ("int", "hex", None):
        assert encode(format_value(value, width, hint), width) == data


@pytest.mark.parametrize("text, width, hint", [
    ("08:00:00:00:01:01", 48, "mac"),
    ("00:00:00:00:01:02", 48, "mac"),
    ("10.0.0.1", 32, "ipv4"),
    ("0.0.0.0", 32, "ipv4"),
    ("2001:db8::1", 128, "ipv6"),
    ("::", 128, "ipv6"),
    ("511", 9, "int"),
    ("0x1ff", 9, "hex"),
])
def test_text_round_trip(text: str, width: int, hint: str) -> None:
    data = encode(text, width)
    assert decode_text(data, width, hint) == text
    assert decode_text(full_width(decode(data), width), width, hint) == text


def test_decode_formats_by_hint_or_bitwidth() -> None:
    assert format_value(0x080000000101, 48) == "08:00:00:00:01:01"  # 48 bits: a MAC
    assert format_value(0x0A000001, 32) == "167772161"  # IPv4 only when asked
    assert format_value(0x0A000001, 32, "ipv4") == "10.0.0.1"
    assert format_value(1, 128, "ipv6") == "::1"
    assert format_value(0x0A000001, 32, "mac") == "00:00:0a:00:00:01"
    assert format_value(255, 8, "hex") == "0xff"
    with pytest.raises(CodecError, match="unknown display hint 'ip'"):
        format_value(1, 32, "ip")


@pytest.mark.parametrize("name, width, hint", [
    ("hdr.ipv4.dstAddr", 32, "ipv4"),
    ("nhop_ipv4", 32, "ipv4"),
    ("ecmp_count", 32, None),
    ("nhop_dmac", 48, "mac"),
    ("hdr.ethernet.srcAddr", 48, "mac"),
    ("hdr.ipv6.dstAddr", 128, "ipv6"),
    ("port", 9, None),
    ("meta.ecmp_select", 14, None),
])
def test_hints_from_field_names(name: str, width: int, hint: str | None) -> None:
    assert guess_hint(name, width) == hint


@pytest.mark.parametrize("value, width", [(512, 9), ("10.0.0.1", 16), (2**14, 14),
                                          ("08:00:00:00:01:01", 32), (b"\x01\x00", 8)])
def test_too_wide(value, width) -> None:
    with pytest.raises(ValueTooWide) as failure:
        encode(value, width)
    assert failure.value.bitwidth == width and failure.value.value == value


def test_too_wide_names_value_width_and_field() -> None:
    with pytest.raises(ValueTooWide) as failure:
        encode(600, 9, "port")
    assert str(failure.value) == ("value 600 does not fit in 9 bits for port; "
                                  "the largest 9-bit value is 511")
    assert isinstance(failure.value, ControllerError) and isinstance(failure.value, ValueError)
    with pytest.raises(ValueTooWide, match="does not fit in 9 bits"):
        decode(b"\x02\x00", 9)
    with pytest.raises(ValueTooWide):
        decode(b"\x01\x00\x00", 16)


@pytest.mark.parametrize("value, message", [
    (-1, "negative value -1"),
    ("ten", "cannot read 'ten' as a number, MAC or IP address"),
    ("10.0.0.256", "cannot read '10.0.0.256'"),
    (1.5, r"cannot encode 1\.5 \(float\)"),
    (None, r"cannot encode None \(NoneType\)"),
])
def test_unreadable_values(value, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        encode(value, 32)


def test_canonical_and_padded_input() -> None:
    assert canonical(b"\x00\x00") == b"\x00"
    assert canonical(b"\x00\x01\x00") == b"\x01\x00"
    assert decode(b"\x00\x02", 9) == decode(b"\x02", 9) == 2
    assert decode(b"\x00\x00\x00\x02", 9) == 2  # over-padded input is fine


def test_prefixes() -> None:
    assert parse_prefix("10.0.0.0/8", 32) == (0x0A000000, 8)
    assert parse_prefix(("10.0.0.1", 32), 32) == (0x0A000001, 32)
    assert parse_prefix("10.0.0.1", 32) == (0x0A000001, 32)
    assert parse_prefix(ipaddress.ip_network("10.1.0.0/16"), 32) == (0x0A010000, 16)
    assert parse_prefix("2001:db8::/32", 128) == (0x20010DB8 << 96, 32)
    assert encode_lpm("10.0.0.1/32", 32) == (b"\x0a\x00\x00\x01", 32)
    assert encode_lpm("0.0.0.0/0", 32) == (b"\x00", 0)


def test_prefix_errors() -> None:
    with pytest.raises(CodecError) as failure:
        parse_prefix("10.0.0.1/8", 32)
    assert str(failure.value) == ("'10.0.0.1/8' has bits set after its /8 prefix; "
                                  "did you mean 10.0.0.0/8?")
    with pytest.raises(CodecError, match="not within 0..32"):
        parse_prefix("10.0.0.0/33", 32)
    with pytest.raises(CodecError, match="prefix length 'x' is not a number"):
        parse_prefix("10.0.0.0/x", 32)
    with pytest.raises(ValueTooWide):
        parse_prefix("10.0.0.0/8", 16)


def test_ternary_forms() -> None:
    full = (b"\x0a\x00\x00\x00", b"\xff\x00\x00\x00")
    assert encode_ternary("10.0.0.0 &&& 255.0.0.0", 32) == full
    assert encode_ternary(("10.0.0.0", 0xFF000000), 32) == full
    assert encode_ternary("10.0.0.0/8", 32) == full
    assert encode_ternary(7, 8) == (b"\x07", b"\xff")
    assert encode_ternary("0 &&& 0", 8) == (b"\x00", b"\x00")
    with pytest.raises(CodecError, match="has bits outside its mask"):
        encode_ternary("10.0.0.1 &&& 255.0.0.0", 32)
    with pytest.raises(ValueTooWide):
        encode_ternary((1, 0x1FF), 8)


def test_range_forms() -> None:
    assert encode_range("1000..2000", 16) == (b"\x03\xe8", b"\x07\xd0")
    assert encode_range((0, 65535), 16) == (b"\x00", b"\xff\xff")
    with pytest.raises(CodecError, match="low > high"):
        encode_range((5, 4), 16)
    with pytest.raises(CodecError, match="is not \\(low, high\\)"):
        encode_range(5, 16)
    with pytest.raises(ValueTooWide):
        encode_range((0, 70000), 16)


@pytest.mark.parametrize("text", ["10.0.0.1", "0.0.0.0", "255.255.255.255", "1.2.3.4",
                                  "010.0.0.1", "1.2.3", "1.2.3.4.5", "256.0.0.1", "1..2.3",
                                  "1.2.3.04", " 1.2.3.4", "1.2.3.4 ", "0x1.2.3.4", "1.2.3.-4",
                                  "１.2.3.4", "1.2.3.4/8", "00.0.0.0", "0.0.0.00"])
def test_ipv4_text_reads_as_ipaddress_reads_it(text: str) -> None:
    """The codec's IPv4 text (socket.inet_pton first) gives ipaddress's answer, or an
    error where ipaddress has one."""
    try:
        expected: int | None = int(ipaddress.IPv4Address(text.strip()))
    except ValueError:
        expected = None
    try:
        got: int | None = parse_int(text, 32)
    except CodecError:
        got = None
    if expected is None and got is not None:  # some other form the codec reads (never IPv4)
        assert "." not in text.strip() or text.strip().isdigit(), (text, got)
    else:
        assert got == expected, text
