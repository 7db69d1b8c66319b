"""A P4Info model: find tables, actions and the rest by name, alias or id.

Names resolve like p4runtime-shell and finsy do: the full name
(``MyIngress.ecmp_group``), the alias p4c chose (``ecmp_group``), or any
unambiguous dotted suffix.  An unknown name raises ``P4InfoError`` with the
closest names as "did you mean ...?"; an ambiguous one lists the candidates.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from google.protobuf import text_format

from .protos import p4info_pb2

KINDS = ("tables", "actions", "action_profiles", "counters", "direct_counters", "meters",
         "direct_meters", "controller_packet_metadata", "value_sets", "registers", "digests")


class P4InfoError(LookupError):
    """A name or id that is not in the P4Info (one line, with suggestions)."""

    def __str__(self) -> str:
        return str(self.args[0])


def suggest(name: str, candidates: Iterable[str]) -> str:
    """' (did you mean 'a' or 'b'?)' for the closest candidates, or ''."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=3, cutoff=0.5)
    if not close:
        return ""
    return " (did you mean " + " or ".join(f"'{c}'" for c in close) + "?)"


class Index:
    """Objects of one kind by id, full name, alias and unique suffix."""

    def __init__(self, kind: str, objects: Iterable[Any]) -> None:
        self.kind = kind.rstrip("s").replace("_", " ")
        self.by_id: dict[int, Any] = {}
        self.by_name: dict[str, Any] = {}
        suffixes: dict[str, list[Any]] = {}
        for obj in objects:
            preamble = obj.preamble
            self.by_id[preamble.id] = obj
            self.by_name[preamble.name] = obj
            parts = preamble.name.split(".")
            for i in range(1, len(parts)):
                suffixes.setdefault(".".join(parts[i:]), []).append(obj)
            if preamble.alias and preamble.alias != preamble.name:
                suffixes.setdefault(preamble.alias, []).append(obj)
        self.suffixes = suffixes

    def get(self, key: str | int) -> Any:
        if isinstance(key, int):
            try:
                return self.by_id[key]
            except KeyError:
                raise P4InfoError(f"no {self.kind} with id {key} in the P4Info") from None
        if key in self.by_name:
            return self.by_name[key]
        found = {id(o): o for o in self.suffixes.get(key, [])}
        if len(found) == 1:
            return next(iter(found.values()))
        if len(found) > 1:
            names = sorted(o.preamble.name for o in found.values())
            raise P4InfoError(f"{self.kind} name '{key}' is ambiguous: use one of "
                              + ", ".join(f"'{n}'" for n in names))
        known = list(self.by_name) + list(self.suffixes)
        raise P4InfoError(f"no {self.kind} named '{key}' in the P4Info" + suggest(key, known))

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.by_id.values())


class P4Info:
    """A loaded P4Info with name lookups for every kind of object."""

    def __init__(self, proto: p4info_pb2.P4Info) -> None:
        self.proto = proto
        self.index = {kind: Index(kind, getattr(proto, kind)) for kind in KINDS}

    @classmethod
    def load(cls, path: str | Path) -> P4Info:
        """Read a text (.txtpb / .txt) or binary P4Info file."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise P4InfoError(f"cannot read P4Info {path}: {exc.strerror}. "
                              "Have you run 'make'?") from None
        proto = p4info_pb2.P4Info()
        try:
            text_format.Merge(data.decode("utf-8"), proto, allow_unknown_field=True)
        except (UnicodeDecodeError, text_format.ParseError):
            try:
                proto.ParseFromString(data)
            except Exception:  # noqa: BLE001 - protobuf raises its own DecodeError type
                raise P4InfoError(f"{path} is not a P4Info file (text or binary)") from None
        if not proto.tables and not proto.actions:
            raise P4InfoError(f"{path} has no tables and no actions: not a P4Info file?")
        return cls(proto)

    # -- lookups -------------------------------------------------------------
    def table(self, key: str | int) -> Any:
        return self.index["tables"].get(key)

    def action(self, key: str | int) -> Any:
        return self.index["actions"].get(key)

    def counter(self, key: str | int) -> Any:
        return self.index["counters"].get(key)

    def direct_counter(self, key: str | int) -> Any:
        return self.index["direct_counters"].get(key)

    def meter(self, key: str | int) -> Any:
        return self.index["meters"].get(key)

    def register(self, key: str | int) -> Any:
        return self.index["registers"].get(key)

    def action_profile(self, key: str | int) -> Any:
        return self.index["action_profiles"].get(key)

    def packet_metadata(self, key: str) -> Any:
        return self.index["controller_packet_metadata"].get(key)

    def match_field(self, table: Any, key: str | int) -> Any:
        """A table's match field by name (or id)."""
        for field in table.match_fields:
            if field.id == key or field.name == key:
                return field
        names = [f.name for f in table.match_fields]
        raise P4InfoError(f"table '{table.preamble.name}' has no match field '{key}'"
                          + (suggest(str(key), names) or f" (its fields: {', '.join(names)})"))

    def param(self, action: Any, key: str | int) -> Any:
        """An action's parameter by name (or id)."""
        for param in action.params:
            if param.id == key or param.name == key:
                return param
        names = [p.name for p in action.params]
        raise P4InfoError(f"action '{action.preamble.name}' has no parameter '{key}'"
                          + (suggest(str(key), names)
                             or f" (its parameters: {', '.join(names) or 'none'})"))

    def table_action(self, table: Any, key: str | int) -> tuple[Any, Any]:
        """(action, action_ref) for an action allowed in ``table``."""
        action = self.action(key)
        for ref in table.action_refs:
            if ref.id == action.preamble.id:
                return action, ref
        allowed = [self.action(ref.id).preamble.name for ref in table.action_refs]
        raise P4InfoError(f"action '{action.preamble.name}' is not allowed in table "
                          f"'{table.preamble.name}' (allowed: {', '.join(allowed)})")
