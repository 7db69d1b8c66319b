"""The v1model switch: parser -> ingress -> traffic manager -> egress -> deparser.

``Pipeline.process(port, frame, now)`` runs one received frame through the program
exactly as BMv2's simple_switch does (ingress_thread / egress_thread), and
returns the frames to transmit.  It reads no clock: ``now`` (seconds, the caller's
clock, e.g. ``time.monotonic()``) dates the packet for timestamps and meters, so
tests drive time.  Clones, resubmissions, recirculations and
multicast copies are handled synchronously, in the order BMv2 would create
them.  There are no queues, so queueing metadata reads as an empty queue.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .actions import DROP_PORT
from .control import apply_control
from .errors import ConfigError
from .fastpath import PACKET_ERRORS, build_fast_run
from .flowcache import FlowCache
from .megaflow import Learning
from .packet import (
    EGRESS_CLONE,
    INGRESS_CLONE,
    NORMAL,
    RECIRC,
    REPLICATION,
    RESUBMIT,
    PacketState,
)
from .program import Program
from .tables import Generation

MAX_PASSES = 64  # resubmit/recirculate loops BMv2 would run forever


@dataclass
class CloneSession:
    """A clone (mirroring) session: where copies go, and how long they may be."""

    replicas: list[tuple[int, int]]  # (egress port, instance / rid)
    class_of_service: int = 0
    packet_length_bytes: int = 0


class ReplicationEngine:
    """Multicast groups and clone sessions (BMv2's PRE and mirroring sessions).

    Change them through the methods: they tell flow caches that forwarding
    changed.  ``groups`` and ``sessions`` are for reading.
    """

    def __init__(self, generation: Generation | None = None) -> None:
        self.groups: dict[int, list[tuple[int, int]]] = {}
        self.sessions: dict[int, CloneSession] = {}
        self.generation = generation if generation is not None else Generation()

    def set_group(self, group: int, replicas: list[tuple[int, int]]) -> None:
        """Create or replace a multicast group: (egress port, rid) per copy."""
        self.groups[group] = list(replicas)
        self.generation.bump()

    def delete_group(self, group: int) -> None:
        del self.groups[group]
        self.generation.bump()

    def set_session(self, session: int, config: CloneSession) -> None:
        self.sessions[session] = config
        self.generation.bump()

    def delete_session(self, session: int) -> None:
        del self.sessions[session]
        self.generation.bump()

    def replicas(self, group: int) -> list[tuple[int, int]]:
        """(port, rid) copies of a group, by rid in first-seen order then by port."""
        by_rid: dict[int, list[int]] = {}
        for port, rid in self.groups.get(group, ()):
            by_rid.setdefault(rid, []).append(port)
        return [(port, rid) for rid, ports in by_rid.items() for port in sorted(set(ports))]

    def clear(self) -> None:
        self.groups.clear()
        self.sessions.clear()
        self.generation.bump()


@dataclass
class Result:
    """What came out of one received frame."""

    outputs: list[tuple[int, bytes]] = field(default_factory=list)
    digests: list[tuple[int, str, list[int]]] = field(default_factory=list)
    drops: int = 0
    error: str | None = None
    payload_offset: int = 0
    parsed_ok: bool = True


class Metadata:
    """Slots of the standard metadata fields simple_switch reads and writes."""

    NAMES = ("ingress_port", "egress_spec", "egress_port", "instance_type", "packet_length",
             "mcast_grp", "egress_rid", "parser_error", "checksum_error",
             "ingress_global_timestamp", "egress_global_timestamp", "enq_timestamp",
             "enq_qdepth", "deq_timedelta", "deq_qdepth")

    def __init__(self, program: Program) -> None:
        layout = program.layout
        for name in self.NAMES:
            info = (layout.named_field(f"standard_metadata.{name}")
                    or layout.named_field(f"intrinsic_metadata.{name}")
                    or layout.named_field(f"queueing_metadata.{name}"))
            setattr(self, name, info.slot if info is not None else None)
        for required in ("ingress_port", "egress_spec", "egress_port", "instance_type",
                         "packet_length"):
            if getattr(self, required) is None:
                raise ConfigError(f"the program has no standard_metadata.{required} "
                                  "(not a v1model program?)")


class Pipeline:
    """A loaded program plus its replication engine, ready to switch frames."""

    def __init__(self, program: Program, start: float = 0.0) -> None:
        self.program = program
        self.pre = ReplicationEngine(program.generation)
        self.meta = Metadata(program)
        self.ingress = program.controls.get("ingress")
        self.egress = program.controls.get("egress")
        self.start = start  # the caller's clock at load: timestamps count from here
        self.log_messages: list[str] = []
        self.learning: Learning | None = None  # see process
        self.cache = FlowCache(program)
        self.fused_ingress = program.fused_controls.get("ingress")
        self.fused_egress = program.fused_controls.get("egress")
        self._fast_run = build_fast_run(self, Result)  # _run without trace nor learning

    @classmethod
    def from_json(cls, text: bytes | str, start: float = 0.0) -> Pipeline:
        """Load a BMv2 JSON; ConfigError (one line) if it cannot run.  ``start``: the
        caller's clock now (``process``'s ``now`` minus it is the timestamp)."""
        holder: list[Pipeline] = []
        program = Program(text, lambda p, message: holder[0].log(p, message))
        pipeline = cls(program, start)
        holder.append(pipeline)
        return pipeline

    @property
    def tables(self) -> dict[str, Any]:
        return self.program.tables

    def log(self, p: Any, message: str) -> None:
        """``log_msg`` output: into the packet's trace, else kept for the switch log."""
        if p is not None and p.log is not None:
            p.log(message)
        else:
            self.log_messages.append(message)

    def _timestamp(self, p: PacketState) -> int:
        """Microseconds from load to the packet's arrival (BMv2's global timestamps)."""
        return int((p.now - self.start) * 1_000_000)

    # -- per packet ---------------------------------------------------------------
    def process(self, port: int, frame: bytes, now: float,
                trace: Callable[[str], None] | None = None) -> Result:
        """Switch one frame received on ``port`` at ``now`` (the caller's clock, seconds)."""
        frame = bytes(frame)
        if trace is not None:
            return self._process_traced(port, frame, now, trace)
        cache = self.cache if self.cache.enabled else None
        if cache is not None:
            if cache.generation.value != cache.seen_generation:
                cache.refresh()
            key = cache.key(port, frame)  # a frame seen before, byte for byte: cheapest
            hit = cache.entries.get(key)
            if hit is not None:
                cache.hits += 1
                offset, headers, drops, counted = hit
                self._replay(counted, len(frame))
                payload = frame[offset:]
                return Result([(out, head + payload) for out, head in headers], drops=drops)
            megaflows = cache.megaflows
            if megaflows.shapes and megaflows.enabled:
                found = megaflows.lookup(port, frame)
                if found is not None:
                    megaflows.hits += 1
                    cache.hits += 1
                    outputs, drops, counted = found
                    if counted:
                        self._replay(counted, len(frame))
                    return Result(outputs, drops=drops)
            cache.misses += 1
        counted = self.program.counted
        counted.clear()
        notes = Learning() if cache is not None and cache.megaflows.enabled else None
        if notes is None:
            result = self._fast_run(port, frame, now)
        else:
            self.learning = notes  # the parser's path, every output's validity, checksums
            try:
                result = self._run(port, frame, now, trace)
            finally:
                self.learning = None
        if cache is not None and result.error is None and result.parsed_ok:
            replay = [(entry, size - len(frame)) for entry, size in counted]
            cache.make_room()
            if notes is not None:  # a megaflow for the flow's next packets
                cache.megaflows.learn(port, frame, result.outputs, result.drops, notes, replay)
            # and the exact entry, for repeats of this very frame (one per miss)
            cache.store(key, frame, result.payload_offset, result.outputs, result.drops, replay)
        return result

    def process_many(self, port: int, frames: list[bytes], clock: Callable[[], float]
                     ) -> tuple[list[tuple[int, bytes]], list[tuple[int, str, list[int]]]]:
        """``process`` for each of ``frames`` received on ``port``, the caller holding the
        pipeline still (no control-plane change in between): every output in order and
        every digest.  Cache hits are served here, without a ``Result`` each; the rest go
        through ``process`` at ``clock()``."""
        outputs: list[tuple[int, bytes]] = []
        digests: list[tuple[int, str, list[int]]] = []
        append, extend, process = outputs.append, outputs.extend, self.process
        cache = self.cache
        if not cache.enabled:
            for frame in frames:
                result = process(port, frame, clock())
                extend(result.outputs)
                if result.digests:
                    digests.extend(result.digests)
            return outputs, digests
        if cache.generation.value != cache.seen_generation:
            cache.refresh()
        entries, span, keyed = cache.entries, cache.span, cache.keyed_on_length
        megaflows = cache.megaflows
        lookup = megaflows.lookup if megaflows.enabled else None
        hits = flow_hits = 0
        for frame in frames:
            hit = entries.get((port, frame[:span], len(frame)) if keyed else (port, frame[:span]))
            if hit is not None:
                hits += 1
                offset, headers, _drops, counted = hit
                for entry, extra in counted:
                    entry.packets += 1
                    entry.bytes += len(frame) + extra
                payload = frame[offset:]
                for out, head in headers:
                    append((out, head + payload))
                continue
            found = lookup(port, frame) if lookup is not None and megaflows.shapes else None
            if found is not None:
                flow_hits += 1
                found_outputs, _drops, counted = found
                for entry, extra in counted:
                    entry.packets += 1
                    entry.bytes += len(frame) + extra
                extend(found_outputs)
                continue
            result = process(port, frame, clock())  # a miss: the slow path, and learning
            extend(result.outputs)
            if result.digests:
                digests.extend(result.digests)
        cache.hits += hits + flow_hits
        megaflows.hits += flow_hits
        return outputs, digests

    def traced_hit(self, port: int, frame: bytes
                   ) -> tuple[list[tuple[int, bytes]], int, list[str]] | None:
        """A traced frame's (outputs, drops, trace messages) when a megaflow with a
        trace covers it (its counters counted), else None: ``process`` must run it."""
        cache = self.cache
        megaflows = cache.megaflows
        if not (cache.enabled and megaflows.enabled):
            return None
        if cache.generation.value != cache.seen_generation:
            cache.refresh()
        found = megaflows.lookup(port, frame) if megaflows.shapes else None
        template = megaflows.traces.get(megaflows.last_key) if found is not None else None
        if template is None:
            return None
        outputs, drops, counted = found
        megaflows.hits += 1
        cache.hits += 1
        if counted:
            self._replay(counted, len(frame))
        return outputs, drops, template.render(outputs)

    def _process_traced(self, port: int, frame: bytes, now: float,
                        trace: Callable[[str], None]) -> Result:
        """``process`` with a per-packet trace: a megaflow hit replays the trace its
        first packet wrote (``traced_hit``); a miss runs the slow path, and learns the
        megaflow and its trace when it can.  The exact-header cache is not used while
        tracing."""
        cache = self.cache
        megaflows = cache.megaflows
        if not (cache.enabled and megaflows.enabled):
            return self._run(port, frame, now, trace)
        hit = self.traced_hit(port, frame)
        if hit is not None:
            outputs, drops, messages = hit
            for message in messages:
                trace(message)
            return Result(outputs, drops=drops)
        cache.misses += 1
        counted = self.program.counted
        counted.clear()
        notes = Learning(messages=[])
        self.learning = notes
        try:
            result = self._run(port, frame, now, notes.messages.append)
        finally:
            self.learning = None
        for message in notes.messages:
            trace(message)
        if result.error is None and result.parsed_ok:
            replay = [(entry, size - len(frame)) for entry, size in counted]
            cache.make_room()
            megaflows.learn(port, frame, result.outputs, result.drops, notes, replay)
        return result

    @staticmethod
    def _replay(counted: list[tuple[Any, int]], size: int) -> None:
        """Count a cached result's direct counter hits again, as the slow path would."""
        for entry, extra in counted:
            entry.packets += 1
            entry.bytes += size + extra

    def _run(self, port: int, frame: bytes, now: float,
             trace: Callable[[str], None] | None) -> Result:
        result = Result()
        p = self.program.template.new(frame)
        p.log = trace
        p.now = now
        f, meta = p.f, self.meta
        f[meta.ingress_port] = port
        f[meta.packet_length] = len(frame)
        f[meta.instance_type] = NORMAL
        if meta.ingress_global_timestamp is not None:
            f[meta.ingress_global_timestamp] = self._timestamp(p)
        try:
            self._drain(deque([p]), result, trace, 0)
        except PACKET_ERRORS as exc:
            result.error = f"{type(exc).__name__}: {exc}"
            result.outputs.clear()
            if trace:
                trace(f"Packet dropped: {result.error}")
        return result

    def _drain(self, pending: deque[PacketState], result: Result,
               trace: Callable[[str], None] | None, passes: int) -> None:
        """Run the pending packets (resubmitted, recirculated) after ``passes`` passes."""
        while pending:
            passes += 1
            if passes > MAX_PASSES:
                result.error = f"more than {MAX_PASSES} resubmit/recirculate passes"
                break
            self._ingress(pending.popleft(), pending, result, trace)

    def _ingress(self, p: PacketState, pending: deque[PacketState], result: Result,
                 trace: Callable[[str], None] | None) -> None:
        program, meta, f = self.program, self.meta, p.f
        if program.parser is not None:
            learning = self.learning
            if learning is None:
                code = program.parser.parse(p, trace)
            else:
                visited = learning.visited.append
                if trace is None:
                    code = program.parser.parse(p, visited)
                else:
                    def both(message: str) -> None:
                        visited(message)
                        trace(message)
                    code = program.parser.parse(p, both)
                learning.code, learning.off = code, p.off
            if meta.parser_error is not None:
                f[meta.parser_error] = code
            if code != program.parser.no_error:
                result.parsed_ok = len(p.data) < self.cache.span
                if trace:
                    trace(f"Parser error: {program.layout.error_name(code)}")
        result.payload_offset = p.off
        checksum_error = 0
        for checksum in program.verify_checksums:
            if not checksum.verify_ok(p):
                checksum_error = 1
                if trace:
                    trace(f"Checksum '{checksum.name}' is not correct")
        if meta.checksum_error is not None:
            f[meta.checksum_error] = checksum_error
        if trace is None and self.fused_ingress is not None:
            self.fused_ingress(p)
        else:
            apply_control(self.ingress, p, trace)
        p.exit = False
        self._ingress_tail(p, f[meta.egress_spec], pending, result, trace)

    def _ingress_tail(self, p: PacketState, egress_spec: int, pending: deque[PacketState],
                      result: Result, trace: Callable[[str], None] | None) -> None:
        """After the ingress control: clones, digests, resubmission, multicast, egress."""
        program, meta, f = self.program, self.meta, p.f
        if p.clone_session:
            self._clone_ingress(p, pending, result, trace)
        if p.digest:
            name, slots = program.learn_lists.get(p.digest, ("", []))
            result.digests.append((p.digest, name, [f[slot] for _n, slot in slots]))
            p.digest = 0
        if p.resubmit:
            copy = self._fresh_copy(p, p.data, p.resubmit, RESUBMIT)
            copy.f[meta.packet_length] = len(p.data)
            p.resubmit = 0
            pending.append(copy)
            if trace:
                trace("Resubmitting packet")
            return
        mgid = f[meta.mcast_grp] if meta.mcast_grp is not None else 0
        if mgid:
            f[meta.instance_type] = REPLICATION
            if trace:
                trace(f"Replicating packet on multicast group {mgid}")
            self._multicast(p, mgid, pending, result, trace)
            return
        if egress_spec == DROP_PORT:
            result.drops += 1
            if trace:
                trace("Dropping packet at the end of ingress")
            return
        f[meta.instance_type] = NORMAL
        self._egress(p, egress_spec, pending, result, trace)

    def _multicast(self, p: PacketState, mgid: int, pending: deque[PacketState],
                   result: Result, trace: Callable[[str], None] | None) -> None:
        replicas = self.pre.replicas(mgid)
        if not replicas and trace:
            trace(f"Multicast group {mgid} has no replicas")
        for port, rid in replicas:
            if self.meta.egress_rid is not None:
                p.f[self.meta.egress_rid] = rid
            self._egress(p.copy(), port, pending, result, trace)

    def _egress(self, p: PacketState, port: int, pending: deque[PacketState], result: Result,
                trace: Callable[[str], None] | None) -> None:
        meta, f = self.meta, p.f
        if trace:
            trace(f"Egress port is {port}")
        f[meta.egress_port] = port
        f[meta.egress_spec] = (DROP_PORT + 1) & 0x1FF  # what BMv2 writes: 512 on 9 bits
        f[meta.packet_length] = p.length
        now = self._timestamp(p)
        if meta.egress_global_timestamp is not None:
            f[meta.egress_global_timestamp] = now
        if meta.enq_timestamp is not None:
            f[meta.enq_timestamp] = now
        if trace is None and self.fused_egress is not None:
            self.fused_egress(p)
        else:
            apply_control(self.egress, p, trace)
        p.exit = False
        self._egress_tail(p, port, pending, result, trace)

    def _egress_tail(self, p: PacketState, port: int, pending: deque[PacketState],
                     result: Result, trace: Callable[[str], None] | None) -> None:
        """After the egress control: clones, drop, checksums, deparser, recirculation."""
        program, meta, f = self.program, self.meta, p.f
        if p.clone_session:
            self._clone_egress(p, pending, result, trace)
        if f[meta.egress_spec] == DROP_PORT:
            result.drops += 1
            if trace:
                trace("Dropping packet at the end of egress")
            return
        for checksum in program.update_checksums:
            checksum.apply_update(p)
        frame = program.deparse(p) + p.data[p.off:]
        if p.truncate is not None:
            frame = frame[:p.truncate]
        if p.recirculate:
            copy = self._fresh_copy(p, frame, p.recirculate, RECIRC)
            copy.f[meta.packet_length] = len(frame)
            p.recirculate = 0
            pending.append(copy)
            if trace:
                trace("Recirculating packet")
            return
        if trace:
            if self.learning is not None and self.learning.messages is not None:
                self.learning.transmits.append(len(self.learning.messages))
            trace(f"Transmitting {len(frame)} bytes on port {port}")
        if self.learning is not None:  # conditions never read checksum targets (fielduse)
            self.learning.outputs.append((p.v[:], [c.condition is None or bool(c.condition(p))
                                           for c in program.update_checksums], p.truncate))
        result.outputs.append((port, frame))

    # -- copies -------------------------------------------------------------------
    def _fresh_copy(self, p: PacketState, data: bytes, field_list: int,
                    instance_type: int) -> PacketState:
        """A new packet with zeroed metadata except the preserved field list."""
        copy = self.program.template.new(data)
        copy.log, copy.now = p.log, p.now
        self._preserve(p, copy, field_list)
        copy.f[self.meta.instance_type] = instance_type
        return copy

    def _preserve(self, source: PacketState, copy: PacketState, field_list: int) -> None:
        for _name, slot in self.program.field_lists.get(field_list, ()):
            copy.f[slot] = source.f[slot]

    def _clone_ingress(self, p: PacketState, pending: deque[PacketState], result: Result,
                       trace: Callable[[str], None] | None) -> None:
        session_id = p.clone_session & 0xFFFF
        field_list = p.clone_field_list
        p.clone_session = p.clone_field_list = 0
        session = self.pre.sessions.get(session_id)
        if session is None:
            if trace:
                trace(f"Clone session {session_id} is not configured")
            return
        meta = self.meta
        for port, rid in session.replicas:
            copy = self.program.template.new(p.data)
            copy.log, copy.now = p.log, p.now
            copy.f[meta.ingress_port] = p.f[meta.ingress_port]
            if self.program.parser is not None:
                self.program.parser.parse(copy)
            self.program.template.reset_metadata(copy)
            self._preserve(p, copy, field_list)
            copy.f[meta.instance_type] = INGRESS_CLONE
            if meta.egress_rid is not None:
                copy.f[meta.egress_rid] = rid
            copy.length = len(p.data)
            self._send_clone(copy, port, session, pending, result, trace)

    def _clone_egress(self, p: PacketState, pending: deque[PacketState], result: Result,
                      trace: Callable[[str], None] | None) -> None:
        session_id = p.clone_session & 0xFFFF
        field_list = p.clone_field_list
        p.clone_session = p.clone_field_list = 0
        session = self.pre.sessions.get(session_id)
        if session is None:
            if trace:
                trace(f"Clone session {session_id} is not configured")
            return
        for port, rid in session.replicas:
            copy = p.copy()
            self.program.template.reset_metadata(copy)
            self._preserve(p, copy, field_list)
            copy.f[self.meta.instance_type] = EGRESS_CLONE
            if self.meta.egress_rid is not None:
                copy.f[self.meta.egress_rid] = rid
            self._send_clone(copy, port, session, pending, result, trace)

    def _send_clone(self, copy: PacketState, port: int, session: CloneSession,
                    pending: deque[PacketState], result: Result,
                    trace: Callable[[str], None] | None) -> None:
        if session.packet_length_bytes:
            copy.truncate = session.packet_length_bytes
        if trace:
            trace(f"Cloning packet to port {port}")
        self._egress(copy, port, pending, result, trace)
