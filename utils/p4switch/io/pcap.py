"""``--pcap DIR``: every frame received and sent, per interface, as BMv2 writes them.

Files are ``IFACE_in.pcap`` and ``IFACE_out.pcap`` in the classic libpcap
format (Ethernet link type, microsecond timestamps), flushed after each frame
so a reader sees them while the switch runs.  The format is two fixed structs;
writing them directly keeps the data path free of scapy's per-packet overhead.
"""

from __future__ import annotations

import struct
import threading
import time
from pathlib import Path
from typing import BinaryIO

GLOBAL_HEADER = struct.pack("=IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
RECORD_HEADER = struct.Struct("=IIII")


class PcapWriter:
    """One pcap file, written and flushed frame by frame."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO = open(path, "wb")  # noqa: SIM115 - lives as long as the switch
        self._file.write(GLOBAL_HEADER)
        self._file.flush()
        self._lock = threading.Lock()

    def write(self, frame: bytes, stamp: float | None = None) -> None:
        now = time.time() if stamp is None else stamp
        seconds = int(now)
        with self._lock:
            self._file.write(RECORD_HEADER.pack(seconds, int((now - seconds) * 1e6),
                                                len(frame), len(frame)))
            self._file.write(frame)
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


class PcapObserver:
    """A switch observer writing ``IFACE_in.pcap`` / ``IFACE_out.pcap`` per port."""

    def __init__(self, directory: Path, names: dict[int, str]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.inbound = {number: PcapWriter(directory / f"{name}_in.pcap")
                        for number, name in names.items()}
        self.outbound = {number: PcapWriter(directory / f"{name}_out.pcap")
                         for number, name in names.items()}

    def received(self, port: int, frame: bytes) -> None:
        writer = self.inbound.get(port)
        if writer is not None:
            writer.write(frame)

    def sent(self, port: int, frame: bytes) -> None:
        writer = self.outbound.get(port)
        if writer is not None:
            writer.write(frame)

    def close(self) -> None:
        for writer in (*self.inbound.values(), *self.outbound.values()):
            writer.close()
