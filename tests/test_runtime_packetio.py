"""Stream messages over a real StreamChannel: PacketOut / PacketIn through the CPU port
(PI's PacketIOMgr) and digests (its DigestMgr)."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator

import grpc
import pytest
from rawclient import Client, Names, Served, failed_write, own_program, rpc_error, update

from p4runtime_lib.protos import code_pb2, p4runtime_pb2

CPU_PORT = 64
INSERT, MODIFY, DELETE = (p4runtime_pb2.Update.INSERT, p4runtime_pb2.Update.MODIFY,
                          p4runtime_pb2.Update.DELETE)


@pytest.fixture
def served() -> Iterator[Served]:
    running = Served(cpu_port=CPU_PORT)
    yield running
    running.close()


@pytest.fixture
def replicate(served: Served) -> tuple[Client, Names]:
    names, device_config = own_program("replicate")
    return served.primary(names, device_config), names


def tagged(dst: int) -> bytes:
    """ethernet (etherType 0x9999) / tag, as replicate.p4 parses it."""
    return dst.to_bytes(6, "big") + bytes.fromhex("000000000001") + b"\x99\x99" + bytes(5)


def packet_out(payload: bytes, **metadata: bytes) -> p4runtime_pb2.StreamMessageRequest:
    ids = {"egress_port": 1, "_pad": 2}
    request = p4runtime_pb2.StreamMessageRequest()
    request.packet.payload = payload
    for name, value in metadata.items():
        request.packet.metadata.add(metadata_id=ids.get(name, 99), value=value)
    return request


def next_message(client: Client, timeout: float = 5.0) -> p4runtime_pb2.StreamMessageResponse:
    message = client.stream.receive(timeout=timeout)
    assert isinstance(message, p4runtime_pb2.StreamMessageResponse), message
    return message


def wait_for(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    """The switch handles PacketOut on the stream's reader thread: wait for its effect."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_packet_out_metadata_is_bit_packed_in_front_of_the_payload(
        served: Served, replicate: tuple[Client, Names]) -> None:
    client, _names = replicate
    frame = tagged(0x0A)
    client.stream.send(packet_out(frame, egress_port=b"\x00\x02"))  # 9 bits: header 01 00
    wait_for(lambda: served.ports[2].frames)
    assert served.ports[2].frames == [frame]  # the program strips the packet_out header


def test_frames_for_the_cpu_port_reach_the_primary_as_packet_in(
        served: Served, replicate: tuple[Client, Names]) -> None:
    client, names = replicate
    backup = served.client()
    backup.become_primary(low=0)
    entry = p4runtime_pb2.TableEntry(table_id=names["MyIngress.fwd"])
    entry.match.add(field_id=1).exact.value = (0xCC).to_bytes(6, "big")
    entry.action.action.action_id = names["MyIngress.to_cpu"]
    client.write(update(INSERT, table_entry=entry))
    frame = tagged(0xCC)
    served.switch.receive(3, frame)
    packet = next_message(client).packet
    assert packet.payload == frame  # the packet_in header is parsed off
    assert [(m.metadata_id, m.value) for m in packet.metadata] == [(1, b"\x03"), (2, b"\x00")]
    with pytest.raises(queue.Empty):  # backups get no packets
        backup.stream.receive(timeout=0.3)


@pytest.mark.parametrize("request_,code,message", [
    (packet_out(b"x", egress_port=b"\x02\x00"), code_pb2.INVALID_ARGUMENT,
     "Bytestring provided does not fit within 9 bits"),
    (packet_out(b"x", extra=b"\x01"), code_pb2.INVALID_ARGUMENT,
     "Unknown metadata id in PacketOut message"),
])
def test_bad_packet_out_gets_a_stream_error(served: Served, replicate: tuple[Client, Names],
                                            request_: p4runtime_pb2.StreamMessageRequest,
                                            code: int, message: str) -> None:
    client, _names = replicate
    client.stream.send(request_)
    error = next_message(client).error
    assert (error.canonical_code, error.message, error.space) == \
        (code, message, "ALL-sswitch-p4org")
    assert error.packet_out.packet_out == request_.packet
    assert all(not port.frames for port in served.ports.values())


def test_packet_out_from_a_backup_is_dropped(served: Served,
                                             replicate: tuple[Client, Names]) -> None:
    backup = served.client()
    backup.become_primary(low=0)
    backup.stream.send(packet_out(tagged(1), egress_port=b"\x02"))
    error = next_message(backup).error
    assert (error.canonical_code, error.message) == (code_pb2.PERMISSION_DENIED, "Not primary")
    assert not served.ports[2].frames


def test_program_without_controller_headers(served: Served) -> None:
    names, device_config = own_program("tables")
    client = served.primary(names, device_config)
    client.stream.send(packet_out(b"\x01" * 20, egress_port=b"\x02"))
    error = next_message(client).error
    assert (error.canonical_code, error.message) == (
        code_pb2.INVALID_ARGUMENT, "Unexpected metadata in PacketOut message")


def test_switch_without_cpu_port_reports_packet_out() -> None:
    running = Served(cpu_port=None)
    try:
        names, device_config = own_program("replicate")
        client = running.primary(names, device_config)
        client.stream.send(packet_out(tagged(1), egress_port=b"\x02"))
        error = next_message(client).error
        assert error.canonical_code == code_pb2.FAILED_PRECONDITION
        assert "--cpu-port" in error.message
    finally:
        running.close()


# -- digests ------------------------------------------------------------------------------

