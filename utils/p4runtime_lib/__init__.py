"""Controller library for P4Runtime switches (BMv2's simple_switch_grpc or ours).

* ``codec``    values <-> canonical bytestrings (no I/O)
* ``p4info``   the P4Info model: names, aliases, suffixes, "did you mean ...?"
* ``entries``  table / PRE entries and updates from names, and back
* ``builder``  ``TableBuilder``: one table resolved once, many entries fast
* ``errors``   one-line errors; per-update decoding of failed batches
* ``switch``   ``SwitchConnection``: arbitration, pipeline, write, read

Import the protobuf modules from ``p4protos`` (shared with the switch; it makes
PyPI's ``p4runtime`` wheel work on protobuf's fast upb backend);
``p4runtime_lib.protos`` re-exports them.
"""

from .builder import TableBuilder
from .codec import decode, encode, format_value
from .entries import (
    DecodedEntry,
    clone_session_entry,
    decode_table_entry,
    default_entry,
    delete,
    format_table_entry,
    format_update,
    insert,
    modify,
    multicast_group_entry,
    table_entry,
    write_request,
)
from .errors import (
    ArbitrationTimeout,
    CodecError,
    ControllerError,
    EntryError,
    NotPrimary,
    P4InfoError,
    PipelineError,
    ReadError,
    SwitchUnavailable,
    UpdateError,
    ValueTooWide,
    WriteError,
)
from .p4info import P4Info
from .switch import SwitchConnection

__all__ = [
    "ArbitrationTimeout", "CodecError", "ControllerError", "DecodedEntry", "EntryError",
    "NotPrimary", "P4Info", "P4InfoError", "PipelineError", "ReadError", "SwitchConnection",
    "SwitchUnavailable", "TableBuilder", "UpdateError", "ValueTooWide", "WriteError",
    "clone_session_entry", "decode", "decode_table_entry", "default_entry", "delete", "encode",
    "format_table_entry", "format_update", "format_value", "insert", "modify",
    "multicast_group_entry", "table_entry", "write_request",
]
