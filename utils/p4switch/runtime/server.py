"""The ``p4.v1.P4Runtime`` RPCs, behaving like BMv2's PI server (served by service.py)."""

from __future__ import annotations

import gc
import threading
from typing import Any

import grpc
from google.protobuf import struct_pb2

from p4protos import code_pb2, p4runtime_pb2, p4runtime_pb2_grpc
from p4switch.engine import ConfigError
from p4switch.switch import Switch

from . import pre, profiles, resources
from .arbitration import Arbiter, Connection, election_id
from .config import PipelineConfig, unwrap_device_config
from .errors import (
    NO_PIPELINE,
    NOT_PRIMARY,
    BatchErrors,
    P4RuntimeError,
    abort_with_status,
    denied,
    invalid,
    not_found,
    precondition,
    stream_error,
    unimplemented,
)
from .packetio import packet_in_message, packet_out_frame
from .readsink import ReadSink
from .table_entries import insert_wire, write_table_entry
from .table_read import read_table_entries
from .transaction import apply_all_or_none

API_VERSION = "1.3.0"  # what PI's server advertises
MAX_MESSAGE = 256 * 1024 * 1024
SetAction = p4runtime_pb2.SetForwardingPipelineConfigRequest
INSERT, MODIFY = p4runtime_pb2.Update.INSERT, p4runtime_pb2.Update.MODIFY
ResponseType = p4runtime_pb2.GetForwardingPipelineConfigRequest
WriteRequest = p4runtime_pb2.WriteRequest
ATOMICITIES = (WriteRequest.CONTINUE_ON_ERROR, WriteRequest.ROLLBACK_ON_ERROR,
               WriteRequest.DATAPLANE_ATOMIC)
# What Capabilities adds in its ``experimental`` field (a google.protobuf.Struct):
# PI answers UNIMPLEMENTED to the two all-or-none atomicity modes, we implement them.
CAPABILITIES = struct_pb2.Struct()
CAPABILITIES.update({"write_atomicity": ["CONTINUE_ON_ERROR", "ROLLBACK_ON_ERROR",
                                         "DATAPLANE_ATOMIC"]})

WRITERS = {
    "table_entry": write_table_entry,
    "counter_entry": resources.write_counter,
    "direct_counter_entry": resources.write_direct_counter,
    "meter_entry": resources.write_meter,
    "direct_meter_entry": resources.write_direct_meter,
    "register_entry": resources.write_register,
    "value_set_entry": resources.write_value_set,
    "packet_replication_engine_entry": pre.write_pre,
    "action_profile_member": profiles.write_profile_member,
    "action_profile_group": profiles.write_profile_group,
    "digest_entry": lambda config, update_type, entry: config.digests.write(update_type, entry),
}

READERS = {
    "table_entry": read_table_entries,
    "counter_entry": resources.read_counters,
    "direct_counter_entry": resources.read_direct_counters,
    "meter_entry": resources.read_meters,
    "direct_meter_entry": resources.read_direct_meters,
    "register_entry": resources.read_registers,
    "value_set_entry": resources.read_value_sets,
    "packet_replication_engine_entry": pre.read_pre,
    "action_profile_member": profiles.read_profile_members,
    "action_profile_group": profiles.read_profile_groups,
    "digest_entry": lambda config, request, sink: config.digests.read(request, sink),
}


def _entries_with_resources() -> p4runtime_pb2.TableEntry:
    """A read of every table entry with its direct counters and meters."""
    request = p4runtime_pb2.TableEntry()
    request.counter_data.SetInParent()
    request.meter_config.SetInParent()
    return request


# What RECONCILE_AND_COMMIT carries over, in dependency order: (entity, update type,
# read request maker or None for "all").
RECONCILED = (
    ("action_profile_member", INSERT, None),
    ("action_profile_group", INSERT, None),
    ("table_entry", INSERT, _entries_with_resources),
    ("packet_replication_engine_entry", INSERT, None),
    ("counter_entry", MODIFY, None),
    ("meter_entry", MODIFY, None),
    ("register_entry", MODIFY, None),
    ("value_set_entry", MODIFY, None),
)


def _fixed(config: PipelineConfig, entity: p4runtime_pb2.Entity) -> bool:
    """An entry of a const table: the P4 program, not the controller, made it."""
    if not entity.HasField("table_entry"):
        return False
    info = config.tables[entity.table_entry.table_id]
    return info.is_const or info.table.immutable


