"""Primary/backup arbitration and who may write, over real gRPC (PI's behaviour)."""

from __future__ import annotations

import queue

import grpc
import pytest
from rawclient import Client, Names, Served, Stream, own_program, rpc_error, update

from p4runtime_lib.protos import code_pb2, p4runtime_pb2

INSERT = p4runtime_pb2.Update.INSERT


@pytest.fixture
def program() -> tuple[Names, bytes]:
    return own_program("replicate")


def status(reply: object) -> tuple[int, str, int]:
    """(status code, status message, election id low) of an arbitration answer."""
    assert isinstance(reply, p4runtime_pb2.StreamMessageResponse), reply
    update_ = reply.arbitration
    return update_.status.code, update_.status.message, update_.election_id.low


def fwd_entry(names: Names, dst: int, port: int) -> p4runtime_pb2.TableEntry:
    entry = p4runtime_pb2.TableEntry(table_id=names["MyIngress.fwd"])
    entry.match.add(field_id=1).exact.value = dst.to_bytes(6, "big")
    entry.action.action.action_id = names["MyIngress.to_port"]
    entry.action.action.params.add(param_id=1, value=port.to_bytes(2, "big"))
    return entry


def test_first_controller_is_primary_and_later_lower_ones_are_backups(served: Served) -> None:
    first, second = served.client(), served.client()
    assert status(first.become_primary(low=10)) == (code_pb2.OK, "Is primary", 10)
    assert status(second.become_primary(low=4)) == (code_pb2.ALREADY_EXISTS, "Is backup", 10)
    # only the newcomer heard about it: the primary did not change
    with pytest.raises(queue.Empty):
        first.stream.receive(timeout=0.3)


def test_a_higher_election_id_takes_over_and_everybody_is_told(served: Served) -> None:
    first, second, third = served.client(), served.client(), served.client()
    first.become_primary(low=5)
    second.become_primary(low=3)
    assert status(third.become_primary(low=9)) == (code_pb2.OK, "Is primary", 9)
    assert status(first.stream.receive()) == (code_pb2.ALREADY_EXISTS, "Is backup", 9)
    assert status(second.stream.receive()) == (code_pb2.ALREADY_EXISTS, "Is backup", 9)


def test_election_ids_compare_high_before_low(served: Served) -> None:
    first, second = served.client(), served.client()
    assert status(first.become_primary(low=2**63)) == (code_pb2.OK, "Is primary", 2**63)
    second.stream = Stream(second.stub)
    second.stream.arbitrate(low=1, high=1)
    answer = second.stream.receive().arbitration
    assert (answer.status.code, answer.election_id.high, answer.election_id.low) == \
        (code_pb2.OK, 1, 1)


def test_duplicate_election_id_ends_the_second_stream(served: Served,
                                                      program: tuple[Names, bytes]) -> None:
    first, second = served.client(), served.client()
    first.become_primary(low=7)
    outcome = second.become_primary(low=7)
    assert isinstance(outcome, grpc.RpcError)
    assert (outcome.code(), outcome.details()) == (grpc.StatusCode.INVALID_ARGUMENT,
                                                   "Election id already exists")
    # the first stream is untouched and still the primary
    first.set_pipeline(program[0].p4info, program[1])


def test_changing_the_election_id_on_a_live_stream(served: Served) -> None:
    first, second = served.client(), served.client()
    first.become_primary(low=5)
    second.become_primary(low=3)
    # the primary steps down below the backup: both hear about the new primary
    first.stream.arbitrate(low=1)
    assert status(first.stream.receive()) == (code_pb2.ALREADY_EXISTS, "Is backup", 3)
    assert status(second.stream.receive()) == (code_pb2.OK, "Is primary", 3)
    # taking an id another stream holds ends the stream
    first.stream.arbitrate(low=3)
    outcome = first.stream.receive()
    assert isinstance(outcome, grpc.RpcError)
    assert (outcome.code(), outcome.details()) == (grpc.StatusCode.INVALID_ARGUMENT,
                                                   "New election id already exists")


