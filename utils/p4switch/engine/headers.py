"""Header (de)serialisation and validity, as generated code and run-time helpers.

A fixed-size header is read with one ``int.from_bytes`` and split into its
fields with shifts and masks; it is written back the same way.  Headers with a
variable-length field go through the slower run-time helpers.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from .errors import ParserError
from .layout import HeaderInfo, Layout
from .packet import PacketState


class HeaderCodec:
    """Knows how to extract, emit, validate and move every header of a layout."""

    def __init__(self, layout: Layout, too_short: int, invalid_argument: int,
                 header_too_short: int, names: dict[str, Any] | None = None) -> None:
        self.layout = layout
        self.names = names  # the generated code's globals: struct packers go there
        self.too_short = too_short
        self.invalid_argument = invalid_argument
        self.header_too_short = header_too_short
        self.first_slot = tuple(h.fields[0].slot if h.fields else 0 for h in layout.headers)
        self.union_of = tuple(h.union for h in layout.headers)
        self.union_members = tuple(tuple(u.headers) for u in layout.unions)

    # -- generated code ---------------------------------------------------
    def extract_lines(self, header: HeaderInfo, base: str | None = None) -> list[str]:
        """Lines reading fixed-size ``header`` at ``data[off:]`` into its slots.

        With ``base`` (source of a first-slot number) the header is a stack
        element chosen at run time, so slots are ``base + k``.
        """
        nbytes = header.fixed_bytes
        lines = [f"if len(data) - off < {nbytes}: raise _PE({self.too_short}, off)"]
        if nbytes == 0:
            return lines
        groups = self._groups(header)
        if groups is not None:
            return lines + self._unpack_lines(header, groups, base) + [f"off += {nbytes}"]
        lines.append(f"x = int.from_bytes(data[off:off + {nbytes}], 'big')")
        shift = nbytes * 8
        for position, info in enumerate(header.fields):
            shift -= info.bitwidth
            slot = f"f[{base} + {position}]" if base else f"f[{info.slot}]"
            value = f"x >> {shift}" if shift else "x"
            if position or header.fixed_bits != nbytes * 8:
                value = f"({value}) & {info.mask:#x}"
            if info.signed:
                value = f"_tcm({value}, {info.bitwidth})"
            lines.append(f"{slot} = {value}")
        lines.append(f"off += {nbytes}")
        return lines

    def value_source(self, header: HeaderInfo, base: str | None = None) -> str:
        """Source of the header's fields packed into one int (fixed-size headers)."""
        parts = []
        shift = header.fixed_bits
        for position, info in enumerate(header.fields):
            shift -= info.bitwidth
            slot = f"f[{base} + {position}]" if base else f"f[{info.slot}]"
            # Unsigned slots always hold in-range values (every store truncates).
            term = f"({slot} & {info.mask:#x})" if info.signed else slot
            parts.append(f"({term} << {shift})" if shift else term)
        return " | ".join(parts) if parts else "0"

    def emit_source(self, header: HeaderInfo) -> str:
        """Source of the header's bytes (fixed-size headers)."""
        groups = self._groups(header)
        if groups is not None:
            args = []
            for _code, members in groups:
                parts = []
                for info, shift in members:
                    term = f"(f[{info.slot}] & {info.mask:#x})" if info.signed \
                        else f"f[{info.slot}]"
                    parts.append(f"({term} << {shift})" if shift else term)
                args.append(" | ".join(parts))
            return f"{self._struct(groups)}.pack({', '.join(args)})"
        return f"({self.value_source(header)}).to_bytes({header.fixed_bytes}, 'big')"

    GROUP_CODES = {8: "B", 16: "H", 32: "I", 64: "Q"}

    def _groups(self, header: HeaderInfo) -> list[tuple[str, list[tuple[Any, int]]]] | None:
        """The header's fields cut into 8/16/32/64-bit groups (struct codes), each field
        with its shift inside its group; None if they do not cut so (or no names)."""
        if self.names is None or header.fixed_bits != header.fixed_bytes * 8:
            return None
        groups: list[tuple[str, list[tuple[Any, int]]]] = []
        members: list[Any] = []
        width = 0
        for info in header.fields:
            members.append(info)
            width += info.bitwidth
            if width in self.GROUP_CODES:
                shift, placed = width, []
                for member in members:
                    shift -= member.bitwidth
                    placed.append((member, shift))
                groups.append((self.GROUP_CODES[width], placed))
                members, width = [], 0
            elif width > 64:
                return None
        return groups if not members and groups else None

    def _struct(self, groups: list[tuple[str, list[tuple[Any, int]]]]) -> str:
        """Name of the ``struct.Struct`` of ``groups`` in the generated code's globals."""
        fmt = "!" + "".join(code for code, _members in groups)
        name = "_STRUCT_" + fmt[1:]
        assert self.names is not None
        if name not in self.names:
            self.names[name] = struct.Struct(fmt)
        return name

    def _unpack_lines(self, header: HeaderInfo,
                      groups: list[tuple[str, list[tuple[Any, int]]]],
                      base: str | None) -> list[str]:
        """``extract_lines``' body with one ``unpack_from`` for all groups."""
        names = [f"_g{index}" for index in range(len(groups))]
        target = ", ".join(names) + ("," if len(names) == 1 else "")
        lines = [f"{target} = {self._struct(groups)}.unpack_from(data, off)"]
        position = 0
        for name, (code, members) in zip(names, groups):
            group_bits = 8 * struct.calcsize("!" + code)
            for info, shift in members:
                slot = f"f[{base} + {position}]" if base else f"f[{info.slot}]"
                value = f"{name} >> {shift}" if shift else name
                if shift + info.bitwidth != group_bits:
                    value = f"({value}) & {info.mask:#x}"
                if info.signed:
                    value = f"_tcm({value}, {info.bitwidth})"
                lines.append(f"{slot} = {value}")
                position += 1
        return lines

    def set_valid_source(self, index: str, header: HeaderInfo | None) -> str:
        """Statement marking header ``index`` valid (unions invalidate siblings)."""
        if header is not None and header.union is None:
            return f"v[{index}] = 1"
        if header is None and not self.layout.unions:
            return f"v[{index}] = 1"
        return f"_mkvalid(v, {index})"

    # -- run-time helpers -------------------------------------------------
    def make_valid(self, valid: list[int], index: int) -> None:
        """Mark a header valid; in a union, the previously valid member goes invalid."""
        union = self.union_of[index]
        if union is not None:
            for member in self.union_members[union]:
                valid[member] = 0
        valid[index] = 1

    def extract_varbit(self, packet: PacketState, data: bytes, off: int, index: int,
                       nbits: int) -> int:
        """Extract a header with a variable-length field of ``nbits``; return new offset."""
        header = self.layout.headers[index]
        if nbits % 8:
            raise ParserError(self.invalid_argument, off)
        total = header.fixed_bytes + nbits // 8
        if len(data) - off < total:
            raise ParserError(self.too_short, off)
        if header.varbit_max_bytes and header.varbit_max_bytes < total:
            raise ParserError(self.header_too_short, off)
        value = int.from_bytes(data[off:off + total], "big")
        shift = total * 8
        base = self.first_slot[index]
        for position, info in enumerate(header.fields):
            width = nbits if info.is_varbit else info.bitwidth
            shift -= width
            packet.f[base + position] = (value >> shift) & ((1 << width) - 1)
        packet.vl_bits[index] = nbits
        self.make_valid(packet.v, index)
        return off + total

    def header_value(self, packet: PacketState, index: int) -> tuple[int, int]:
        """(packed value, bit count) of any header, variable-length included."""
        header = self.layout.headers[index]
        base = self.first_slot[index]
        value = 0
        nbits = 0
        for position, info in enumerate(header.fields):
            width = packet.vl_bits.get(index, 0) if info.is_varbit else info.bitwidth
            value = (value << width) | (packet.f[base + position] & ((1 << width) - 1))
            nbits += width
        return value, nbits

    def header_bytes(self, packet: PacketState, index: int) -> bytes:
        value, nbits = self.header_value(packet, index)
        return value.to_bytes((nbits + 7) // 8, "big")

    def swap(self, packet: PacketState, first: int, second: int) -> None:
        """Exchange the values and validity of two headers of the same type."""
        f, v = packet.f, packet.v
        a, b = self.first_slot[first], self.first_slot[second]
        count = len(self.layout.headers[first].fields)
        f[a:a + count], f[b:b + count] = f[b:b + count], f[a:a + count]
        v[first], v[second] = v[second], v[first]
        vl = packet.vl_bits
        if first in vl or second in vl:
            vl_first, vl_second = vl.pop(first, None), vl.pop(second, None)
            if vl_second is not None:
                vl[first] = vl_second
            if vl_first is not None:
                vl[second] = vl_first

    def reset(self, packet: PacketState, index: int) -> None:
        """Zero a header's fields (BMv2 ``Header::reset``)."""
        base = self.first_slot[index]
        count = len(self.layout.headers[index].fields)
        packet.f[base:base + count] = [0] * count

    def copy(self, packet: PacketState, dst: int, src: int) -> None:
        """``assign_header``: dst takes src's validity and, when valid, its values."""
        if not packet.v[src]:
            packet.v[dst] = 0
            return
        self.make_valid(packet.v, dst)
        a, b = self.first_slot[dst], self.first_slot[src]
        count = len(self.layout.headers[dst].fields)
        packet.f[a:a + count] = packet.f[b:b + count]
        if src in packet.vl_bits:
            packet.vl_bits[dst] = packet.vl_bits[src]

    def equal(self, packet: PacketState, first: int, second: int) -> bool:
        """Header equality as BMv2's ``Header::cmp``: both invalid, or both valid and equal."""
        if not packet.v[first] and not packet.v[second]:
            return True
        if packet.v[first] != packet.v[second]:
            return False
        return self.header_value(packet, first) == self.header_value(packet, second)

    def union_equal(self, packet: PacketState, first: int, second: int) -> bool:
        members_a, members_b = self.union_members[first], self.union_members[second]
        return all(self.equal(packet, a, b) for a, b in zip(members_a, members_b))

    def helpers(self) -> dict[str, Callable[..., object]]:
        """Names the generated code uses for these helpers."""
        return {
            "_PE": ParserError,
            "_mkvalid": self.make_valid,
            "_hdr_eq": self.equal,
            "_union_eq": self.union_equal,
            "_extract_vl": self.extract_varbit,
            "_hswap": self.swap,
            "_hreset": self.reset,
            "_hcopy": self.copy,
            "_hbytes": self.header_bytes,
            "_hvalue": self.header_value,
        }
