"""One bytestring <-> int helper for both sides: the controller's codec and the switch."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p4protos.bytestrings import bytes_to_int, int_to_bytes
from p4runtime_lib.codec import decode, encode
from p4runtime_lib.errors import ValueTooWide
from p4runtime_lib.protos import code_pb2
from p4switch.runtime.bytestrings import to_int
from p4switch.runtime.errors import ERROR_SPACE, P4RuntimeError, stream_error


@pytest.mark.parametrize("number, expected", [
    (0, b"\x00"), (1, b"\x01"), (255, b"\xff"), (256, b"\x01\x00"), (511, b"\x01\xff"),
])
def test_int_to_bytes_is_canonical(number: int, expected: bytes) -> None:
    assert int_to_bytes(number) == expected


@given(st.integers(min_value=1, max_value=128), st.data())
def test_both_sides_read_canonical_and_padded_alike(width: int, data: st.DataObject) -> None:
    number = data.draw(st.integers(min_value=0, max_value=(1 << width) - 1))
    padded = number.to_bytes((width + 7) // 8 + data.draw(st.integers(0, 2)), "big")
    assert encode(number, width) == int_to_bytes(number)
    for raw in (int_to_bytes(number), padded):
        assert bytes_to_int(raw, width) == decode(raw, width) == to_int(raw, width) == number


def test_too_wide_is_none_here_and_each_sides_own_error_there() -> None:
    assert bytes_to_int(b"\x02\x00", 9) is None
    assert bytes_to_int(b"\x00\x01\xff", 9) == 511
    with pytest.raises(ValueTooWide):
        decode(b"\x02\x00", 9)
    with pytest.raises(P4RuntimeError) as failure:
        to_int(b"\x02\x00", 9)
    assert (failure.value.code, failure.value.message) == \
        (code_pb2.INVALID_ARGUMENT, "Bytestring provided does not fit within 9 bits")


def test_stream_error_is_in_pis_space_and_names_no_message_yet() -> None:
    response = stream_error(code_pb2.PERMISSION_DENIED, "Not primary")
    error = response.error
    assert (error.canonical_code, error.message, error.space) == \
        (code_pb2.PERMISSION_DENIED, "Not primary", ERROR_SPACE)
    assert error.WhichOneof("details") is None
