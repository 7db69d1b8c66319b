"""Which header fields a BMv2 program reads and which it writes (static analysis).

The megaflow cache (``megaflow.py``) keys a result on the bits of the fields the
program *reads*: parser select keys and ``set``/``verify`` operands, table keys,
conditions, action operands, the inputs of calculations used by actions, action
selectors and ``verify_checksum``, and checksum conditions.  The inputs of a
calculation used only by ``update_checksum`` are not reads: the megaflow cache
recomputes those checksums on every hit.  Fields *written* (assignment targets,
headers set valid, copied into, pushed or popped) come out of a cached template;
every other header bit is copied from the frame.

The analysis over-approximates: a header used as a whole (``==`` of headers, a
``header`` calculation input) reads all its fields; anything on a header stack or
union reads and writes all fields of every element.  An operation it does not know
makes the whole program unsuitable (``FieldUse.reason``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .layout import VALID_FIELD, Layout

# op -> (how the first parameter is used, how the others are used)
WRITE_FIRST = frozenset({
    "assign", "modify_field", "assign_VL", "add", "subtract", "bit_xor", "bit_or",
    "bit_and", "shift_left", "shift_right", "modify_field_with_hash_based_offset",
})
READ_WRITE_FIRST = frozenset({"add_to_field", "subtract_from_field"})
HEADER_COPY = frozenset({
    "assign_header", "copy_header", "assign_union", "assign_header_stack",
    "assign_union_stack",
})
HEADER_WRITE = frozenset({"add_header", "add_header_fast", "remove_header", "push", "pop"})
READ_ALL = frozenset({"_jump", "_jump_if_zero", "truncate"})
NO_READS = frozenset({"mark_to_drop", "drop", "exit", "no_op"})  # write metadata only
COMPOUND = frozenset({
    "header_stack", "stack_field", "union_stack_field", "header_union",
    "header_union_stack",
})
NOT_FIELDS = frozenset({"valid", "valid_union", "last_stack_index", "size_stack"})


@dataclass
class UpdateChecksum:
    """An ``update_checksum``: its target field and its calculation's inputs."""

    index: int  # position in Program.update_checksums
    target: int  # slot
    inputs: list[dict[str, Any]]
    algo: str


@dataclass
class FieldUse:
    """Slots of the header fields a program reads and writes."""

    reads: set[int] = field(default_factory=set)
    writes: set[int] = field(default_factory=set)
    updates: list[UpdateChecksum] = field(default_factory=list)
    reason: str | None = None  # why no megaflow cache can serve this program


