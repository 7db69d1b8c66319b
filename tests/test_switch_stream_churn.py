"""10,000 StreamChannels opened and dropped against the switch process (half of them
arbitrated, so each briefly becomes primary): threads and RSS stay put, every one
leaves the election, and the switch forwards real packets meanwhile."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import crcmod.predefined
import grpc
import pytest
from procs import Namespaces, capture, captured, expected_out, flow, load_balance_s1, send_frames
from scapy.layers.inet import TCP
from scapy.layers.l2 import Ether

from p4runtime_lib import SwitchConnection, insert, table_entry
from p4runtime_lib.protos import p4runtime_pb2, p4runtime_pb2_grpc

CRC16 = crcmod.predefined.mkCrcFun("crc-16")
CYCLES, CONCURRENCY = 10_000, 50
# The first ~2,500 streams size gRPC's and the allocator's pools (+2.4 MiB measured on
# a quiet machine); after them the switch's RSS creeps by 0.3-0.5 MiB per 10,000
# streams (Python's heap, traced with tracemalloc, does not grow; 5,000 connections
# opened and closed leave RSS flat).  So the bound below is taken after this warm-up.
WARM_UP = 2_500
# Each listener and the sender is a fresh Python importing scapy, 1-4 s apiece on a
# loaded machine: the window must outlast both listeners' and the sender's start-up.
LISTEN_SECONDS = 12
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces")


@pytest.fixture
def s1(tmp_path: Path) -> Iterator[tuple[Namespaces, SwitchConnection, subprocess.Popen, Path]]:
    with load_balance_s1(tmp_path, f"c{os.getpid() % 10000}", pcap=False) as value:
        yield value


def status(pid: int) -> tuple[int, float]:
    """(threads, RSS in MiB) of a process, from /proc."""
    fields = dict(line.split(":", 1) for line in
                  Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["Threads"]), int(fields["VmRSS"].split()[0]) / 1024


async def churn(address: str, first: int, count: int) -> Counter[str]:
    """Open and drop ``count`` streams, CONCURRENCY at a time, four ways in turn:
    arbitrate then cancel; cancel once served; cancel at once; arbitrate then half-close."""
    channels = [grpc.aio.insecure_channel(address) for _ in range(10)]
    stubs = [p4runtime_pb2_grpc.P4RuntimeStub(c) for c in channels]
    outcomes: Counter[str] = Counter()
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(index: int) -> None:
        async with gate:
            call = stubs[index % len(stubs)].StreamChannel()
            way = index % 4
            try:
                if way == 2:
                    call.cancel()
                    outcomes["cancelled at once"] += 1
                    return
                await call.initial_metadata()
                if way == 1:
                    call.cancel()
                    outcomes["cancelled once served"] += 1
                    return
                request = p4runtime_pb2.StreamMessageRequest()
                request.arbitration.device_id = 0
                request.arbitration.election_id.low = 1000 + index  # above the controller's
                await call.write(request)
                answer = await call.read()
                outcomes[f"arbitrated: {answer.arbitration.status.message}"] += 1
                if way == 0:
                    call.cancel()
                else:
                    await call.done_writing()
                    while await call.read() is not grpc.aio.EOF:  # the server ends it: OK
                        pass
                    outcomes[f"half-closed: {(await call.code()).name}"] += 1
            except grpc.aio.AioRpcError as error:
                outcomes[f"error {error.code().name}"] += 1

    await asyncio.gather(*(one(first + i) for i in range(count)))
    for channel in channels:
        await channel.close()
    return outcomes


def test_ten_thousand_streams_opened_and_dropped(s1) -> None:
    ns, connection, process, _pcaps = s1
    address = connection.address
    asyncio.run(churn(address, 0, WARM_UP))  # the pool's threads, gRPC's buffers
    threads_before, rss_before = status(process.pid)
    sports = random.Random(11).sample(range(49152, 65536), 30)
    frames = [flow(s) for s in sports]
    outcomes: Counter[str] = Counter()
    began = time.monotonic()
    worker = threading.Thread(target=lambda: outcomes.update(
        asyncio.run(churn(address, WARM_UP, CYCLES))))
    worker.start()
    time.sleep(1.0)  # well into the churn
    listeners = {port: capture(ns, ns.names[port - 1], LISTEN_SECONDS) for port in (2, 3)}
    send_frames(ns, ns.names[0], frames)
    sent_during = worker.is_alive()
    got = {port: captured(p) for port, p in listeners.items()}
    ours = [f for port in (2, 3) for f in got[port] if TCP in Ether(f)]
    worker.join(timeout=300)
    elapsed = time.monotonic() - began
    time.sleep(1.0)  # the server finishes the last cancellations
    threads_after, rss_after = status(process.pid)
    # every churned stream left the election: the controller (0:1) is primary again
    connection.write([insert(table_entry(connection.p4info, "ecmp_group",
                                         {"hdr.ipv4.dstAddr": "10.9.9.9/32"},
                                         "set_ecmp_select",
                                         {"ecmp_base": 0, "ecmp_count": 1}))])
    print(f"{CYCLES} streams opened and dropped in {elapsed:.1f} s ({CONCURRENCY} at a time, "
          f"10 connections): {dict(outcomes)}; switch threads {threads_before} -> "
          f"{threads_after}, RSS {rss_before:.1f} -> {rss_after:.1f} MiB "
          f"({rss_after - rss_before:+.1f}); 30 flows sent during the churn: "
          f"{len(ours)} TCP frames out")
    assert sent_during
    assert sum(outcomes.values()) == CYCLES + CYCLES // 4  # the half-closed count twice
    # primary, or backup while a higher id of the churn was still there
    assert outcomes["arbitrated: Is primary"] + outcomes["arbitrated: Is backup"] == CYCLES // 2
    assert outcomes["half-closed: OK"] == CYCLES // 4
    assert not [k for k in outcomes if k.startswith("error")]
    assert threads_after == threads_before
    assert rss_after - rss_before < 5.0
    for sport, frame in zip(sports, frames):
        key = bytes([10, 0, 1, 1, 10, 0, 0, 1, 6]) + sport.to_bytes(2, "big") + b"\x04\xd2"
        port = 2 if CRC16(key) % 2 == 0 else 3
        assert expected_out(frame, port) in got[port], sport
    assert len(ours) == len(frames)  # nothing lost, nothing twice
