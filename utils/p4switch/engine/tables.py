"""Match-action tables, their entries, and action profiles.

The control-plane API works on plain ints; translating P4Runtime bytestrings is
the server's business.  Match values are normalised per match kind:

========  ==============================  ================================
kind      value                           meaning
========  ==============================  ================================
exact     ``int``                         equal
valid     ``int`` (0 or 1)                header validity equal
lpm       ``(value, prefix_len)``         top ``prefix_len`` bits equal
ternary   ``(value, mask)``               ``key & mask == value``
optional  ``(value, mask)``, mask 0/all   wildcard or exact
range     ``(low, high)``                 ``low <= key <= high``
========  ==============================  ================================

Lookup is a dict for exact tables, one dict per prefix length (longest first)
for LPM tables, and a priority-ordered scan for everything else.  Higher
``priority`` wins, as in P4Runtime; ties go to the older entry.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from .errors import ConstTable, DuplicateEntry, EntryNotFound, InvalidEntry, TableFull

EXACT_KINDS = ("exact", "valid")
PRIORITY_KINDS = ("ternary", "range", "optional")


class Generation:
    """Counts control-plane changes; a flow cache is stale when the count moves."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def bump(self) -> None:
        self.value += 1


@dataclass(frozen=True)
class KeyField:
    """One element of a table key."""

    name: str
    match_kind: str
    bitwidth: int

    @property
    def mask(self) -> int:
        return (1 << self.bitwidth) - 1


@dataclass(frozen=True)
class ActionDef:
    """An action as a table sees it: name, parameters, compiled body."""

    name: str
    id: int
    params: tuple[tuple[str, int], ...]
    run: Callable[[Any, tuple[int, ...]], Any]


class ActionCall(NamedTuple):
    action: ActionDef
    args: tuple[int, ...]


class TableEntry:
    """A match entry; ``call`` for direct tables, ``member``/``group`` for indirect ones.

    A plain slotted class: tables hold many of them, and P4Runtime batches
    create thousands per request.
    """

    __slots__ = ("match", "priority", "call", "member", "group", "seq", "packets", "bytes",
                 "idle_timeout_ns", "controller_metadata", "metadata", "meter_config",
                 "meter_state", "tests")

    def __init__(self, match: tuple[Any, ...], priority: int, call: ActionCall | None,
                 member: int | None = None, group: int | None = None, seq: int = 0) -> None:
        self.match = match
        self.priority = priority
        self.call = call
        self.member = member
        self.group = group
        self.seq = seq
        self.packets = 0
        self.bytes = 0
        self.idle_timeout_ns = 0
        self.controller_metadata = 0
        self.metadata = b""
        self.meter_config: Any = None
        self.meter_state: Any = None
        self.tests: tuple[tuple[int, int, int, bool], ...] = ()

    def __repr__(self) -> str:
        return f"TableEntry(match={self.match!r}, priority={self.priority}, call={self.call!r})"


def check_match(key: Sequence[KeyField], match: Sequence[Any]) -> tuple[Any, ...]:
    """Validate a normalised match against the key; returns it as a tuple."""
    if len(match) != len(key):
        raise InvalidEntry(f"expected {len(key)} match fields, got {len(match)}")
    for spec, value in zip(key, match):
        kind, mask = spec.match_kind, spec.mask
        if kind in EXACT_KINDS:
            if not isinstance(value, int) or not 0 <= value <= mask:
                raise InvalidEntry(f"'{spec.name}': value {value!r} does not fit "
                                   f"in {spec.bitwidth} bits")
        elif kind == "lpm":
            prefix_value, length = value
            if not 0 <= length <= spec.bitwidth or not 0 <= prefix_value <= mask:
                raise InvalidEntry(f"'{spec.name}': bad prefix {value!r}")
            if prefix_value & ~prefix_mask(spec.bitwidth, length) & mask:
                raise InvalidEntry(f"'{spec.name}': bits set beyond the /{length} prefix")
        elif kind in ("ternary", "optional"):
            bits, bits_mask = value
            if not (0 <= bits <= mask and 0 <= bits_mask <= mask):
                raise InvalidEntry(f"'{spec.name}': value {value!r} does not fit "
                                   f"in {spec.bitwidth} bits")
            if bits & ~bits_mask:
                raise InvalidEntry(f"'{spec.name}': value has bits outside its mask")
        elif kind == "range":
            low, high = value
            if not (0 <= low <= high <= mask):
                raise InvalidEntry(f"'{spec.name}': bad range {value!r}")
        else:
            raise InvalidEntry(f"'{spec.name}': unsupported match kind '{kind}'")
    return tuple(match)


def prefix_mask(width: int, length: int) -> int:
    """Mask of the top ``length`` bits of a ``width``-bit value."""
    return ((1 << length) - 1) << (width - length)


