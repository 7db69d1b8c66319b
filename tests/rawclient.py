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


# -- an in-process switch + server for the runtime tests ---------------------------------

P4_DIR = Path(__file__).resolve().parent / "p4"


class RecordingPort:
    """A port that keeps what the switch sends (the engine and switch are real)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.frames: list[bytes] = []

    def send(self, frame: bytes) -> None:
        self.frames.append(frame)


class Names:
    """P4Info ids by full name, so tests read like the program."""

    def __init__(self, p4info: p4info_pb2.P4Info) -> None:
        self.p4info = p4info
        self.ids: dict[str, int] = {}
        for kind in ("tables", "actions", "counters", "direct_counters", "meters",
                     "direct_meters", "registers", "action_profiles", "value_sets",
                     "controller_packet_metadata", "digests"):
            for item in getattr(p4info, kind):
                self.ids[item.preamble.name] = item.preamble.id

    def __getitem__(self, name: str) -> int:
        return self.ids[name]


def own_program(name: str) -> tuple[Names, bytes]:
    """(P4Info names, BMv2 JSON) of tests/p4/NAME.p4's committed p4c output."""
    return (Names(load_p4info(P4_DIR / f"{name}.p4.p4info.txtpb")),
            (P4_DIR / f"{name}.json").read_bytes())


class Served:
    """A real Switch with recording ports behind a real gRPC server on 127.0.0.1."""

    def __init__(self, cpu_port: int | None = None, ports: tuple[int, ...] = (1, 2, 3),
                 device_id: int = 0, limits: Any = None) -> None:
        from p4switch.runtime import serve
        from p4switch.switch import Switch

        self.switch = Switch(device_id=device_id, cpu_port=cpu_port)
        self.ports = {number: RecordingPort(f"port{number}") for number in ports}
        for number, port in self.ports.items():
            self.switch.add_port(number, port)
        self.server = serve(self.switch, "127.0.0.1:0", limits=limits)
        self.address = f"127.0.0.1:{self.server.bound_port}"
        self.clients: list[Client] = []

    def client(self, device_id: int = 0) -> Client:
        client = Client(self.address, device_id)
        self.clients.append(client)
        return client

    def primary(self, names: Names, device_config: bytes, low: int = 1) -> Client:
        """A client that became primary and pushed the program."""
        client = self.client()
        reply = client.become_primary(low)
        assert reply.arbitration.status.code == 0, reply
        client.set_pipeline(names.p4info, device_config)
        return client

    def close(self) -> None:
        for client in self.clients:
            client.close()
        self.server.stop(0)


def failed_write(client: Client, *updates: Any) -> list[tuple[int, str]]:
    """(code, message) per update of a Write that must fail as a batch (gRPC UNKNOWN)."""
    try:
        client.write(*updates)
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.UNKNOWN, (error.code(), error.details())
        return batch_errors(error)
    raise AssertionError("the Write succeeded")


def rpc_error(call: Any, *args: Any, **kwargs: Any) -> grpc.RpcError:
    """The RpcError that ``call(*args)`` must raise."""
    try:
        result = call(*args, **kwargs)
        if hasattr(result, "__iter__") and not isinstance(result, (bytes, str)):
            list(result)
    except grpc.RpcError as error:
        return error
    raise AssertionError(f"{call} did not fail")
