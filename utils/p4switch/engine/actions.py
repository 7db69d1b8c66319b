"""Compile BMv2 actions (lists of primitive calls) into Python functions.

Every action becomes one function ``run(p, a)`` over the packet state ``p``
and the entry's action data ``a``.  Primitives follow core/primitives.cpp and
simple_switch's primitives.cpp; actions that use ``_jump``/``_jump_if_zero``
(p4c's lowering of ``if`` inside actions) run as a small step machine.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from .errors import ConfigError
from .expressions import ExpressionCompiler, Namespace, identifier, store
from .headers import HeaderCodec
from .layout import Layout

DROP_PORT = 511  # v1model's drop port (egress_spec), the only one p4switch supports
MIRROR_VALID = 1 << 16


class AssertionFailed(Exception):
    """A P4 ``assert``/``assume`` failed (BMv2 aborts; we drop the packet)."""


class Stacks:
    """P4_16 header stack operations (BMv2 ``StackP4_16``)."""

    def __init__(self, layout: Layout, codec: HeaderCodec) -> None:
        self.codec = codec
        self.stacks = [tuple(s.elements) for s in layout.stacks]
        self.union_stacks = [tuple(tuple(layout.unions[u].headers) for u in s.elements)
                             for s in layout.union_stacks]

    def _swap(self, p: Any, first: Any, second: Any) -> None:
        if isinstance(first, tuple):  # union stack: swap every member
            for a, b in zip(first, second):
                self.codec.swap(p, a, b)
        else:
            self.codec.swap(p, first, second)

    @staticmethod
    def _invalidate(p: Any, element: Any) -> None:
        for header in element if isinstance(element, tuple) else (element,):
            p.v[header] = 0

    def push_front(self, p: Any, index: int, count: int, unions: bool = False) -> None:
        elements = self.union_stacks[index] if unions else self.stacks[index]
        counters = p.unxt if unions else p.nxt
        if count <= 0:
            return
        size = len(elements)
        counters[index] = min(size, counters[index] + count)
        for i in range(size - 1, count - 1, -1):
            self._swap(p, elements[i], elements[i - count])
        for i in range(min(size, count)):
            self._invalidate(p, elements[i])

    def pop_front(self, p: Any, index: int, count: int, unions: bool = False) -> None:
        elements = self.union_stacks[index] if unions else self.stacks[index]
        counters = p.unxt if unions else p.nxt
        if count <= 0:
            return
        size = len(elements)
        counters[index] -= min(counters[index], count)
        i = 0
        if count < size:
            for i in range(size - count):
                self._swap(p, elements[i], elements[i + count])
            i = size - count
        for j in range(i, size):
            self._invalidate(p, elements[j])

    def assign(self, p: Any, dst: int, src: int, unions: bool = False) -> None:
        elements_dst = self.union_stacks[dst] if unions else self.stacks[dst]
        elements_src = self.union_stacks[src] if unions else self.stacks[src]
        counters = p.unxt if unions else p.nxt
        counters[dst] = counters[src]
        for a, b in zip(elements_dst, elements_src):
            for x, y in zip(a, b) if unions else ((a, b),):
                self.codec.copy(p, x, y)


def format_log_message(fmt: str, values: list[int]) -> str:
    """BMv2 ``log_msg``: replace each ``{}`` with the next value."""
    out = []
    pending = list(values)
    i = 0
    while i < len(fmt):
        if fmt.startswith("{}", i) and (i == 0 or fmt[i - 1] != "\\"):
            out.append(str(pending.pop(0)) if pending else "{}")
            i += 2
            continue
        if fmt.startswith("\\{", i) or fmt.startswith("\\}", i):
            i += 1
            continue
        out.append(fmt[i])
        i += 1
    return "".join(out)


class ActionCompiler:
    """Builds action functions; one per JSON action."""

    def __init__(self, layout: Layout, ns: Namespace, exprs: ExpressionCompiler,
                 codec: HeaderCodec, objects: dict[str, dict[str, Any]],
                 log: Callable[[Any, str], None]) -> None:
        self.layout = layout
        self.ns = ns
        self.exprs = exprs
        self.codec = codec
        self.objects = objects  # "calculation"/"counter_array"/... -> name -> object
        self.stacks = Stacks(layout, codec)
        ns.names.update({
            "_push": self.stacks.push_front,
            "_pop": self.stacks.pop_front,
            "_stack_assign": self.stacks.assign,
            "_randint": random.randint,
            "_log_msg": lambda p, fmt, values: log(p, format_log_message(fmt, values)),
            "_AssertionFailed": AssertionFailed,
        })
        ns.names.update(codec.helpers())
        self.egress_spec = layout.named_field("standard_metadata.egress_spec")
        self.mcast_grp = (layout.named_field("intrinsic_metadata.mcast_grp")
                          or layout.named_field("standard_metadata.mcast_grp"))
        self._header_bytes = ns.bind(tuple(h.fixed_bytes for h in layout.headers), "_HBYTES")

    # -- public -------------------------------------------------------------
    def compile(self, name: str, primitives: list[dict[str, Any]]) -> Callable[..., None]:
        """A function ``run(p, a)`` executing ``primitives``."""
        ident = identifier(name)
        if any(prim["op"] in ("_jump", "_jump_if_zero") for prim in primitives):
            return self._compile_steps(ident, primitives)
        body = ["f = p.f", "v = p.v"]
        for prim in primitives:
            body.extend(self.primitive(prim))
        return self.ns.function(f"action_{ident}", "p, a", body)

    def _compile_steps(self, ident: str, primitives: list[dict[str, Any]]) -> Callable[..., None]:
        steps = []
        for index, prim in enumerate(primitives):
            params = prim.get("parameters", [])
            body = ["f = p.f", "v = p.v"]
            if prim["op"] == "_jump":
                body.append(f"return {self.exprs.data(params[0])}")
            elif prim["op"] == "_jump_if_zero":
                body.append(f"return {self.exprs.data(params[1])} "
                            f"if {self.exprs.data(params[0])} == 0 else {index + 1}")
            else:
                body.extend(self.primitive(prim))
                body.append(f"return {index + 1}")
            steps.append(self.ns.function(f"step_{ident}_{index}", "p, a", body))
        step_table = self.ns.bind(tuple(steps), "_STEPS")
        return self.ns.function(f"action_{ident}", "p, a", [
            "pc = 0",
            f"while pc < {len(steps)}:",
            f"    pc = {step_table}[pc](p, a)",
        ])

    def primitive(self, prim: dict[str, Any]) -> list[str]:
        """Source lines of one primitive call."""
        op = prim["op"]
        handler = getattr(self, "p_" + op, None)
        if handler is None:
            raise ConfigError(f"unsupported primitive '{op}'")
        return handler(prim.get("parameters", []))

    # -- parameter helpers --------------------------------------------------------
    def _data(self, node: dict[str, Any]) -> str:
        return self.exprs.data(node)

    def _header(self, node: dict[str, Any]) -> tuple[str, Any]:
        """(source of the header index, HeaderInfo when known statically)."""
        if node["type"] == "header":
            header = self.layout.header(node["value"])
            return str(header.index), header
        return self.exprs.header(node), None

    def _object(self, kind: str, node: dict[str, Any]) -> tuple[str, Any]:
        try:
            obj = self.objects[kind][node["value"]]
        except KeyError:
            raise ConfigError(f"unknown {kind} '{node['value']}'") from None
        return self.ns.bind(obj, "_X"), obj

    def _store(self, target: dict[str, Any], value: str) -> list[str]:
        slot, info = self.exprs.lvalue(target)
        return [store(slot, value, info)]

    def _binary(self, params: list[dict[str, Any]], symbol: str) -> list[str]:
        return self._store(params[0], f"{self._data(params[1])} {symbol} {self._data(params[2])}")

    # -- primitives: assignment ---------------------------------------------------
    def p_assign(self, params: list[dict[str, Any]]) -> list[str]:
        if params[0]["type"] == "header":
            return self.p_assign_header(params)
        return self._store(params[0], self._data(params[1]))

    p_modify_field = p_assign

    def p_assign_VL(self, params: list[dict[str, Any]]) -> list[str]:  # noqa: N802
        dst = self.exprs.lvalue(params[0])[1]
        src = self.exprs.lvalue(params[1])[1]
        return [f"f[{dst.slot}] = f[{src.slot}]",
                f"p.vl_bits[{dst.header}] = p.vl_bits.get({src.header}, 0)"]

    def p_assign_header(self, params: list[dict[str, Any]]) -> list[str]:
        dst, _ = self._header(params[0])
        src, _ = self._header(params[1])
        return [f"_hcopy(p, {dst}, {src})"]

    p_copy_header = p_assign_header

    def p_assign_union(self, params: list[dict[str, Any]]) -> list[str]:
        dst = self.exprs.operand(params[0]).source
        src = self.exprs.operand(params[1]).source
        members = self.exprs.union_members
        return [f"for _d, _s in zip({members}[{dst}], {members}[{src}]):",
                "    _hcopy(p, _d, _s)"]

    def p_assign_header_stack(self, params: list[dict[str, Any]]) -> list[str]:
        dst = self.layout.stack(params[0]["value"]).index
        src = self.layout.stack(params[1]["value"]).index
        return [f"_stack_assign(p, {dst}, {src})"]

    def p_assign_union_stack(self, params: list[dict[str, Any]]) -> list[str]:
        dst = self.layout.union_stack(params[0]["value"]).index
        src = self.layout.union_stack(params[1]["value"]).index
        return [f"_stack_assign(p, {dst}, {src}, True)"]

    def p_add_to_field(self, params: list[dict[str, Any]]) -> list[str]:
        slot, info = self.exprs.lvalue(params[0])
        return [store(slot, f"{slot} + {self._data(params[1])}", info)]

    def p_subtract_from_field(self, params: list[dict[str, Any]]) -> list[str]:
        slot, info = self.exprs.lvalue(params[0])
        return [store(slot, f"{slot} - {self._data(params[1])}", info)]

    def p_add(self, params: list[dict[str, Any]]) -> list[str]:
        return self._binary(params, "+")

    def p_subtract(self, params: list[dict[str, Any]]) -> list[str]:
        return self._binary(params, "-")

    def p_bit_xor(self, params: list[dict[str, Any]]) -> list[str]:
        return self._binary(params, "^")

    def p_bit_or(self, params: list[dict[str, Any]]) -> list[str]:
        return self._binary(params, "|")

    def p_bit_and(self, params: list[dict[str, Any]]) -> list[str]:
        return self._binary(params, "&")

    def p_shift_left(self, params: list[dict[str, Any]]) -> list[str]:
        return self._binary(params, "<<")

    def p_shift_right(self, params: list[dict[str, Any]]) -> list[str]:
        return self._binary(params, ">>")

    def p_modify_field_rng_uniform(self, params: list[dict[str, Any]]) -> list[str]:
        lines = [f"_lo = {self._data(params[1])}", f"_hi = {self._data(params[2])}",
                 "if _lo <= _hi:"]
        return lines + ["    " + line for line in self._store(params[0], "_randint(_lo, _hi)")]

    def p_modify_field_with_hash_based_offset(self, params: list[dict[str, Any]]) -> list[str]:
        _, calc = self._object("calculation", params[2])
        hash_fn, build = self.ns.bind(calc.hash, "_HASH"), self.ns.bind(calc.build, "_BUILD")
        lines = [f"_sz = {self._data(params[3])} or 1"]
        return lines + self._store(params[0],
                                   f"{hash_fn}({build}(p)) % _sz + {self._data(params[1])}")

    # -- primitives: headers and stacks ---------------------------------------
    def p_add_header(self, params: list[dict[str, Any]]) -> list[str]:
        index, header = self._header(params[0])
        nbytes = str(header.fixed_bytes) if header else f"{self._header_bytes}[_h]"
        return [f"_h = {index}", "if not v[_h]:", "    _hreset(p, _h)",
                "    " + self.codec.set_valid_source("_h", header),
                f"    p.length += {nbytes}"]

    def p_add_header_fast(self, params: list[dict[str, Any]]) -> list[str]:
        index, header = self._header(params[0])
        return [self.codec.set_valid_source(index, header)]

    def p_remove_header(self, params: list[dict[str, Any]]) -> list[str]:
        index, header = self._header(params[0])
        nbytes = str(header.fixed_bytes) if header else f"{self._header_bytes}[_h]"
        return [f"_h = {index}", "if v[_h]:", f"    p.length -= {nbytes}", "    v[_h] = 0"]

    def _stack_op(self, params: list[dict[str, Any]], helper: str) -> list[str]:
        node = params[0]
        count = self._data(params[1])
        if node["type"] == "header_union_stack":
            return [f"{helper}(p, {self.layout.union_stack(node['value']).index}, {count}, True)"]
        return [f"{helper}(p, {self.layout.stack(node['value']).index}, {count})"]

    def p_push(self, params: list[dict[str, Any]]) -> list[str]:
        return self._stack_op(params, "_push")

    def p_pop(self, params: list[dict[str, Any]]) -> list[str]:
        return self._stack_op(params, "_pop")

    # -- primitives: forwarding decisions ------------------------------------------
    def _drop_lines(self) -> list[str]:
        lines = [f"f[{self.egress_spec.slot}] = {DROP_PORT}"]
        if self.mcast_grp is not None:
            lines.append(f"f[{self.mcast_grp.slot}] = 0")
        return lines

    def p_mark_to_drop(self, params: list[dict[str, Any]]) -> list[str]:
        header = self.layout.header(params[0]["value"]) if params else None
        if header is None:
            return self._drop_lines()
        spec = header.field_named("egress_spec")
        lines = [f"f[{spec.slot}] = {DROP_PORT}"]
        if any(f.name == "mcast_grp" for f in header.fields):
            lines.append(f"f[{header.field_named('mcast_grp').slot}] = 0")
        return lines

    def p_drop(self, params: list[dict[str, Any]]) -> list[str]:
        return self._drop_lines()

    def p_exit(self, params: list[dict[str, Any]]) -> list[str]:
        return ["p.exit = True"]

    def p_no_op(self, params: list[dict[str, Any]]) -> list[str]:
        return []

    def _clone(self, params: list[dict[str, Any]]) -> list[str]:
        return [f"p.clone_session = ({self._data(params[0])} & 0xffff) | {MIRROR_VALID}",
                f"p.clone_field_list = {self._data(params[1])} & 0xffff"]

    p_clone_ingress_pkt_to_egress = _clone
    p_clone_egress_pkt_to_egress = _clone

    def p_resubmit(self, params: list[dict[str, Any]]) -> list[str]:
        return [f"p.resubmit = {self._data(params[0])} & 0xffff"]

    def p_recirculate(self, params: list[dict[str, Any]]) -> list[str]:
        return [f"p.recirculate = {self._data(params[0])} & 0xffff"]

    def p_generate_digest(self, params: list[dict[str, Any]]) -> list[str]:
        return [f"p.digest = {self._data(params[1])} & 0xffff"]

    def p_truncate(self, params: list[dict[str, Any]]) -> list[str]:
        length = self._data(params[0])
        return [f"_n = {length}",
                "p.truncate = _n if p.truncate is None else min(p.truncate, _n)"]

    # -- primitives: externs ---------------------------------------------------------
    def p_count(self, params: list[dict[str, Any]]) -> list[str]:
        counter, _ = self._object("counter_array", params[0])
        return [f"{counter}.count({self._data(params[1])}, len(p.data))"]

    def p_execute_meter(self, params: list[dict[str, Any]]) -> list[str]:
        meter, _ = self._object("meter_array", params[0])
        lines = [f"_i = {self._data(params[1])}", f"if 0 <= _i < {meter}.size:"]
        return lines + ["    " + line for line in
                        self._store(params[2], f"{meter}.execute(_i, len(p.data), p.now)")]

    def p_register_read(self, params: list[dict[str, Any]]) -> list[str]:
        _, array = self._object("register_array", params[1])
        cells = self.ns.bind(array.values, "_REG")
        lines = [f"_i = {self._data(params[2])}", f"if 0 <= _i < {array.size}:"]
        return lines + ["    " + line for line in self._store(params[0], f"{cells}[_i]")]

    def p_register_write(self, params: list[dict[str, Any]]) -> list[str]:
        _, array = self._object("register_array", params[0])
        cells = self.ns.bind(array.values, "_REG")
        return [f"_i = {self._data(params[1])}", f"if 0 <= _i < {array.size}:",
                f"    {store(f'{cells}[_i]', self._data(params[2]), array.cell_info)}"]

    def p_log_msg(self, params: list[dict[str, Any]]) -> list[str]:
        fmt = params[0]["value"]
        values = ", ".join(self._data(node) for node in params[1]["value"]) \
            if len(params) > 1 else ""
        return [f"_log_msg(p, {fmt!r}, [{values}])"]

    def p_assert(self, params: list[dict[str, Any]]) -> list[str]:
        return [f"if {self._data(params[0])} == 0: raise _AssertionFailed('assert failed')"]

    def p_assume(self, params: list[dict[str, Any]]) -> list[str]:
        return [f"if {self._data(params[0])} == 0: raise _AssertionFailed('assume failed')"]
