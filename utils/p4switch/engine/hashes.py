"""Hash algorithms and BMv2's calculations (bm_sim's ``calculations.cpp``).

The algorithms reproduce behavioral-model's ``calculations.cpp``: ``crc16`` is
CRC-16/ARC, ``crc32`` is CRC-32/ISO-HDLC (zlib's), ``crcCCITT`` is
CRC-16/CCITT-FALSE (binascii's ``crc_hqx`` with init 0xFFFF), ``csum16`` /
``cksum16`` the Internet checksum; ``crc*_custom`` default to BMv2's
parameters and can be reconfigured.  CRC-16/ARC and the custom CRCs are table
driven here because the standard library has no reflected 16-bit CRC.
"""

from __future__ import annotations

import array
import binascii
import functools
import random
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError
from .expressions import Namespace, identifier, parse_hexstr
from .layout import Layout

HashFn = Callable[[bytes], int]


def _reflect(value: int, width: int) -> int:
    result = 0
    for _ in range(width):
        result = (result << 1) | (value & 1)
        value >>= 1
    return result


@dataclass(frozen=True)
class CrcConfig:
    """Parameters of a CRC (BMv2 ``crc_config_t``)."""

    width: int
    polynomial: int
    initial: int
    final_xor: int
    reflect_data: bool
    reflect_remainder: bool


class Crc:
    """A table-driven CRC of any width from 8 to 64 bits.

    Fully reflected CRCs (the common case: CRC-16/ARC, CRC-32) run the
    LSB-first algorithm with a reflected table, so no bit reversal is needed
    per byte or per result.
    """

    def __init__(self, config: CrcConfig) -> None:
        self.config = config
        width = config.width
        self._mask = mask = (1 << width) - 1
        self._reflected = config.reflect_data and config.reflect_remainder
        if self._reflected:
            poly = _reflect(config.polynomial, width)
            table = []
            for dividend in range(256):
                remainder = dividend
                for _ in range(8):
                    remainder = (remainder >> 1) ^ poly if remainder & 1 else remainder >> 1
                table.append(remainder)
            self._initial = _reflect(config.initial, width)
        else:
            top = 1 << (width - 1)
            table = []
            for dividend in range(256):
                remainder = dividend << (width - 8)
                for _ in range(8):
                    remainder = ((remainder << 1) ^ config.polynomial) if remainder & top \
                        else (remainder << 1)
                    remainder &= mask
                table.append(remainder)
            self._initial = config.initial
        self._table = tuple(table)
        self._byte_map = tuple(_reflect(b, 8) for b in range(256)) if config.reflect_data \
            else tuple(range(256))
        # 16-bit reflected (crc16, BMv2's default): two bytes a step, with the table
        # built now and once per process, not on the first packet (it takes ~10 ms)
        self._pairs = _pair_table(self._table) if self._reflected and width == 16 else None

    def __call__(self, data: bytes) -> int:
        config = self.config
        table = self._table
        remainder = self._initial
        if self._pairs is not None and len(data) > 3:
            pairs = self._pairs
            even = len(data) & ~1
            words = array.array("H", data[:even])
            if sys.byteorder != "little":
                words.byteswap()
            for word in words:
                remainder = pairs[remainder ^ word]
            if even != len(data):
                remainder = table[(remainder ^ data[-1]) & 0xFF] ^ (remainder >> 8)
            return remainder ^ config.final_xor
        if self._reflected:
            for byte in data:
                remainder = table[(remainder ^ byte) & 0xFF] ^ (remainder >> 8)
            return remainder ^ config.final_xor
        byte_map, mask = self._byte_map, self._mask
        shift = config.width - 8
        for byte in data:
            remainder = table[byte_map[byte] ^ (remainder >> shift)] ^ ((remainder << 8) & mask)
        if config.reflect_remainder:
            remainder = _reflect(remainder, config.width)
        return remainder ^ config.final_xor


@functools.lru_cache(maxsize=4)
def _pair_table(table: tuple[int, ...]) -> array.array:
    """For a reflected 16-bit CRC with byte ``table``: the remainder after two zero
    bytes, per remainder (the two data bytes are XORed into the remainder first,
    little end first).  An array of 16-bit values, 128 KiB (a tuple of ints is 2.5 MiB)."""
    step = array.array("H", [table[r & 0xFF] ^ (r >> 8) for r in range(1 << 16)])
    return array.array("H", [step[r] for r in step])


