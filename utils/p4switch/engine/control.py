"""Compile control flows: tables and conditionals as linked nodes.

Each node has ``run(p) -> next node or None``.  A control is applied by
following nodes until None or until an action called ``exit``
(BMv2 ``Pipeline::apply``).  Table nodes also have a slower ``trace_run`` that
reports the key, the hit or miss and the action for ``--log-console``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import ConfigError
from .expressions import ExpressionCompiler, Namespace, identifier, parse_hexstr
from .layout import VALID_FIELD, Layout
from .tables import ActionCall, KeyField, MatchTable

Trace = Callable[[str], None]


class Node:
    """A control-flow node: a table or a conditional."""

    kind = "node"

    def __init__(self, name: str) -> None:
        self.name = name
        self.run: Callable[[Any], Node | None] = lambda p: None

    def trace_run(self, p: Any, trace: Trace) -> Node | None:
        return self.run(p)


class ConditionalNode(Node):
    kind = "conditional"

    def __init__(self, name: str, source_fragment: str) -> None:
        super().__init__(name)
        self.fragment = source_fragment
        self.test: Callable[[Any], bool] = lambda p: False
        self.true_next: Node | None = None
        self.false_next: Node | None = None

    def trace_run(self, p: Any, trace: Trace) -> Node | None:
        result = bool(self.test(p))
        trace(f"Condition \"{self.fragment}\" ({self.name}) is {str(result).lower()}")
        return self.true_next if result else self.false_next


class TableNode(Node):
    kind = "table"

    def __init__(self, name: str, table: MatchTable,
                 counted: list[tuple[Any, int]] | None = None) -> None:
        super().__init__(name)
        self.table = table
        self.counted = counted if counted is not None else []  # for the flow cache
        self.key_fn: Callable[[Any], Any] = lambda p: 0
        self.next_by_action: dict[str, Node | None] = {}
        self.hit_next: Node | None = None
        self.miss_next: Node | None = None
        self.uses_hit_miss = False
        self.base_default_next: Node | None = None
        self.meter: Any = None
        self.meter_slot: tuple[int, int] | None = None

    def resolve(self, entry: Any, p: Any) -> ActionCall:
        """The action call of an entry (through the action profile if indirect)."""
        if entry.call is not None:
            return entry.call
        return self.table.indirect.resolve(entry, p)

    def after(self, call: ActionCall | None, hit: bool) -> Node | None:
        if self.uses_hit_miss:
            return self.hit_next if hit else self.miss_next
        if call is None:
            return self.base_default_next
        return self.next_by_action.get(call.action.name, self.base_default_next)

    def trace_run(self, p: Any, trace: Trace) -> Node | None:
        table = self.table
        key = self.key_fn(p)
        values = key if isinstance(key, tuple) else (key,)
        shown = ", ".join(f"{k.name}={v:#x}" for k, v in zip(table.key, values))
        trace(f"Applying table '{table.name}'" + (f" with key {{{shown}}}" if shown else ""))
        entry = table.lookup(key)
        if entry is None:
            call = table.default
            trace(f"Table '{table.name}': miss")
        else:
            call = self.resolve(entry, p)
            trace(f"Table '{table.name}': hit")
            self.count(entry, p)
        if call is not None:
            args = ", ".join(f"{name}={value:#x}"
                             for (name, _w), value in zip(call.action.params, call.args))
            trace(f"Action {call.action.name}({args})")
            call.action.run(p, call.args)
        return self.after(call, entry is not None)

    def count(self, entry: Any, p: Any) -> None:
        """Direct counter and direct meter of a hit entry."""
        if self.table.with_counters:
            entry.packets += 1
            entry.bytes += len(p.data)
            self.counted.append((entry, len(p.data)))
        if self.meter is not None and self.meter_slot is not None:
            slot, mask = self.meter_slot
            p.f[slot] = self.meter.execute_entry(entry, len(p.data), p.now) & mask


class ControlCompiler:
    """Builds the nodes of one JSON pipeline object."""

    def __init__(self, layout: Layout, ns: Namespace, exprs: ExpressionCompiler) -> None:
        self.layout = layout
        self.ns = ns
        self.exprs = exprs

    def key_source(self, key: list[dict[str, Any]]) -> tuple[str, list[KeyField]]:
        """Source of a table's lookup key and the key's field descriptions."""
        parts, fields = [], []
        for element in key:
            kind = element["match_type"]
            target = element["target"]
            name = element.get("name") or (".".join(target) if isinstance(target, list)
                                           else target)
            if kind == "valid" or (isinstance(target, list) and target[1] == VALID_FIELD):
                header = target if isinstance(target, str) else target[0]
                source, width = f"v[{self.layout.header(header).index}]", 1
            else:
                slot, info = self.exprs.lvalue({"type": "field", "value": target})
                source, width = slot, info.bitwidth
                if info.signed:
                    source = f"({slot} & {info.mask:#x})"
            if element.get("mask"):
                source = f"({source} & {parse_hexstr(element['mask']):#x})"
            parts.append(source)
            fields.append(KeyField(name, kind, width))
        if not parts:
            return "()", fields
        if len(parts) == 1:
            return parts[0], fields
        return "(" + ", ".join(parts) + ",)", fields

    def compile_table(self, node: TableNode, nodes: dict[str, Node]) -> None:
        """Generate the fast ``run`` of a table node (after all nodes exist)."""
        table = node.table
        key_source = node.key_fn_source  # type: ignore[attr-defined]
        node.key_fn = self.ns.function("key_" + identifier(table.name), "p",
                                       ["f = p.f", "v = p.v", f"return {key_source}"])
        t = self.ns.bind(table, "_T")
        n = self.ns.bind(node, "_N")
        body = ["f = p.f", "v = p.v", f"e = {t}.lookup({key_source})", "if e is None:",
                f"    c = {t}.default", "    if c is not None:",
                "        c.action.run(p, c.args)"]
        body.append(f"    return {self._next_source(node, n, hit=False)}")
        if table.with_counters or node.meter is not None:
            body.append(f"{n}.count(e, p)")
        if table.indirect is None:
            body += ["c = e.call", "c.action.run(p, c.args)"]
        else:
            body += [f"c = {n}.resolve(e, p)", "if c is not None:", "    c.action.run(p, c.args)"]
        body.append(f"return {self._next_source(node, n, hit=True)}")
        node.run = self.ns.function("apply_" + identifier(table.name), "p", body)

    def _next_source(self, node: TableNode, bound: str, hit: bool) -> str:
        if node.uses_hit_miss:
            target = node.hit_next if hit else node.miss_next
            return self.ns.bind(target, "_N") if target is not None else "None"
        targets = set(map(id, node.next_by_action.values())) | {id(node.base_default_next)}
        if len(targets) == 1:
            target = node.base_default_next if not node.next_by_action \
                else next(iter(node.next_by_action.values()))
            return self.ns.bind(target, "_N") if target is not None else "None"
        if hit:
            return f"{bound}.after(c, True)"
        return f"{bound}.after(c, False)"

    def compile_conditional(self, node: ConditionalNode, expression: dict[str, Any]) -> None:
        test_source = self.exprs.boolean(expression)
        node.test_source = test_source  # type: ignore[attr-defined]
        node.test = self.ns.function("test_" + identifier(node.name), "p",
                                     ["f = p.f", "v = p.v", f"return {test_source}"])
        true_next = self.ns.bind(node.true_next, "_N") if node.true_next else "None"
        false_next = self.ns.bind(node.false_next, "_N") if node.false_next else "None"
        node.run = self.ns.function("cond_" + identifier(node.name), "p", [
            "f = p.f", "v = p.v", f"return {true_next} if {test_source} else {false_next}"])


def resolve_next(nodes: dict[str, Node], name: str | None, owner: str) -> Node | None:
    if name is None:
        return None
    try:
        return nodes[name]
    except KeyError:
        raise ConfigError(f"'{owner}' refers to unknown control node '{name}'") from None


class ControlFuser:
    """Fuses a control's nodes into one function ``control(p)`` for the untraced path.

    Conditionals become ``if``/``else``, tables their lookup, counting and action call
    inline; a table whose next node depends on the action, or a graph deeper or larger
    than the limits, continues through ``apply_control`` from that node.  ``may_exit``:
    some action of the program calls ``exit`` (then every action call is followed by a
    test of ``p.exit``, as ``apply_control`` tests it before every node).
    """

    MAX_NODES = 96
    MAX_DEPTH = 24

    def __init__(self, ns: Namespace, may_exit: bool) -> None:
        self.ns = ns
        self.may_exit = may_exit
        self.emitted = 0

    def fuse(self, name: str, init: Node | None) -> Callable[[Any], None]:
        """The fused function of the control starting at ``init``."""
        self.emitted = 0
        body = ["f = p.f", "v = p.v"] + self._node(init, 0)
        return self.ns.function("control_" + identifier(name), "p", body)

    def _rest(self, node: Node | None) -> list[str]:
        if node is None:
            return ["return"]
        apply = self.ns.bind(apply_control, "_APPLY")
        return [f"return {apply}({self.ns.bind(node, '_N')}, p)"]

    def _node(self, node: Node | None, depth: int) -> list[str]:
        if node is None:
            return ["return"]
        if depth > self.MAX_DEPTH or self.emitted >= self.MAX_NODES:
            return self._rest(node)
        self.emitted += 1
        if isinstance(node, ConditionalNode):
            return ([f"if {node.test_source}:"]  # type: ignore[attr-defined]
                    + indent(self._node(node.true_next, depth + 1))
                    + ["else:"] + indent(self._node(node.false_next, depth + 1)))
        if isinstance(node, TableNode):
            return self._table(node, depth)
        return self._rest(node)

    def _table(self, node: TableNode, depth: int) -> list[str]:
        table = node.table
        t = self.ns.bind(table, "_T")
        n = self.ns.bind(node, "_N")
        lines = [f"k = {node.key_fn_source}"]  # type: ignore[attr-defined]
        if table.strategy == "exact":
            lines.append(f"e = {t}._exact.get(k)")
        elif table.strategy == "lpm" and len(table.key) == 1:
            lines += ["e = None", f"for _m, _l, _b in {t}._lpm_levels:",
                      "    e = _b.get(k & _m)", "    if e is not None:", "        break"]
        else:
            lines.append(f"e = {t}.lookup(k)")
        lines += ["if e is None:", f"    c = {t}.default", "else:"]
        if node.meter is not None:
            lines.append(f"    {n}.count(e, p)")
        elif table.with_counters:
            counted = self.ns.bind(node.counted, "_CNT")
            lines += ["    e.packets += 1", "    _n = len(p.data)", "    e.bytes += _n",
                      f"    {counted}.append((e, _n))"]
        lines.append("    c = e.call" if table.indirect is None else f"    c = {n}.resolve(e, p)")
        lines += ["if c is not None:", "    c.action.run(p, c.args)"]
        if self.may_exit:
            lines += ["    if p.exit:", "        return"]
        if node.uses_hit_miss:
            if node.hit_next is node.miss_next:
                return lines + self._node(node.hit_next, depth + 1)
            return (lines + ["if e is not None:"] + indent(self._node(node.hit_next, depth + 1))
                    + ["else:"] + indent(self._node(node.miss_next, depth + 1)))
        targets = set(map(id, node.next_by_action.values())) | {id(node.base_default_next)}
        if len(targets) == 1:
            target = node.base_default_next if not node.next_by_action \
                else next(iter(node.next_by_action.values()))
            return lines + self._node(target, depth + 1)
        apply = self.ns.bind(apply_control, "_APPLY")
        return lines + [f"return {apply}({n}.after(c, e is not None), p)"]


def indent(lines: list[str]) -> list[str]:
    """``lines`` one level deeper."""
    return ["    " + line for line in lines]


def apply_control(init: Node | None, p: Any, trace: Trace | None = None) -> None:
    """Run a control from its first node (BMv2 ``Pipeline::apply``)."""
    node = init
    if trace is None:
        while node is not None and not p.exit:
            node = node.run(p)
    else:
        while node is not None and not p.exit:
            node = node.trace_run(p, trace)
