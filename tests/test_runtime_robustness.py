"""Malformed requests and bad addresses: one clean error each, and the server goes on."""

from __future__ import annotations

import socket

import grpc
import pytest
from rawclient import Served, failed_write, own_program, update

from p4runtime_lib.protos import code_pb2, p4runtime_pb2
from p4switch.runtime import BadAddress, ServeError, serve
from p4switch.switch import Switch

METHODS = ["Write", "Read", "SetForwardingPipelineConfig", "GetForwardingPipelineConfig",
           "Capabilities"]


def still_serving(served: Served) -> None:
    reply = served.client().stub.Capabilities(p4runtime_pb2.CapabilitiesRequest(), timeout=5)
    assert reply.p4runtime_api_version == "1.3.0"


@pytest.mark.parametrize("method", METHODS)
def test_garbage_bytes_get_an_error_not_a_crash(served: Served, method: str) -> None:
    channel = grpc.insecure_channel(served.address)
    try:
        path = f"/p4.v1.P4Runtime/{method}"
        if method == "Read":
            call = channel.unary_stream(path)
            with pytest.raises(grpc.RpcError) as info:
                list(call(b"\xff\xff\xff\xff", timeout=5))
        else:
            call = channel.unary_unary(path)
            with pytest.raises(grpc.RpcError) as info:
                call(b"\xff\xff\xff\xff", timeout=5)
        assert info.value.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT)
    finally:
        channel.close()
    still_serving(served)


def test_garbage_on_the_stream_ends_only_that_stream(served: Served) -> None:
    channel = grpc.insecure_channel(served.address)
    try:
        call = channel.stream_stream("/p4.v1.P4Runtime/StreamChannel")
        with pytest.raises(grpc.RpcError):
            list(call(iter([b"\xff\xff\xff\xff"]), timeout=5))
    finally:
        channel.close()
    still_serving(served)


def test_odd_but_well_formed_updates_are_per_update_errors(served: Served) -> None:
    names, device_config = own_program("tables")
    client = served.primary(names, device_config)
    huge_ids = p4runtime_pb2.TableEntry(table_id=names["MyIngress.acl"], priority=-5)
    huge_ids.match.add(field_id=2**32 - 1).ternary.value = b"\x01"
    no_match_kind = p4runtime_pb2.TableEntry(table_id=names["MyIngress.route"])
    no_match_kind.match.add(field_id=1)
    no_match_kind.action.action.action_id = names["MyIngress.no_route"]
    extern = p4runtime_pb2.Update(type=p4runtime_pb2.Update.INSERT)
    extern.entity.extern_entry.extern_type_id = 1
    errors = failed_write(client, update(p4runtime_pb2.Update.INSERT, table_entry=huge_ids),
                          update(p4runtime_pb2.Update.INSERT, table_entry=no_match_kind),
                          update(7, table_entry=no_match_kind),
                          extern)
    assert [code for code, _ in errors] == [code_pb2.INVALID_ARGUMENT] * 3 + \
        [code_pb2.UNIMPLEMENTED]
    assert errors[2][1] == "Invalid update type"
    still_serving(served)


def test_busy_or_bad_address_is_one_clear_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ServeError) as info:
            serve(Switch(), f"127.0.0.1:{port}")
        assert str(info.value).startswith(f"cannot listen on 127.0.0.1:{port}")
        assert not isinstance(info.value, BadAddress)
        assert "\n" not in str(info.value)
    with pytest.raises(ServeError, match="bad address 'nowhere': expected HOST:PORT") as bad:
        serve(Switch(), "nowhere")
    assert isinstance(bad.value, BadAddress)


def test_ephemeral_port_is_reported() -> None:
    server = serve(Switch(), "127.0.0.1:0")
    try:
        assert server.bound_port > 0  # type: ignore[attr-defined]
        with socket.create_connection(("127.0.0.1", server.bound_port),  # type: ignore[attr-defined]
                                      timeout=5):
            pass
    finally:
        server.stop(0)