class MatchTable:
    """A match-action table with BMv2's data-plane and control-plane behaviour."""

    def __init__(self, name: str, key: Sequence[KeyField], max_size: int,
                 actions: dict[str, ActionDef], default: ActionCall | None, *,
                 default_action_const: bool = False, default_entry_const: bool = False,
                 with_counters: bool = False, indirect: Any = None,
                 support_timeout: bool = False, generation: Generation | None = None) -> None:
        self.name = name
        self.key = tuple(key)
        self.max_size = max_size
        self.actions = actions
        self.with_counters = with_counters
        self.support_timeout = support_timeout
        self.indirect = indirect  # ActionProfile for indirect tables
        self.default_action_const = default_action_const
        self.default_entry_const = default_entry_const
        self.initial_default = default
        self.default = default
        self.immutable = False  # entries given in the JSON make the table const
        self.generation = generation if generation is not None else Generation()
        kinds = [k.match_kind for k in self.key]
        self.needs_priority = any(k in PRIORITY_KINDS for k in kinds)
        if all(k in EXACT_KINDS for k in kinds):
            self.strategy = "exact"
        elif kinds.count("lpm") == 1 and all(k in EXACT_KINDS + ("lpm",) for k in kinds):
            self.strategy = "lpm"
        else:
            self.strategy = "priority"
        self._single = len(self.key) == 1
        self._entries: dict[tuple[Any, int], TableEntry] = {}
        self._seq = itertools.count()
        self._exact: dict[Any, TableEntry] = {}
        self._lpm_pos = kinds.index("lpm") if self.strategy == "lpm" else -1
        self._lpm_levels: list[tuple[int, int, dict[Any, TableEntry]]] = []
        self._lpm_by_length: dict[int, dict[Any, TableEntry]] = {}
        self._sorted: list[TableEntry] = []
        self._sort_keys: list[tuple[int, int]] = []

    # -- data plane -----------------------------------------------------------
    def lookup(self, key: Any) -> TableEntry | None:
        """Entry matching ``key`` (an int for one-field keys, else a tuple)."""
        if self.strategy == "exact":
            return self._exact.get(key)
        if self.strategy == "lpm":
            if self._single:
                for mask, _length, bucket in self._lpm_levels:
                    entry = bucket.get(key & mask)
                    if entry is not None:
                        return entry
                return None
            pos = self._lpm_pos
            head, lpm_value, tail = key[:pos], key[pos], key[pos + 1:]
            for mask, _length, bucket in self._lpm_levels:
                entry = bucket.get(head + (lpm_value & mask,) + tail)
                if entry is not None:
                    return entry
            return None
        values = (key,) if self._single else key
        for entry in self._sorted:
            for pos, first, second, is_range in entry.tests:
                k = values[pos]
                if is_range:
                    if not first <= k <= second:
                        break
                elif k & first != second:
                    break
            else:
                return entry
        return None

    # -- control plane ----------------------------------------------------
    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> Iterator[TableEntry]:
        return iter(list(self._entries.values()))

    def find(self, match: Sequence[Any], priority: int = 0) -> TableEntry | None:
        return self._entries.get((tuple(match), priority if self.needs_priority else 0))

    def insert(self, match: Sequence[Any], call: ActionCall | None, priority: int = 0, *,
               member: int | None = None, group: int | None = None,
               force: bool = False, trusted: bool = False) -> TableEntry:
        """Add an entry; DuplicateEntry, TableFull, InvalidEntry or ConstTable on error.

        ``trusted``: the caller already validated the match and the action
        arguments (the P4Runtime server does, against the P4Info).
        """
        if self.immutable and not force:
            raise ConstTable(f"table '{self.name}' has const entries")
        if not trusted:
            match = check_match(self.key, match)
        priority = priority if self.needs_priority else 0
        identity = (match, priority)
        if identity in self._entries:
            raise DuplicateEntry(f"table '{self.name}' already has this entry")
        if len(self._entries) >= self.max_size:
            raise TableFull(f"table '{self.name}' is full ({self.max_size} entries)")
        if not trusted or self.indirect is not None:
            self._check_action(call, member, group)
        entry = TableEntry(match, priority, call, member, group, next(self._seq))
        self._entries[identity] = entry
        self._index(entry)
        self.generation.bump()
        return entry

    def modify(self, entry: TableEntry, call: ActionCall | None, *,
               member: int | None = None, group: int | None = None) -> None:
        if self.immutable:
            raise ConstTable(f"table '{self.name}' has const entries")
        self._check_action(call, member, group)
        entry.call, entry.member, entry.group = call, member, group
        self.generation.bump()

    def delete(self, entry: TableEntry) -> None:
        if self.immutable:
            raise ConstTable(f"table '{self.name}' has const entries")
        if self._entries.pop((entry.match, entry.priority), None) is None:
            raise EntryNotFound(f"table '{self.name}' has no such entry")
        self._unindex(entry)
        self.generation.bump()

    def clear(self) -> None:
        """Remove every entry and restore the initial default action."""
        self._entries.clear()
        self._exact.clear()
        self._lpm_levels.clear()
        self._lpm_by_length.clear()
        self._sorted.clear()
        self._sort_keys.clear()
        self.default = self.initial_default
        self.generation.bump()

    def set_default(self, call: ActionCall) -> None:
        """Change the default action (ConstTable if the P4 program made it const)."""
        if call.action.name not in self.actions:
            raise InvalidEntry(f"action '{call.action.name}' is not in table '{self.name}'")
        self._check_args(call)
        current = self.default.action.name if self.default else None
        if self.default_entry_const and call != self.default:
            raise ConstTable(f"the default entry of table '{self.name}' is const")
        if self.default_action_const and call.action.name != current:
            raise ConstTable(f"the default action of table '{self.name}' is const")
        self.default = call
        self.generation.bump()

    def reset_default(self) -> None:
        self.default = self.initial_default
        self.generation.bump()

    def _check_action(self, call: ActionCall | None, member: int | None,
                      group: int | None) -> None:
        if self.indirect is not None:
            if call is not None or (member is None) == (group is None):
                raise InvalidEntry(f"table '{self.name}' needs a member or a group")
            self.indirect.check_reference(member, group)
            return
        if call is None:
            raise InvalidEntry(f"table '{self.name}' needs an action")
        if call.action.name not in self.actions:
            raise InvalidEntry(f"action '{call.action.name}' is not in table '{self.name}'")
        self._check_args(call)

    @staticmethod
    def _check_args(call: ActionCall) -> None:
        params = call.action.params
        if len(call.args) != len(params):
            raise InvalidEntry(f"action '{call.action.name}' takes {len(params)} "
                               f"parameters, got {len(call.args)}")
        for (name, width), value in zip(params, call.args):
            if not 0 <= value < (1 << width):
                raise InvalidEntry(f"parameter '{name}' of '{call.action.name}': "
                                   f"{value} does not fit in {width} bits")

    # -- indexes ------------------------------------------------------------
    def _flat_key(self, match: tuple[Any, ...]) -> Any:
        if self._single:
            value = match[0]
            return value[0] if self.strategy == "lpm" else value
        parts = []
        for spec, value in zip(self.key, match):
            parts.append(value[0] if spec.match_kind == "lpm" else value)
        return parts[0] if self._single else tuple(parts)

    def _index(self, entry: TableEntry) -> None:
        if self.strategy == "exact":
            self._exact[self._flat_key(entry.match)] = entry
        elif self.strategy == "lpm":
            length = entry.match[self._lpm_pos][1]
            self._lpm_bucket(length)[self._flat_key(entry.match)] = entry
        else:
            entry.tests = self._tests(entry.match)
            sort_key = (-entry.priority, entry.seq)
            position = bisect.bisect(self._sort_keys, sort_key)
            self._sort_keys.insert(position, sort_key)
            self._sorted.insert(position, entry)

    def _unindex(self, entry: TableEntry) -> None:
        if self.strategy == "exact":
            del self._exact[self._flat_key(entry.match)]
        elif self.strategy == "lpm":
            length = entry.match[self._lpm_pos][1]
            bucket = self._lpm_bucket(length)
            del bucket[self._flat_key(entry.match)]
            if not bucket:
                self._lpm_levels = [lv for lv in self._lpm_levels if lv[1] != length]
                del self._lpm_by_length[length]
        else:
            position = bisect.bisect_left(self._sort_keys, (-entry.priority, entry.seq))
            del self._sort_keys[position]
            del self._sorted[position]

    def _lpm_bucket(self, length: int) -> dict[Any, TableEntry]:
        bucket = self._lpm_by_length.get(length)
        if bucket is not None:
            return bucket
        bucket = self._lpm_by_length[length] = {}
        mask = prefix_mask(self.key[self._lpm_pos].bitwidth, length)
        self._lpm_levels.append((mask, length, bucket))
        self._lpm_levels.sort(key=lambda level: -level[1])
        return bucket

    def _tests(self, match: tuple[Any, ...]) -> tuple[tuple[int, int, int, bool], ...]:
        tests = []
        for pos, (spec, value) in enumerate(zip(self.key, match)):
            kind = spec.match_kind
            if kind in EXACT_KINDS:
                tests.append((pos, spec.mask, value, False))
            elif kind == "lpm":
                mask = prefix_mask(spec.bitwidth, value[1])
                if mask:
                    tests.append((pos, mask, value[0], False))
            elif kind == "range":
                if value != (0, spec.mask):
                    tests.append((pos, value[0], value[1], True))
            elif value[1]:  # ternary / optional with a non-zero mask
                tests.append((pos, value[1], value[0], False))
        return tuple(tests)
