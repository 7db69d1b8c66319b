"""Compile BMv2 parsers: one Python function per parse state.

A state function ``state(p, data, off)`` runs the state's parser operations
and returns ``(next_state, off)``; ``next_state`` is None to accept.  Errors
raise ``ParserError(code, bytes_parsed)``; as in BMv2, the packet then goes on
to the ingress pipeline with ``standard_metadata.parser_error`` set and the
headers extracted so far valid.

Select keys are built the way BMv2's ``ParseSwitchKeyBuilder`` does: every key
element is padded to whole bytes and the elements are concatenated, which is
also how p4c writes the transition values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .actions import ActionCompiler
from .errors import ConfigError, ParserError
from .expressions import ExpressionCompiler, Namespace, identifier, parse_hexstr, store
from .headers import HeaderCodec
from .layout import Layout
from .tables import Generation

StateFn = Callable[[Any, bytes, int], tuple[Any, int]]


class ValueSet:
    """A parser value set: ints in the byte-padded select-key representation."""

    def __init__(self, name: str, bitwidth: int, widths: list[int],
                 generation: Generation | None = None) -> None:
        self.name = name
        self.generation = generation if generation is not None else Generation()
        self.bitwidth = bitwidth
        self.widths = widths  # bit widths of the select key elements it is matched on
        self.values: set[int] = set()  # in the padded key form
        self._masked: dict[int, set[int]] = {}

    def add(self, value: int) -> None:
        self.values.add(self.pad(value))
        self._masked.clear()
        self.generation.bump()

    def remove(self, value: int) -> None:
        self.values.discard(self.pad(value))
        self._masked.clear()
        self.generation.bump()

    def clear(self) -> None:
        self.values.clear()
        self._masked.clear()
        self.generation.bump()

    def contains(self, key: int, mask: int) -> bool:
        """Is ``key`` in the set, both sides masked by ``mask`` (-1: no mask)?"""
        if mask == -1:
            return key in self.values
        masked = self._masked.get(mask)
        if masked is None:
            masked = self._masked[mask] = {value & mask for value in self.values}
        return key & mask in masked

    def pad(self, compressed: int) -> int:
        """Spread a value of the compressed width into the byte-padded key form."""
        if len(self.widths) <= 1:
            return compressed
        result = 0
        remaining = sum(self.widths)
        for width in self.widths:
            remaining -= width
            part = (compressed >> remaining) & ((1 << width) - 1)
            result = (result << (8 * ((width + 7) // 8))) | part
        return result


@dataclass
class ParseState:
    name: str
    run: StateFn


class Parser:
    """A compiled parser: ``parse(p)`` fills the PHV from ``p.data``."""

    def __init__(self, states: dict[str, ParseState], init: str | None, no_error: int,
                 fused: Callable[[Any], int] | None = None) -> None:
        self.states = states
        self.init = states[init] if init else None
        self.no_error = no_error
        self.fast_parse = fused or self.parse  # ``parse`` without a trace, in one function

    def parse(self, p: Any, trace: Callable[[str], None] | None = None) -> int:
        """Run the parser, set ``p.off``; returns the P4 error code (NoError if none)."""
        state = self.init
        data = p.data
        off = 0
        code = self.no_error
        try:
            while state is not None:
                if trace is not None:
                    trace(f"Parser 'parser' entering state '{state.name}'")
                state, off = state.run(p, data, off)
        except ParserError as error:
            off = error.offset
            code = error.code
        p.off = off
        return code


class ParserCompiler:
    """Builds a ``Parser`` from a JSON parser object."""

    def __init__(self, layout: Layout, ns: Namespace, exprs: ExpressionCompiler,
                 codec: HeaderCodec, actions: ActionCompiler,
                 value_sets: dict[str, ValueSet]) -> None:
        self.layout = layout
        self.ns = ns
        self.exprs = exprs
        self.codec = codec
        self.actions = actions
        self.value_sets = value_sets
        self.too_short = layout.error_code("PacketTooShort")
        self.out_of_bounds = layout.error_code("StackOutOfBounds")
        self.invalid_argument = layout.error_code("ParserInvalidArgument")

    def compile(self, parser: dict[str, Any]) -> Parser:
        states: dict[str, ParseState] = {}
        for state in parser["parse_states"]:
            states[state["name"]] = ParseState(state["name"], lambda p, d, o: (None, o))
        for state in parser["parse_states"]:
            states[state["name"]].run = self._state(state, states)
        init = parser.get("init_state")
        if init is not None and init not in states:
            raise ConfigError(f"parser init state '{init}' does not exist")
        no_error = self.layout.error_code("NoError")
        return Parser(states, init, no_error, self._fuse(parser, init, no_error))

    def _fuse(self, parser: dict[str, Any], init: str | None,
              no_error: int) -> Callable[[Any], int] | None:
        """``parse(p)`` as one function: the states' bodies in a loop dispatching on the
        state's number (-1 accepts); None when a body would return early."""
        if init is None:
            return None
        numbers = {state["name"]: index for index, state in enumerate(parser["parse_states"])}
        body = ["f = p.f", "v = p.v", "data = p.data", "off = 0",
                f"s = {numbers[init]}", "try:", "    while s >= 0:"]
        keyword = "if"
        for state in parser["parse_states"]:
            lines: list[str] = []
            for op in state.get("parser_ops", []):
                lines.extend(self._op(op))
            if any(line.lstrip().startswith("return") for line in lines):
                return None
            lines.extend(self._fused_transition(state, numbers))
            body.append(f"        {keyword} s == {numbers[state['name']]}:")
            body.extend("            " + line for line in lines)
            keyword = "elif"
        body += ["        else:", "            break",
                 "except _PE as _e:", "    p.off = _e.offset", "    return _e.code",
                 "p.off = off", f"return {no_error}"]
        return self.ns.function(f"parse_{identifier(parser.get('name', 'parser'))}", "p", body)

    def _fused_transition(self, state: dict[str, Any], numbers: dict[str, int]) -> list[str]:
        """The transition of ``state`` as an assignment of the next state's number."""
        def target(name: str | None) -> int:
            return -1 if name is None else numbers[name]

        default = -1
        cases = []
        for transition in state.get("transitions", []):
            if transition["type"] == "default":
                default = target(transition.get("next_state"))
                break
            cases.append(transition)
        key_elements = state.get("transition_key", [])
        if not cases or not key_elements:
            return [f"s = {default}"]
        key_source, widths = self._key(key_elements)
        lines = [f"k = {key_source}"]
        if all(c["type"] == "hexstr" and c.get("mask") is None for c in cases):
            choices: dict[int, int] = {}
            for case in reversed(cases):  # the first listed case wins
                choices[parse_hexstr(case["value"])] = target(case.get("next_state"))
            return lines + [f"s = {self.ns.bind(choices, '_TRN')}.get(k, {default})"]
        keyword = "if"
        for case in cases:
            mask = case.get("mask")
            if case["type"] == "hexstr":
                value = parse_hexstr(case["value"])
                test = f"(k & {parse_hexstr(mask):#x}) == {value & parse_hexstr(mask):#x}" \
                    if mask is not None else f"k == {value:#x}"
            else:
                vset = self.value_sets[case["value"]]
                if not vset.widths:
                    vset.widths = widths
                mask_value = parse_hexstr(mask) if mask is not None else -1
                test = f"{self.ns.bind(vset, '_VS')}.contains(k, {mask_value:#x})"
            lines += [f"{keyword} {test}:", f"    s = {target(case.get('next_state'))}"]
            keyword = "elif"
        return lines + ["else:", f"    s = {default}"]

    # -- one state ----------------------------------------------------------
    def _state(self, state: dict[str, Any], states: dict[str, ParseState]) -> StateFn:
        body = ["f = p.f", "v = p.v"]
        for op in state.get("parser_ops", []):
            body.extend(self._op(op))
        body.extend(self._transition(state, states))
        ident = identifier(state["name"])
        return self.ns.function(f"state_{ident}", "p, data, off", body)

    def _op(self, op: dict[str, Any]) -> list[str]:
        kind = op["op"]
        params = op.get("parameters", [])
        if kind == "extract":
            return self._extract(params[0], None)
        if kind == "extract_VL":
            return self._extract(params[0], self.exprs.data(params[1]))
        if kind == "set":
            return self._set(params[0], params[1])
        if kind == "verify":
            cond = self.exprs.boolean(params[0])
            error = self.exprs.data(params[1])
            return [f"if not {cond}: raise _PE({error}, off)"]
        if kind == "shift":
            count = int(params[0]["value"]) if params[0]["type"] != "hexstr" \
                else parse_hexstr(params[0]["value"])
            return [f"if len(data) - off < {count}: raise _PE({self.too_short}, off)",
                    f"off += {count}"]
        if kind == "advance":
            bits = self.exprs.data(params[0])
            return ["_bits = " + bits,
                    f"if _bits % 8: raise _PE({self.invalid_argument}, off)",
                    f"if len(data) - off < _bits // 8: raise _PE({self.too_short}, off)",
                    "off += _bits // 8"]
        if kind == "primitive":
            return self.actions.primitive(params[0]) if params else []
        raise ConfigError(f"unsupported parser operation '{kind}'")

    def _extract(self, target: dict[str, Any], varbits: str | None) -> list[str]:
        kind, value = target["type"], target["value"]
        if kind == "regular":
            header = self.layout.header(value)
            if varbits is not None or header.varbit_index is not None:
                return self._extract_varbit(str(header.index), varbits, header)
            return self.codec.extract_lines(header) + [
                self.codec.set_valid_source(str(header.index), header)]
        if kind == "stack":
            stack = self.layout.stack(value)
            header = self.layout.headers[stack.elements[0]]
            elements = self.ns.bind(tuple(stack.elements), "_SE")
            lines = [f"_i = p.nxt[{stack.index}]",
                     f"if _i >= {len(stack.elements)}: raise _PE({self.out_of_bounds}, off)",
                     f"_h = {elements}[_i]"]
            if varbits is not None or header.varbit_index is not None:
                lines += self._extract_varbit("_h", varbits, header)
            else:
                first = self.ns.bind(self.codec.first_slot, "_HSLOT")
                lines += [f"_b = {first}[_h]"] + self.codec.extract_lines(header, "_b")
                lines.append(self.codec.set_valid_source("_h", header))
            return lines + [f"p.nxt[{stack.index}] = _i + 1"]
        if kind == "union_stack":
            stack = self.layout.union_stack(value[0])
            union = self.layout.unions[stack.elements[0]]
            member = union.member_names.index(value[1]) if value[1] in union.member_names \
                else int(value[1])
            headers = self.ns.bind(
                tuple(self.layout.unions[u].headers[member] for u in stack.elements), "_SE")
            sample = self.layout.headers[union.headers[member]]
            lines = [f"_i = p.unxt[{stack.index}]",
                     f"if _i >= {len(stack.elements)}: raise _PE({self.out_of_bounds}, off)",
                     f"_h = {headers}[_i]"]
            if varbits is not None or sample.varbit_index is not None:
                lines += self._extract_varbit("_h", varbits, sample)
            else:
                first = self.ns.bind(self.codec.first_slot, "_HSLOT")
                lines += [f"_b = {first}[_h]"] + self.codec.extract_lines(sample, "_b")
                lines.append("_mkvalid(v, _h)")
            return lines + [f"p.unxt[{stack.index}] = _i + 1"]
        raise ConfigError(f"unsupported extract target '{kind}'")

    def _extract_varbit(self, index: str, varbits: str | None, header: Any) -> list[str]:
        if varbits is None:
            if header.length_exp is None:
                raise ConfigError(f"header '{header.name}' has a varbit field but no length")
            varbits = self.exprs.data(header.length_exp)
        return [f"off = _extract_vl(p, data, off, {index}, {varbits})"]

    def _set(self, target: dict[str, Any], source: dict[str, Any]) -> list[str]:
        slot, info = self.exprs.lvalue(target)
        if source["type"] == "lookahead":
            offset, width = source["value"]
            nbytes = (width + 7) // 8
            return [f"if len(data) - off < {nbytes}: raise _PE({self.too_short}, off)",
                    store(slot, self._peek(offset, width), info)]
        return [store(slot, self.exprs.data(source), info)]

    @staticmethod
    def _peek(offset: int, width: int) -> str:
        """Source of ``width`` bits at bit ``offset`` past ``off`` (zeros past the end)."""
        first_byte, bit = divmod(offset, 8)
        nbytes = (bit + width + 7) // 8
        spare = nbytes * 8 - bit - width
        chunk = (f"int.from_bytes(data[off + {first_byte}:off + {first_byte + nbytes}]"
                 f".ljust({nbytes}, b'\\x00'), 'big')")
        return f"(({chunk} >> {spare}) & {(1 << width) - 1:#x})"

    # -- transitions --------------------------------------------------------
    def _key(self, elements: list[dict[str, Any]]) -> tuple[str, list[int]]:
        """Source of the select key and the bit widths of its elements."""
        parts: list[str] = []
        widths: list[int] = []
        for element in elements:
            kind, value = element["type"], element["value"]
            if kind == "lookahead":
                offset, width = value
                source = self._peek(offset, width)
            elif kind == "field" and value[1] == "$valid$":
                source, width = f"v[{self.layout.header(value[0]).index}]", 1
            elif kind in ("field", "stack_field"):
                slot, info = self.exprs.lvalue(element)
                width = info.bitwidth
                source = f"({slot} & {info.mask:#x})" if info.signed else slot
            elif kind == "union_stack_field":
                stack = self.layout.union_stack(value[0])
                union = self.layout.unions[stack.elements[0]]
                member = union.member_names.index(value[1])
                headers = tuple(self.layout.unions[u].headers[member] for u in stack.elements)
                sample = self.layout.headers[headers[0]]
                offset = sample.offset_of(value[2])
                width = sample.fields[offset].bitwidth
                first = self.ns.bind(self.codec.first_slot, "_HSLOT")
                chosen = self.ns.bind(headers, "_SE")
                source = f"f[{first}[{chosen}[p.unxt[{stack.index}] - 1]] + {offset}]"
            else:
                raise ConfigError(f"unsupported select key element '{kind}'")
            parts.append(source)
            widths.append(width)
        source = ""
        for part, width in zip(parts, widths):
            padded = 8 * ((width + 7) // 8)
            source = f"(({source}) << {padded}) | {part}" if source else part
        return source, widths

    def _transition(self, state: dict[str, Any], states: dict[str, ParseState]) -> list[str]:
        def target(name: str | None) -> str:
            if name is None:
                return "None"
            if name not in states:
                raise ConfigError(f"parser state '{name}' does not exist")
            return self.ns.bind(states[name], "_ST")

        transitions = state.get("transitions", [])
        default = "None"
        cases = []
        for transition in transitions:
            if transition["type"] == "default":
                default = target(transition.get("next_state"))
                break
            cases.append(transition)
        key_elements = state.get("transition_key", [])
        if not cases or not key_elements:
            return [f"return {default}, off"]
        key_source, widths = self._key(key_elements)
        lines = [f"k = {key_source}"]
        exact = [c for c in cases if c["type"] == "hexstr" and c.get("mask") is None]
        if len(exact) == len(cases):
            choices: dict[int, Any] = {}
            for case in reversed(cases):  # the first listed case wins
                name = case.get("next_state")
                target(name)  # validates the name
                choices[parse_hexstr(case["value"])] = states[name] if name else None
            bound = self.ns.bind(choices, "_TR")
            return lines + [f"return {bound}.get(k, {default}), off"]
        for case in cases:
            next_state = target(case.get("next_state"))
            mask = case.get("mask")
            if case["type"] == "hexstr":
                value = parse_hexstr(case["value"])
                test = f"(k & {parse_hexstr(mask):#x}) == {value & parse_hexstr(mask):#x}" \
                    if mask is not None else f"k == {value:#x}"
            elif case["type"] == "parse_vset":
                vset = self.value_sets[case["value"]]
                if not vset.widths:
                    vset.widths = widths
                bound = self.ns.bind(vset, "_VS")
                mask_value = parse_hexstr(mask) if mask is not None else -1
                test = f"{bound}.contains(k, {mask_value:#x})"
            else:
                raise ConfigError(f"unsupported transition type '{case['type']}'")
            lines.append(f"if {test}: return {next_state}, off")
        return lines + [f"return {default}, off"]
