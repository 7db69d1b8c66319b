"""A P4Info model: find tables, actions and the rest by name, alias, suffix or id.

Names resolve like p4runtime-shell and finsy do: the full name
(``MyIngress.ecmp_group``), the alias p4c chose (``ecmp_group``), or any
unambiguous dotted suffix.  An unknown name raises ``P4InfoError`` with the
closest names as "did you mean ...?"; an ambiguous one lists the candidates.
Match fields and action parameters resolve the same way within their table
or action.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from google.protobuf import message as protobuf_message
from google.protobuf import text_format

from p4protos import p4info_pb2

from .errors import P4InfoError

KINDS = ("tables", "actions", "action_profiles", "counters", "direct_counters", "meters",
         "direct_meters", "controller_packet_metadata", "value_sets", "registers", "digests")
BINARY_SUFFIXES = (".bin", ".pb", ".binpb")


def suggest(name: str, candidates: Iterable[str]) -> list[str]:
    """Up to three candidates closest to ``name`` (difflib)."""
    return difflib.get_close_matches(name, sorted(set(candidates)), n=3, cutoff=0.5)


def closest(name: str, forms: Mapping[str, Iterable[str]], cutoff: float = 0.6,
            spread: float = 0.15) -> list[str]:
    """For objects known by several forms (full name -> its forms), the best form of
    each object close to ``name``: at most three, all nearly as close as the best."""
    scored = []
    for names in forms.values():
        score, form = max((difflib.SequenceMatcher(None, name, f).ratio(), f) for f in names)
        if score >= cutoff:
            scored.append((score, form))
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [form for score, form in scored[:3] if score >= scored[0][0] - spread]


def did_you_mean(close: list[str]) -> str:
    """``" (did you mean 'a' or 'b'?)"`` or ``""``."""
    if not close:
        return ""
    return " (did you mean " + " or ".join(f"'{c}'" for c in close) + "?)"


class NameIndex:
    """Items addressable by id, full name and unique dotted suffix."""

    def __init__(self, kind: str, owner: str, items: Iterable[tuple[int, str, str, Any]]
                 ) -> None:
        self.kind = kind
        self.owner = owner
        self.by_id: dict[int, Any] = {}
        self.by_name: dict[str, Any] = {}
        self.by_suffix: dict[str, list[Any]] = {}
        for item_id, name, alias, item in items:
            self.by_id[item_id] = item
            self.by_name[name] = item
            parts = name.split(".")
            suffixes = {".".join(parts[i:]) for i in range(1, len(parts))}
            if alias and alias != name:
                suffixes.add(alias)
            for suffix in suffixes:
                self.by_suffix.setdefault(suffix, []).append((name, item))

    def get(self, key: str | int) -> Any:
        """The item for an id, full name or unique suffix, else P4InfoError."""
        if isinstance(key, int) and not isinstance(key, bool):
            if key in self.by_id:
                return self.by_id[key]
            raise P4InfoError(f"no {self.kind} with id {key}{self.owner}",
                              self._listing())
        if not isinstance(key, str):
            raise P4InfoError(f"a {self.kind} is named by a string or an int id, "
                              f"not {type(key).__name__}")
        if key in self.by_name:
            return self.by_name[key]
        found = dict(self.by_suffix.get(key, []))
        if len(found) == 1:
            return next(iter(found.values()))
        if len(found) > 1:
            names = sorted(found)
            raise P4InfoError(f"{self.kind} name '{key}' is ambiguous{self.owner}: use one of "
                              + ", ".join(f"'{n}'" for n in names), suggestions=names)
        forms: dict[str, list[str]] = {name: [name] for name in self.by_name}
        for suffix, owners in self.by_suffix.items():
            if len(owners) == 1:  # an ambiguous suffix would not help
                forms[owners[0][0]].append(suffix)
        close = closest(key, forms)
        raise P4InfoError(f"no {self.kind} named '{key}'{self.owner}{did_you_mean(close)}",
                          "" if close else self._listing(), suggestions=close)

    def _listing(self) -> str:
        names = sorted(self.by_name)
        if not names:
            return f"there are no {self.kind}s"
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        return f"known: {shown}"

    def __iter__(self) -> Iterator[Any]:
        return iter(self.by_id.values())

    def __len__(self) -> int:
        return len(self.by_id)


def _preamble_index(kind: str, objects: Iterable[Any]) -> NameIndex:
    label = kind.rstrip("s").replace("_", " ")
    return NameIndex(label, " in the P4Info",
                     ((o.preamble.id, o.preamble.name, o.preamble.alias, o) for o in objects))


class P4Info:
    """A loaded P4Info with name lookups for every kind of object."""

    def __init__(self, proto: p4info_pb2.P4Info) -> None:
        self.proto = proto
        self.index = {kind: _preamble_index(kind, getattr(proto, kind)) for kind in KINDS}
        self._fields: dict[int, NameIndex] = {}
        self._params: dict[int, NameIndex] = {}
        self._actions: dict[int, NameIndex] = {}
        self._table_actions: dict[tuple[int, str | int], tuple[Any, Any]] = {}
        # compiled builders (p4runtime_lib.builder): "tables" / "actions" -> id or name -> plan
        self.compiled: dict[str, dict[Any, Any]] = {}

    # -- loading -------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> P4Info:
        """Read a text (.txtpb / .txt) or binary (.bin / .pb) P4Info file."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise P4InfoError(f"cannot read P4Info {path}: {exc.strerror}",
                              "have you run 'make'?") from None
        if path.suffix in BINARY_SUFFIXES:
            return cls.from_binary(data, str(path))
        try:
            return cls.from_text(data.decode("utf-8"), str(path))
        except (UnicodeDecodeError, P4InfoError) as text_error:
            try:
                return cls.from_binary(data, str(path))
            except P4InfoError:
                if isinstance(text_error, P4InfoError) and _looks_like_text(data):
                    raise text_error from None
                raise P4InfoError(f"{path} is not a P4Info file (neither text nor binary)",
                                  "pass the .p4info.txtpb file p4c wrote") from None

    @classmethod
    def from_text(cls, text: str, origin: str = "P4Info text") -> P4Info:
        """Parse text format; fields unknown to the installed protos are skipped."""
        proto = p4info_pb2.P4Info()
        try:
            text_format.Merge(text, proto, allow_unknown_field=True)
        except text_format.ParseError as exc:
            raise P4InfoError(f"{origin} is not valid P4Info text: {exc}") from None
        return cls._checked(proto, origin)

    @classmethod
    def from_binary(cls, data: bytes, origin: str = "P4Info bytes") -> P4Info:
        """Parse the binary (serialized protobuf) form."""
        proto = p4info_pb2.P4Info()
        try:
            proto.ParseFromString(data)
        except protobuf_message.DecodeError:
            raise P4InfoError(f"{origin} is not a binary P4Info") from None
        return cls._checked(proto, origin)

    @classmethod
    def _checked(cls, proto: p4info_pb2.P4Info, origin: str) -> P4Info:
        if not proto.tables and not proto.actions:
            raise P4InfoError(f"{origin} has no tables and no actions",
                              "is it really a P4Info file?")
        return cls(proto)

    # -- top-level objects ---------------------------------------------------
    def table(self, key: str | int) -> p4info_pb2.Table:
        return self.index["tables"].get(key)

    def action(self, key: str | int) -> p4info_pb2.Action:
        return self.index["actions"].get(key)

    def action_profile(self, key: str | int) -> p4info_pb2.ActionProfile:
        return self.index["action_profiles"].get(key)

    def counter(self, key: str | int) -> p4info_pb2.Counter:
        return self.index["counters"].get(key)

    def direct_counter(self, key: str | int) -> p4info_pb2.DirectCounter:
        return self.index["direct_counters"].get(key)

    def meter(self, key: str | int) -> p4info_pb2.Meter:
        return self.index["meters"].get(key)

    def direct_meter(self, key: str | int) -> p4info_pb2.DirectMeter:
        return self.index["direct_meters"].get(key)

    def register(self, key: str | int) -> p4info_pb2.Register:
        return self.index["registers"].get(key)

    def value_set(self, key: str | int) -> p4info_pb2.ValueSet:
        return self.index["value_sets"].get(key)

    def digest(self, key: str | int) -> p4info_pb2.Digest:
        return self.index["digests"].get(key)

    def packet_metadata(self, key: str | int) -> p4info_pb2.ControllerPacketMetadata:
        """``packet_in`` / ``packet_out`` controller header."""
        return self.index["controller_packet_metadata"].get(key)

    def get(self, kind: str, key: str | int) -> Any:
        """Any kind by its P4Info field name, e.g. ``get("tables", "ecmp_group")``."""
        if kind not in self.index:
            raise P4InfoError(f"unknown P4Info kind '{kind}'{did_you_mean(suggest(kind, KINDS))}")
        return self.index[kind].get(key)

    def names(self, kind: str) -> list[str]:
        """Full names of every object of one kind."""
        return sorted(self.index[kind].by_name)

    # -- inside tables and actions -------------------------------------------
    def match_field(self, table: Any, key: str | int) -> p4info_pb2.MatchField:
        """A table's match field by name, unique suffix or id."""
        table = self._resolve(table, self.table)
        index = self._fields.get(table.preamble.id)
        if index is None:
            index = NameIndex("match field", f" in table '{table.preamble.name}'",
                              ((f.id, f.name, "", f) for f in table.match_fields))
            self._fields[table.preamble.id] = index
        return index.get(key)

    def param(self, action: Any, key: str | int) -> p4info_pb2.Action.Param:
        """An action's parameter by name or id."""
        action = self._resolve(action, self.action)
        index = self._params.get(action.preamble.id)
        if index is None:
            index = NameIndex("parameter", f" of action '{action.preamble.name}'",
                              ((p.id, p.name, "", p) for p in action.params))
            self._params[action.preamble.id] = index
        return index.get(key)

    def table_actions(self, table: Any) -> list[tuple[p4info_pb2.Action, int]]:
        """(action, scope) for each action the table allows; scope is an ActionRef.Scope."""
        table = self._resolve(table, self.table)
        return [(self.action(ref.id), ref.scope) for ref in table.action_refs]

    def table_action(self, table: Any, key: str | int
                     ) -> tuple[p4info_pb2.Action, p4info_pb2.ActionRef]:
        """(action, action_ref) for an action allowed in ``table``, else P4InfoError.

        Names resolve among the table's actions first, so ``"drop"`` means
        ``MyIngress.drop`` in an ingress table even though ``MyEgress.drop`` exists.
        """
        table = self._resolve(table, self.table)
        known = self._table_actions.get((table.preamble.id, key))
        if known is not None:  # resolved before: the same answer, without the lookups
            return known
        refs = {ref.id: ref for ref in table.action_refs}
        allowed = [self.action(ref.id) for ref in table.action_refs]
        names = [a.preamble.name for a in allowed]
        local = self._actions.get(table.preamble.id)
        if local is None:
            local = NameIndex("action", f" in table '{table.preamble.name}'",
                              ((a.preamble.id, a.preamble.name, a.preamble.alias, a)
                               for a in allowed))
            self._actions[table.preamble.id] = local
        try:
            action = local.get(key)
        except P4InfoError:
            action = self.action(key)  # unknown everywhere: raises with suggestions
            raise P4InfoError(f"action '{action.preamble.name}' is not allowed in table "
                              f"'{table.preamble.name}'", "allowed: " + ", ".join(names),
                              suggestions=names) from None
        found = action, refs[action.preamble.id]
        self._table_actions[(table.preamble.id, key)] = found
        return found

    @staticmethod
    def _resolve(obj: Any, lookup: Any) -> Any:
        return lookup(obj) if isinstance(obj, str | int) else obj

    def __repr__(self) -> str:
        counts = ", ".join(f"{len(self.index[k])} {k}" for k in KINDS if len(self.index[k]))
        return f"<P4Info {counts}>"


def _looks_like_text(data: bytes) -> bool:
    sample = data[:512]
    return bool(sample) and all(b in b"\t\n\r" or 32 <= b < 127 for b in sample)