CRC16_ARC = CrcConfig(16, 0x8005, 0x0000, 0x0000, True, True)
CUSTOM_DEFAULTS = {
    "crc8_custom": CrcConfig(8, 0x07, 0x00, 0x00, False, False),
    "crc16_custom": CRC16_ARC,
    "crc32_custom": CrcConfig(32, 0x04C11DB7, 0xFFFFFFFF, 0xFFFFFFFF, True, True),
    "crc64_custom": CrcConfig(64, 0x1B, 0, 0, True, True),
}


def csum16(data: bytes) -> int:
    """Internet checksum (RFC 1071) of ``data``, zero-padded to even length."""
    if len(data) & 1:
        data += b"\x00"
    total = int.from_bytes(data, "big")
    folded = total % 0xFFFF  # 2**16 == 1 (mod 0xFFFF): the one's complement sum
    if folded == 0 and total:
        folded = 0xFFFF
    return ~folded & 0xFFFF


def identity(data: bytes) -> int:
    """The first (up to) 8 bytes as a big-endian integer."""
    return int.from_bytes(data[:8], "big")


def _xor_hash(word_bytes: int) -> HashFn:
    def xor_hash(data: bytes) -> int:
        result = 0
        full = len(data) - len(data) % word_bytes
        for start in range(0, full, word_bytes):
            result ^= int.from_bytes(data[start:start + word_bytes], "big")
        tail = data[full:]
        if tail:
            result ^= int.from_bytes(tail, "big") << (8 * (word_bytes - len(tail)))
        return result
    return xor_hash


class RoundRobin:
    """BMv2 ``round_robin``: 0, 1, 2, ... regardless of input."""

    def __init__(self) -> None:
        self.next = 0

    def __call__(self, data: bytes) -> int:
        self.next += 1
        return self.next - 1


class RoundRobinConsistent:
    """BMv2 ``round_robin_consistent``: a new index per distinct input."""

    def __init__(self) -> None:
        self.seen: dict[bytes, int] = {}

    def __call__(self, data: bytes) -> int:
        return self.seen.setdefault(bytes(data), len(self.seen))


def _xxh64() -> HashFn:
    try:
        import xxhash  # optional: only programs that use xxh64 need it
    except ImportError:
        raise ConfigError("hash algorithm 'xxh64' needs the 'xxhash' package "
                          "(pip install xxhash)") from None
    return lambda data: xxhash.xxh64_intdigest(data, 0)


def make_hash(algo: str) -> HashFn:
    """A fresh hash function for BMv2 algorithm name ``algo``."""
    if algo == "crc16":
        return Crc(CRC16_ARC)
    if algo == "crc32":
        return zlib.crc32
    if algo == "crcCCITT":
        return lambda data: binascii.crc_hqx(data, 0xFFFF)
    if algo in ("csum16", "cksum16"):
        return csum16
    if algo == "identity":
        return identity
    if algo == "xor16":
        return _xor_hash(2)
    if algo == "xor32":
        return _xor_hash(4)
    if algo in CUSTOM_DEFAULTS:
        return Crc(CUSTOM_DEFAULTS[algo])
    if algo == "round_robin":
        return RoundRobin()
    if algo == "round_robin_consistent":
        return RoundRobinConsistent()
    if algo == "random":
        return lambda data: random.getrandbits(64)
    if algo == "xxh64":
        return _xxh64()
    raise ConfigError(f"unsupported hash algorithm '{algo}'")


class Calculation:
    """A named calculation: a field list packed bit by bit, then hashed."""

    def __init__(self, name: str, algo: str, build: Callable[[Any], bytes]) -> None:
        self.name = name
        self.algo = algo
        self.hash = make_hash(algo)
        self.build = build
        self.build_lines: list[str] = []  # build's body over p, f and v, for inlining
        self.result_source = "out"  # the built input after build_lines

    def __call__(self, packet: Any) -> int:
        return self.hash(self.build(packet))


