"""Primary/backup election among StreamChannel connections (PI's DeviceState).

The connection with the highest election id is the primary.  Every
connection hears about its role when it arrives; when the primary changes,
all of them do.  A MasterArbitrationUpdate carries the primary's election id
and status OK ("Is primary") or ALREADY_EXISTS ("Is backup").
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from p4protos import code_pb2, p4runtime_pb2

from .errors import P4RuntimeError, invalid

ElectionId = tuple[int, int]


@dataclass
class Close:
    """Put in a connection's outbox to end its stream (with an error, or not)."""

    error: P4RuntimeError | None = None


class Connection:
    """One StreamChannel: its election id, and ``deliver``, which queues a message (or
    a Close) for the stream's writer; any thread may call send/close."""

    def __init__(self, deliver: Callable[[Any], None]) -> None:
        self.deliver = deliver
        self.election_id: ElectionId | None = None
        self.device_id: int | None = None

    def send(self, message: p4runtime_pb2.StreamMessageResponse) -> None:
        self.deliver(message)

    def close(self, error: P4RuntimeError | None = None) -> None:
        self.deliver(Close(error))


def election_id(message: Any) -> ElectionId:
    return message.election_id.high, message.election_id.low


class Arbiter:
    """Tracks the connections of one device and who is primary."""

    def __init__(self, device_id: int, max_connections: int = 64) -> None:
        self.device_id = device_id
        self.max_connections = max_connections
        self._lock = threading.Lock()
        self._connections: list[Connection] = []  # highest election id first

    def count(self) -> int:
        with self._lock:
            return len(self._connections)

    def primary(self) -> Connection | None:
        with self._lock:
            return self._connections[0] if self._connections else None

    def is_primary(self, candidate: ElectionId) -> bool:
        with self._lock:
            return bool(self._connections) and self._connections[0].election_id == candidate

    def add(self, connection: Connection, new_id: ElectionId) -> None:
        with self._lock:
            if len(self._connections) >= self.max_connections:
                raise P4RuntimeError(code_pb2.RESOURCE_EXHAUSTED, "Too many connections")
            if any(c.election_id == new_id for c in self._connections):
                raise invalid("Election id already exists")
            connection.election_id = new_id
            self._connections.append(connection)
            self._sort()
            if self._connections[0] is connection:
                self._notify_all()
            else:
                self._notify(connection)

    def update(self, connection: Connection, new_id: ElectionId) -> None:
        with self._lock:
            if connection.election_id == new_id:
                return
            if any(c.election_id == new_id for c in self._connections if c is not connection):
                raise invalid("New election id already exists")
            was_primary = self._connections[0] is connection
            connection.election_id = new_id
            self._sort()
            if was_primary != (self._connections[0] is connection):
                self._notify_all()
            else:
                self._notify(connection)

    def remove(self, connection: Connection) -> None:
        with self._lock:
            if connection not in self._connections:
                return
            was_primary = self._connections[0] is connection
            self._connections.remove(connection)
            if was_primary and self._connections:
                self._notify_all()

    def _sort(self) -> None:
        self._connections.sort(key=lambda c: c.election_id or (0, 0), reverse=True)

    def _notify(self, connection: Connection) -> None:
        primary = self._connections[0]
        response = p4runtime_pb2.StreamMessageResponse()
        update = response.arbitration
        update.device_id = self.device_id
        high, low = primary.election_id or (0, 0)
        update.election_id.high, update.election_id.low = high, low
        if connection is primary:
            update.status.code, update.status.message = code_pb2.OK, "Is primary"
        else:
            update.status.code, update.status.message = code_pb2.ALREADY_EXISTS, "Is backup"
        connection.send(response)

    def _notify_all(self) -> None:
        for connection in self._connections:
            self._notify(connection)
