"""Limits that answer instead of hanging (small limits here, the defaults in README):
oversize messages, too many streams, a client that never reads its stream
(PacketIns dropped and counted, every one either delivered or counted), and a
flood of arbitration updates; the switch keeps forwarding and serving throughout."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from rawclient import GRPC_OPTIONS, Client, Served, own_program, update

from p4runtime_lib.protos import p4runtime_pb2, p4runtime_pb2_grpc
from p4switch.runtime import Limits

CPU_PORT = 64
LIMITS = Limits(max_message=1 << 20, max_streams=20, outbox=64)
INSERT = p4runtime_pb2.Update.INSERT


@pytest.fixture
def served() -> Iterator[Served]:
    running = Served(cpu_port=CPU_PORT, limits=LIMITS)
    yield running
    running.close()


def arbitration(low: int) -> p4runtime_pb2.StreamMessageRequest:
    request = p4runtime_pb2.StreamMessageRequest()
    request.arbitration.device_id = 0
    request.arbitration.election_id.low = low
    return request


class RawStream:
    """A StreamChannel the test reads only when it says so (``next``)."""

    def __init__(self, address: str) -> None:
        # no BDP probing: the flow-control window stays 64 KiB, as a client that does
        # not read would see it fill
        self.channel = grpc.insecure_channel(address, options=[*GRPC_OPTIONS,
                                                               ("grpc.http2.bdp_probe", 0)])
        self.stub = p4runtime_pb2_grpc.P4RuntimeStub(self.channel)
        self.requests: queue.Queue[Any] = queue.Queue()
        self.call = self.stub.StreamChannel(iter(self.requests.get, None))
        self.results: queue.Queue[Any] | None = None

    def send(self, message: Any) -> None:
        self.requests.put(message)

    def next(self) -> Any:
        return next(self.call)

    def drain(self, quiet: float = 1.0) -> tuple[list[Any], grpc.RpcError | None]:
        """Read until nothing comes for ``quiet`` s: (messages, the status it ended with);
        from the first call on, a thread reads the stream."""
        if self.results is None:
            self.results = queue.Queue()
            threading.Thread(target=self._pump, daemon=True).start()
        messages: list[Any] = []
        while True:
            try:
                item = self.results.get(timeout=quiet)
            except queue.Empty:
                return messages, None
            if item is None:
                return messages, None
            if isinstance(item, grpc.RpcError):
                return messages, item
            messages.append(item)

    def _pump(self) -> None:
        assert self.results is not None
        try:
            for message in self.call:
                self.results.put(message)
        except grpc.RpcError as error:
            self.results.put(error)
        self.results.put(None)

    def close(self) -> None:
        self.requests.put(None)
        self.call.cancel()
        self.channel.close()


def capabilities_ms(served: Served) -> float:
    client = served.client()
    began = time.monotonic()
    reply = client.stub.Capabilities(p4runtime_pb2.CapabilitiesRequest(), timeout=5)
    assert reply.p4runtime_api_version == "1.3.0"
    return (time.monotonic() - began) * 1000


def tagged(dst: int, size: int = 0) -> bytes:
    """ethernet (etherType 0x9999) / tag / padding, as replicate.p4 parses it."""
    return dst.to_bytes(6, "big") + bytes.fromhex("000000000001") + b"\x99\x99" + \
        bytes(5) + bytes(size)


def to_cpu_and_port2(served: Served, client: Client, names: Any) -> None:
    """replicate.p4's fwd: dst ..cc to the CPU port, dst ..0b to port 2."""
    for dst, action, port in ((0xCC, "MyIngress.to_cpu", None),
                              (0x0B, "MyIngress.to_port", 2)):
        entry = p4runtime_pb2.TableEntry(table_id=names["MyIngress.fwd"])
        entry.match.add(field_id=1).exact.value = dst.to_bytes(6, "big")
        entry.action.action.action_id = names[action]
        if port is not None:
            entry.action.action.params.add(param_id=1, value=bytes([port]))
        client.write(update(INSERT, table_entry=entry))


def test_messages_over_the_limit_get_resource_exhausted(served: Served) -> None:
    names, device_config = own_program("replicate")
    client = served.primary(names, device_config)
    big = p4runtime_pb2.WriteRequest(device_id=0)
    big.election_id.low = 1
    entry = big.updates.add(type=INSERT).entity.table_entry
    entry.table_id = names["MyIngress.fwd"]
    entry.match.add(field_id=1).exact.value = bytes(LIMITS.max_message)
    with pytest.raises(grpc.RpcError) as over:
        client.stub.Write(big, timeout=5)
    entry.match[0].exact.value = bytes(LIMITS.max_message - 1024)  # under: a normal answer
    with pytest.raises(grpc.RpcError) as under:
        client.stub.Write(big, timeout=5)
    stream = RawStream(served.address)
    try:
        huge = p4runtime_pb2.StreamMessageRequest()
        huge.packet.payload = bytes(LIMITS.max_message + 1)
        stream.send(huge)
        _messages, ended = stream.drain()
    finally:
        stream.close()
    print(f"Write of {big.ByteSize() + 1024} bytes: {over.value.code().name}; of "
          f"{big.ByteSize()} bytes: {under.value.code().name}; stream message of "
          f"{huge.ByteSize()} bytes: {ended.code().name if ended else 'nothing'}")
    assert over.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert under.value.code() == grpc.StatusCode.UNKNOWN  # a per-update error, as PI's
    assert ended is not None and ended.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert client.stream is not None
    client.stream.arbitrate(2)  # the primary's stream is untouched
    assert client.stream.receive().arbitration.status.code == 0
    assert capabilities_ms(served) < 1000