def learn_entry(names: Names) -> p4runtime_pb2.TableEntry:
    entry = p4runtime_pb2.TableEntry(table_id=names["MyIngress.fwd"])
    entry.match.add(field_id=1).exact.value = (0xDD).to_bytes(6, "big")
    entry.action.action.action_id = names["MyIngress.learn"]
    entry.action.action.params.add(param_id=1, value=b"\x02")
    return entry


def digest_config(names: Names, max_timeout_ns: int = 0, max_list_size: int = 0,
                  ack_timeout_ns: int = 0) -> p4runtime_pb2.DigestEntry:
    entry = p4runtime_pb2.DigestEntry(digest_id=names["learn_t"])
    entry.config.max_timeout_ns = max_timeout_ns
    entry.config.max_list_size = max_list_size
    entry.config.ack_timeout_ns = ack_timeout_ns
    return entry


def learned(message: p4runtime_pb2.StreamMessageResponse) -> list[tuple[bytes, ...]]:
    return [tuple(member.bitstring for member in data.struct.members)
            for data in message.digest.data]


def test_digests_are_sent_once_configured(served: Served,
                                          replicate: tuple[Client, Names]) -> None:
    client, names = replicate
    client.write(update(INSERT, table_entry=learn_entry(names)))
    frame = tagged(0xDD)  # source MAC 00:00:00:00:00:01
    served.switch.receive(3, frame)
    with pytest.raises(queue.Empty):  # not configured: nothing is sent
        client.stream.receive(timeout=0.3)
    client.write(update(INSERT, digest_entry=digest_config(names)))
    served.switch.receive(3, frame)
    served.switch.receive(1, frame)
    first, second = next_message(client), next_message(client)
    assert (first.digest.digest_id, first.digest.list_id, second.digest.list_id) == \
        (names["learn_t"], 1, 2)
    assert learned(first) == [(b"\x01", b"\x03")] and learned(second) == [(b"\x01", b"\x01")]
    # two samples per list
    client.write(update(MODIFY, digest_entry=digest_config(names, max_timeout_ns=10**10,
                                                           max_list_size=2)))
    served.switch.receive(2, frame)
    with pytest.raises(queue.Empty):
        client.stream.receive(timeout=0.3)
    served.switch.receive(3, frame)
    assert learned(next_message(client)) == [(b"\x01", b"\x02"), (b"\x01", b"\x03")]
    # or whatever max_timeout_ns gathered
    client.write(update(MODIFY, digest_entry=digest_config(names, max_timeout_ns=50_000_000,
                                                           max_list_size=100)))
    served.switch.receive(2, frame)
    assert learned(next_message(client)) == [(b"\x01", b"\x02")]
    (read,) = client.read(p4runtime_pb2.Entity(digest_entry=p4runtime_pb2.DigestEntry(
        digest_id=names["learn_t"])))
    assert read.digest_entry == digest_config(names, max_timeout_ns=50_000_000,
                                              max_list_size=100)


def test_a_digest_sample_waits_for_its_ack(served: Served,
                                           replicate: tuple[Client, Names]) -> None:
    client, names = replicate
    client.write(update(INSERT, table_entry=learn_entry(names)),
                 update(INSERT, digest_entry=digest_config(names, ack_timeout_ns=10**10)))
    frame = tagged(0xDD)
    served.switch.receive(3, frame)
    first = next_message(client)
    served.switch.receive(3, frame)  # the same sample, not acknowledged yet: suppressed
    with pytest.raises(queue.Empty):
        client.stream.receive(timeout=0.3)
    ack = p4runtime_pb2.StreamMessageRequest()
    ack.digest_ack.digest_id, ack.digest_ack.list_id = names["learn_t"], first.digest.list_id
    client.stream.send(ack)
    wait_for(lambda: not served.server.servicer.config.digests  # type: ignore[attr-defined]
             .digests[names["learn_t"]].sent)
    served.switch.receive(3, frame)
    assert learned(next_message(client)) == [(b"\x01", b"\x03")]
    ack.digest_ack.digest_id = 12345
    client.stream.send(ack)
    error = next_message(client).error
    assert (error.canonical_code, error.message) == (code_pb2.INVALID_ARGUMENT,
                                                     "12345 is not a valid digest id")
    assert error.digest_list_ack.digest_list_ack == ack.digest_ack


def test_digest_entry_errors(replicate: tuple[Client, Names]) -> None:
    client, names = replicate
    unknown = p4runtime_pb2.DigestEntry(digest_id=7)
    errors = failed_write(client, update(MODIFY, digest_entry=digest_config(names)),
                          update(INSERT, digest_entry=digest_config(names)),
                          update(INSERT, digest_entry=digest_config(names)),
                          update(INSERT, digest_entry=unknown),
                          update(DELETE, digest_entry=digest_config(names)),
                          update(DELETE, digest_entry=digest_config(names)))
    digest_id = names["learn_t"]
    assert errors == [(code_pb2.NOT_FOUND, f"Digest {digest_id} not configured"),
                      (code_pb2.OK, ""),
                      (code_pb2.ALREADY_EXISTS, f"Digest {digest_id} already configured"),
                      (code_pb2.NOT_FOUND, "7 is not a valid digest id"),
                      (code_pb2.OK, ""),
                      (code_pb2.NOT_FOUND, f"Digest {digest_id} not configured")]
    error = rpc_error(client.read, p4runtime_pb2.Entity(digest_entry=p4runtime_pb2.DigestEntry()))
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED
