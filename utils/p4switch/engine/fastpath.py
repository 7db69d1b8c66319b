"""The slow path without a trace or megaflow learning, in one function per packet.

``Pipeline._run`` drives a packet through ``_ingress``/``_egress`` and their helpers,
which handle every case (clones, resubmission, multicast, recirculation, traces,
learning).  ``build_fast_run`` returns a closure doing the same for the common
case, one received frame going to at most one port, with the program's
constants bound once: the fused parser, the fused controls and the fused checksum
updates plus deparser (``Program.emit``).  As soon as a packet asks for anything
else after a control (a clone, a digest, a resubmission, a multicast group, a
recirculation), the closure hands it to the pipeline's general code at that very
point, so the result is the same as ``_run``'s.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable
from typing import Any

from .actions import DROP_PORT, AssertionFailed
from .packet import NORMAL, PacketState

# What a packet may raise that drops it (``Result.error``) instead of the switch;
# struct.error: a header written with struct.pack, should a value exceed its width.
PACKET_ERRORS = (AssertionFailed, ArithmeticError, IndexError, KeyError, ValueError,
                 struct.error)


def build_fast_run(pipe: Any, result_type: type) -> Callable[[int, bytes, float], Any]:
    """``run(port, frame, now) -> Result``: ``pipe._run(port, frame, now, None)`` with
    ``pipe.learning`` None, for ``pipe`` (a ``Pipeline``)."""
    program, meta = pipe.program, pipe.meta
    template = program.template
    parser = program.parser
    parse = parser.fast_parse if parser is not None else None
    no_error = parser.no_error if parser is not None else 0
    verify = tuple(program.verify_checksums)
    ingress, egress = pipe.fused_ingress, pipe.fused_egress
    emit = program.emit
    ingress_port, packet_length = meta.ingress_port, meta.packet_length
    instance_type, egress_spec_slot = meta.instance_type, meta.egress_spec
    egress_port = meta.egress_port
    parser_error, checksum_error, mcast = meta.parser_error, meta.checksum_error, meta.mcast_grp
    stamps = [slot for slot in (meta.ingress_global_timestamp,) if slot is not None]
    egress_stamps = [slot for slot in (meta.egress_global_timestamp, meta.enq_timestamp)
                     if slot is not None]
    no_port = (DROP_PORT + 1) & 0x1FF  # what BMv2 writes into egress_spec: 512 on 9 bits

    def general_ingress(p: PacketState, spec: int, result: Any) -> Any:
        pending: deque[PacketState] = deque()
        pipe._ingress_tail(p, spec, pending, result, None)
        pipe._drain(pending, result, None, 1)
        return result

    def general_egress(p: PacketState, port: int, result: Any) -> Any:
        pending: deque[PacketState] = deque()
        pipe._egress_tail(p, port, pending, result, None)
        pipe._drain(pending, result, None, 1)
        return result

    def run(port: int, frame: bytes, now: float) -> Any:
        result = result_type()
        p = PacketState(template, frame)
        p.now = now
        f = p.f
        f[ingress_port] = port
        f[packet_length] = len(frame)
        f[instance_type] = NORMAL
        try:
            if stamps or egress_stamps:
                stamp = int((now - pipe.start) * 1_000_000)
                for slot in stamps:
                    f[slot] = stamp
            if parse is not None:
                code = parse(p)
                if parser_error is not None:
                    f[parser_error] = code
                if code != no_error:
                    result.parsed_ok = len(frame) < pipe.cache.span
            result.payload_offset = p.off
            if verify:
                failed = 0
                for checksum in verify:
                    if not checksum.verify_ok(p):
                        failed = 1
                if checksum_error is not None:
                    f[checksum_error] = failed
            elif checksum_error is not None:
                f[checksum_error] = 0
            if ingress is not None:
                ingress(p)
            p.exit = False
            spec = f[egress_spec_slot]
            if p.clone_session or p.digest or p.resubmit or (mcast is not None and f[mcast]):
                return general_ingress(p, spec, result)
            if spec == DROP_PORT:
                result.drops += 1
                return result
            f[instance_type] = NORMAL
            f[egress_port] = spec
            f[egress_spec_slot] = no_port
            f[packet_length] = p.length
            for slot in egress_stamps:
                f[slot] = stamp
            if egress is not None:
                egress(p)
            p.exit = False
            if p.clone_session or p.recirculate:
                return general_egress(p, spec, result)
            if f[egress_spec_slot] == DROP_PORT:
                result.drops += 1
                return result
            out = emit(p) + frame[p.off:]
            if p.truncate is not None:
                out = out[:p.truncate]
            result.outputs.append((spec, out))
        except PACKET_ERRORS as exc:
            result.error = f"{type(exc).__name__}: {exc}"
            result.outputs.clear()
        return result

    return run