def compile_calculation(layout: Layout, ns: Namespace, calc: dict[str, Any]) -> Calculation:
    """A BMv2 JSON ``calculations`` entry (or an action selector's input) compiled: its
    fields, constants, headers and payload packed bit by bit as BMv2 does, then hashed."""
    body = ["acc = 0", "n = 0"]
    runs: list[tuple[str, list[tuple[str, int]]] | None] = []  # for the bytes form
    payload = False
    run: list[tuple[str, int]] = []  # consecutive fields of one guard, packed in one line
    guard = ""
    for element in calc.get("input", []):
        kind, value = element["type"], element.get("value")
        if kind != "field" and run:
            _flush(body, runs, guard, run)
            run = []
        if kind == "field":
            header = layout.header(value[0])
            info = layout.field(value[0], value[1])
            if info is None:
                term, width = f"v[{header.index}]", 1
            else:
                term = f"(f[{info.slot}] & {info.mask:#x})" if info.signed \
                    else f"f[{info.slot}]"
                width = info.bitwidth
            this_guard = "" if header.metadata else f"v[{header.index}]"
            if run and this_guard != guard:
                _flush(body, runs, guard, run)
                run = []
            guard = this_guard
            run.append((term, width))
        elif kind == "hexstr":
            runs.append(None)
            width = int(element["bitwidth"])
            constant = parse_hexstr(value) & ((1 << width) - 1)
            body.append(f"acc = (acc << {width}) | {constant:#x}; n += {width}")
        elif kind == "header":
            runs.append(None)
            header = layout.header(value)
            body += [f"if v[{header.index}]:",
                     f"    _x, _w = _hvalue(p, {header.index})",
                     "    acc = (acc << _w) | _x; n += _w"]
        elif kind == "payload":
            payload = True
        else:
            raise ConfigError(f"calculation '{calc['name']}': unsupported input '{kind}'")
    if run:
        _flush(body, runs, guard, run)
    packed = _bytes_lines(ns, runs)
    if packed is not None:
        body = packed
    else:
        body += ["pad = -n % 8", "out = (acc << pad).to_bytes((n + pad) // 8, 'big')"]
    result = "out + p.data[p.off:]" if payload else "out"
    build = ns.function(f"calc_input_{identifier(calc['name'])}", "p",
                        ["f = p.f", "v = p.v"] + body + [f"return {result}"])
    calculation = Calculation(calc["name"], calc["algo"], build)
    calculation.build_lines, calculation.result_source = body, result
    return calculation


def _flush(body: list[str], runs: list[Any], guard: str, run: list[tuple[str, int]]) -> None:
    """Append the packing line of ``run`` to ``body`` and the run to ``runs``."""
    body.append(_packed(guard, run))
    runs.append((guard, run))


STRUCT_CODES = {8: "B", 16: "H", 32: "I", 64: "Q"}


def _bytes_lines(ns: Namespace, runs: list[Any]) -> list[str] | None:
    """The input built as bytes, one ``struct`` pack per run of fields, when every
    element is a field and every run cuts into 8/16/32/64-bit groups (so each run is
    whole bytes and packing bit by bit gives the same bytes); else None."""
    if not runs or any(r is None for r in runs):
        return None
    lines = ["out = b''"]
    for guard, run in runs:
        codes, args, members, width = [], [], [], 0
        for term, bits in run:
            members.append((term, bits))
            width += bits
            if width in STRUCT_CODES:
                shift, parts = width, []
                for member, member_bits in members:
                    shift -= member_bits
                    parts.append(f"({member} << {shift})" if shift else member)
                codes.append(STRUCT_CODES[width])
                args.append(" | ".join(parts))
                members, width = [], 0
            elif width > 64:
                return None
        if members:
            return None
        packer = ns.bind(struct.Struct("!" + "".join(codes)).pack, "_PACK")
        line = f"out += {packer}({', '.join(args)})"
        lines.append(f"if {guard}: {line}" if guard else line)
    return lines


def _packed(guard: str, run: list[tuple[str, int]]) -> str:
    """One line appending the fields of ``run`` (term, width) to ``acc``, under ``guard``."""
    total = sum(width for _term, width in run)
    shift = total
    parts = []
    for term, width in run:
        shift -= width
        parts.append(f"({term} << {shift})" if shift else term)
    line = f"acc = (acc << {total}) | {' | '.join(parts)}; n += {total}"
    return f"if {guard}: {line}" if guard else line
