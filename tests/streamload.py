"""Control-plane load on a P4Runtime server, from its own process (grpc.aio, no
thread per call): idle StreamChannels that never send arbitration, and readers
that Read every table entry in a loop.

    python tests/streamload.py 127.0.0.1:50051 --streams 1000 --readers 100 \
        --read-interval 0.1

Prints one JSON line once every stream is served (the server sent its initial
metadata) and the readers are reading, then, when stdin closes, one JSON line
with the reads done, their errors and latencies, and how many streams are still
open.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from typing import Any

import grpc

from p4runtime_lib.protos import p4runtime_pb2, p4runtime_pb2_grpc


class Readers:
    """``count`` loops of Read(all table entries) over the given stubs, each starting a
    read every ``interval`` s (0: back to back)."""

    def __init__(self, stubs: list[Any], count: int, device_id: int,
                 interval: float) -> None:
        self.stubs = stubs
        self.count = count
        self.interval = interval
        self.request = p4runtime_pb2.ReadRequest(device_id=device_id)
        self.request.entities.add().table_entry.SetInParent()
        self.latencies: list[float] = []
        self.entities: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.stopping = asyncio.Event()
        self.started = asyncio.Event()

    async def loop(self, index: int) -> None:
        stub = self.stubs[index % len(self.stubs)]
        if self.interval:  # spread the readers' phases over one interval
            await asyncio.sleep(self.interval * index / self.count)
        while not self.stopping.is_set():
            began = time.monotonic()
            try:
                entities = 0
                async for response in stub.Read(self.request, timeout=10):
                    entities += len(response.entities)
                self.entities[entities] += 1
            except grpc.aio.AioRpcError as error:
                self.errors[error.code().name] += 1
            self.latencies.append(time.monotonic() - began)
            self.started.set()
            if self.interval:
                await asyncio.sleep(max(0.0, began + self.interval - time.monotonic()))

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)

        def at(share: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000, 1)

        return {"reads": len(ordered), "read_errors": dict(self.errors),
                "entities_per_read": {str(k): v for k, v in self.entities.items()},
                "read_ms_p50": at(0.5) if ordered else None,
                "read_ms_p99": at(0.99) if ordered else None,
                "read_ms_max": round(ordered[-1] * 1000, 1) if ordered else None}


async def idle_stream(stub: Any) -> Any:
    """A StreamChannel that sends nothing; returned once the server serves it."""
    call = stub.StreamChannel()
    await call.initial_metadata()
    return call


async def run(options: argparse.Namespace) -> None:
    channel_options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    stream_channels = [grpc.aio.insecure_channel(options.address, options=channel_options)
                       for _ in range(options.stream_channels)]
    reader_channels = [grpc.aio.insecure_channel(options.address, options=channel_options)
                       for _ in range(options.reader_channels)]
    stream_stubs = [p4runtime_pb2_grpc.P4RuntimeStub(c) for c in stream_channels]
    began = time.monotonic()
    calls = await asyncio.wait_for(asyncio.gather(*(
        idle_stream(stream_stubs[i % len(stream_stubs)]) for i in range(options.streams))),
        timeout=options.timeout)
    opened = time.monotonic() - began
    readers = Readers([p4runtime_pb2_grpc.P4RuntimeStub(c) for c in reader_channels],
                      options.readers, options.device_id, options.read_interval)
    tasks = [asyncio.create_task(readers.loop(i)) for i in range(options.readers)]
    if tasks:
        await asyncio.wait_for(readers.started.wait(), timeout=options.timeout)
    print(json.dumps({"ready": True, "streams": len(calls), "open_s": round(opened, 3),
                      "stream_channels": len(stream_channels), "readers": len(tasks),
                      "reader_channels": len(reader_channels)}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until EOF
    readers.stopping.set()
    await asyncio.gather(*tasks)
    still_open = sum(1 for call in calls if not call.done())
    for call in calls:
        call.cancel()
    for channel in stream_channels + reader_channels:
        await channel.close()
    print(json.dumps({"streams_still_open": still_open, **readers.summary()}), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address")
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--stream-channels", type=int, default=100,
                        help="TCP connections the streams share")
    parser.add_argument("--readers", type=int, default=100)
    parser.add_argument("--reader-channels", type=int, default=10)
    parser.add_argument("--read-interval", type=float, default=0.0,
                        help="seconds between one reader's reads (0: back to back)")
    parser.add_argument("--device-id", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=60.0)
    options = parser.parse_args(argv)
    try:
        asyncio.run(run(options))
    except (TimeoutError, grpc.aio.AioRpcError) as error:
        print(f"streamload: error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
