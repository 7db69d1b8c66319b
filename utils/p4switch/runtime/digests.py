"""Digests (learning): DigestEntry configuration and DigestList messages, as PI's DigestMgr.

Nothing is sent for a digest until the controller INSERTs its DigestEntry.
Samples are buffered into a list sent when it holds ``max_list_size`` samples,
``max_timeout_ns`` after its first sample, or at once when ``max_timeout_ns``
is 0.  With ``ack_timeout_ns`` > 0 a sample already sent is not sent again
until its list is acknowledged (DigestListAck) or ``ack_timeout_ns`` passes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from p4protos import p4runtime_pb2
from p4protos.bytestrings import int_to_bytes

from .errors import already_exists, invalid, not_found, unimplemented
from .readsink import ReadSink

Update = p4runtime_pb2.Update
Sample = tuple[int, ...]


@dataclass
class DigestState:
    """One P4Info digest: its configuration and what is buffered or awaiting an ack."""

    id: int
    name: str
    is_struct: bool
    config: Any = None  # p4.v1.DigestEntry once configured
    next_list_id: int = 1
    buffered: list[Sample] = field(default_factory=list)
    timer: threading.Timer | None = None
    sent: set[Sample] = field(default_factory=set)  # samples awaiting an ack
    unacked: dict[int, tuple[float, list[Sample]]] = field(default_factory=dict)


class DigestManager:
    """Digests of one pipeline; ``send`` delivers a StreamMessageResponse to the primary."""

    def __init__(self, p4info: Any,
                 send: Callable[[Any], None] | None = None) -> None:
        self.send = send  # set by the server: to the primary's stream
        self._lock = threading.Lock()
        self.digests: dict[int, DigestState] = {}
        self._by_name: dict[str, DigestState] = {}
        for digest in p4info.digests:
            state = DigestState(digest.preamble.id, digest.preamble.name,
                                digest.type_spec.HasField("struct"))
            self.digests[state.id] = state
            self._by_name[state.name] = state
            self._by_name.setdefault(state.name.rsplit(".", 1)[-1], state)

    # -- control plane --------------------------------------------------------------
    def write(self, update_type: int, entry: Any) -> None:
        """INSERT / MODIFY / DELETE of a DigestEntry (its configuration)."""
        state = self.digests.get(entry.digest_id)
        if state is None:
            raise not_found(f"{entry.digest_id} is not a valid digest id")
        with self._lock:
            if update_type == Update.INSERT:
                if state.config is not None:
                    raise already_exists(f"Digest {state.id} already configured")
            elif update_type in (Update.MODIFY, Update.DELETE):
                if state.config is None:
                    raise not_found(f"Digest {state.id} not configured")
            else:
                raise invalid("Invalid update type for DigestEntry")
            if update_type == Update.DELETE:
                self._reset(state)
            else:
                state.config = p4runtime_pb2.DigestEntry()
                state.config.CopyFrom(entry)

    def read(self, request: Any, sink: ReadSink) -> None:
        if request.digest_id == 0:
            raise unimplemented("digest_id must be set when reading DigestEntry")
        state = self.digests.get(request.digest_id)
        if state is None:
            raise not_found(f"{request.digest_id} is not a valid digest id")
        with self._lock:
            if state.config is None:
                raise not_found(f"Digest {state.id} not configured")
            sink.add().digest_entry.CopyFrom(state.config)

    def ack(self, ack: Any) -> None:
        """A DigestListAck: its samples may be sent again."""
        state = self.digests.get(ack.digest_id)
        if state is None:
            raise invalid(f"{ack.digest_id} is not a valid digest id")
        with self._lock:
            _stamp, samples = state.unacked.pop(ack.list_id, (0.0, []))
            state.sent.difference_update(samples)

    def close(self) -> None:
        """Stop every pending timer (the pipeline is being replaced)."""
        with self._lock:
            for state in self.digests.values():
                self._reset(state)

    # -- data plane -----------------------------------------------------------------
    def learn(self, name: str, values: list[int]) -> None:
        """A digest the program generated (``digest_sink`` of the switch)."""
        state = self._by_name.get(name)
        if state is None:
            return
        with self._lock:
            config = state.config
            if config is None:
                return
            sample = tuple(values)
            ack_timeout = config.config.ack_timeout_ns
            if ack_timeout > 0:
                self._expire(state, time.monotonic())
                if sample in state.sent:
                    return
                state.sent.add(sample)
            state.buffered.append(sample)
            limit, timeout = config.config.max_list_size, config.config.max_timeout_ns
            if timeout <= 0 or (limit > 0 and len(state.buffered) >= limit):
                self._flush(state)
            elif state.timer is None:
                state.timer = threading.Timer(timeout / 1e9, self._on_timer, (state,))
                state.timer.daemon = True
                state.timer.start()

    def _on_timer(self, state: DigestState) -> None:
        with self._lock:
            state.timer = None
            if state.buffered:
                self._flush(state)

    def _flush(self, state: DigestState) -> None:
        if state.timer is not None:
            state.timer.cancel()
            state.timer = None
        message = p4runtime_pb2.StreamMessageResponse()
        digest = message.digest
        digest.digest_id, digest.list_id = state.id, state.next_list_id
        digest.timestamp = time.monotonic_ns()
        for sample in state.buffered:
            data = digest.data.add()
            if state.is_struct:
                for value in sample:
                    data.struct.members.add().bitstring = int_to_bytes(value)
            elif len(sample) == 1:
                data.bitstring = int_to_bytes(sample[0])
            else:
                for value in sample:
                    data.tuple.members.add().bitstring = int_to_bytes(value)
        if state.config.config.ack_timeout_ns > 0:
            state.unacked[state.next_list_id] = (time.monotonic(), list(state.buffered))
        state.next_list_id += 1
        state.buffered = []
        if self.send is not None:
            self.send(message)

    @staticmethod
    def _expire(state: DigestState, now: float) -> None:
        """Forget lists not acknowledged within ack_timeout_ns."""
        limit = state.config.config.ack_timeout_ns / 1e9
        for list_id, (stamp, samples) in list(state.unacked.items()):
            if now - stamp >= limit:
                del state.unacked[list_id]
                state.sent.difference_update(samples)

    @staticmethod
    def _reset(state: DigestState) -> None:
        if state.timer is not None:
            state.timer.cancel()
        state.timer = None
        state.config = None
        state.buffered = []
        state.sent.clear()
        state.unacked.clear()