class FieldUseAnalysis:
    """Computes a program's ``FieldUse`` from its JSON and layout."""

    def __init__(self, data: dict[str, Any], layout: Layout) -> None:
        self.data = data
        self.layout = layout
        self.use = FieldUse()
        self.compound = [f.slot for s in layout.stacks for h in s.elements
                         for f in layout.headers[h].fields]
        self.compound += [f.slot for u in layout.unions for h in u.headers
                          for f in layout.headers[h].fields]

    # -- collecting ------------------------------------------------------------
    def _header_slots(self, name: str) -> list[int]:
        return [f.slot for f in self.layout.header(name).fields]

    def _field_slot(self, value: list[str]) -> int | None:
        header, name = value[0], value[1]
        if name == VALID_FIELD:
            return None
        hdr = self.layout.header_by_name.get(header)
        if hdr is not None:
            for info in hdr.fields:
                if info.name == name:
                    return info.slot
            return None
        alias = self.layout.named_field(f"{header}.{name}")
        return alias.slot if alias is not None else None

    def read(self, node: Any) -> None:
        """Every field an expression tree (or list of them) can read."""
        reads = self.use.reads
        for item in _nodes(node):
            kind = item.get("type")
            if kind == "field" and isinstance(item.get("value"), list):
                slot = self._field_slot(item["value"])
                if slot is not None:
                    reads.add(slot)
            elif kind == "header" and isinstance(item.get("value"), str):
                reads.update(self._header_slots(item["value"]))
            elif kind in COMPOUND:
                reads.update(self.compound)

    def write(self, node: dict[str, Any]) -> None:
        """The fields an assignment target (field, header, stack element) covers."""
        kind, value = node.get("type"), node.get("value")
        if kind == "field":
            slot = self._field_slot(value)
            if slot is not None:
                self.use.writes.add(slot)
        elif kind == "header":
            self.use.writes.update(self._header_slots(value))
        else:  # stacks, unions and run-time header expressions: all of them
            self.use.writes.update(self.compound)
            if kind == "expression":
                self.read(value)

    def primitive(self, op: str, params: list[dict[str, Any]]) -> None:
        """Reads and writes of one primitive call (action, parser op or deparser)."""
        if op in WRITE_FIRST:
            self.write(params[0])  # a header target: a header assignment
            self.read(params[1:])
            if op == "modify_field_with_hash_based_offset":
                self.calculation(params[2]["value"])
        elif op in READ_WRITE_FIRST:
            self.write(params[0])
            self.read(params)
        elif op in HEADER_COPY:
            self.write(params[0])
            self.read(params[1:])
        elif op in HEADER_WRITE:
            self.write(params[0])
            if op in ("push", "pop"):  # they move the elements' values
                self.read(params[0])
        elif op in READ_ALL:
            self.read(params)
        elif op in NO_READS:
            pass
        elif self.use.reason is None:
            self.use.reason = f"primitive '{op}' is not analysed"

    def calculation(self, name: str) -> None:
        """The inputs of calculation ``name`` are read."""
        for calc in self.data.get("calculations", []):
            if calc["name"] == name:
                self.read(calc.get("input", []))

    # -- the program ---------------------------------------------------------
    def run(self) -> FieldUse:
        """Analyse every action, parser state, table, condition and checksum."""
        data = self.data
        for action in data.get("actions", []):
            for prim in action.get("primitives", []):
                self.primitive(prim["op"], prim.get("parameters", []))
        for parser in data.get("parsers", []):
            for state in parser.get("parse_states", []):
                self.read(state.get("transition_key", []))
                for op in state.get("parser_ops", []):
                    self._parser_op(op)
        for deparser in data.get("deparsers", []):
            for prim in deparser.get("primitives", []):
                self.primitive(prim["op"], prim.get("parameters", []))
        for pipeline in data.get("pipelines", []):
            for table in pipeline.get("tables", []):
                for key in table.get("key", []):
                    target = key.get("target")
                    if key.get("match_type") != "valid" and isinstance(target, list):
                        self.read({"type": "field", "value": target})
            for conditional in pipeline.get("conditionals", []):
                self.read(conditional.get("expression"))
            for profile in pipeline.get("action_profiles", []):
                self.read((profile.get("selector") or {}).get("input", []))
        self._checksums()
        return self.use

    def _parser_op(self, op: dict[str, Any]) -> None:
        kind, params = op["op"], op.get("parameters", [])
        if kind == "set":
            self.write(params[0])
            self.read(params[1:])
        elif kind == "primitive":
            for prim in params:
                self.primitive(prim["op"], prim.get("parameters", []))
        elif kind == "extract":
            pass
        else:  # extract_VL, verify, shift, advance: operands
            self.read(params[1:] if kind == "extract_VL" else params)

    def _checksums(self) -> None:
        calcs = {c["name"]: c for c in self.data.get("calculations", [])}
        updates = 0
        for spec in self.data.get("checksums", []):
            calc = calcs[spec["calculation"]]
            self.read(spec.get("if_cond"))
            target = self._field_slot(spec["target"])
            if spec.get("verify", True):
                self.read(calc.get("input", []))
                self.read({"type": "field", "value": spec["target"]})
            if spec.get("update", True) and target is not None:
                self.use.updates.append(UpdateChecksum(updates, target, calc.get("input", []),
                                                       calc["algo"]))
                updates += 1
        targets = {u.target for u in self.use.updates}
        for update in self.use.updates:
            inputs = FieldUseAnalysis(self.data, self.layout)
            inputs.read(update.inputs)
            if inputs.use.reads & targets:
                self.use.reason = "a checksum's inputs include a checksum's target"
        conditions = FieldUseAnalysis(self.data, self.layout)
        conditions.read([spec.get("if_cond") for spec in self.data.get("checksums", [])])
        if conditions.use.reads & targets:
            self.use.reason = "a checksum's condition reads a checksum's target"


def _nodes(node: Any) -> Iterator[dict[str, Any]]:
    """Every dict of a JSON tree except what lies under validity and stack-size ops."""
    if isinstance(node, dict):
        if node.get("op") in NOT_FIELDS:
            return
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes(value)


def walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every dict of a JSON tree."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def field_use(data: dict[str, Any], layout: Layout) -> FieldUse:
    """The header fields program ``data`` reads and writes (see the module docstring)."""
    return FieldUseAnalysis(data, layout).run()
