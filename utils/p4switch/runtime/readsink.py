"""Where a Read's entities go: built in place inside ReadResponse messages."""

from __future__ import annotations

from collections.abc import Iterator

from p4protos import p4runtime_pb2

READ_CHUNK = 1000  # entities per ReadResponse


class ReadSink:
    """Hands out empty ``Entity`` messages already inside a ``ReadResponse``.

    Readers fill them in place, so no entity is copied; a new response starts
    every ``chunk`` entities so that a huge table streams in several messages.
    """

    def __init__(self, chunk: int = READ_CHUNK) -> None:
        self.chunk = chunk
        self.responses = [p4runtime_pb2.ReadResponse()]
        self._entities = self.responses[0].entities
        self._room = chunk
        self.count = 0

    def add(self) -> p4runtime_pb2.Entity:
        """A new, empty entity of the result."""
        if not self._room:
            response = p4runtime_pb2.ReadResponse()
            self.responses.append(response)
            self._entities = response.entities
            self._room = self.chunk
        self._room -= 1
        self.count += 1
        return self._entities.add()

    def entities(self) -> Iterator[p4runtime_pb2.Entity]:
        for response in self.responses:
            yield from response.entities
