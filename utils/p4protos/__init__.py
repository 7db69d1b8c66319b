"""P4Runtime's protobuf modules and wire format, shared by the controller library
(``p4runtime_lib``) and the switch (``p4switch``), neither of which imports the other.

* ``from p4protos import p4runtime_pb2, p4info_pb2, ...``: the generated modules,
  imported through ``finder``'s hook so PyPI's ``p4runtime`` wheel works on
  protobuf's fast upb backend
* ``bytestrings``  ints <-> P4Runtime bytestrings (canonical out, padded or canonical in)
"""

from .finder import install

install()

from google.rpc import code_pb2, status_pb2  # noqa: E402
from p4.config.v1 import p4info_pb2  # noqa: E402
from p4.v1 import p4data_pb2, p4runtime_pb2, p4runtime_pb2_grpc  # noqa: E402

__all__ = ["code_pb2", "install", "p4data_pb2", "p4info_pb2", "p4runtime_pb2",
           "p4runtime_pb2_grpc", "status_pb2"]
