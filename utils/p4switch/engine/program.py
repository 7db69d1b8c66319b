"""Load a BMv2 JSON once and compile every part of it.

``Program`` owns the compiled parser, controls, tables, actions, checksums
(``checksums``), calculations (``hashes``), deparser (``deparser``) and stateful
objects.  Nothing here touches packets directly; ``pipeline.Pipeline`` drives a
``Program`` per packet.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .actions import ActionCompiler
from .checksums import compile_checksum, update_lines
from .control import (
    ConditionalNode,
    ControlCompiler,
    ControlFuser,
    Node,
    TableNode,
    resolve_next,
)
from .deparser import compile_deparser
from .errors import ConfigError, InvalidEntry
from .expressions import ExpressionCompiler, Namespace, parse_hexstr
from .externs import CounterArray, MeterArray, RegisterArray
from .hashes import compile_calculation
from .headers import HeaderCodec
from .layout import Layout
from .packet import PacketTemplate
from .parser import Parser, ParserCompiler, ValueSet
from .profiles import ActionProfile
from .tables import ActionCall, ActionDef, Generation, MatchTable

SUPPORTED_MAJOR = 2


def load_json(text: bytes | str) -> dict[str, Any]:
    """Parse and sanity-check a BMv2 JSON document."""
    try:
        program = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not a BMv2 JSON file: {exc}") from None
    if not isinstance(program, dict):
        raise ConfigError("not a BMv2 JSON file: the top level is not an object")
    version = program.get("__meta__", {}).get("version")
    if version is not None and (not isinstance(version, list) or version[0] != SUPPORTED_MAJOR):
        raise ConfigError(f"unsupported BMv2 JSON version {version} (need {SUPPORTED_MAJOR}.x)")
    for key in ("header_types", "headers", "parsers", "deparsers", "pipelines"):
        if key not in program:
            raise ConfigError(f"not a BMv2 JSON file: no '{key}'")
    return program


class Program:
    """Every part of a BMv2 JSON program, compiled."""

    def __init__(self, text: bytes | str, log: Callable[[Any, str], None]) -> None:
        program = load_json(text)
        self.json = program
        try:
            self._build(program, log)
        except ConfigError:
            raise
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ConfigError(f"malformed BMv2 JSON ({type(exc).__name__}: {exc})") from None

    def _build(self, program: dict[str, Any], log: Callable[[Any, str], None]) -> None:
        self.generation = Generation()
        self.counted: list[tuple[Any, int]] = []  # (entry, bytes) direct-counted this packet
        self.layout = layout = Layout(program)
        self.template = PacketTemplate(layout)
        self.ns = ns = Namespace()
        self.codec = HeaderCodec(layout, layout.error_code("PacketTooShort"),
                                 layout.error_code("ParserInvalidArgument"),
                                 layout.error_code("HeaderTooShort"), ns.names)
        self.registers = {r["name"]: RegisterArray(r["name"], r["size"], r["bitwidth"])
                          for r in program.get("register_arrays", [])}
        self.counters = {c["name"]: CounterArray(c["name"], c.get("size", 0),
                                                 c.get("is_direct", False),
                                                 c.get("binding"))
                         for c in program.get("counter_arrays", [])}
        self.meters = {m["name"]: MeterArray(m["name"], m.get("size", 0),
                                             m.get("type", "packets"),
                                             m.get("is_direct", False), m.get("binding"),
                                             m.get("result_target"))
                       for m in program.get("meter_arrays", [])}
        self.exprs = ExpressionCompiler(layout, ns, self.registers)
        self.calculations = {c["name"]: compile_calculation(layout, ns, c)
                             for c in program.get("calculations", [])}
        self.field_lists = {fl["id"]: self._field_slots(fl.get("elements", []))
                            for fl in program.get("field_lists", [])}
        self.learn_lists = {ll["id"]: (ll["name"], self._field_slots(ll.get("elements", [])))
                            for ll in program.get("learn_lists", [])}
        self.value_sets = {vs["name"]: ValueSet(vs["name"], vs.get("compressed_bitwidth", 0), [],
                                                self.generation)
                           for vs in program.get("parse_vsets", [])}
        objects = {"calculation": self.calculations, "counter_array": self.counters,
                   "meter_array": self.meters, "register_array": self.registers}
        self.actions_compiler = ActionCompiler(layout, ns, self.exprs, self.codec, objects, log)
        self.actions: dict[int, ActionDef] = {}
        for action in program.get("actions", []):
            params = tuple((rd["name"], rd["bitwidth"]) for rd in action.get("runtime_data", []))
            run = self.actions_compiler.compile(action["name"], action.get("primitives", []))
            self.actions[action["id"]] = ActionDef(action["name"], action["id"], params, run)
        self.action_fragments = {
            action["id"]: [p.get("source_info", {}).get("source_fragment", p["op"])
                           for p in action.get("primitives", [])]
            for action in program.get("actions", [])}

        parsers = program["parsers"]
        compiler = ParserCompiler(layout, ns, self.exprs, self.codec, self.actions_compiler,
                                  self.value_sets)
        self.parser: Parser | None = compiler.compile(parsers[0]) if parsers else None
        self.tables: dict[str, MatchTable] = {}
        self.profiles: dict[str, ActionProfile] = {}
        self.controls: dict[str, Node | None] = {}
        for pipeline in program["pipelines"]:
            self.controls[pipeline["name"]] = self._control(pipeline)
        self.checksums = [compile_checksum(layout, ns, self.exprs, self.calculations, c)
                          for c in program.get("checksums", [])]
        self.verify_checksums = [c for c in self.checksums if c.verify]
        self.update_checksums = [c for c in self.checksums if c.update]
        deparsers = program["deparsers"]
        self.deparse = compile_deparser(layout, ns, self.codec, self.actions_compiler,
                                        deparsers[0] if deparsers else None)
        # The untraced path: each control in one function, and the checksum updates
        # with the deparser (``emit``).
        may_exit = any(prim["op"] == "exit" for action in program.get("actions", [])
                       for prim in action.get("primitives", []))
        fuser = ControlFuser(ns, may_exit)
        self.fused_controls = {name: fuser.fuse(name, init)
                               for name, init in self.controls.items()}
        self.emit = compile_deparser(layout, ns, self.codec, self.actions_compiler,
                                     deparsers[0] if deparsers else None,
                                     update_lines(ns, self.update_checksums), "emit")

    def _field_slots(self, elements: list[dict[str, Any]]) -> list[tuple[str, int]]:
        slots = []
        for element in elements:
            header, name = element["value"]
            info = self.layout.field(header, name)
            if info is not None:
                slots.append((f"{header}.{name}", info.slot))
        return slots

    # -- controls ---------------------------------------------------------------
    def _control(self, pipeline: dict[str, Any]) -> Node | None:
        compiler = ControlCompiler(self.layout, self.ns, self.exprs)
        for profile in pipeline.get("action_profiles", []):
            self.profiles[profile["name"]] = self._profile(profile)
        nodes: dict[str, Node] = {}
        table_specs = pipeline.get("tables", [])
        for spec in table_specs:
            table = self._table(spec, compiler)
            self.tables[table.name] = table
            node = TableNode(spec["name"], table, self.counted)
            node.key_fn_source, _ = compiler.key_source(spec.get("key", []))  # type: ignore
            nodes[spec["name"]] = node
        for spec in pipeline.get("conditionals", []):
            fragment = spec.get("source_info", {}).get("source_fragment", spec["name"])
            nodes[spec["name"]] = ConditionalNode(spec["name"], fragment)
        for spec in table_specs:
            node = nodes[spec["name"]]
            assert isinstance(node, TableNode)
            next_tables = spec.get("next_tables", {})
            node.base_default_next = resolve_next(nodes, spec.get("base_default_next"),
                                                  spec["name"])
            if "__HIT__" in next_tables or "__MISS__" in next_tables:
                node.uses_hit_miss = True
                node.hit_next = resolve_next(nodes, next_tables.get("__HIT__"), spec["name"])
                node.miss_next = resolve_next(nodes, next_tables.get("__MISS__"), spec["name"])
            else:
                node.next_by_action = {action: resolve_next(nodes, target, spec["name"])
                                       for action, target in next_tables.items()}
            direct_meter = spec.get("direct_meters")
            if direct_meter:
                meter = self.meters[direct_meter]
                node.meter = meter
                if meter.result_target:
                    info = self.layout.field(*meter.result_target)
                    node.meter_slot = (info.slot, info.mask) if info else None
            compiler.compile_table(node, nodes)
        for spec in pipeline.get("conditionals", []):
            node = nodes[spec["name"]]
            assert isinstance(node, ConditionalNode)
            node.true_next = resolve_next(nodes, spec.get("true_next"), spec["name"])
            node.false_next = resolve_next(nodes, spec.get("false_next"), spec["name"])
            compiler.compile_conditional(node, spec["expression"])
        return resolve_next(nodes, pipeline.get("init_table"), pipeline["name"])

    def _profile(self, spec: dict[str, Any]) -> ActionProfile:
        selector = None
        if spec.get("selector"):
            selector = compile_calculation(self.layout, self.ns, {
                "name": spec["name"] + "_selector", "algo": spec["selector"]["algo"],
                "input": spec["selector"]["input"]})
        return ActionProfile(spec["name"], spec.get("max_size", 0), selector, self.generation)

    def _table(self, spec: dict[str, Any], compiler: ControlCompiler) -> MatchTable:
        _, key = compiler.key_source(spec.get("key", []))
        actions = {}
        for action_id in spec.get("action_ids", []):
            action = self.actions[action_id]
            actions[action.name] = action
        default = None
        entry = spec.get("default_entry")
        if entry is not None:
            action = self.actions[entry["action_id"]]
            args = tuple(parse_hexstr(a) for a in entry.get("action_data", []))
            default = ActionCall(action, args)
        indirect = None
        if spec.get("type") in ("indirect", "indirect_ws"):
            indirect = self.profiles[spec["action_profile"]]
        table = MatchTable(
            spec["name"], key, spec.get("max_size", 0) or 0, actions, default,
            default_action_const=bool(entry and entry.get("action_const")),
            default_entry_const=bool(entry and entry.get("action_entry_const")),
            with_counters=bool(spec.get("with_counters")), indirect=indirect,
            support_timeout=bool(spec.get("support_timeout")), generation=self.generation)
        for const_entry in spec.get("entries", []):
            self._const_entry(table, const_entry)
        if spec.get("entries"):
            table.immutable = True
        return table

    def _const_entry(self, table: MatchTable, spec: dict[str, Any]) -> None:
        match = []
        for key_field, element in zip(table.key, spec["match_key"]):
            kind = element["match_type"]
            if kind == "valid":
                match.append(1 if element["key"] else 0)
            elif kind == "exact":
                match.append(parse_hexstr(element["key"]))
            elif kind == "lpm":
                match.append((parse_hexstr(element["key"]), int(element["prefix_length"])))
            elif kind in ("ternary", "optional"):
                value, mask = parse_hexstr(element["key"]), parse_hexstr(element["mask"])
                match.append((value & mask, mask))
            elif kind == "range":
                match.append((parse_hexstr(element["start"]), parse_hexstr(element["end"])))
            else:
                raise ConfigError(f"table '{table.name}': bad const entry match '{kind}'")
            del key_field
        action_entry = spec["action_entry"]
        action = self.actions[action_entry["action_id"]]
        args = tuple(parse_hexstr(a) for a in action_entry.get("action_data", []))
        # BMv2: a low numerical priority is a high priority; P4Runtime the opposite.
        priority = (1 << 24) - int(spec.get("priority", 0)) if table.needs_priority else 0
        try:
            table.insert(match, ActionCall(action, args), priority, force=True)
        except InvalidEntry as exc:
            raise ConfigError(f"table '{table.name}': bad const entry: {exc}") from None
