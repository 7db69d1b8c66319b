"""Controller library for P4Runtime switches (BMv2's simple_switch_grpc or ours).

Import the protobuf modules from ``p4runtime_lib.protos`` (it makes PyPI's
``p4runtime`` wheel work on protobuf's fast upb backend).
"""

from .codec import CodecError, ValueTooWide, decode, encode
from .entries import (
    EntryError,
    clone_session_entry,
    decode_table_entry,
    default_entry,
    delete,
    insert,
    modify,
    multicast_group_entry,
    table_entry,
)
from .errors import (
    ControllerError,
    NotPrimary,
    PipelineError,
    ReadError,
    SwitchUnavailable,
    WriteError,
)
from .p4info import P4Info, P4InfoError
from .switch import SwitchConnection

__all__ = [
    "CodecError", "ControllerError", "EntryError", "NotPrimary", "P4Info", "P4InfoError",
    "PipelineError", "ReadError", "SwitchConnection", "SwitchUnavailable", "ValueTooWide",
    "WriteError", "clone_session_entry", "decode", "decode_table_entry", "default_entry",
    "delete", "encode", "insert", "modify", "multicast_group_entry", "table_entry",
]