def unsupported_entity(kind: str | None) -> P4RuntimeError:
    """PI's answer for an entity it does not handle."""
    if kind is None:
        return P4RuntimeError(code_pb2.UNKNOWN, "Incorrect entity type")
    return unimplemented(f"{kind} is not supported by this switch")


SLICE = 64  # updates applied per hold of the switch's lock (CONTINUE_ON_ERROR)


class P4RuntimeServicer(p4runtime_pb2_grpc.P4RuntimeServicer):
    """Serves one switch (one device id)."""

    def __init__(self, switch: Switch) -> None:
        self.switch = switch
        self.arbiter = Arbiter(switch.device_id)
        self.config: PipelineConfig | None = None
        self.committed = True  # False between VERIFY_AND_SAVE and COMMIT
        self._config_lock = threading.Lock()
        switch.packet_in = self._packet_in
        switch.digest_sink = self._digest

    # -- checks -----------------------------------------------------------------
    def _check_device(self, device_id: int) -> None:
        if device_id != self.switch.device_id:
            raise not_found(f"Unknown device id {device_id} (this switch is device "
                            f"{self.switch.device_id})")

    def _check_primary(self, request: Any) -> None:
        """Only the primary writes; without any controller stream nobody does."""
        if self.arbiter.count() == 0 or not self.arbiter.is_primary(election_id(request)):
            raise denied(NOT_PRIMARY)

    def _require_config(self) -> PipelineConfig:
        config = self.config
        if config is None:
            raise precondition(NO_PIPELINE)
        return config

    @staticmethod
    def _abort(context: grpc.ServicerContext, error: P4RuntimeError) -> None:
        context.abort(error.grpc_code, error.message)

    # -- RPCs -------------------------------------------------------------------
    def Capabilities(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        response = p4runtime_pb2.CapabilitiesResponse(p4runtime_api_version=API_VERSION)
        response.experimental.Pack(CAPABILITIES)
        return response

    def Write(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        with self._config_lock:  # no pipeline push under a batch
            with self.switch.lock:
                try:
                    self._check_device(request.device_id)
                    self._check_primary(request)
                    config = self._require_config()
                    if request.atomicity not in ATOMICITIES:
                        raise invalid(f"Unknown atomicity {request.atomicity}")
                except P4RuntimeError as error:
                    self._abort(context, error)
            if request.atomicity == WriteRequest.CONTINUE_ON_ERROR:
                batch = self.apply_updates(config, request.updates)
            else:  # ROLLBACK_ON_ERROR, DATAPLANE_ATOMIC: see transaction.py
                with self.switch.lock:
                    batch = apply_all_or_none(config, request.updates, self.apply_one,
                                              READERS)
        if batch.failed:
            abort_with_status(context, batch.status())
        return p4runtime_pb2.WriteResponse()

    def apply_updates(self, config: PipelineConfig, updates: Any) -> BatchErrors:
        """Apply updates one by one (CONTINUE_ON_ERROR), recording each outcome.

        The switch's lock is taken per slice of ``SLICE`` updates, so the data plane
        forwards between slices instead of waiting for a whole big batch (this mode
        promises no atomicity; PI's does not either)."""
        batch = BatchErrors()
        # The cyclic GC would scan the growing tables over and over during a big
        # batch; entries form no cycles, so collection waits until the batch is done.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            for start in range(0, len(updates), SLICE):
                with self.switch.lock:
                    self._apply(config, updates[start:start + SLICE], batch)
        finally:
            if gc_was_enabled:
                gc.enable()
        return batch

    @staticmethod
    def _apply(config: PipelineConfig, updates: Any, batch: BatchErrors) -> None:
        results = batch.results
        for update in updates:
            if insert_wire(config, update.SerializeToString()):
                results.append(None)  # the common case, done inline from its bytes
                continue
            try:
                P4RuntimeServicer.apply_one(config, update)
                batch.ok()
            except P4RuntimeError as error:
                batch.error(error)

    @staticmethod
    def apply_one(config: PipelineConfig, update: Any) -> None:
        """Apply one update; P4RuntimeError says why it could not be."""
        kind = update.entity.WhichOneof("entity")
        writer = WRITERS.get(kind)
        if writer is None:
            raise unsupported_entity(kind)
        try:
            writer(config, update.type, getattr(update.entity, kind))
        except P4RuntimeError:
            raise
        except Exception as exc:  # a bug must not take the switch down
            raise P4RuntimeError(code_pb2.INTERNAL, f"{type(exc).__name__}: {exc}") from exc

    def Read(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        try:
            self._check_device(request.device_id)
            config = self._require_config()
            sink = ReadSink()
            with self.switch.lock:
                for entity in request.entities:
                    kind = entity.WhichOneof("entity")
                    reader = READERS.get(kind)
                    if reader is None:
                        raise unsupported_entity(kind)
                    reader(config, getattr(entity, kind), sink)
        except P4RuntimeError as error:
            self._abort(context, error)
        except Exception as exc:  # noqa: BLE001 - reported to the client, switch keeps going
            context.abort(grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}")
        yield from sink.responses

    def SetForwardingPipelineConfig(self, request: Any,  # noqa: N802
                                    context: grpc.ServicerContext) -> Any:
        try:
            self._check_device(request.device_id)
            self._check_primary(request)
            with self._config_lock:
                self._set_pipeline(request)
        except P4RuntimeError as error:
            self._abort(context, error)
        return p4runtime_pb2.SetForwardingPipelineConfigResponse()

    def _set_pipeline(self, request: Any) -> None:
        action = request.action
        if action == SetAction.UNSPECIFIED or action not in SetAction.Action.values():
            raise invalid("Invalid SetForwardingPipeline action")
        if action == SetAction.COMMIT:
            if self.config is None or self.committed:
                raise not_found("No saved forwarding pipeline config to COMMIT "
                                "(send VERIFY_AND_SAVE first)")
            self.switch.set_pipeline(self.config.pipeline)
            self.committed = True
            return
        config = self._load(request.config)
        if action == SetAction.VERIFY:
            return
        if action == SetAction.RECONCILE_AND_COMMIT and self.config is not None:
            self._reconcile(self.config, config)
        config.digests.send = self._to_primary
        with self.switch.lock:
            if self.config is not None:
                self.config.digests.close()
            self.config = config
            if action == SetAction.VERIFY_AND_SAVE:
                self.committed = False
            else:
                self.switch.set_pipeline(config.pipeline)
                self.committed = True

    @staticmethod
    def _load(proto: Any) -> PipelineConfig:
        if not proto.HasField("p4info") or not proto.p4info.tables and \
                not proto.p4info.actions:
            raise invalid("The forwarding pipeline config has no P4Info")
        device_config = unwrap_device_config(proto.p4_device_config)
        if not device_config:
            raise invalid("The forwarding pipeline config has no p4_device_config "
                          "(send the BMv2 JSON bytes)")
        cookie = proto.cookie.cookie if proto.HasField("cookie") else None
        try:
            config = PipelineConfig(proto.p4info, device_config, cookie)
        except ConfigError as exc:
            raise invalid(f"Invalid forwarding pipeline config: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - a JSON the engine trips over
            raise invalid(f"Invalid forwarding pipeline config: cannot load the BMv2 JSON "
                          f"({type(exc).__name__}: {exc})") from None
        config.original_device_config = proto.p4_device_config  # type: ignore[attr-defined]
        return config

    def _reconcile(self, old: PipelineConfig, new: PipelineConfig) -> None:
        """Replay the forwarding state of ``old`` into ``new`` (all or nothing: ``new``
        is not forwarding yet, so a failure leaves the switch as it was)."""
        updates = []
        with self.switch.lock:
            for kind, update_type, make_request in RECONCILED:
                sink = ReadSink()
                request = make_request() if make_request else getattr(p4runtime_pb2.Entity(),
                                                                      kind)
                READERS[kind](old, request, sink)
                updates.extend(p4runtime_pb2.Update(type=update_type, entity=entity)
                               for entity in sink.entities() if not _fixed(old, entity))
            for info in old.tables.values():
                if info.table.default is not info.table.initial_default:
                    sink = ReadSink()
                    read_table_entries(old, p4runtime_pb2.TableEntry(
                        table_id=info.id, is_default_action=True), sink)
                    updates.extend(p4runtime_pb2.Update(type=MODIFY, entity=entity)
                                   for entity in sink.entities())
        batch = self.apply_updates(new, updates)
        if batch.failed:
            first = next(r for r in batch.results if r is not None)
            raise P4RuntimeError(code_pb2.UNKNOWN,
                                 f"Error when reconciling config: {first.message}")

    def GetForwardingPipelineConfig(self, request: Any,  # noqa: N802
                                    context: grpc.ServicerContext) -> Any:
        try:
            self._check_device(request.device_id)
            config = self._require_config()
        except P4RuntimeError as error:
            self._abort(context, error)
        response = p4runtime_pb2.GetForwardingPipelineConfigResponse()
        kind = request.response_type
        if kind not in ResponseType.ResponseType.values():
            self._abort(context, invalid("Invalid response_type in "
                                         "GetForwardingPipelineConfigRequest"))
        out = response.config
        if kind in (ResponseType.ALL, ResponseType.P4INFO_AND_COOKIE):
            out.p4info.CopyFrom(config.p4info)
        if kind in (ResponseType.ALL, ResponseType.DEVICE_CONFIG_AND_COOKIE):
            out.p4_device_config = config.original_device_config  # type: ignore[attr-defined]
        if config.cookie is not None:
            out.cookie.cookie = config.cookie
        return response

    # -- stream -----------------------------------------------------------------
    def stream_message(self, connection: Connection, request: Any) -> None:
        """One StreamMessageRequest of ``connection``'s stream; a P4RuntimeError (from
        an arbitration update) ends the stream, as in PI."""
        kind = request.WhichOneof("update")
        if kind == "arbitration":
            self._arbitration(connection, request.arbitration)
        elif kind == "packet":
            self._guarded(connection, self._packet_out, request.packet)
        elif kind == "digest_ack":
            self._guarded(connection, self._digest_ack, request.digest_ack)

    @staticmethod
    def _guarded(connection: Connection, handler: Any, message: Any) -> None:
        """Run a stream message's handler; a bug becomes a stream error, not a dead stream."""
        try:
            handler(connection, message)
        except Exception as exc:  # noqa: BLE001 - reported to the client, stream goes on
            response = stream_error(code_pb2.INTERNAL, f"{type(exc).__name__}: {exc}")
            response.error.other.SetInParent()
            connection.send(response)

    def _arbitration(self, connection: Connection, update: Any) -> None:
        if connection.device_id is not None and update.device_id != connection.device_id:
            raise precondition("Invalid device id")
        if update.device_id != self.switch.device_id:
            raise not_found(f"Unknown device id {update.device_id} (this switch is device "
                            f"{self.switch.device_id})")
        if connection.election_id is None:
            self.arbiter.add(connection, election_id(update))
            connection.device_id = update.device_id
        else:
            self.arbiter.update(connection, election_id(update))

    def _packet_out(self, connection: Connection, packet: Any) -> None:
        if connection.election_id is None:
            return
        error = None
        if self.arbiter.primary() is not connection:
            error = denied(NOT_PRIMARY)
        elif self.config is None:
            error = precondition(NO_PIPELINE)
        elif self.switch.cpu_port is None:
            error = precondition("No CPU port: start the switch with --cpu-port N")
        else:
            try:
                frame = packet_out_frame(self.config.packet_out, packet)
            except P4RuntimeError as exc:
                error = exc
            else:
                self.switch.packet_out(frame)
        if error is not None:
            response = stream_error(error.code, error.message)
            response.error.packet_out.packet_out.CopyFrom(packet)
            connection.send(response)

    def _packet_in(self, frame: bytes) -> None:
        config = self.config
        if config is None:
            return
        message = packet_in_message(config.packet_in, frame)
        if message is not None:
            self._to_primary(message)

    def _to_primary(self, message: p4runtime_pb2.StreamMessageResponse) -> None:
        """Packet-ins and digests go to the primary only, as in PI."""
        primary = self.arbiter.primary()
        if primary is not None:
            primary.send(message)

    def _digest(self, _digest_id: int, name: str, values: list[int]) -> None:
        config = self.config
        if config is not None and self.committed:
            config.digests.learn(name, values)

    def _digest_ack(self, connection: Connection, ack: Any) -> None:
        config = self.config
        if connection.election_id is None or self.arbiter.primary() is not connection \
                or config is None:
            return  # PI: only the primary's acks count
        try:
            config.digests.ack(ack)
        except P4RuntimeError as error:
            response = stream_error(error.code, error.message)
            response.error.digest_list_ack.digest_list_ack.CopyFrom(ack)
            connection.send(response)


__all__ = ["API_VERSION", "MAX_MESSAGE", "P4RuntimeServicer"]
