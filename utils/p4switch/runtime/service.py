"""The P4Runtime gRPC server: ``grpc.aio`` on one event-loop thread, so an open
StreamChannel costs a coroutine, not a thread.

Open streams, idle or not, hold no thread: the loop reads and writes all of
them.  Capabilities and arbitration are answered on the loop itself; work that
may block (Write, Read, pipeline pushes, PacketOut, DigestListAck, all of which
wait for the switch's lock) runs in a small thread pool of ``max_workers``, so
the number of threads is fixed whatever the clients do.  The RPCs' logic is
P4RuntimeServicer's (server.py), called with a context that turns its
``abort()`` into the aio call's status.

Limits (Limits below), each answered with a status instead of a hang:
messages over ``max_message`` bytes get RESOURCE_EXHAUSTED from gRPC; a
StreamChannel beyond ``max_streams`` open ones gets RESOURCE_EXHAUSTED; each
stream queues at most ``outbox`` messages for a client that does not read it:
PacketIns and DigestLists beyond are dropped (counted in ``Server.stats`` and
reported on stderr when the stream ends), and a message that must not be
dropped (arbitration, stream error) ends the stream with RESOURCE_EXHAUSTED.

    server = serve(switch, "127.0.0.1:50051")
    ...
    server.stop(0.5).wait(2)
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from p4protos import code_pb2, p4runtime_pb2, p4runtime_pb2_grpc
from p4switch.switch import Switch

from .arbitration import Close, Connection
from .errors import P4RuntimeError, exhausted
from .server import MAX_MESSAGE, P4RuntimeServicer

WORKERS = 4  # threads for blocking work; they mostly queue on the switch's lock
START_TIMEOUT = 10.0


class ServeError(RuntimeError):
    """The gRPC server could not start (address busy or invalid)."""


class BadAddress(ServeError):
    """The address is not ``HOST:PORT`` (no other switch can be the cause)."""


class Aborted(Exception):
    """A sync handler's ``context.abort()``: the status to end the aio call with."""

    def __init__(self, code: grpc.StatusCode, details: str,
                 trailing: tuple[tuple[str, Any], ...]) -> None:
        super().__init__(details)
        self.code, self.details, self.trailing = code, details, trailing


class SyncContext:
    """What P4RuntimeServicer's handlers use of a ServicerContext, in a worker thread."""

    def __init__(self) -> None:
        self.trailing: tuple[tuple[str, Any], ...] = ()

    def set_trailing_metadata(self, metadata: tuple[tuple[str, Any], ...]) -> None:
        self.trailing = tuple(metadata)

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise Aborted(code, details, self.trailing)


class Malformed:
    """A request whose bytes do not parse: the handler answers INTERNAL, as gRPC does."""

    def __init__(self, type_name: str, error: DecodeError) -> None:
        self.message = f"cannot parse the request as {type_name}: {error}"


def parser(message_type: Any) -> Callable[[bytes], Any]:
    """A request deserializer that returns Malformed instead of raising (aio would
    answer UNKNOWN and log a traceback)."""

    def parse(data: bytes) -> Any:
        try:
            return message_type.FromString(data)
        except DecodeError as error:
            return Malformed(message_type.DESCRIPTOR.full_name, error)

    return parse


@dataclass(frozen=True)
class Limits:
    """What one server accepts (see the module's docstring and README's limits table)."""

    max_message: int = MAX_MESSAGE  # bytes per message, either way
    max_streams: int = 4096  # open StreamChannels (an idle one costs ~30 KiB)
    outbox: int = 1024  # messages waiting for one stream's client


@dataclass
class StreamStats:
    """Counters over the server's life (read them from any thread)."""

    open: int = 0  # StreamChannels open now
    opened: int = 0  # StreamChannels served so far
    refused: int = 0  # StreamChannels refused: max_streams were open
    dropped: int = 0  # PacketIns/DigestLists dropped: their client did not read
    overflowed: int = 0  # streams ended: a message that cannot be dropped did not fit


def droppable(item: Any) -> bool:
    """PacketIns and DigestLists may be dropped for a slow client (as a NIC would)."""
    return isinstance(item, p4runtime_pb2.StreamMessageResponse) and \
        item.WhichOneof("update") in ("packet", "digest")


