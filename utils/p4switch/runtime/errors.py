"""P4Runtime errors as BMv2's server (PI) reports them.

A failed batch is gRPC ``UNKNOWN`` whose ``grpc-status-details-bin`` trailer
holds a ``google.rpc.Status`` with one ``p4.v1.Error`` per update (OK for the
updates that succeeded), space ``ALL-sswitch-p4org``.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2

from p4protos import code_pb2, p4runtime_pb2, status_pb2

ERROR_SPACE = "ALL-sswitch-p4org"

# google.rpc.Code -> grpc.StatusCode
GRPC_CODES = {code.value[0]: code for code in grpc.StatusCode}


class P4RuntimeError(Exception):
    """An error with a google.rpc code and a one-line message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def grpc_code(self) -> grpc.StatusCode:
        return GRPC_CODES.get(self.code, grpc.StatusCode.UNKNOWN)


def invalid(message: str) -> P4RuntimeError:
    return P4RuntimeError(code_pb2.INVALID_ARGUMENT, message)


def not_found(message: str) -> P4RuntimeError:
    return P4RuntimeError(code_pb2.NOT_FOUND, message)


def already_exists(message: str) -> P4RuntimeError:
    return P4RuntimeError(code_pb2.ALREADY_EXISTS, message)


def denied(message: str) -> P4RuntimeError:
    return P4RuntimeError(code_pb2.PERMISSION_DENIED, message)


def precondition(message: str) -> P4RuntimeError:
    return P4RuntimeError(code_pb2.FAILED_PRECONDITION, message)


def unimplemented(message: str) -> P4RuntimeError:
    return P4RuntimeError(code_pb2.UNIMPLEMENTED, message)


def out_of_range(message: str) -> P4RuntimeError:
    return P4RuntimeError(code_pb2.OUT_OF_RANGE, message)


def exhausted(message: str) -> P4RuntimeError:
    return P4RuntimeError(code_pb2.RESOURCE_EXHAUSTED, message)


NO_PIPELINE = "No forwarding pipeline config set for this device"
NOT_PRIMARY = "Not primary"
INVALID_ID = "Invalid P4 id"


class BatchErrors:
    """Collects the outcome of each update of a WriteRequest."""

    def __init__(self) -> None:
        self.results: list[P4RuntimeError | None] = []
        self.failed = 0

    def ok(self) -> None:
        self.results.append(None)

    def error(self, error: P4RuntimeError) -> None:
        self.results.append(error)
        self.failed += 1

    def status(self) -> status_pb2.Status:
        """google.rpc.Status with one p4.v1.Error per update."""
        status = status_pb2.Status(code=code_pb2.UNKNOWN,
                                   message=f"{self.failed} of {len(self.results)} "
                                           "updates failed")
        success = any_pb2.Any()
        success.Pack(p4runtime_pb2.Error(code=code_pb2.OK))
        for result in self.results:
            if result is None:
                status.details.append(success)
                continue
            detail = any_pb2.Any()
            detail.Pack(p4runtime_pb2.Error(canonical_code=result.code, message=result.message,
                                            space=ERROR_SPACE))
            status.details.append(detail)
        return status


def stream_error(code: int, message: str) -> p4runtime_pb2.StreamMessageResponse:
    """A stream error in PI's space; the caller sets which message it answers
    (``packet_out``, ``digest_list_ack`` or ``other``)."""
    response = p4runtime_pb2.StreamMessageResponse()
    error = response.error
    error.canonical_code, error.message, error.space = code, message, ERROR_SPACE
    return response


def abort_with_status(context: grpc.ServicerContext, status: status_pb2.Status) -> None:
    """End the RPC with ``status`` (code, message and binary details)."""
    context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),))
    context.abort(GRPC_CODES.get(status.code, grpc.StatusCode.UNKNOWN), status.message)
