"""A minimal P4Runtime client for server tests, written against the generated stub only.

It deliberately does not use utils/p4runtime_lib, so that server tests do not
depend on the library under test elsewhere.
"""

from __future__ import annotations

import queue
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import text_format

from p4runtime_lib.protos import p4info_pb2, p4runtime_pb2, p4runtime_pb2_grpc, status_pb2

GRPC_OPTIONS = [("grpc.max_send_message_length", 1 << 28),
                ("grpc.max_receive_message_length", 1 << 28)]


def load_p4info(path: Path) -> p4info_pb2.P4Info:
    info = p4info_pb2.P4Info()
    text_format.Merge(path.read_text(), info)
    return info


def batch_errors(error: grpc.RpcError) -> list[tuple[int, str]]:
    """(canonical code, message) per update from a failed Write."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            out = []
            for detail in status.details:
                item = p4runtime_pb2.Error()
                detail.Unpack(item)
                out.append((item.canonical_code, item.message))
            return out
    return []


class Stream:
    """A StreamChannel with an outgoing queue and a blocking receive with timeout."""

    def __init__(self, stub: Any) -> None:
        self._out: queue.Queue[Any] = queue.Queue()
        self._in: queue.Queue[Any] = queue.Queue()
        self.call = stub.StreamChannel(iter(self._out.get, None))
        import threading

        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for message in self.call:
                self._in.put(message)
        except grpc.RpcError as error:
            self._in.put(error)
        self._in.put(None)

    def send(self, message: Any) -> None:
        self._out.put(message)

    def arbitrate(self, low: int, high: int = 0, device_id: int = 0) -> None:
        request = p4runtime_pb2.StreamMessageRequest()
        request.arbitration.device_id = device_id
        request.arbitration.election_id.low = low
        request.arbitration.election_id.high = high
        self.send(request)

    def receive(self, timeout: float = 5.0) -> Any:
        """Next message, an RpcError if the stream ended with one, None at its end."""
        return self._in.get(timeout=timeout)

    def close(self) -> None:
        self._out.put(None)
        self.call.cancel()


class Client:
    """Stub + stream + the election id used for writes."""

    def __init__(self, address: str, device_id: int = 0) -> None:
        self.channel = grpc.insecure_channel(address, options=GRPC_OPTIONS)
        self.stub = p4runtime_pb2_grpc.P4RuntimeStub(self.channel)
        self.device_id = device_id
        self.election = (0, 1)
        self.stream: Stream | None = None

    def become_primary(self, low: int = 1) -> Any:
        self.stream = Stream(self.stub)
        self.stream.arbitrate(low, device_id=self.device_id)
        self.election = (0, low)
        return self.stream.receive()

    def set_pipeline(self, p4info: p4info_pb2.P4Info, device_config: bytes,
                     action: int = p4runtime_pb2.SetForwardingPipelineConfigRequest
                     .VERIFY_AND_COMMIT) -> Any:
        request = p4runtime_pb2.SetForwardingPipelineConfigRequest(
            device_id=self.device_id, action=action)
        request.election_id.high, request.election_id.low = self.election
        request.config.p4info.CopyFrom(p4info)
        request.config.p4_device_config = device_config
        return self.stub.SetForwardingPipelineConfig(request, timeout=10)

    def write(self, *updates: Any) -> Any:
        request = p4runtime_pb2.WriteRequest(device_id=self.device_id, updates=updates)
        request.election_id.high, request.election_id.low = self.election
        return self.stub.Write(request, timeout=30)

    def read(self, *entities: Any) -> list[Any]:
        request = p4runtime_pb2.ReadRequest(device_id=self.device_id, entities=entities)
        return [e for response in self.stub.Read(request, timeout=30) for e in response.entities]

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
        self.channel.close()


def update(kind: int, **entity: Any) -> p4runtime_pb2.Update:
    return p4runtime_pb2.Update(type=kind, entity=p4runtime_pb2.Entity(**entity))