class Outbox:
    """One stream's messages for its client, at most ``limit`` waiting; ``deliver``
    may be called from any thread, the rest runs on the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int, stats: StreamStats,
                 on_overflow: Callable[[], None]) -> None:
        self.loop = loop
        self.limit = limit
        self.stats = stats
        self.on_overflow = on_overflow
        self.items: deque[Any] = deque()
        self.ready = asyncio.Event()
        self.closed = False  # a Close is queued: nothing more goes in
        self.dropped = 0

    def deliver(self, item: Any) -> None:
        """Queue a message or Close (dropped once the loop is closed: the server stopped)."""
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self._put, item)

    def _put(self, item: Any) -> None:
        if self.closed:
            return
        if isinstance(item, Close) or len(self.items) < self.limit:
            self.closed = isinstance(item, Close)
            self.items.append(item)
        elif droppable(item):
            self.dropped += 1
            self.stats.dropped += 1
            return
        else:  # arbitration or a stream error that does not fit: end the stream
            self.stats.overflowed += 1
            self.items.clear()
            self.closed = True
            self.items.append(Close(exhausted(
                f"StreamChannel closed: {self.limit} messages were waiting for the client to "
                "read them; read the stream (PacketIns beyond the limit are dropped)")))
            self.on_overflow()
        self.ready.set()

    async def get(self) -> Any:
        while not self.items:
            self.ready.clear()
            await self.ready.wait()
        return self.items.popleft()


class AsyncP4Runtime(p4runtime_pb2_grpc.P4RuntimeServicer):
    """The aio face of a P4RuntimeServicer: blocking handlers go to ``pool``."""

    def __init__(self, servicer: P4RuntimeServicer, pool: futures.ThreadPoolExecutor,
                 limits: Limits, stats: StreamStats) -> None:
        self.servicer = servicer
        self.pool = pool
        self.limits = limits
        self.stats = stats

    async def _blocking(self, handler: Callable[[Any, Any], Any], request: Any,
                        context: grpc.aio.ServicerContext) -> Any:
        """Run a sync handler in the pool; its abort becomes this call's status."""
        await self._check_parsed(request, context)
        sync_context = SyncContext()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.pool, handler, request, sync_context)
        except Aborted as aborted:
            await context.abort(aborted.code, aborted.details,
                                trailing_metadata=aborted.trailing)

    @staticmethod
    async def _check_parsed(request: Any, context: grpc.aio.ServicerContext) -> None:
        if isinstance(request, Malformed):
            await context.abort(grpc.StatusCode.INTERNAL, request.message)

    async def Capabilities(self, request: Any,  # noqa: N802
                           context: grpc.aio.ServicerContext) -> Any:
        await self._check_parsed(request, context)
        return self.servicer.Capabilities(request, SyncContext())  # constant: on the loop

    async def Write(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        return await self._blocking(self.servicer.Write, request, context)

    async def Read(self, request: Any,  # noqa: N802
                   context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        responses = await self._blocking(
            lambda message, sync: list(self.servicer.Read(message, sync)), request, context)
        for response in responses:
            yield response

    async def SetForwardingPipelineConfig(self, request: Any,  # noqa: N802
                                          context: grpc.aio.ServicerContext) -> Any:
        return await self._blocking(self.servicer.SetForwardingPipelineConfig, request,
                                    context)

    async def GetForwardingPipelineConfig(self, request: Any,  # noqa: N802
                                          context: grpc.aio.ServicerContext) -> Any:
        return await self._blocking(self.servicer.GetForwardingPipelineConfig, request,
                                    context)

    async def StreamChannel(self, request_iterator: Any,  # noqa: N802
                            context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        stats = self.stats
        if stats.open >= self.limits.max_streams:
            stats.refused += 1
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                f"too many open StreamChannels (the limit is "
                                f"{self.limits.max_streams}); close unused ones")
        stats.open += 1
        stats.opened += 1
        loop = asyncio.get_running_loop()
        arbiter = self.servicer.arbiter
        connection: Connection | None = None
        outbox = Outbox(loop, self.limits.outbox, stats, lambda: arbiter.remove(connection))
        connection = Connection(outbox.deliver)
        reader = loop.create_task(self._read_stream(connection, outbox, request_iterator))
        try:
            await context.send_initial_metadata(())  # the client sees the stream is served
            while True:
                item = await outbox.get()
                if isinstance(item, Close):
                    if item.error is not None:
                        await context.abort(item.error.grpc_code, item.error.message)
                    return
                yield item
        finally:
            stats.open -= 1
            reader.cancel()
            arbiter.remove(connection)
            if outbox.dropped:
                print(f"p4switch: warning: {outbox.dropped} PacketIn/DigestList messages "
                      f"dropped for StreamChannel client {context.peer()}: it did not read "
                      f"its stream (at most {self.limits.outbox} wait)",
                      file=sys.stderr, flush=True)

    async def _read_stream(self, connection: Connection, outbox: Outbox,
                           requests: Any) -> None:
        """Handle the client's messages in order; close the stream when they end."""
        loop = asyncio.get_running_loop()
        try:
            async for request in requests:
                if outbox.closed:  # ending (overflow): the rest is not handled
                    return
                if isinstance(request, Malformed):
                    raise P4RuntimeError(code_pb2.INTERNAL, request.message)
                if request.WhichOneof("update") == "arbitration":  # quick: on the loop
                    self.servicer.stream_message(connection, request)
                else:  # PacketOut / DigestListAck wait for the switch's lock
                    await loop.run_in_executor(self.pool, self.servicer.stream_message,
                                               connection, request)
        except P4RuntimeError as error:  # arbitration errors end the stream, as in PI
            connection.close(error)
            return
        except Exception:  # noqa: BLE001 - the client went away or cancelled
            pass
        connection.close()


def handlers(service: AsyncP4Runtime) -> grpc.GenericRpcHandler:
    """p4.v1.P4Runtime's methods (as the generated code registers them), with
    requests parsed by ``parser``."""
    kinds = {"Write": grpc.unary_unary_rpc_method_handler,
             "Read": grpc.unary_stream_rpc_method_handler,
             "SetForwardingPipelineConfig": grpc.unary_unary_rpc_method_handler,
             "GetForwardingPipelineConfig": grpc.unary_unary_rpc_method_handler,
             "StreamChannel": grpc.stream_stream_rpc_method_handler,
             "Capabilities": grpc.unary_unary_rpc_method_handler}
    messages = {"Read": ("ReadRequest", "ReadResponse"),
                "StreamChannel": ("StreamMessageRequest", "StreamMessageResponse")}
    table = {}
    for method, kind in kinds.items():
        request, response = messages.get(method, (f"{method}Request", f"{method}Response"))
        table[method] = kind(getattr(service, method),
                             request_deserializer=parser(getattr(p4runtime_pb2, request)),
                             response_serializer=getattr(p4runtime_pb2,
                                                         response).SerializeToString)
    return grpc.method_handlers_generic_handler("p4.v1.P4Runtime", table)


class Server:
    """A started aio server on its own loop thread, stopped like a sync grpc.Server.

    ``bound_port`` is the port it listens on (useful with ``HOST:0``),
    ``servicer`` the P4RuntimeServicer, ``stats`` its StreamStats.
    """

    def __init__(self, servicer: P4RuntimeServicer, address: str,
                 credentials: grpc.ServerCredentials | None, max_workers: int,
                 limits: Limits) -> None:
        self.servicer = servicer
        self.limits = limits
        self.stats = StreamStats()
        self.pool = futures.ThreadPoolExecutor(max_workers=max_workers,
                                               thread_name_prefix="p4rt")
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="p4rt-loop",
                                       daemon=True)
        self.thread.start()
        self._server: grpc.aio.Server | None = None
        self._stopped = threading.Event()
        try:
            self.bound_port = self._call(self._start(address, credentials), START_TIMEOUT)
        except BaseException:
            self._close_loop()
            raise

    def _call(self, coroutine: Any, timeout: float | None) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    async def _start(self, address: str, credentials: grpc.ServerCredentials | None) -> int:
        options = [("grpc.max_receive_message_length", self.limits.max_message),
                   ("grpc.max_send_message_length", self.limits.max_message),
                   ("grpc.so_reuseport", 0)]
        server = grpc.aio.server(options=options)
        service = AsyncP4Runtime(self.servicer, self.pool, self.limits, self.stats)
        server.add_generic_rpc_handlers((handlers(service),))
        try:
            port = server.add_secure_port(address, credentials) if credentials is not None \
                else server.add_insecure_port(address)
        except RuntimeError:
            port = 0
        if not port:
            raise ServeError(f"cannot listen on {address} (address in use or invalid)")
        await server.start()
        self._server = server
        return port

    def stop(self, grace: float | None = None) -> threading.Event:
        """Cancel every call (after ``grace`` s for unary ones), close the port and the
        loop; returns once done, with an Event already set (as grpc.Server's)."""
        if not self._stopped.is_set():
            try:
                if self._server is not None:
                    self._call(self._server.stop(grace), (grace or 0) + 5)
            except (futures.TimeoutError, RuntimeError):
                pass  # stopping anyway
            finally:
                self._close_loop()
                self._stopped.set()
        return self._stopped

    def _close_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()
        self.pool.shutdown(wait=False, cancel_futures=True)


def check_address(address: str) -> None:
    """ServeError with the OS's reason if ``HOST:PORT`` cannot be bound."""
    host, _, port_text = address.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    try:
        port = int(port_text)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((host, port))
    except ValueError:
        raise BadAddress(f"bad address '{address}': expected HOST:PORT") from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ServeError(f"cannot listen on {address}: {reason}") from None


def serve(switch: Switch, address: str = "127.0.0.1:9559",
          credentials: grpc.ServerCredentials | None = None,
          max_workers: int = WORKERS, limits: Limits | None = None) -> Server:
    """Start the P4Runtime server for ``switch`` on ``address``; returns the Server."""
    check_address(address)
    return Server(P4RuntimeServicer(switch), address, credentials, max_workers,
                  limits or Limits())


__all__ = ["AsyncP4Runtime", "Limits", "ServeError", "Server", "StreamStats", "serve"]
