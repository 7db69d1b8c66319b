"""Checksums (bm_sim's ``checksums.cpp``): verified after the parser, updated before
the deparser, each a calculation written into (or compared with) one field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import ConfigError
from .expressions import ExpressionCompiler, Namespace, identifier
from .hashes import Calculation
from .layout import Layout


class Checksum:
    """A checksum verified in the parser and/or updated in the deparser."""

    def __init__(self, name: str, calculation: Calculation, slot: int, mask: int,
                 target_header: int, condition: Callable[[Any], bool] | None,
                 verify: bool, update: bool) -> None:
        self.name = name
        self.calculation = calculation
        self.slot = slot
        self.mask = mask
        self.target_header = target_header
        self.condition = condition
        self.verify = verify
        self.update = update
        self.condition_source: str | None = None  # the condition over f and v, if any

    def verify_ok(self, p: Any) -> bool:
        """False only if the target header is valid, the condition holds and the
        field differs from the calculation (then ``checksum_error`` is set)."""
        if not p.v[self.target_header]:
            return True
        if self.condition is not None and not self.condition(p):
            return True
        return self.calculation(p) == p.f[self.slot]

    def apply_update(self, p: Any) -> None:
        """Write the calculation into the target field (if the condition holds)."""
        if self.condition is None or self.condition(p):
            p.f[self.slot] = self.calculation(p) & self.mask


def compile_checksum(layout: Layout, ns: Namespace, exprs: ExpressionCompiler,
                     calculations: dict[str, Calculation], spec: dict[str, Any]) -> Checksum:
    """A BMv2 JSON ``checksums`` entry, on one of the program's calculations."""
    if spec.get("type", "generic") != "generic":
        raise ConfigError(f"checksum '{spec['name']}': unsupported type '{spec['type']}'")
    header, name = spec["target"]
    info = layout.field(header, name)
    if info is None:
        raise ConfigError(f"checksum '{spec['name']}': bad target")
    condition = None
    source = None
    if spec.get("if_cond"):
        source = exprs.boolean(spec["if_cond"])
        condition = ns.function(f"cksum_cond_{identifier(spec['name'])}", "p", [
            "f = p.f", "v = p.v", f"return {source}"])
    checksum = Checksum(spec["name"], calculations[spec["calculation"]], info.slot,
                        info.mask, layout.header(header).index, condition,
                        spec.get("verify", True), spec.get("update", True))
    checksum.condition_source = source
    return checksum


def update_lines(ns: Namespace, checksums: list[Checksum]) -> list[str]:
    """Source lines (over p, f and v) updating ``checksums`` in order, as
    ``Checksum.apply_update`` does, with each calculation's input built inline."""
    lines: list[str] = []
    for checksum in checksums:
        calc = checksum.calculation
        hash_fn = ns.bind(calc.hash, "_HASH")
        body = calc.build_lines + [f"f[{checksum.slot}] = {hash_fn}({calc.result_source})"
                                   f" & {checksum.mask:#x}"]
        if checksum.condition_source is None:
            lines += body
        else:
            lines += [f"if {checksum.condition_source}:"] + ["    " + line for line in body]
    return lines
