"""A thin P4Runtime client for one switch: arbitration, pipeline, writes, reads.

Every call has a deadline; arbitration waits at most ``timeout`` seconds and
reports *why* it did not become primary.  Errors are ``ControllerError``s
whose ``str()`` is one line naming the switch.
"""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import text_format

from .errors import (
    NotPrimary,
    PipelineError,
    ReadError,
    SwitchUnavailable,
    describe,
    write_error,
)
from .protos import code_pb2, p4info_pb2, p4runtime_pb2, p4runtime_pb2_grpc

MAX_MESSAGE = 256 * 1024 * 1024
SetAction = p4runtime_pb2.SetForwardingPipelineConfigRequest


class SwitchConnection:
    """One P4Runtime device: ``become_primary()`` first, then the other calls."""

    def __init__(self, name: str, address: str, device_id: int = 0,
                 election_id: tuple[int, int] = (0, 1), timeout: float = 5.0,
                 proto_dump: str | Path | None = None,
                 credentials: grpc.ChannelCredentials | None = None,
                 p4info: Any = None) -> None:
        self.name = name
        self.address = address
        self.device_id = device_id
        self.election_id = election_id
        self.timeout = timeout
        self.p4info = p4info  # a P4Info model, for readable error lines
        options = [("grpc.max_send_message_length", MAX_MESSAGE),
                   ("grpc.max_receive_message_length", MAX_MESSAGE)]
        self.channel = (grpc.secure_channel(address, credentials, options) if credentials
                        else grpc.insecure_channel(address, options))
        self.stub = p4runtime_pb2_grpc.P4RuntimeStub(self.channel)
        self.packet_in: queue.Queue[p4runtime_pb2.PacketIn] = queue.Queue()
        self.stream_errors: queue.Queue[p4runtime_pb2.StreamError] = queue.Queue()
        self._requests: queue.Queue[Any] = queue.Queue()
        self._arbitration: queue.Queue[Any] = queue.Queue()
        self._stream: Any = None
        self._reader: threading.Thread | None = None
        self._dump = None
        if proto_dump is not None:
            path = Path(proto_dump)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._dump = open(path, "w")  # noqa: SIM115 - closed in close()

    # -- connection -----------------------------------------------------------
    def wait_ready(self) -> None:
        """SwitchUnavailable unless the server accepts a connection in time."""
        try:
            grpc.channel_ready_future(self.channel).result(timeout=self.timeout)
        except grpc.FutureTimeoutError:
            raise SwitchUnavailable(
                f"{self.name}: no P4Runtime server at {self.address} (waited "
                f"{self.timeout:g} s): is the switch running? Start it with 'make run'"
            ) from None

    def become_primary(self) -> p4runtime_pb2.MasterArbitrationUpdate:
        """Open the stream and arbitrate; NotPrimary/SwitchUnavailable if it fails."""
        self.wait_ready()
        self._stream = self.stub.StreamChannel(iter(self._requests.get, None))
        self._reader = threading.Thread(target=self._read_stream, daemon=True,
                                        name=f"{self.name}-stream")
        self._reader.start()
        request = p4runtime_pb2.StreamMessageRequest()
        request.arbitration.device_id = self.device_id
        request.arbitration.election_id.high, request.arbitration.election_id.low = \
            self.election_id
        self._log("StreamChannel arbitration", request)
        self._requests.put(request)
        try:
            reply = self._arbitration.get(timeout=self.timeout)
        except queue.Empty:
            raise SwitchUnavailable(f"{self.name}: no arbitration answer from {self.address} "
                                    f"within {self.timeout:g} s") from None
        if isinstance(reply, grpc.RpcError):
            raise self._stream_failure(reply)
        if reply is None:
            raise SwitchUnavailable(f"{self.name}: the switch closed the stream")
        update = reply.arbitration
        if update.status.code != code_pb2.OK:
            primary = update.election_id
            raise NotPrimary(
                f"{self.name}: another controller is primary (its election id "
                f"{primary.high}:{primary.low}, ours {self.election_id[0]}:"
                f"{self.election_id[1]}); stop it or use a higher --election-id")
        return update

    def _stream_failure(self, error: grpc.RpcError) -> Exception:
        if error.code() == grpc.StatusCode.INVALID_ARGUMENT and "lection id" in \
                (error.details() or ""):
            return NotPrimary(f"{self.name}: election id {self.election_id[0]}:"
                              f"{self.election_id[1]} is already used by another controller "
                              "on this switch; stop it or choose another --election-id")
        if error.code() == grpc.StatusCode.UNAVAILABLE:
            return SwitchUnavailable(f"{self.name}: no P4Runtime server at {self.address} "
                                     f"({error.details()})")
        return NotPrimary(f"{self.name}: arbitration failed: {describe(error)}")

    def _read_stream(self) -> None:
        try:
            for message in self._stream:
                kind = message.WhichOneof("update")
                if kind == "arbitration":
                    self._arbitration.put(message)
                elif kind == "packet":
                    self.packet_in.put(message.packet)
                elif kind == "error":
                    self.stream_errors.put(message.error)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED:
                self._arbitration.put(error)
        self._arbitration.put(None)

    def _log(self, title: str, message: Any) -> None:
        if self._dump is not None:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            self._dump.write(f"[{stamp}] {title}\n{text_format.MessageToString(message)}\n")
            self._dump.flush()

    def _rpc_failure(self, what: str, error: grpc.RpcError) -> Exception:
        if error.code() == grpc.StatusCode.UNAVAILABLE:
            return SwitchUnavailable(f"{self.name}: {what} failed: the switch at "
                                     f"{self.address} is unavailable ({error.details()})")
        if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            return SwitchUnavailable(f"{self.name}: {what}: no answer from {self.address} in "
                                     "time")
        if error.code() == grpc.StatusCode.PERMISSION_DENIED:
            return NotPrimary(f"{self.name}: {what} refused: {error.details()}")
        return PipelineError(f"{self.name}: {what} failed: {describe(error)}")

    def _election(self, request: Any) -> None:
        request.election_id.high, request.election_id.low = self.election_id

    # -- pipeline -------------------------------------------------------------
    def set_pipeline(self, p4info: p4info_pb2.P4Info, device_config: bytes,
                     action: int = SetAction.VERIFY_AND_COMMIT) -> None:
        """Push a P4Info and the raw BMv2 JSON bytes (no p4.tmp wrapper needed)."""
        request = SetAction(device_id=self.device_id, action=action)
        self._election(request)
        request.config.p4info.CopyFrom(p4info)
        request.config.p4_device_config = device_config
        self._log("SetForwardingPipelineConfig", SetAction(device_id=self.device_id,
                                                           action=action))
        try:
            self.stub.SetForwardingPipelineConfig(request, timeout=max(self.timeout, 10))
        except grpc.RpcError as error:
            raise self._rpc_failure("pipeline push", error) from None

    def get_pipeline(self, response_type: int = 0) -> p4runtime_pb2.ForwardingPipelineConfig:
        request = p4runtime_pb2.GetForwardingPipelineConfigRequest(
            device_id=self.device_id, response_type=response_type)
        try:
            return self.stub.GetForwardingPipelineConfig(request, timeout=self.timeout).config
        except grpc.RpcError as error:
            raise self._rpc_failure("get pipeline", error) from None

    def capabilities(self) -> str:
        try:
            return self.stub.Capabilities(p4runtime_pb2.CapabilitiesRequest(),
                                          timeout=self.timeout).p4runtime_api_version
        except grpc.RpcError as error:
            raise self._rpc_failure("capabilities", error) from None

    # -- writes and reads -------------------------------------------------------
    def write(self, updates: list[p4runtime_pb2.Update]) -> None:
        """All updates in ONE WriteRequest; WriteError lists the failing ones."""
        updates = list(updates)
        request = p4runtime_pb2.WriteRequest(device_id=self.device_id, updates=updates)
        self._election(request)
        self._log("Write", request)
        deadline = max(self.timeout, len(updates) / 5000)
        try:
            self.stub.Write(request, timeout=deadline)
        except grpc.RpcError as error:
            raise write_error(self.name, error, updates, self.p4info) from None

    def read(self, entities: list[p4runtime_pb2.Entity]) -> list[p4runtime_pb2.Entity]:
        request = p4runtime_pb2.ReadRequest(device_id=self.device_id, entities=entities)
        self._log("Read", request)
        try:
            return [entity for response in self.stub.Read(request, timeout=self.timeout)
                    for entity in response.entities]
        except grpc.RpcError as error:
            if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise self._rpc_failure("read", error) from None
            raise ReadError(f"{self.name}: read failed: {describe(error)}") from None

    def read_table_entries(self, table_id: int = 0) -> list[p4runtime_pb2.TableEntry]:
        """Every entry of one table (0: of every table)."""
        entity = p4runtime_pb2.Entity(table_entry=p4runtime_pb2.TableEntry(table_id=table_id))
        return [e.table_entry for e in self.read([entity])]

    def read_default_entry(self, table_id: int) -> p4runtime_pb2.TableEntry:
        entity = p4runtime_pb2.Entity(table_entry=p4runtime_pb2.TableEntry(
            table_id=table_id, is_default_action=True))
        return self.read([entity])[0].table_entry

    def packet_out(self, payload: bytes, metadata: dict[int, bytes] | None = None) -> None:
        request = p4runtime_pb2.StreamMessageRequest()
        request.packet.payload = payload
        for metadata_id, value in (metadata or {}).items():
            request.packet.metadata.add(metadata_id=metadata_id, value=value)
        self._requests.put(request)

    # -- shutdown ---------------------------------------------------------------
    def close(self) -> None:
        """End the stream and the channel; safe to call twice."""
        self._requests.put(None)
        if self._stream is not None:
            self._stream.cancel()
        if self._reader is not None:
            self._reader.join(timeout=2)
        self.channel.close()
        if self._dump is not None:
            self._dump.close()
            self._dump = None

    def __enter__(self) -> SwitchConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