def test_streams_beyond_the_limit_are_refused_until_one_closes(served: Served) -> None:
    streams = [RawStream(served.address) for _ in range(LIMITS.max_streams)]
    try:
        for stream in streams:
            stream.call.initial_metadata()  # served
        extra = RawStream(served.address)
        with pytest.raises(grpc.RpcError) as refused:
            extra.next()
        extra.close()
        assert capabilities_ms(served) < 1000  # unary calls go on
        streams.pop().close()
        deadline = time.monotonic() + 5
        while served.server.stats.open >= LIMITS.max_streams:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        again = RawStream(served.address)
        streams.append(again)
        again.send(arbitration(7))
        answer = again.next()
        stats = served.server.stats
        print(f"{LIMITS.max_streams} streams open; one more: {refused.value.code().name} "
              f"({refused.value.details()}); after one closed, a new one is primary: "
              f"{answer.arbitration.status.message!r}; stats {stats}")
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert f"the limit is {LIMITS.max_streams}" in refused.value.details()
        assert answer.arbitration.status.code == 0
        assert stats.refused == 1 and stats.open == LIMITS.max_streams
    finally:
        for stream in streams:
            stream.close()


def test_a_client_that_does_not_read_loses_packet_ins_not_the_switch(served: Served) -> None:
    names, device_config = own_program("replicate")
    stream = RawStream(served.address)
    try:
        stream.send(arbitration(1))
        assert stream.next().arbitration.status.code == 0  # then the test stops reading
        client = served.client()
        client.election = (0, 1)
        client.set_pipeline(names.p4info, device_config)
        to_cpu_and_port2(served, client, names)
        sent = 5000
        for _ in range(sent):
            served.switch.receive(3, tagged(0xCC, 1000))
        for _ in range(10):  # forwarding goes on meanwhile
            served.switch.receive(1, tagged(0x0B))
        forwarded = len(served.ports[2].frames)
        ms = capabilities_ms(served)
        deadline = time.monotonic() + 5  # the loop sorts the last packet-ins
        while served.server.stats.dropped + LIMITS.outbox < sent / 2 and \
                time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.5)
        dropped = served.server.stats.dropped
        messages, ended = stream.drain()  # now read everything there is
        packets = [m for m in messages if m.HasField("packet")]
        print(f"{sent} packet-ins for a client not reading: {len(packets)} delivered once it "
              f"read, {dropped} dropped (outbox {LIMITS.outbox}); {forwarded} of 10 frames "
              f"forwarded meanwhile; Capabilities {ms:.1f} ms")
        assert ended is None  # the stream is still open
        assert dropped > 0 and len(packets) + dropped == sent  # each one counted
        assert len(packets) < sent / 2
        assert all(p.packet.payload == tagged(0xCC, 1000) for p in packets)
        assert forwarded == 10 and ms < 1000
        served.switch.receive(3, tagged(0xCC))  # and it gets the next ones again
        stream.send(arbitration(2))
        later, _ = stream.drain(0.5)
        assert [m.WhichOneof("update") for m in later] == ["packet", "arbitration"]
    finally:
        stream.close()


def test_an_arbitration_flood_is_answered_or_ends_that_stream(served: Served) -> None:
    primary = RawStream(served.address)
    reading, silent = RawStream(served.address), RawStream(served.address)
    try:
        primary.send(arbitration(100))
        assert primary.next().arbitration.status.code == 0
        flood = 10_000
        for index in range(flood):  # a backup changing its id over and over
            reading.send(arbitration(2 + index % 2))
        answers: list[Any] = []
        began = time.monotonic()
        latencies = []
        while len(answers) < flood:
            answers.append(reading.next())
            if len(answers) % 2000 == 0:
                latencies.append(capabilities_ms(served))
        reading_s = time.monotonic() - began
        for index in range(flood):  # the same, from a client that never reads
            silent.send(arbitration(4 + index % 2))
        deadline = time.monotonic() + 10
        while served.server.stats.overflowed == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        overflowed = served.server.stats.overflowed
        messages, ended = silent.drain()
        again = RawStream(served.address)  # the silent one's id is free again
        again.send(arbitration(5))
        print(f"{flood} arbitration updates from a reading backup: {len(answers)} answers in "
              f"{reading_s:.2f} s (Capabilities meanwhile {max(latencies):.1f} ms at most); "
              f"from a backup that does not read: {len(messages)} answers buffered, then "
              f"{ended.code().name if ended else 'nothing'}")
        assert all(a.arbitration.status.code == 6 for a in answers)  # ALREADY_EXISTS: backup
        assert answers[-1].arbitration.election_id.low == 100
        assert max(latencies) < 1000
        assert overflowed == 1
        assert ended is not None and ended.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "read the stream" in ended.details()
        assert again.next().arbitration.status.code == 6  # accepted as a backup
        primary.send(arbitration(101))
        assert primary.next().arbitration.status.code == 0  # still the primary
        again.close()
    finally:
        for stream in (primary, reading, silent):
            stream.close()
