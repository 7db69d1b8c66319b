"""The switch: one pipeline, numbered ports, packet-in/out and the packet log.

I/O threads call ``receive(port, frame)``; the P4Runtime server swaps the
pipeline and edits tables under ``lock``; frames the program sends to the CPU
port go to ``packet_in`` instead of a port.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Protocol, TextIO

from .engine import Pipeline, Result

BATCH = 256  # frames processed per lock acquisition


class Port(Protocol):
    """Anything that can transmit a frame (an AF_PACKET socket, a test double)."""

    name: str

    def send(self, frame: bytes) -> None: ...


class FrameObserver(Protocol):
    """Sees every frame received and sent on a port (pcap writers)."""

    def received(self, port: int, frame: bytes) -> None: ...

    def sent(self, port: int, frame: bytes) -> None: ...


class PacketLog:
    """BMv2-style per-packet trace for ``--log-console`` / ``--log-file``.

    The pipeline appends a packet's messages to a plain list; ``packet()`` turns
    them into lines (one time stamp per packet) and ``flush()`` writes what has
    accumulated with one ``write`` + ``flush`` per batch of frames: the trace costs
    list appends and one join, not a lock, a clock read and a system call per line.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._lock = threading.Lock()
        self._pending: list[str] = []
        self._stamp_ms = -1
        self._stamp = ""

    def _now(self) -> str:
        now_ms = int(time.time() * 1000)
        if now_ms != self._stamp_ms:
            seconds, millis = divmod(now_ms, 1000)
            self._stamp_ms = now_ms
            self._stamp = f"[{time.strftime('%H:%M:%S', time.localtime(seconds))}.{millis:03d}]"
        return self._stamp

    def packet(self, packet_id: str, messages: list[str]) -> None:
        """Queue one packet's messages; they are written at the next ``flush()``."""
        if not messages:
            return
        with self._lock:
            head = f"{self._now()} [p4switch] [D] [{packet_id}] [cxt 0] "
            self._pending.append(head + f"\n{head}".join(messages) + "\n")

    def packets(self, traced: list[tuple[str, list[str]]]) -> None:
        """``packet`` for each (packet id, messages) of ``traced``, one time stamp."""
        if not traced:
            return
        with self._lock:
            stamp = self._now()
            pending = self._pending
            for packet_id, messages in traced:
                head = f"{stamp} [p4switch] [D] [{packet_id}] [cxt 0] "
                pending.append(head + f"\n{head}".join(messages) + "\n")

    def flush(self) -> None:
        """Write the queued lines in one go."""
        with self._lock:
            if not self._pending:
                return
            text, self._pending = "".join(self._pending), []
            self.stream.write(text)
            self.stream.flush()

    def write(self, packet_id: str, message: str) -> None:
        """One line, written now."""
        self.packet(packet_id, [message])
        self.flush()


def fast_path_notice(pipeline: Pipeline) -> str | None:
    """Why this pipeline's packets take the slow path (or only the exact-header cache)."""
    cache = pipeline.cache
    if not cache.enabled:
        return f"no flow cache for this program ({cache.reason}): every packet takes the " \
               "slow path"
    if not cache.megaflows.enabled:
        return f"no megaflows for this program ({cache.megaflows.reason}): only frames " \
               "with identical headers are cached"
    return None


