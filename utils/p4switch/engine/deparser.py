"""The deparser (bm_sim's ``deparser.cpp``): its primitives, then every valid header
of its order emitted, compiled into one function of the packet."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .actions import ActionCompiler
from .expressions import Namespace
from .headers import HeaderCodec
from .layout import Layout


def compile_deparser(layout: Layout, ns: Namespace, codec: HeaderCodec,
                     actions: ActionCompiler,
                     spec: dict[str, Any] | None, prologue: list[str] | None = None,
                     function_name: str = "deparse") -> Callable[[Any], bytes]:
    """``deparse(p)``: the bytes of the packet's valid headers (none without a deparser);
    the caller appends the payload.  ``prologue``: source lines run first (the
    checksum updates, for the fused egress)."""
    body = ["f = p.f", "v = p.v"] + (prologue or [])
    if spec is None:
        return ns.function(function_name, "p", body + ["return b''"]) if prologue \
            else lambda p: b""
    for primitive in spec.get("primitives", []):
        body.extend(actions.primitive(primitive))
    body.append("out = []")
    for name in spec.get("order", []):
        header = layout.header(name)
        if header.varbit_index is not None:
            emit = f"_hbytes(p, {header.index})"
        else:
            emit = codec.emit_source(header)
        body.append(f"if v[{header.index}]: out.append({emit})")
    body.append("return b''.join(out)")
    return ns.function(function_name, "p", body)
