"""A per-flow result cache that keeps BMv2's semantics.

For a *stateless* program -- no registers, counter arrays, meters, random numbers,
timestamps, queue depths, clones, digests or recirculation -- what comes out of
a frame depends only on the ingress port, the header bytes the parser can
reach, the frame length if the program reads ``packet_length`` or truncates, and
the control-plane state.  The cache is keyed on exactly that: ``(port,
frame[:span])`` where ``span`` bounds the bytes the parser can consume, and it
stores the emitted headers plus the payload offset; the payload itself is
copied from each frame.  Any control-plane change moves the ``Generation``
counter and empties the cache.  Programs that are not stateless never use it
(``FlowCache.reason`` says why).  Direct counters are state too, but only
written: a stored result lists the entries it counted, and every hit counts
them again (packets + 1, bytes by the frame's length), as the slow path would.

This exact cache is the fallback: ``FlowCache.megaflows`` (``megaflow.py``), keyed
on the header bits the program reads, answers first, and a miss goes to it when
the frame's parse path cannot be patched (header stacks, varbits, headers added
or removed, parser errors, truncation).  Together they hold at most ``limit``
results (``make_room``).
"""

from __future__ import annotations

from typing import Any

from .fielduse import walk as _walk
from .megaflow import Megaflows
from .program import Program

PURE_PRIMITIVES = frozenset({
    "assign", "modify_field", "assign_VL", "assign_header", "copy_header", "assign_union",
    "assign_header_stack", "assign_union_stack", "add_to_field", "subtract_from_field",
    "add", "subtract", "bit_xor", "bit_or", "bit_and", "shift_left", "shift_right",
    "mark_to_drop", "drop", "exit", "no_op", "add_header", "add_header_fast", "remove_header",
    "push", "pop", "modify_field_with_hash_based_offset", "_jump", "_jump_if_zero",
    "truncate",  # deterministic; results whose payload is cut are never stored
})
TIME_FIELDS = frozenset({
    "ingress_global_timestamp", "egress_global_timestamp", "enq_timestamp", "enq_qdepth",
    "deq_timedelta", "deq_qdepth",
})
PURE_HASHES = frozenset({
    "crc16", "crc32", "crcCCITT", "csum16", "cksum16", "identity", "xor16", "xor32",
    "crc8_custom", "crc16_custom", "crc32_custom", "crc64_custom", "xxh64",
})


class FlowCache:
    """Results of recent flows, valid while the control-plane state is unchanged."""

    def __init__(self, program: Program, limit: int = 65536) -> None:
        self.limit = limit
        self.entries: dict[Any, tuple[int, list[tuple[int, bytes]], int, list]] = {}
        self.seen_generation = -1
        self.generation = program.generation
        self.reason = self._impurity(program)
        self.enabled = self.reason is None
        layout = program.layout
        self.header_span = sum(h.fixed_bytes + h.varbit_max_bytes
                               for h in layout.headers if not h.metadata)
        self.span = self.header_span + self._lookahead_bytes(program)
        length = layout.named_field("standard_metadata.packet_length")
        # truncate(n) cuts a frame only when it is longer than n: the length decides too
        self.keyed_on_length = (length is not None and self._reads_field(program, length)) \
            or self._truncates(program)
        self.hits = 0  # exact and megaflow hits
        self.misses = 0
        self.megaflows = Megaflows(program, limit=limit)  # served first (Pipeline.process)
        if not self.enabled:
            self.megaflows.enabled = False
            self.megaflows.reason = self.reason

    @staticmethod
    def _impurity(program: Program) -> str | None:
        """Why results of this program cannot be cached, or None."""
        data = program.json
        for action in data.get("actions", []):
            for primitive in action.get("primitives", []):
                if primitive["op"] not in PURE_PRIMITIVES:
                    return f"action '{action['name']}' calls '{primitive['op']}'"
        for parser in data.get("parsers", []):
            for state in parser.get("parse_states", []):
                for op in state.get("parser_ops", []):
                    if op["op"] == "primitive" and op["parameters"] and \
                            op["parameters"][0]["op"] not in PURE_PRIMITIVES:
                        return f"parser state '{state['name']}' calls an extern"
        for deparser in data.get("deparsers", []):
            if deparser.get("primitives"):
                return "the deparser calls externs"
        for calc in data.get("calculations", []):
            if calc["algo"] not in PURE_HASHES:
                return f"calculation '{calc['name']}' uses '{calc['algo']}'"
            if any(element["type"] == "payload" for element in calc.get("input", [])):
                return f"calculation '{calc['name']}' reads the payload"
        for pipeline in data.get("pipelines", []):
            for table in pipeline.get("tables", []):
                if table.get("direct_meters") or table.get("support_timeout"):
                    return f"table '{table['name']}' has direct meters or timeouts"
            for profile in pipeline.get("action_profiles", []):
                algo = (profile.get("selector") or {}).get("algo")
                if algo is not None and algo not in PURE_HASHES:
                    return f"action selector '{profile['name']}' uses '{algo}'"
        for node in _walk(data):
            if node.get("type") == "register":
                return "the program reads registers"
            if node.get("type") == "field" and isinstance(node.get("value"), list) \
                    and node["value"][-1] in TIME_FIELDS:
                return f"the program reads {node['value'][-1]}"
        for alias, _target in data.get("field_aliases", []):
            del alias  # aliases only matter when referenced, which the walk above covers
        return None

    @staticmethod
    def _lookahead_bytes(program: Program) -> int:
        widest = 0
        for node in _walk(program.json.get("parsers", [])):
            if node.get("type") == "lookahead":
                offset, width = node["value"]
                widest = max(widest, (offset + width + 7) // 8)
        return widest

    @staticmethod
    def _truncates(program: Program) -> bool:
        return any(node.get("op") == "truncate" for node in _walk(program.json))

    @staticmethod
    def _reads_field(program: Program, info: Any) -> bool:
        header = program.layout.headers[info.header].name
        for node in _walk(program.json):
            if node.get("type") == "field" and node.get("value") == [header, info.name]:
                return True
        return False

    def refresh(self) -> None:
        """Forget every result if the control-plane state changed since."""
        if self.generation.value != self.seen_generation:
            self.entries.clear()
            self.megaflows.clear()
            self.seen_generation = self.generation.value

    def make_room(self) -> None:
        """Empty both caches when together they hold ``limit`` results (one bound on
        the memory they take, whichever fills)."""
        if len(self.entries) + len(self.megaflows.entries) >= self.limit:
            self.entries.clear()
            self.megaflows.clear()

    def key(self, port: int, frame: bytes) -> Any:
        """The exact cache's key of a frame (after ``refresh``)."""
        if self.keyed_on_length:
            return port, frame[:self.span], len(frame)
        return port, frame[:self.span]

    def store(self, key: Any, frame: bytes, offset: int, outputs: list[tuple[int, bytes]],
              drops: int, counted: list[tuple[Any, int]]) -> None:
        """Remember a result if it can only depend on the key; ``counted``: the entries
        whose direct counters it updated, each with its byte count minus the frame's
        length, replayed on every hit."""
        if offset > self.header_span:
            return
        payload = len(frame) - offset
        headers = []
        for port, data in outputs:
            if len(data) < payload or data[len(data) - payload:] != frame[offset:]:
                return  # payload not copied verbatim (truncation): do not cache
            headers.append((port, data[:len(data) - payload]))
        if len(self.entries) >= self.limit:
            self.entries.clear()
        self.entries[key] = (offset, headers, drops, counted)