class Switch:
    """A P4 switch instance: device id, pipeline, ports."""

    def __init__(self, device_id: int = 0, cpu_port: int | None = None,
                 log: PacketLog | None = None,
                 notice: Callable[[str], None] | None = None) -> None:
        self.device_id = device_id
        self.cpu_port = cpu_port
        self.log = log
        self.notice = notice  # one line per pipeline that cannot use the fast path
        self.lock = threading.RLock()
        self.pipeline: Pipeline | None = None
        self.ports: dict[int, Port] = {}
        self.observers: list[FrameObserver] = []
        self.packet_in: Callable[[bytes], None] | None = None
        self.digest_sink: Callable[[int, str, list[int]], None] | None = None
        self._ids = itertools.count()

    def add_port(self, number: int, port: Port) -> None:
        self.ports[number] = port

    def set_pipeline(self, pipeline: Pipeline | None) -> None:
        """Install a new pipeline (or none: every frame is dropped); say once why its
        packets cannot use the fast path, if they cannot."""
        with self.lock:
            self.pipeline = pipeline
        if pipeline is not None and self.notice is not None:
            why = fast_path_notice(pipeline)
            if why:
                self.notice(why)

    def receive(self, port: int, frame: bytes) -> Result | None:
        """Process one frame received on ``port`` and transmit what comes out."""
        try:
            return self._receive(port, frame)
        finally:
            if self.log is not None:
                self.log.flush()

    def _receive(self, port: int, frame: bytes) -> Result | None:
        for observer in self.observers:
            observer.received(port, frame)
        packet_id = f"{next(self._ids)}.0"
        messages: list[str] = []
        trace = messages.append if self.log is not None else None
        try:
            if trace:
                trace(f"Processing packet received on port {port} ({len(frame)} bytes)")
            with self.lock:
                pipeline = self.pipeline
                if pipeline is None:
                    if trace:
                        trace("Dropping packet: no P4 program loaded")
                    return None
                result = pipeline.process(port, frame, time.monotonic(), trace)
                digests = list(result.digests)
            for egress, data in result.outputs:
                self.transmit(egress, data, trace)
        finally:
            if self.log is not None:
                self.log.packet(packet_id, messages)
        if self.digest_sink is not None:
            for digest in digests:
                self.digest_sink(*digest)
        return result

    def receive_batch(self, port: int, frames: list[bytes]) -> None:
        """Process frames received on ``port`` (the data plane's fast path).

        The trace log needs the per-frame path; without it frames go through
        the pipeline in chunks, under one lock each, observers seeing each one.
        """
        if self.log is not None:
            try:
                self._receive_traced(port, frames)
            finally:
                self.log.flush()
            return
        ports, cpu_port, observers = self.ports, self.cpu_port, self.observers
        for observer in observers:
            for frame in frames:
                observer.received(port, frame)
        for start in range(0, len(frames), BATCH):
            with self.lock:
                pipeline = self.pipeline
                if pipeline is None:
                    return
                outputs, digests = pipeline.process_many(port, frames[start:start + BATCH],
                                                         time.monotonic)
            for egress, data in outputs:
                target = ports.get(egress)
                if target is None or egress == cpu_port:
                    self.transmit(egress, data)
                else:
                    for observer in observers:
                        observer.sent(egress, data)
                    target.send(data)
            if digests and self.digest_sink is not None:
                for digest in digests:
                    self.digest_sink(*digest)

    def _receive_traced(self, port: int, frames: list[bytes]) -> None:
        """``receive_batch`` with the trace log: megaflow hits (their trace a template)
        served under one lock, their traces queued together; other frames one by one."""
        log, ids, observers = self.log, self._ids, self.observers
        assert log is not None
        traced: list[tuple[str, list[str]]] = []
        with self.lock:
            pipeline = self.pipeline
            for frame in frames:
                hit = pipeline.traced_hit(port, frame) if pipeline is not None else None
                if hit is None:
                    log.packets(traced)
                    traced = []
                    self._receive(port, frame)
                    continue
                for observer in observers:
                    observer.received(port, frame)
                messages = [f"Processing packet received on port {port} ({len(frame)} bytes)"]
                messages += hit[2]
                for egress, data in hit[0]:
                    self.transmit(egress, data, messages.append)
                traced.append((f"{next(ids)}.0", messages))
        log.packets(traced)

    def transmit(self, port: int, frame: bytes,
                 trace: Callable[[str], None] | None = None) -> None:
        """Send a frame out of ``port`` (or to the controller for the CPU port)."""
        if port == self.cpu_port and self.cpu_port is not None:
            if self.packet_in is not None:
                self.packet_in(frame)
            elif trace:
                trace("No controller to receive a packet-in; dropped")
            return
        target = self.ports.get(port)
        if target is None:
            if trace:
                trace(f"Port {port} has no interface; packet dropped")
            return
        for observer in self.observers:
            observer.sent(port, frame)
        target.send(frame)

    def packet_out(self, frame: bytes) -> None:
        """A PacketOut from the controller: the frame enters on the CPU port."""
        if self.cpu_port is None:
            raise ValueError("no CPU port configured (start the switch with --cpu-port N)")
        self.receive(self.cpu_port, frame)
