"""Packet header vector (PHV) layout: where every header and field lives.

Every field of every header instance (metadata, stack elements and union
members included) gets one slot in a flat list of ints, ``pkt.f``; every
header instance gets one validity slot in ``pkt.v`` (0 or 1).  Compiled code
refers to fields by slot number, so nothing is looked up by name per packet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

VALID_FIELD = "$valid$"
CORE_ERRORS = (
    "NoError", "PacketTooShort", "NoMatch", "StackOutOfBounds",
    "HeaderTooShort", "ParserTimeout", "ParserInvalidArgument",
)


@dataclass(frozen=True)
class FieldInfo:
    """One field of one header instance."""

    header: int
    name: str
    bitwidth: int  # 0 for a variable-length field
    signed: bool
    slot: int

    @property
    def mask(self) -> int:
        return (1 << self.bitwidth) - 1

    @property
    def is_varbit(self) -> bool:
        return self.bitwidth == 0


@dataclass
class HeaderInfo:
    """A header (or metadata) instance."""

    index: int
    name: str
    type_name: str
    metadata: bool
    fields: list[FieldInfo] = field(default_factory=list)
    varbit_index: int | None = None
    varbit_max_bytes: int = 0
    length_exp: Any = None
    union: int | None = None

    @property
    def fixed_bits(self) -> int:
        return sum(f.bitwidth for f in self.fields)

    @property
    def fixed_bytes(self) -> int:
        return (self.fixed_bits + 7) // 8

    def field_named(self, name: str) -> FieldInfo:
        for info in self.fields:
            if info.name == name:
                return info
        raise ConfigError(f"header '{self.name}' has no field '{name}'")

    def offset_of(self, name: str) -> int:
        for position, info in enumerate(self.fields):
            if info.name == name:
                return position
        raise ConfigError(f"header '{self.name}' has no field '{name}'")


@dataclass
class StackInfo:
    """A header stack (or header union stack, whose elements are unions)."""

    index: int
    name: str
    type_name: str
    elements: list[int]  # header indices (or union indices for union stacks)


@dataclass
class UnionInfo:
    index: int
    name: str
    headers: list[int]
    member_names: list[str]


class Layout:
    """All header instances of a program, with field slots assigned."""

    def __init__(self, program: dict[str, Any]) -> None:
        self.header_types: dict[str, list[tuple[str, Any, bool]]] = {}
        self.length_exps: dict[str, Any] = {}
        self.max_lengths: dict[str, int] = {}
        for htype in program.get("header_types", []):
            fields = []
            for spec in htype["fields"]:
                name, width = spec[0], spec[1]
                signed = bool(spec[2]) if len(spec) > 2 else False
                fields.append((name, width, signed))
            self.header_types[htype["name"]] = fields
            if "length_exp" in htype:
                self.length_exps[htype["name"]] = htype["length_exp"]
            if "max_length" in htype:
                self.max_lengths[htype["name"]] = htype["max_length"]

        self.headers: list[HeaderInfo] = []
        self.header_by_name: dict[str, HeaderInfo] = {}
        self.header_by_id: dict[int, HeaderInfo] = {}
        self.nslots = 0
        for hdr in program.get("headers", []):
            self._add_header(hdr)

        self.stacks: list[StackInfo] = []
        self.stack_by_name: dict[str, StackInfo] = {}
        for position, stack in enumerate(program.get("header_stacks", [])):
            elements = [self._by_id(i, stack["name"]).index for i in stack["header_ids"]]
            info = StackInfo(position, stack["name"], stack.get("header_type", ""), elements)
            self.stacks.append(info)
            self.stack_by_name[info.name] = info

        self.unions: list[UnionInfo] = []
        self.union_by_name: dict[str, UnionInfo] = {}
        self.union_by_id: dict[int, UnionInfo] = {}
        union_types = {
            t["name"]: [h[0] for h in t.get("headers", [])]
            for t in program.get("header_union_types", [])
        }
        for position, union in enumerate(program.get("header_unions", [])):
            members = [self._by_id(i, union["name"]).index for i in union["header_ids"]]
            info = UnionInfo(position, union["name"], members,
                             union_types.get(union.get("union_type", ""), []))
            for member in members:
                self.headers[member].union = position
            self.unions.append(info)
            self.union_by_name[info.name] = info
            self.union_by_id[union["id"]] = info

        self.union_stacks: list[StackInfo] = []
        self.union_stack_by_name: dict[str, StackInfo] = {}
        for position, stack in enumerate(program.get("header_union_stacks", [])):
            elements = [self.union_by_id[i].index for i in stack["header_union_ids"]]
            info = StackInfo(position, stack["name"], stack.get("union_type", ""), elements)
            self.union_stacks.append(info)
            self.union_stack_by_name[info.name] = info

        self.aliases: dict[str, tuple[str, str]] = {
            alias: (target[0], target[1]) for alias, target in program.get("field_aliases", [])
        }
        self.errors: dict[str, int] = {name: value for name, value in program.get("errors", [])}
        next_code = max(self.errors.values(), default=-1) + 1
        for core in CORE_ERRORS:  # as BMv2's ErrorCodeMap::add_core
            if core not in self.errors:
                self.errors[core] = next_code
                next_code += 1

    def _add_header(self, hdr: dict[str, Any]) -> None:
        type_name = hdr["header_type"]
        if type_name not in self.header_types:
            raise ConfigError(f"header '{hdr['name']}' has unknown type '{type_name}'")
        info = HeaderInfo(
            index=len(self.headers),
            name=hdr["name"],
            type_name=type_name,
            metadata=bool(hdr.get("metadata", False)),
            length_exp=self.length_exps.get(type_name),
            varbit_max_bytes=self.max_lengths.get(type_name, 0),
        )
        for name, width, signed in self.header_types[type_name]:
            if width == "*":
                info.varbit_index = len(info.fields)
                width = 0
            info.fields.append(FieldInfo(info.index, name, int(width), signed, self.nslots))
            self.nslots += 1
        self.headers.append(info)
        self.header_by_name[info.name] = info
        self.header_by_id[hdr["id"]] = info

    def _by_id(self, header_id: int, owner: str) -> HeaderInfo:
        try:
            return self.header_by_id[header_id]
        except KeyError:
            raise ConfigError(f"'{owner}' refers to unknown header id {header_id}") from None

    def header(self, name: str) -> HeaderInfo:
        """Header instance by name; ConfigError if unknown."""
        try:
            return self.header_by_name[name]
        except KeyError:
            raise ConfigError(f"unknown header instance '{name}'") from None

    def stack(self, name: str) -> StackInfo:
        try:
            return self.stack_by_name[name]
        except KeyError:
            raise ConfigError(f"unknown header stack '{name}'") from None

    def union(self, name: str) -> UnionInfo:
        try:
            return self.union_by_name[name]
        except KeyError:
            raise ConfigError(f"unknown header union '{name}'") from None

    def union_stack(self, name: str) -> StackInfo:
        try:
            return self.union_stack_by_name[name]
        except KeyError:
            raise ConfigError(f"unknown header union stack '{name}'") from None

    def field(self, header: str, name: str) -> FieldInfo | None:
        """Field by header and field name; None for the hidden ``$valid$`` field."""
        hdr = self.header(header)
        if name == VALID_FIELD:
            return None
        return hdr.field_named(name)

    def named_field(self, dotted: str) -> FieldInfo | None:
        """Field by ``header.field`` (field aliases such as intrinsic_metadata.* resolved)."""
        if dotted in self.aliases:
            return self.field(*self.aliases[dotted])
        header, _, name = dotted.rpartition(".")
        if header not in self.header_by_name:
            return None
        hdr = self.header_by_name[header]
        for info in hdr.fields:
            if info.name == name:
                return info
        return None

    def error_code(self, name: str) -> int:
        return self.errors[name]

    def error_name(self, code: int) -> str:
        for name, value in self.errors.items():
            if value == code:
                return name
        return str(code)
