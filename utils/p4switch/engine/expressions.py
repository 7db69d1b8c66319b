"""Compile BMv2 JSON expressions into Python source.

BMv2 evaluates expressions with infinite precision (GMP/boost integers) and
truncates only when a value is stored into a field; Python ints behave the
same way, including two's-complement semantics of ``&``, ``|``, ``^`` and
``~`` on negative numbers.  The generated source refers to:

* ``f`` -- the packet's field slots, ``v`` -- header validity (0/1),
* ``a`` -- the runtime data (action parameters) of the running action,
* ``p`` -- the packet state (header stack depths, registers ...),
* names bound in the pipeline namespace (``Namespace``): helpers and objects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError
from .layout import VALID_FIELD, FieldInfo, Layout

DATA, BOOL, HEADER, STACK, UNION, UNION_STACK = "data", "bool", "header", "stack", "union", "ustack"


def two_comp_mod(value: int, width: int) -> int:
    """BMv2's ``two_comp_mod``: the signed value of ``value`` on ``width`` bits."""
    mask = (1 << width) - 1
    value &= mask
    return value - (1 << width) if value >> (width - 1) else value


def usat_cast(value: int, width: int) -> int:
    """Saturating cast to an unsigned ``width``-bit value."""
    return min(max(value, 0), (1 << width) - 1)


def sat_cast(value: int, width: int) -> int:
    """Saturating cast to a signed ``width``-bit value."""
    top = (1 << (width - 1)) - 1
    return min(max(value, -top - 1), top)


def parse_hexstr(text: str) -> int:
    """``"0x0800"`` -> 2048, ``"-0x1"`` -> -1 (BMv2 hexstr convention)."""
    text = text.strip()
    negative = text.startswith("-")
    if negative:
        text = text[1:]
    value = int(text, 16)
    return -value if negative else value


def store(target: str, value: str, info: FieldInfo) -> str:
    """Source that assigns ``value`` to field ``target`` truncated as BMv2 does."""
    if info.signed:
        return f"{target} = _tcm({value}, {info.bitwidth})"
    return f"{target} = ({value}) & {info.mask:#x}"


@dataclass
class Operand:
    source: str
    kind: str


def identifier(name: str) -> str:
    """``name`` (a P4 object's, dots and all) as part of a Python identifier."""
    return "".join(c if c.isalnum() else "_" for c in name)


class Namespace:
    """Objects the generated code refers to by name, shared per pipeline."""

    def __init__(self) -> None:
        self.names: dict[str, Any] = {
            "_tcm": two_comp_mod,
            "_usat": usat_cast,
            "_sat": sat_cast,
        }
        self._ids: dict[int, str] = {}

    def bind(self, obj: Any, prefix: str = "_o") -> str:
        """Name under which ``obj`` is visible to generated code."""
        key = id(obj)
        if key not in self._ids:
            name = f"{prefix}{len(self.names)}"
            self.names[name] = obj
            self._ids[key] = name
        return self._ids[key]

    def function(self, name: str, args: str, body: list[str]) -> Callable[..., Any]:
        """Compile ``def name(args): body`` in this namespace."""
        lines = [f"def {name}({args}):"] + ["    " + line for line in body or ["pass"]]
        code = "\n".join(lines)
        scope: dict[str, Any] = {}
        try:
            exec(compile(code, f"<p4switch:{name}>", "exec"), self.names, scope)  # noqa: S102
        except SyntaxError as exc:  # a bug in code generation, never user input
            raise ConfigError(f"internal code generation error in {name}: {exc}") from exc
        function = scope[name]
        function.__source__ = code
        return function


