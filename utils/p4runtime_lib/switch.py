"""A thin P4Runtime client for one switch: arbitration, pipeline, writes, reads.

``SwitchConnection`` owns one gRPC channel.  ``become_primary()`` opens the
StreamChannel (a request queue feeds it; a daemon reader thread sorts what
comes back into queues) and waits -- at most ``timeout`` seconds -- for the
arbitration answer.  Every unary call has a deadline.  Failures raise the
``ControllerError`` subclasses of ``errors``; their ``str()`` is one line
naming the switch.  ``close()`` (or ``with``) ends the stream and the thread.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

import grpc
from google.protobuf import text_format

from p4protos import code_pb2, p4info_pb2, p4runtime_pb2, p4runtime_pb2_grpc

from .codec import encode
from .entries import ElectionId, entity, format_update, write_request
from .entries import election_id as to_election_id
from .errors import (
    ArbitrationTimeout,
    ControllerError,
    NotPrimary,
    PipelineError,
    ReadError,
    SwitchUnavailable,
    code_name,
    describe,
    rpc_error,
    write_error,
)
from .p4info import P4Info

MAX_MESSAGE = 256 * 1024 * 1024
SetRequest = p4runtime_pb2.SetForwardingPipelineConfigRequest
GetRequest = p4runtime_pb2.GetForwardingPipelineConfigRequest
LOOPBACK_HOSTS = ("127.", "localhost", "[::1]", "::1")


def _show_id(value: tuple[int, int]) -> str:
    """``(0, 1)`` -> ``'0:1'`` (high:low, as --election-id sets the low half)."""
    return f"{value[0]}:{value[1]}"


class SwitchConnection:
    """One P4Runtime device: ``become_primary()`` first, then the other calls."""

    def __init__(self, name: str, address: str = "127.0.0.1:50051", device_id: int = 0,
                 election_id: ElectionId = (0, 1), proto_dump_file: str | Path | None = None,
                 timeout: float = 5.0, credentials: grpc.ChannelCredentials | None = None,
                 p4info: P4Info | None = None) -> None:
        self.name = name
        self.address = address
        self.device_id = device_id
        self.election_id = to_election_id(election_id)
        self.timeout = timeout
        self.p4info = p4info  # names in error lines and decoded reads, when given
        options = [("grpc.max_send_message_length", MAX_MESSAGE),
                   ("grpc.max_receive_message_length", MAX_MESSAGE),
                   # a failed batch carries one p4.v1.Error per update in its trailers:
                   # gRPC's default 16 KiB would hide them after ~200 failed updates
                   ("grpc.max_metadata_size", MAX_MESSAGE),
                   ("grpc.absolute_max_metadata_size", MAX_MESSAGE)]
        if address.startswith(LOOPBACK_HOSTS):
            options.append(("grpc.enable_http_proxy", 0))  # a proxy must not see loopback
        self.channel = (grpc.secure_channel(address, credentials, options)
                        if credentials is not None else grpc.insecure_channel(address, options))
        self.stub = p4runtime_pb2_grpc.P4RuntimeStub(self.channel)
        self.packet_ins: queue.Queue[p4runtime_pb2.PacketIn] = queue.Queue()
        self.stream_errors: queue.Queue[p4runtime_pb2.StreamError] = queue.Queue()
        self.notifications: queue.Queue[p4runtime_pb2.StreamMessageResponse] = queue.Queue()
        self.is_primary = False
        self.primary_id: tuple[int, int] | None = None
        self._arbitration: queue.Queue[Any] = queue.Queue()
        self._requests: queue.Queue[p4runtime_pb2.StreamMessageRequest | None] | None = None
        self._call: Any = None
        self._reader: threading.Thread | None = None
        self._closed = False
        self._dump_lock = threading.Lock()
        self._dump: IO[str] | None = None
        if proto_dump_file is not None:
            path = Path(proto_dump_file)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._dump = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def __repr__(self) -> str:
        return f"<SwitchConnection {self.name} {self.address} device {self.device_id}>"

    # -- connection and arbitration -----------------------------------------------
    def wait_ready(self) -> None:
        """Return once the channel connects; SwitchUnavailable after ``timeout`` s."""
        future = grpc.channel_ready_future(self.channel)
        try:
            future.result(timeout=self.timeout)
        except grpc.FutureTimeoutError:
            future.cancel()
            raise SwitchUnavailable(self.name, self.address,
                                    f"waited {self.timeout:g} s") from None

    def become_primary(self) -> p4runtime_pb2.MasterArbitrationUpdate:
        """Arbitrate with our election id; return the answer if we are primary.

        Raises NotPrimary (another controller is primary, or the server refused
        our election id), ArbitrationTimeout or SwitchUnavailable -- never hangs.
        """
        if self._closed:
            raise ControllerError(f"{self.name}: connection already closed")
        self.wait_ready()
        if self._reader is None or not self._reader.is_alive():
            self._open_stream()
        while not self._arbitration.empty():  # forget answers to earlier requests
            self._arbitration.get_nowait()
        request = p4runtime_pb2.StreamMessageRequest()
        request.arbitration.device_id = self.device_id
        request.arbitration.election_id.high, request.arbitration.election_id.low = \
            self.election_id
        self._send(request)
        try:
            reply = self._arbitration.get(timeout=self.timeout)
        except queue.Empty:
            raise ArbitrationTimeout(
                f"{self.name}: {self.address} did not answer the arbitration within "
                f"{self.timeout:g} s", "is it a P4Runtime server? try a larger --timeout"
            ) from None
        if isinstance(reply, grpc.RpcError):
            raise self._stream_failure(reply)
        if reply is None:
            raise SwitchUnavailable(self.name, self.address,
                                    "the switch closed the stream during arbitration")
        update = reply.arbitration
        if update.status.code == code_pb2.OK:
            return update
        primary = (update.election_id.high, update.election_id.low)
        if update.status.code == code_pb2.ALREADY_EXISTS:
            raise NotPrimary(
                f"{self.name}: another controller is primary (its election id "
                f"{_show_id(primary)}, ours {_show_id(self.election_id)})",
                "stop it or use a higher --election-id", primary=primary)
        raise NotPrimary(f"{self.name}: arbitration answered "
                         f"{code_name(update.status.code)}: {update.status.message}",
                         primary=primary)

    def _open_stream(self) -> None:
        if self._requests is not None:
            self._requests.put(None)  # let a dead stream's request iterator end
        self._requests = queue.Queue()
        self._call = self.stub.StreamChannel(iter(self._requests.get, None))
        self._reader = threading.Thread(target=self._read_stream, args=(self._call,),
                                        name=f"{self.name}-stream", daemon=True)
        self._reader.start()

    def _send(self, request: p4runtime_pb2.StreamMessageRequest) -> None:
        if self._requests is None or self._reader is None or not self._reader.is_alive():
            raise NotPrimary(f"{self.name}: no open stream", "call become_primary() first")
        self._log("StreamChannel", request)
        self._requests.put(request)

    def _read_stream(self, call: Any) -> None:
        """Reader thread: sort stream messages; report how the stream ended."""
        try:
            for message in call:
                kind = message.WhichOneof("update")
                if kind == "arbitration":
                    update = message.arbitration
                    self.primary_id = (update.election_id.high, update.election_id.low)
                    self.is_primary = update.status.code == code_pb2.OK
                    self._arbitration.put(message)
                elif kind == "packet":
                    self.packet_ins.put(message.packet)
                elif kind == "error":
                    self.stream_errors.put(message.error)
                else:
                    self.notifications.put(message)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED or not self._closed:
                self._arbitration.put(error)
        finally:
            self.is_primary = False
            self._arbitration.put(None)

    def _stream_failure(self, error: grpc.RpcError) -> ControllerError:
        details = error.details() or ""
        # P4Runtime (and PI) end an arbitration stream with INVALID_ARGUMENT only when the
        # election id is taken (by another controller, for the same role)
        if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
            return NotPrimary(
                f"{self.name}: election id {_show_id(self.election_id)} is already used by "
                f"another controller on this switch ({details})",
                "stop it or choose another --election-id")
        if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
            return SwitchUnavailable(self.name, self.address,
                                     f"the stream broke during arbitration: {details}")
        return NotPrimary(f"{self.name}: arbitration failed: {describe(error)}")

    # -- logging ----------------------------------------------------------------
    def _log(self, method: str, message: Any) -> None:
        """Append one request to the proto dump file (when there is one)."""
        if self._dump is None:
            return
        now = time.time()
        stamp = (time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now))
                 + f".{int(now * 1000) % 1000:03d}")
        with self._dump_lock:
            self._dump.write(f"\n[{stamp}] /p4.v1.P4Runtime/{method}\n---\n"
                             f"{text_format.MessageToString(message)}---\n")
            self._dump.flush()

    # -- pipeline ----------------------------------------------------------------
    def set_pipeline(self, p4info: P4Info | p4info_pb2.P4Info, device_config: bytes | str,
                     action: int = SetRequest.VERIFY_AND_COMMIT) -> None:
        """Push the P4Info and the device config (BMv2: the raw JSON bytes).

        VERIFY_AND_COMMIT wipes every table, so the controller starts clean.
        """
        proto = p4info.proto if isinstance(p4info, P4Info) else p4info
        data = device_config.encode() if isinstance(device_config, str) else device_config
        request = SetRequest(device_id=self.device_id, action=action)
        request.election_id.high, request.election_id.low = self.election_id
        request.config.p4info.CopyFrom(proto)
        if self._dump is not None:
            shown = SetRequest()
            shown.CopyFrom(request)
            shown.config.p4_device_config = f"<{len(data)} bytes, not shown>".encode()
            self._log("SetForwardingPipelineConfig", shown)
        request.config.p4_device_config = data
        deadline = max(4 * self.timeout, 20)  # a big program takes a while to load
        try:
            self.stub.SetForwardingPipelineConfig(request, timeout=deadline)
        except grpc.RpcError as error:
            raise rpc_error(self.name, self.address, "pipeline push", error,
                            PipelineError, deadline, needs_pipeline=False) from None

    def get_pipeline(self, response_type: int = GetRequest.ALL
                     ) -> p4runtime_pb2.ForwardingPipelineConfig:
        """The pipeline the switch runs (P4Info and/or device config, by response_type)."""
        request = GetRequest(device_id=self.device_id, response_type=response_type)
        self._log("GetForwardingPipelineConfig", request)
        try:
            return self.stub.GetForwardingPipelineConfig(request, timeout=self.timeout).config
        except grpc.RpcError as error:
            raise rpc_error(self.name, self.address, "get pipeline", error,
                            PipelineError, self.timeout) from None

    def capabilities(self) -> str:
        """The P4Runtime API version the server implements."""
        request = p4runtime_pb2.CapabilitiesRequest()
        self._log("Capabilities", request)
        try:
            return self.stub.Capabilities(request, timeout=self.timeout).p4runtime_api_version
        except grpc.RpcError as error:
            raise rpc_error(self.name, self.address, "capabilities", error,
                            deadline=self.timeout, needs_pipeline=False) from None

    # -- writes ---------------------------------------------------------------------
    def write(self, updates: Iterable[p4runtime_pb2.Update] | p4runtime_pb2.WriteRequest
              ) -> None:
        """Send every update in ONE WriteRequest; WriteError lists the failing ones.

        A WriteRequest (e.g. ``TableBuilder.write_request``) goes as it is, without
        copying its updates; its device id and election id are set to this connection's.
        """
        if isinstance(updates, p4runtime_pb2.WriteRequest):
            request = updates
            request.device_id = self.device_id
            request.election_id.high, request.election_id.low = self.election_id
            updates = request.updates
        else:
            updates = list(updates)
            request = write_request(updates, self.device_id, self.election_id)
        if not updates:
            return
        self._log("Write", request)
        deadline = self.timeout + len(updates) / 1000
        try:
            self.stub.Write(request, timeout=deadline)
        except grpc.RpcError as error:
            raise write_error(self.name, self.address, error, updates,
                              self._render, deadline) from None

    def _render(self, update: p4runtime_pb2.Update) -> str:
        return format_update(self.p4info, update)

    # -- reads --------------------------------------------------------------------
    def read(self, entities: Iterable[Any]) -> list[p4runtime_pb2.Entity]:
        """Every entity the server streams back for the given filters."""
        request = p4runtime_pb2.ReadRequest(device_id=self.device_id,
                                            entities=[entity(e) for e in entities])
        self._log("Read", request)
        try:
            return [found for response in self.stub.Read(request, timeout=self.timeout)
                    for found in response.entities]
        except grpc.RpcError as error:
            raise rpc_error(self.name, self.address, "read", error, ReadError,
                            self.timeout) from None

    def _table_id(self, table: str | int) -> int:
        if isinstance(table, int):
            return table
        if self.p4info is None:
            raise ReadError(f"{self.name}: table '{table}' given by name, but the "
                            "connection has no P4Info", "pass p4info= to SwitchConnection")
        return self.p4info.table(table).preamble.id

    def read_table_entries(self, table_id: str | int = 0) -> list[p4runtime_pb2.TableEntry]:
        """Every match entry of one table, by id or name (0: of every table).

        Default entries are not included: read them with ``read_default_entry``.
        """
        wanted = p4runtime_pb2.TableEntry(table_id=self._table_id(table_id))
        return [e.table_entry for e in self.read([wanted])]

    def read_default_entry(self, table: str | int) -> p4runtime_pb2.TableEntry:
        """The default entry of one table."""
        wanted = p4runtime_pb2.TableEntry(table_id=self._table_id(table),
                                          is_default_action=True)
        found = self.read([wanted])
        if not found:
            raise ReadError(f"{self.name}: no default entry returned for table {table}")
        return found[0].table_entry

    def read_counters(self, counter: str | int = 0, index: int | None = None
                      ) -> list[p4runtime_pb2.CounterEntry]:
        """Indirect counter cells (0: every counter; index None: every cell)."""
        counter_id = counter if isinstance(counter, int) else self._need_info().counter(
            counter).preamble.id
        wanted = p4runtime_pb2.CounterEntry(counter_id=counter_id)
        if index is not None:
            wanted.index.index = index
        return [e.counter_entry for e in self.read([wanted])]

    def read_pre_entries(self) -> list[p4runtime_pb2.PacketReplicationEngineEntry]:
        """Every multicast group (PI reads no clone sessions by wildcard)."""
        wanted = p4runtime_pb2.PacketReplicationEngineEntry()
        wanted.multicast_group_entry.SetInParent()  # id 0: every group
        return [e.packet_replication_engine_entry for e in self.read([wanted])]

    def _need_info(self) -> P4Info:
        if self.p4info is None:
            raise ReadError(f"{self.name}: a name needs the P4Info",
                            "pass p4info= to SwitchConnection")
        return self.p4info

    # -- packet I/O ---------------------------------------------------------------
    def packet_out(self, payload: bytes, metadata: Mapping[str | int, Any] | None = None
                   ) -> None:
        """Send a PacketOut on the stream; metadata by name (needs P4Info) or id."""
        request = p4runtime_pb2.StreamMessageRequest()
        request.packet.payload = payload
        header = None
        for key, value in (metadata or {}).items():
            if header is None and (isinstance(key, str) or not isinstance(value, bytes)):
                header = self._need_info().packet_metadata("packet_out")
            if header is not None:
                spec = next((m for m in header.metadata if key in (m.id, m.name)), None)
                if spec is None:
                    names = ", ".join(m.name for m in header.metadata)
                    raise ControllerError(f"packet_out has no metadata '{key}' "
                                          f"(it has: {names})")
                request.packet.metadata.add(metadata_id=spec.id,
                                            value=encode(value, spec.bitwidth, spec.name))
            else:
                request.packet.metadata.add(metadata_id=int(key), value=value)
        self._send(request)

    def packet_in(self, timeout: float | None = None) -> p4runtime_pb2.PacketIn | None:
        """The next PacketIn, or None after ``timeout`` seconds."""
        try:
            return self.packet_ins.get(timeout=timeout)
        except queue.Empty:
            return None

    # -- shutdown -------------------------------------------------------------------
    def close(self) -> None:
        """End the stream, its reader thread and the channel; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._requests is not None:
            self._requests.put(None)  # half-close: ends the request iterator
        if self._call is not None:
            self._call.cancel()
        if self._reader is not None:
            self._reader.join(timeout=max(self.timeout, 2))
        self.channel.close()
        with self._dump_lock:
            if self._dump is not None:
                self._dump.close()
                self._dump = None

    def __enter__(self) -> SwitchConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