def test_backup_takes_over_when_the_primary_stream_closes(served: Served) -> None:
    primary, backup, other = served.client(), served.client(), served.client()
    primary.become_primary(low=20)
    backup.become_primary(low=10)
    other.become_primary(low=5)
    primary.stream.close()
    assert status(backup.stream.receive()) == (code_pb2.OK, "Is primary", 10)
    assert status(other.stream.receive()) == (code_pb2.ALREADY_EXISTS, "Is backup", 10)


def test_unknown_device_is_not_found_and_a_device_change_is_refused(served: Served) -> None:
    stranger = served.client(device_id=7)
    outcome = stranger.become_primary()
    assert isinstance(outcome, grpc.RpcError)
    assert outcome.code() == grpc.StatusCode.NOT_FOUND
    assert "device" in outcome.details()
    client = served.client()
    client.become_primary(low=1)
    client.stream.arbitrate(low=1, device_id=3)
    outcome = client.stream.receive()
    assert (outcome.code(), outcome.details()) == (grpc.StatusCode.FAILED_PRECONDITION,
                                                   "Invalid device id")


def test_only_the_primary_writes_and_pushes(served: Served, program: tuple[Names, bytes]) -> None:
    names, device_config = program
    primary = served.primary(names, device_config, low=9)
    backup = served.client()
    backup.become_primary(low=2)
    for call in (lambda: backup.write(update(INSERT, table_entry=fwd_entry(names, 1, 2))),
                 lambda: backup.set_pipeline(names.p4info, device_config)):
        error = rpc_error(call)
        assert (error.code(), error.details()) == (grpc.StatusCode.PERMISSION_DENIED,
                                                   "Not primary")
    # an id nobody holds is refused too, even the primary's with another low word
    primary.election = (1, 9)
    error = rpc_error(primary.write, update(INSERT, table_entry=fwd_entry(names, 1, 2)))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    primary.election = (0, 9)
    primary.write(update(INSERT, table_entry=fwd_entry(names, 1, 2)))
    # reads need no election id, from anybody
    entries = backup.read(p4runtime_pb2.Entity(table_entry=p4runtime_pb2.TableEntry()))
    assert len(entries) == 1


def test_the_old_primary_cannot_write_after_a_takeover(served: Served,
                                                        program: tuple[Names, bytes]) -> None:
    names, device_config = program
    old = served.primary(names, device_config, low=1)
    new = served.client()
    new.become_primary(low=2)
    error = rpc_error(old.write, update(INSERT, table_entry=fwd_entry(names, 1, 2)))
    assert (error.code(), error.details()) == (grpc.StatusCode.PERMISSION_DENIED, "Not primary")
    new.write(update(INSERT, table_entry=fwd_entry(names, 1, 2)))


def test_without_any_stream_a_request_with_an_election_id_is_refused(
        served: Served, program: tuple[Names, bytes]) -> None:
    names, device_config = program
    client = served.client()
    error = rpc_error(client.set_pipeline, names.p4info, device_config)
    assert (error.code(), error.details()) == (grpc.StatusCode.PERMISSION_DENIED, "Not primary")
    error = rpc_error(client.write, update(INSERT, table_entry=fwd_entry(names, 1, 2)))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


def test_write_to_another_device_is_not_found(served: Served,
                                              program: tuple[Names, bytes]) -> None:
    names, device_config = program
    client = served.primary(names, device_config)
    other = Client(served.address, device_id=5)
    try:
        other.election = client.election
        error = rpc_error(other.write, update(INSERT, table_entry=fwd_entry(names, 1, 2)))
        assert error.code() == grpc.StatusCode.NOT_FOUND
        error = rpc_error(other.read, p4runtime_pb2.Entity(table_entry=p4runtime_pb2.TableEntry()))
        assert error.code() == grpc.StatusCode.NOT_FOUND
    finally:
        other.close()


def test_capabilities_report_pi_api_version(served: Served) -> None:
    reply = served.client().stub.Capabilities(p4runtime_pb2.CapabilitiesRequest())
    assert reply.p4runtime_api_version == "1.3.0"