class ExpressionCompiler:
    """Turns JSON type-value objects into Python source over the PHV."""

    def __init__(self, layout: Layout, ns: Namespace, registers: dict[str, Any]) -> None:
        self.layout = layout
        self.ns = ns
        self.registers = registers
        self.header_first_slot = ns.bind(
            tuple(h.fields[0].slot if h.fields else 0 for h in layout.headers), "_HSLOT")
        self.stack_elements = ns.bind(tuple(tuple(s.elements) for s in layout.stacks), "_STK")
        self.union_members = ns.bind(tuple(tuple(u.headers) for u in layout.unions), "_UNI")
        self.ustack_elements = ns.bind(
            tuple(tuple(s.elements) for s in layout.union_stacks), "_USTK")

    # -- entry points -----------------------------------------------------
    def data(self, node: dict[str, Any]) -> str:
        operand = self.operand(node)
        if operand.kind == BOOL:
            return f"(1 if {operand.source} else 0)"
        if operand.kind != DATA:
            raise ConfigError(f"expected a data value, got {operand.kind}: {node}")
        return operand.source

    def boolean(self, node: dict[str, Any]) -> str:
        operand = self.operand(node)
        if operand.kind == DATA:  # BMv2 requires d2b; be lenient
            return f"({operand.source} != 0)"
        return operand.source

    def header(self, node: dict[str, Any]) -> str:
        """Source evaluating to a header index."""
        operand = self.operand(node)
        if operand.kind != HEADER:
            raise ConfigError(f"expected a header, got {operand.kind}: {node}")
        return operand.source

    def field_ref(self, header: str, name: str) -> FieldInfo:
        info = self.layout.field(header, name)
        if info is None:
            raise ConfigError(f"field '{header}.{name}' is read-only")
        return info

    def lvalue(self, node: dict[str, Any]) -> tuple[str, FieldInfo]:
        """Assignable target: (source of the slot expression, a field of that type)."""
        kind = node["type"]
        value = node["value"]
        if kind == "field":
            info = self.field_ref(value[0], value[1])
            return f"f[{info.slot}]", info
        if kind == "stack_field":
            stack = self.layout.stack(value[0])
            header = self.layout.headers[stack.elements[0]]
            offset = header.offset_of(value[1])
            slot = (f"f[{self.header_first_slot}[{self.stack_elements}[{stack.index}]"
                    f"[p.nxt[{stack.index}] - 1]] + {offset}]")
            return slot, header.fields[offset]
        if kind == "expression":
            inner = value
            if inner.get("op") == "access_field":
                header_src = self.header(inner["left"])
                offset = inner["right"]
                sample = self._sample_header(inner["left"]).fields[offset]
                return f"f[{self.header_first_slot}[{header_src}] + {offset}]", sample
            return self.lvalue(inner) if "type" in inner else self._unsupported(inner)
        if kind == "register":
            array = self.registers[value[0]]
            name = self.ns.bind(array.values, "_REG")
            index = self.data(value[1])
            return f"{name}[{index}]", array.cell_info
        raise ConfigError(f"cannot assign to {kind}: {value}")

    def _unsupported(self, node: dict[str, Any]) -> tuple[str, FieldInfo]:
        raise ConfigError(f"cannot assign to expression {node}")

    def _sample_header(self, node: dict[str, Any]) -> Any:
        """A header with the type of a (possibly run-time) header expression."""
        if node["type"] == "header":
            return self.layout.header(node["value"])
        inner = node["value"]
        if inner.get("op") == "dereference_header_stack":
            stack = self.layout.stack(inner["left"]["value"])
            return self.layout.headers[stack.elements[0]]
        if inner.get("op") == "access_union_header":
            union = self._sample_union(inner["left"])
            return self.layout.headers[union.headers[inner["right"]]]
        raise ConfigError(f"unsupported header expression {node}")

    def _sample_union(self, node: dict[str, Any]) -> Any:
        if node["type"] == "header_union":
            return self.layout.union(node["value"])
        inner = node["value"]
        stack = self.layout.union_stack(inner["left"]["value"])
        return self.layout.unions[stack.elements[0]]

    # -- operands ---------------------------------------------------------
    def operand(self, node: dict[str, Any] | None) -> Operand:
        if node is None:
            raise ConfigError("missing operand")
        kind = node["type"]
        value = node["value"]
        if kind == "field":
            if value[1] == VALID_FIELD:
                return Operand(f"v[{self.layout.header(value[0]).index}]", DATA)
            info = self.field_ref(value[0], value[1])
            return Operand(f"f[{info.slot}]", DATA)
        if kind == "hexstr":
            return Operand(repr(parse_hexstr(value)), DATA)
        if kind == "bool":
            return Operand("True" if value else "False", BOOL)
        if kind in ("local", "runtime_data"):
            return Operand(f"a[{int(value)}]", DATA)
        if kind == "header":
            return Operand(str(self.layout.header(value).index), HEADER)
        if kind == "header_stack":
            return Operand(str(self.layout.stack(value).index), STACK)
        if kind == "header_union":
            return Operand(str(self.layout.union(value).index), UNION)
        if kind == "header_union_stack":
            return Operand(str(self.layout.union_stack(value).index), UNION_STACK)
        if kind in ("stack_field", "register"):
            return Operand(self.lvalue(node)[0], DATA)
        if kind == "expression":
            return self.expression(value)
        raise ConfigError(f"unsupported operand type '{kind}'")

    def expression(self, expr: dict[str, Any]) -> Operand:
        if "op" not in expr:  # nested {"type": "expression", "value": {...}}
            return self.operand(expr)
        op = expr["op"]
        left, right = expr.get("left"), expr.get("right")
        handler = self._UNARY.get(op)
        if handler is not None:
            return handler(self, right)
        if op in self._ARITH:
            return Operand(f"({self.data(left)} {self._ARITH[op]} {self.data(right)})", DATA)
        if op in self._COMPARE:
            return self._compare(op, left, right)
        if op in ("and", "or"):
            return Operand(f"({self.boolean(left)} {op} {self.boolean(right)})", BOOL)
        if op == "?":
            cond = self.boolean(expr["cond"])
            l_op, r_op = self.operand(left), self.operand(right)
            kind = DATA if DATA in (l_op.kind, r_op.kind) else l_op.kind
            return Operand(f"({l_op.source} if {cond} else {r_op.source})", kind)
        if op in ("two_comp_mod", "usat_cast", "sat_cast"):
            helper = {"two_comp_mod": "_tcm", "usat_cast": "_usat", "sat_cast": "_sat"}[op]
            return Operand(f"{helper}({self.data(left)}, {self.data(right)})", DATA)
        if op == "dereference_header_stack":
            stack = self.operand(left).source
            return Operand(f"{self.stack_elements}[{stack}][{self.data(right)}]", HEADER)
        if op == "dereference_union_stack":
            stack = self.operand(left).source
            return Operand(f"{self.ustack_elements}[{stack}][{self.data(right)}]", UNION)
        if op == "access_field":
            header = self.header(left)
            return Operand(f"f[{self.header_first_slot}[{header}] + {int(right)}]", DATA)
        if op == "access_union_header":
            union = self.operand(left).source
            return Operand(f"{self.union_members}[{union}][{int(right)}]", HEADER)
        raise ConfigError(f"unsupported expression operator '{op}'")

    def _compare(self, op: str, left: Any, right: Any) -> Operand:
        l_op, r_op = self.operand(left), self.operand(right)
        symbol = self._COMPARE[op]
        if l_op.kind == HEADER and r_op.kind == HEADER:
            test = f"_hdr_eq(p, {l_op.source}, {r_op.source})"
            return Operand(test if op == "==" else f"(not {test})", BOOL)
        if l_op.kind == UNION and r_op.kind == UNION:
            test = f"_union_eq(p, {l_op.source}, {r_op.source})"
            return Operand(test if op == "==" else f"(not {test})", BOOL)
        if l_op.kind == BOOL or r_op.kind == BOOL:
            return Operand(f"(bool({l_op.source}) {symbol} bool({r_op.source}))", BOOL)
        return Operand(f"({l_op.source} {symbol} {r_op.source})", BOOL)

    def _not(self, right: Any) -> Operand:
        return Operand(f"(not {self.boolean(right)})", BOOL)

    def _bitneg(self, right: Any) -> Operand:
        return Operand(f"(~{self.data(right)})", DATA)

    def _d2b(self, right: Any) -> Operand:
        return Operand(f"({self.data(right)} != 0)", BOOL)

    def _b2d(self, right: Any) -> Operand:
        return Operand(f"(1 if {self.boolean(right)} else 0)", DATA)

    def _valid(self, right: Any) -> Operand:
        operand = self.operand(right)
        if operand.kind == UNION:
            members = f"{self.union_members}[{operand.source}]"
            return Operand(f"any(v[_h] for _h in {members})", BOOL)
        return Operand(f"(v[{operand.source}] == 1)", BOOL)

    def _valid_union(self, right: Any) -> Operand:
        union = self.operand(right).source
        return Operand(f"any(v[_h] for _h in {self.union_members}[{union}])", BOOL)

    def _depth(self, right: Any) -> str:
        """Source of a stack's count of valid elements (its ``next`` index)."""
        operand = self.operand(right)
        counters = "p.unxt" if operand.kind == UNION_STACK else "p.nxt"
        return f"{counters}[{operand.source}]"

    def _last_index(self, right: Any) -> Operand:
        return Operand(f"({self._depth(right)} - 1)", DATA)

    def _size(self, right: Any) -> Operand:
        return Operand(self._depth(right), DATA)

    _UNARY: dict[str, Callable[[ExpressionCompiler, Any], Operand]] = {
        "not": _not,
        "~": _bitneg,
        "d2b": _d2b,
        "b2d": _b2d,
        "valid": _valid,
        "valid_union": _valid_union,
        "last_stack_index": _last_index,
        "size_stack": _size,
    }
    _ARITH = {"+": "+", "-": "-", "*": "*", "<<": "<<", ">>": ">>", "&": "&", "|": "|",
              "^": "^", "/": "//", "%": "%"}
    _COMPARE = {"==": "==", "!=": "!=", ">": ">", ">=": ">=", "<": "<", "<=": "<="}
