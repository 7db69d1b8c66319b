"""The P4Runtime protobuf modules, re-exported from ``p4protos`` (where the fix for
PyPI's stale ``p4runtime`` stubs lives) so ``p4runtime_lib.protos`` imports keep working."""

from p4protos import (
    code_pb2,
    install,
    p4data_pb2,
    p4info_pb2,
    p4runtime_pb2,
    p4runtime_pb2_grpc,
    status_pb2,
)

__all__ = ["code_pb2", "install", "p4data_pb2", "p4info_pb2", "p4runtime_pb2",
           "p4runtime_pb2_grpc", "status_pb2"]
