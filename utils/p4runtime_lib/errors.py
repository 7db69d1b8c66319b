"""Controller-side errors: one readable line each, naming the switch and the cause.

A failed batch from BMv2's server (and ours) is gRPC UNKNOWN whose
``grpc-status-details-bin`` trailer carries one ``p4.v1.Error`` per update;
``WriteError`` decodes it and keeps the failing updates next to their errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc

from .entries import format_update
from .protos import code_pb2, p4runtime_pb2, status_pb2


def code_name(code: int) -> str:
    try:
        return code_pb2.Code.Name(code)
    except ValueError:
        return str(code)


class ControllerError(Exception):
    """Base class: ``str()`` is the one line to print."""


class SwitchUnavailable(ControllerError):
    """The switch does not answer at its address."""


class NotPrimary(ControllerError):
    """This controller did not become (or is no longer) the primary."""


class PipelineError(ControllerError):
    """SetForwardingPipelineConfig was refused."""


class ReadError(ControllerError):
    """A Read failed."""


@dataclass
class UpdateError:
    index: int
    code: int
    message: str
    update: str

    def __str__(self) -> str:
        return f"update {self.index}: {code_name(self.code)}: {self.message} [{self.update}]"


class WriteError(ControllerError):
    """A WriteRequest failed, wholly or for some of its updates."""

    def __init__(self, summary: str, errors: list[UpdateError] | None = None) -> None:
        super().__init__(summary)
        self.errors = errors or []

    def lines(self) -> list[str]:
        return [str(self)] + [f"  {error}" for error in self.errors]


def details(error: grpc.RpcError) -> list[p4runtime_pb2.Error]:
    """The per-update p4.v1.Error list of a failed Write (empty if none)."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            out = []
            for detail in status.details:
                item = p4runtime_pb2.Error()
                if detail.Unpack(item):
                    out.append(item)
            return out
    return []


def describe(error: grpc.RpcError) -> str:
    """'CODE: details' of an RpcError."""
    return f"{error.code().name}: {error.details() or '(no details)'}"


def write_error(switch: str, error: grpc.RpcError, updates: list[Any],
                info: Any = None) -> ControllerError:
    """The ControllerError for a failed Write."""
    code = error.code()
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return NotPrimary(f"{switch}: write refused: {error.details()} (another controller "
                          "is primary, or this one lost its stream)")
    if code == grpc.StatusCode.UNAVAILABLE:
        return SwitchUnavailable(f"{switch}: the switch went away during a write "
                                 f"({error.details()})")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return SwitchUnavailable(f"{switch}: the switch did not answer the write in time")
    per_update = details(error)
    failed = []
    for index, item in enumerate(per_update):
        code_value = item.canonical_code
        if code_value != code_pb2.OK:
            shown = format_update(info, updates[index]) if index < len(updates) else "?"
            failed.append(UpdateError(index, code_value, item.message, shown))
    if failed:
        return WriteError(f"{switch}: {len(failed)} of {len(updates)} updates failed", failed)
    return WriteError(f"{switch}: write failed: {describe(error)}")
