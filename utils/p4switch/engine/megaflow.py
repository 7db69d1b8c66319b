"""Megaflows: cached results keyed on the header bits the program reads.

The exact flow cache (``flowcache.py``) keys on every header byte, so TCP traffic,
whose IPv4 identification and TCP sequence number change per packet, never hits
it.  Like Open vSwitch's megaflows, this cache keys on what the program looks at
(``fielduse.py``), per parse path ("shape": the headers the parser extracted, in
order, at their byte offsets, learned from the slow path on a miss):

* key: ``(port, shape, h & keymask[, len(frame)])`` with ``h`` the frame's header
  bytes ``frame[:end]`` as one big-endian int and ``keymask`` the bits of the fields
  read (parser select keys among them, so a frame of another path misses);
* result, per output: ``(h & keep) | template`` -- ``keep`` the bits of the fields no
  one writes, ``template`` the written fields' output bits -- then the checksums
  ``update_checksum`` applied on the slow path recomputed over the output bits,
  then the payload ``frame[end:]``.

Frames of the same key follow the same parse path (same select values, long enough),
the same tables and actions, so the written fields get the same values and the
others pass through.  A shape is not patchable, and the exact cache serves it
instead, when headers were added, removed or re-ordered between parser and
deparser, when the parser met a header stack, a varbit, a lookahead, a
``shift``/``advance`` or an error, or the output was truncated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .fielduse import FieldUse, UpdateChecksum, field_use, walk
from .layout import Layout
from .program import Program

MAX_SHAPES = 16
Plan = Callable[[int], int]


@dataclass(eq=False)  # shapes are compared by identity
class Shape:
    """One parse path: extracted headers ``(index, byte offset)`` and its masks."""

    ident: int
    headers: tuple[tuple[int, int], ...]
    end: int  # bytes the parser consumed
    keymask: int
    keep: int
    plans: list[Plan | None]  # per update checksum: recompute over the output bits
    valid: list[int]  # every header's validity at the deparser, as the parser left it
    written: int = 0  # ~keep over the shape's bytes
    plan_sets: dict[tuple[bool, ...], list[Plan]] = field(default_factory=dict)


@dataclass
class Learning:
    """What the slow path notes for ``Megaflows.learn`` while it runs a frame."""

    visited: list[str] = field(default_factory=list)  # the parser's trace: states entered
    code: int | None = None  # the parser's error code
    off: int = 0  # bytes the parser consumed
    outputs: list[tuple[list[int], list[bool], Any]] = field(default_factory=list)
    # per output: validity, which update_checksums applied, truncation
    messages: list[str] | None = None  # the packet's trace, when it is traced
    transmits: list[int] = field(default_factory=list)  # where in it each output's line is

    def trace_template(self, outputs: int) -> TraceTemplate | None:
        """The trace as a template for the megaflow's next frames, if it has one
        "Transmitting N bytes" line for each of its ``outputs``: the one message whose
        value (the length) may differ between the frames of a megaflow; every other
        message shows only fields in the key, table entries or constants."""
        if len(self.transmits) != outputs:
            return None
        return TraceTemplate(tuple(self.messages or ()), tuple(self.transmits))


@dataclass(frozen=True)
class TraceTemplate:
    """A megaflow's trace: its messages, the outputs' "Transmitting N bytes" lines at
    ``transmits`` (one per output, in order) to be re-stated for each frame."""

    messages: tuple[str, ...]
    transmits: tuple[int, ...]

    def render(self, outputs: list[tuple[int, bytes]]) -> list[str]:
        """The trace of a frame of this megaflow that gave ``outputs``."""
        messages = list(self.messages)
        for position, (port, data) in zip(self.transmits, outputs):
            messages[position] = f"Transmitting {len(data)} bytes on port {port}"
        return messages


class Megaflows:
    """Megaflow entries of one program, valid while its control-plane state holds."""

    def __init__(self, program: Program, use: FieldUse | None = None,
                 limit: int = 65536) -> None:
        self.program = program
        self.limit = limit
        layout = program.layout
        self.use = use if use is not None else field_use(program.json, layout)
        self.reason = self.use.reason or self._program_reason(program)
        self.enabled = self.reason is None
        length = layout.named_field("standard_metadata.packet_length")
        self.keyed_on_length = (length is not None and length.slot in self.use.reads) or \
            any(node.get("op") == "truncate" for node in walk(program.json))
        self.shapes: list[Shape] = []
        self.shape_by_headers: dict[tuple[tuple[int, int], ...], Shape] = {}
        self.entries: dict[Any, tuple[list[tuple[int, int, list[Plan]]], int, list]] = {}
        self.traces: dict[Any, TraceTemplate] = {}  # per entry key, for the trace log
        self.last_key: Any = None  # the key of the latest hit
        self.hits = 0
        self.fallbacks: dict[str, int] = {}  # why misses went to the exact cache
        self.states = {state["name"]: state for parser in program.json.get("parsers", [])[:1]
                       for state in parser.get("parse_states", [])}
        deparsers = program.json.get("deparsers", [])
        self.order = [layout.header(name).index for name in
                      (deparsers[0].get("order", []) if deparsers else [])]
        self.paths: dict[tuple[str, ...], tuple[tuple[tuple[int, int], ...], int] | str] = {}

    @staticmethod
    def _program_reason(program: Program) -> str | None:
        if program.parser is None:
            return "the program has no parser"
        return None

    def clear(self) -> None:
        """Forget every entry (the shapes stay: they depend on the program only)."""
        self.entries.clear()
        self.traces.clear()

    # -- hits ---------------------------------------------------------------------
    def lookup(self, port: int, frame: bytes) -> tuple[list[tuple[int, bytes]], int, list] | None:
        """(outputs, drops, counted entries) for ``frame`` if a megaflow covers it."""
        size = len(frame)
        entries = self.entries
        shapes = self.shapes
        keyed = self.keyed_on_length
        for position, shape in enumerate(shapes):
            end = shape.end
            if size < end:
                continue
            h = int.from_bytes(frame[:end], "big")
            key = (port, shape.ident, h & shape.keymask, size) if keyed \
                else (port, shape.ident, h & shape.keymask)
            hit = entries.get(key)
            if hit is None:
                continue
            self.last_key = key
            if position:
                shapes.insert(0, shapes.pop(position))
            outputs, drops, counted = hit
            payload = frame[end:]
            kept = h & shape.keep
            out = []
            for out_port, template, plans in outputs:
                value = kept | template
                for plan in plans:
                    value = plan(value)
                out.append((out_port, value.to_bytes(end, "big") + payload))
            return out, drops, counted
        return None

    # -- learning -------------------------------------------------------------------
    def learn(self, port: int, frame: bytes, outputs: list[tuple[int, bytes]], drops: int,
              notes: Learning, counted: list[tuple[Any, int]]) -> bool:
        """Store the slow path's result for ``frame`` as a megaflow; False (and the
        reason counted in ``fallbacks``) when its shape is not patchable."""
        why = self._learn(port, frame, outputs, drops, notes, counted)
        if why is not None:
            self.fallbacks[why] = self.fallbacks.get(why, 0) + 1
        return why is None

    def _learn(self, port: int, frame: bytes, outputs: list[tuple[int, bytes]], drops: int,
               notes: Learning, counted: list[tuple[Any, int]]) -> str | None:
        assert self.program.parser is not None
        if notes.code != self.program.parser.no_error:
            return "parser error"
        visited = tuple(notes.visited)
        path = self.paths.get(visited)
        if path is None:
            if len(self.paths) >= 1024:  # parsers that loop: paths without end
                self.paths.clear()
            path = self.paths[visited] = self._path(visited)
        if isinstance(path, str):
            return path
        if path[1] != notes.off:
            return "parser offsets disagree"
        records = notes.outputs
        headers, end = path
        if len(records) != len(outputs):
            return "outputs not recorded"
        shape = self.shape_by_headers.get(headers)
        if shape is None:
            extracted = {index for index, _ in headers}
            if [i for i in self.order if i in extracted] != [i for i, _ in headers]:
                return "the deparser emits another order"
            shape = self._shape(headers, end)
            if isinstance(shape, str):
                return shape
            if len(self.shapes) >= MAX_SHAPES:
                return "too many shapes"
            self.shape_by_headers[headers] = shape
        for valid, _applied, truncate in records:
            if truncate is not None:
                return "truncated"
            if valid != shape.valid:
                return "headers added or removed"
        if shape not in self.shapes:
            self.shapes.insert(0, shape)
        h = int.from_bytes(frame[:end], "big")
        stored = []
        for (out_port, data), (_valid, applied, _t) in zip(outputs, records):
            template = int.from_bytes(data[:end], "big") & shape.written
            key = tuple(applied)
            plans = shape.plan_sets.get(key)
            if plans is None:
                plans = shape.plan_sets[key] = [plan for plan, on in zip(shape.plans, applied)
                                                if on and plan is not None]
            stored.append((out_port, template, plans))
        entry = (stored, drops, counted)
        key = (port, shape.ident, h & shape.keymask, len(frame)) if self.keyed_on_length \
            else (port, shape.ident, h & shape.keymask)
        if len(self.entries) >= self.limit:
            self.clear()
        self.entries[key] = entry
        if self.lookup(port, frame) != (outputs, drops, counted):  # the analysis's self-check
            del self.entries[key]
            return "the patched frame differs from the slow path's"
        if notes.messages is not None:
            template = notes.trace_template(len(outputs))
            if template is not None:
                self.traces[key] = template
        return None

    def _path(self, visited: tuple[str, ...]) -> tuple[tuple[tuple[int, int], ...], int] | str:
        """The headers a parser run through states ``visited`` (its trace messages)
        extracted and where, or why that path is not patchable."""
        program = self.program
        layout = program.layout
        headers: list[tuple[int, int]] = []
        off = 0
        for message in visited:
            state = self.states[message.rsplit("'", 2)[1]]
            if any(k.get("type") == "lookahead" for k in state.get("transition_key", [])):
                return "lookahead"
            for op in state.get("parser_ops", []):
                kind, params = op["op"], op.get("parameters", [])
                if kind == "extract" and params[0]["type"] == "regular":
                    header = layout.header(params[0]["value"])
                    if header.varbit_index is not None or header.fixed_bits % 8:
                        return "varbit or unaligned header"
                    headers.append((header.index, off))
                    off += header.fixed_bytes
                elif kind == "extract":
                    return "header stack extraction"
                elif kind == "set" and params[1].get("type") == "lookahead":
                    return "lookahead"
                elif kind not in ("set", "verify", "primitive"):
                    return f"parser operation '{kind}'"  # varbits, shift, advance
        if len({index for index, _ in headers}) != len(headers):
            return "a header extracted twice"
        return tuple(headers), off

    def _shape(self, headers: tuple[tuple[int, int], ...], end: int) -> Shape | str:
        layout = self.program.layout
        position: dict[int, tuple[int, int]] = {}  # slot -> (shift, width)
        for index, offset in headers:
            start = offset * 8
            for info in layout.headers[index].fields:
                position[info.slot] = (8 * end - start - info.bitwidth, info.bitwidth)
                start += info.bitwidth
        keymask = 0
        keep = (1 << (8 * end)) - 1
        for slot, (shift, width) in position.items():
            bits = ((1 << width) - 1) << shift
            if slot in self.use.reads:
                keymask |= bits
            if slot in self.use.writes:
                keep &= ~bits
        plans: list[Plan | None] = []
        for update in self.use.updates:
            plan = checksum_plan(layout, update, self.program.update_checksums[update.index]
                                 .calculation.hash, {i for i, _ in headers}, position)
            if isinstance(plan, str):
                return plan
            plans.append(plan)
        valid = self.program.template.valid[:]
        for index, _ in headers:
            valid[index] = 1
        return Shape(len(self.shape_by_headers), headers, end, keymask, keep, plans, valid,
                     ~keep & ((1 << (8 * end)) - 1))


def checksum_plan(layout: Layout, update: UpdateChecksum, hash_fn: Callable[[bytes], int],
                  valid: set[int], position: dict[int, tuple[int, int]]) -> Plan | None | str:
    """A function recomputing ``update``'s target over a shape's output bits (None: the
    target is not in the shape, nothing to do), or why it cannot be done."""
    if update.target not in position:
        return None
    segments: list[tuple[bool, int, int]] = []  # (from the frame?, shift or value, width)
    for element in update.inputs:
        kind, value = element["type"], element.get("value")
        if kind == "hexstr":
            width = int(element["bitwidth"])
            segments.append((False, int(value, 16) & ((1 << width) - 1), width))
            continue
        if kind not in ("field", "header"):
            return f"checksum input '{kind}'"
        header = layout.header(value if kind == "header" else value[0])
        if header.metadata:
            return "a checksum over metadata"
        if header.index not in valid:
            continue  # the calculation skips invalid headers
        if kind == "field" and value[1] == "$valid$":
            segments.append((False, 1, 1))
            continue
        fields = header.fields if kind == "header" else [header.field_named(value[1])]
        segments.extend((True, *position[info.slot]) for info in fields)
    target_shift, target_width = position[update.target]
    target_mask = (1 << target_width) - 1
    clear = ~(target_mask << target_shift)
    nbits = sum(width for _, _, width in segments)
    pad = -nbits % 8
    nbytes = (nbits + pad) // 8
    csum = update.algo in ("csum16", "cksum16")
    runs: list[tuple[bool, int, int]] = []  # adjacent frame bits merged
    for segment in segments:
        if runs and segment[0] and runs[-1][0] and runs[-1][1] == segment[1] + segment[2]:
            runs[-1] = (True, segment[1], runs[-1][2] + segment[2])
        else:
            runs.append(segment)
    # The Internet checksum sums 16-bit words modulo 0xFFFF and 2**16 == 1 there: a hole
    # of 16k bits between two runs (IPv4's own checksum field) may read as zeros instead.
    holes = csum and bool(runs) and all(run[0] for run in runs) and all(
        (a[1] - b[1] - b[2]) % 16 == 0 for a, b in zip(runs, runs[1:]))
    if holes or (len(runs) == 1 and runs[0][0]):
        low = runs[-1][1]
        mask = 0
        for _, where, width in runs:
            mask |= ((1 << width) - 1) << (where - low)

        def gather(value: int) -> int:
            return (value >> low) & mask
    else:
        def gather(value: int) -> int:
            acc = 0
            for from_frame, where, width in runs:
                acc = (acc << width) | (((value >> where) & ((1 << width) - 1))
                                         if from_frame else where)
            return acc

    if csum:
        odd = nbytes & 1

        def plan(value: int) -> int:
            total = gather(value) << (pad + 8 * odd)
            folded = total % 0xFFFF  # as hashes.csum16, on the int
            if folded == 0 and total:
                folded = 0xFFFF
            return (value & clear) | ((~folded & 0xFFFF & target_mask) << target_shift)
    else:
        def plan(value: int) -> int:
            data = (gather(value) << pad).to_bytes(nbytes, "big")
            return (value & clear) | ((hash_fn(data) & target_mask) << target_shift)
    return plan
