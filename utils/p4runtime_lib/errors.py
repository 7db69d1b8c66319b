"""The controller library's errors: one readable line each, plus a hint.

Every error derives from ``ControllerError``; ``str(error)`` is the line to
print.  A failed batch from BMv2's P4Runtime server (PI) -- and from ours -- is
gRPC ``UNKNOWN`` with an empty message whose ``grpc-status-details-bin``
trailer holds a ``google.rpc.Status`` with one ``p4.v1.Error`` per update
(``canonical_code`` 0 for the updates that succeeded).  ``write_error``
decodes it into a ``WriteError`` that keeps each failing update.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc

from p4protos import code_pb2, p4runtime_pb2, status_pb2

DETAILS_KEY = "grpc-status-details-bin"


class ControllerError(Exception):
    """Base class: ``str()`` is one line: the message, then ``; hint`` if any."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


class CodecError(ControllerError, ValueError):
    """A value that cannot be encoded or decoded."""


class ValueTooWide(CodecError):
    """A value that needs more bits than its field has."""

    def __init__(self, value: object, bitwidth: int, what: str = "") -> None:
        where = f" for {what}" if what else ""
        super().__init__(f"value {value!r} does not fit in {bitwidth} bits{where}",
                         f"the largest {bitwidth}-bit value is {(1 << bitwidth) - 1}")
        self.value = value
        self.bitwidth = bitwidth


class P4InfoError(ControllerError, LookupError):
    """A name or id that is not in the P4Info, or a P4Info that cannot be read."""

    def __init__(self, message: str, hint: str = "",
                 suggestions: Sequence[str] = ()) -> None:
        super().__init__(message, hint)
        self.suggestions = list(suggestions)


class EntryError(ControllerError, ValueError):
    """An entity that cannot be built from the given names and values."""


class SwitchUnavailable(ControllerError):
    """No P4Runtime server answers at the switch's address."""

    def __init__(self, name: str, address: str, detail: str = "",
                 hint: str = "is the switch running? Start it with 'make run'",
                 message: str = "") -> None:
        """``message`` replaces the default "no P4Runtime server at ..." line."""
        if not message:
            message = f"{name}: no P4Runtime server at {address}"
            message = f"{message} ({detail})" if detail else message
        super().__init__(message, hint)
        self.name = name
        self.address = address

    def __str__(self) -> str:
        return f"{self.message}: {self.hint}" if self.hint else self.message


class ArbitrationTimeout(ControllerError):
    """The switch accepted the stream but did not answer the arbitration in time."""


class NotPrimary(ControllerError):
    """This controller is not (or no longer) the primary for the device."""

    def __init__(self, message: str, hint: str = "",
                 primary: tuple[int, int] | None = None) -> None:
        super().__init__(message, hint)
        self.primary = primary


class PipelineError(ControllerError):
    """SetForwardingPipelineConfig or GetForwardingPipelineConfig failed."""


class ReadError(ControllerError):
    """A Read failed."""


def code_name(code: int) -> str:
    """``6`` -> ``'ALREADY_EXISTS'`` (google.rpc.Code names; the number if unknown)."""
    try:
        return code_pb2.Code.Name(code)
    except ValueError:
        return str(code)


@dataclass
class UpdateError:
    """One failed update of a batch: its index, code, message and the update."""

    index: int
    code: int
    message: str
    update: p4runtime_pb2.Update | None = None
    rendered: str = ""

    @property
    def code_name(self) -> str:
        return code_name(self.code)

    def __str__(self) -> str:
        shown = f" [{self.rendered}]" if self.rendered else ""
        return f"update {self.index}: {self.code_name}: {self.message or '(no message)'}{shown}"


class WriteError(ControllerError):
    """A WriteRequest failed; ``errors`` lists the failing updates."""

    def __init__(self, message: str, errors: Sequence[UpdateError] = (),
                 hint: str = "") -> None:
        super().__init__(message, hint)
        self.errors = list(errors)

    def lines(self) -> list[str]:
        """The summary line, then one indented line per failed update."""
        return [str(self)] + [f"  {error}" for error in self.errors]


def status_details(error: grpc.RpcError) -> list[p4runtime_pb2.Error]:
    """The ``p4.v1.Error`` list in a failed call's ``grpc-status-details-bin``."""
    metadata = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    for key, value in metadata or ():
        if key != DETAILS_KEY:
            continue
        status = status_pb2.Status.FromString(value)
        out = []
        for detail in status.details:
            item = p4runtime_pb2.Error()
            if detail.Unpack(item):
                out.append(item)
        return out
    return []


def describe(error: grpc.RpcError) -> str:
    """``'CODE: details'`` of an RpcError."""
    code = error.code()
    name = code.name if code is not None else "UNKNOWN"
    return f"{name}: {error.details() or '(no details)'}"


def rpc_error(switch: str, address: str, what: str, error: grpc.RpcError,
              fallback: type[ControllerError] = ControllerError,
              deadline: float | None = None, needs_pipeline: bool = True) -> ControllerError:
    """Map a failed RPC to the ControllerError a user can act on.

    ``deadline`` (seconds the call was given) is named when the call ran out of time.
    ``needs_pipeline``: the call (Write, Read, GetForwardingPipelineConfig) answers
    FAILED_PRECONDITION when the switch has no pipeline yet, so that code gets the hint.
    """
    code = error.code()
    if code == grpc.StatusCode.UNAVAILABLE:
        return SwitchUnavailable(switch, address, f"{what} failed: {error.details()}")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        # the server is there (it took the call) but did not answer: say so, not "no server"
        within = f"within {round(deadline, 1):g} s" if deadline else "in time"
        return SwitchUnavailable(switch, address,
                                 message=f"{switch}: {address} did not answer the {what} "
                                         f"{within}",
                                 hint="the switch is up but busy or stuck; try a larger "
                                      "--timeout")
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return NotPrimary(f"{switch}: {what} refused: {error.details() or 'not primary'}",
                          "only the primary controller may do this; call become_primary() "
                          "and keep its stream open")
    if code == grpc.StatusCode.FAILED_PRECONDITION and needs_pipeline:
        return fallback(f"{switch}: {what} failed: {describe(error)}",
                        hint="push the pipeline first (SetForwardingPipelineConfig)")
    return fallback(f"{switch}: {what} failed: {describe(error)}")


def write_error(switch: str, address: str, error: grpc.RpcError,
                updates: Sequence[p4runtime_pb2.Update],
                render: Callable[[p4runtime_pb2.Update], str] | None = None,
                deadline: float | None = None) -> ControllerError:
    """The ControllerError for a failed Write, with per-update errors decoded."""
    if error.code() != grpc.StatusCode.UNKNOWN:
        return rpc_error(switch, address, "write", error, WriteError, deadline)
    failed = []
    for index, item in enumerate(status_details(error)):
        if item.canonical_code == code_pb2.OK:
            continue
        update = updates[index] if index < len(updates) else None
        rendered = _render(update, render) if update is not None else ""
        failed.append(UpdateError(index, item.canonical_code, item.message, update, rendered))
    if not failed:
        return WriteError(f"{switch}: write failed: {describe(error)}")
    return WriteError(f"{switch}: {len(failed)} of {len(updates)} updates failed", failed)


def _render(update: p4runtime_pb2.Update,
            render: Callable[[p4runtime_pb2.Update], str] | None) -> str:
    if render is not None:
        try:
            return render(update)
        except Exception:  # noqa: BLE001 - a rendering problem must not hide the error
            pass
    return p4runtime_pb2.Update.Type.Name(update.type) + " " + " ".join(
        str(update.entity).split())
