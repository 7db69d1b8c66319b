"""The import hook that makes PyPI's ``p4runtime`` modules load on every protobuf backend.

The ``p4runtime`` wheel on PyPI (1.6.0 and older) ships ``*_pb2.py`` files in
the protoc 3.18 style: they build descriptors one by one with
``_descriptor.FieldDescriptor(...)``.  protobuf >= 4.21 on its fast ``upb``
backend refuses that ("Descriptors cannot be created directly").

Each of those files still carries the complete serialized ``FileDescriptorProto``
(the ``serialized_pb=`` argument).  The import hook below reads that blob out of
the installed file without running it, registers it in the default descriptor
pool and builds the module with protobuf's own ``builder`` -- exactly what
modern protoc output does.  Files already in the modern style are left to the
normal import machinery, so a newer wheel keeps working unchanged.
"""

from __future__ import annotations

import ast
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Sequence

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.internal import builder

_PACKAGES = ("p4.",)


def _stale_descriptor_blob(source: str) -> bytes | None:
    """Return ``serialized_pb`` of an old-style generated module, else None."""
    if "_descriptor.FileDescriptor(" not in source or "serialized_pb=" not in source:
        return None
    # protoc writes the blob as one literal on its own line: evaluate just that line
    # (parsing the whole 4,000-line module costs ~50 ms per file at every start).
    line = source[source.index("serialized_pb=") + len("serialized_pb="):].split("\n", 1)[0]
    try:
        blob = ast.literal_eval(line.rstrip().rstrip(",)").rstrip())
    except (SyntaxError, ValueError):
        blob = None
    if isinstance(blob, bytes):
        return blob
    for node in ast.parse(source).body:
        if not isinstance(node, ast.Assign) or not isinstance(node.value, ast.Call):
            continue
        if not any(isinstance(t, ast.Name) and t.id == "DESCRIPTOR" for t in node.targets):
            continue
        for keyword in node.value.keywords:
            if keyword.arg == "serialized_pb":
                return ast.literal_eval(keyword.value)
    return None


def _module_for_proto(proto_path: str) -> str:
    """``p4/v1/p4data.proto`` -> ``p4.v1.p4data_pb2``."""
    return proto_path[: -len(".proto")].replace("/", ".") + "_pb2"


class _DescriptorLoader(importlib.abc.Loader):
    """Builds a ``*_pb2`` module from its serialized file descriptor."""

    def __init__(self, blob: bytes) -> None:
        self._blob = blob

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        file_proto = descriptor_pb2.FileDescriptorProto.FromString(self._blob)
        for dependency in file_proto.dependency:
            importlib.import_module(_module_for_proto(dependency))
        pool = descriptor_pool.Default()
        try:
            file_descriptor = pool.FindFileByName(file_proto.name)
        except KeyError:
            file_descriptor = pool.AddSerializedFile(self._blob)
        namespace = module.__dict__
        namespace["DESCRIPTOR"] = file_descriptor
        builder.BuildMessageAndEnumDescriptors(file_descriptor, namespace)
        builder.BuildTopDescriptorsAndMessages(file_descriptor, module.__name__, namespace)
        if file_descriptor.services_by_name:
            builder.BuildServices(file_descriptor, module.__name__, namespace)


class StaleProtoFinder(importlib.abc.MetaPathFinder):
    """Meta-path finder that rebuilds old-style ``p4.*_pb2`` modules."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(_PACKAGES) or not fullname.endswith("_pb2"):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            return None
        with open(spec.origin, encoding="utf-8") as handle:
            blob = _stale_descriptor_blob(handle.read())
        if blob is None:
            return None
        return importlib.util.spec_from_file_location(
            fullname, spec.origin, loader=_DescriptorLoader(blob)
        )


def install() -> None:
    """Put the finder in front of the import system (idempotent)."""
    if not any(isinstance(f, StaleProtoFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, StaleProtoFinder())

