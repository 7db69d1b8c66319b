"""The p4runtime wheel's modules run on protobuf's fast upb backend via our finder.

Each check runs in a fresh interpreter with a clean environment (no
PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION), so the backend is protobuf's default.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

UTILS = Path(__file__).resolve().parent.parent / "utils"

WRITE_REQUEST = (
    "request = p4runtime_pb2.WriteRequest(device_id=3)\n"
    "request.election_id.low = 1\n"
    "update = request.updates.add(type=p4runtime_pb2.Update.MODIFY)\n"
    "entry = update.entity.table_entry\n"
    "entry.table_id, entry.is_default_action = 41423289, True\n"
    "entry.match.add(field_id=1).lpm.value = b'\\x0a\\x00\\x00\\x01'\n"
    "entry.action.action.params.add(param_id=2, value=b'\\x02')\n"
)


def run(code: str, **extra_env: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(UTILS),
           **extra_env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=60, check=False)


def test_messages_work_on_upb() -> None:
    result = run(
        "from p4runtime_lib.protos import (code_pb2, p4data_pb2, p4info_pb2, p4runtime_pb2,\n"
        "                                  p4runtime_pb2_grpc, status_pb2)\n"
        "from google.protobuf.internal import api_implementation\n"
        "from google.protobuf import any_pb2\n"
        + WRITE_REQUEST +
        "again = p4runtime_pb2.WriteRequest.FromString(request.SerializeToString())\n"
        "assert again == request and again.updates[0].entity.table_entry.table_id == 41423289\n"
        "info = p4info_pb2.P4Info()\n"
        "info.tables.add().preamble.name = 'MyIngress.ecmp_group'\n"
        "assert p4info_pb2.P4Info.FromString(info.SerializeToString()) == info\n"
        "error = p4runtime_pb2.Error(canonical_code=code_pb2.ALREADY_EXISTS, message='x')\n"
        "detail = any_pb2.Any()\n"
        "detail.Pack(error)\n"
        "status = status_pb2.Status(code=code_pb2.UNKNOWN, details=[detail])\n"
        "back = p4runtime_pb2.Error()\n"
        "assert status_pb2.Status.FromString(status.SerializeToString()).details[0].Unpack(back)\n"
        "assert back == error\n"
        "assert p4data_pb2.P4Data(bitstring=b'\\x01').bitstring == b'\\x01'\n"
        "assert p4runtime_pb2_grpc.P4RuntimeStub and p4runtime_pb2_grpc.P4RuntimeServicer\n"
        "print(api_implementation.Type())\n"
        "print(request.SerializeToString().hex())\n")
    assert result.returncode == 0, result.stderr
    backend, _ = result.stdout.split()
    assert backend == "upb"


def test_p4protos_and_the_re_export_are_the_same_modules() -> None:
    result = run("import p4protos, p4runtime_lib.protos as old\n"
                 "names = p4protos.__all__\n"
                 "assert names == old.__all__\n"
                 "assert all(getattr(p4protos, n) is getattr(old, n) for n in names)\n"
                 "print(p4protos.p4runtime_pb2.WriteRequest(device_id=3).device_id)\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3"]


def test_the_switch_does_not_load_the_controller_library() -> None:
    """The switch gets the protobuf fix from p4protos, not from p4runtime_lib."""
    result = run("import sys\n"
                 "import p4switch.cli, p4switch.runtime, p4switch.runtime.server\n"
                 "from p4switch.engine import Pipeline\n"
                 "print(sorted(m for m in sys.modules if m.split('.')[0] == 'p4runtime_lib'))\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_wheel_alone_fails_on_upb() -> None:
    """Proves the fix is needed: without our finder the stale modules do not import."""
    result = run("from google.protobuf.internal import api_implementation\n"
                 "print(api_implementation.Type(), flush=True)\n"
                 "import p4.v1.p4runtime_pb2\n")
    if result.returncode == 0:
        pytest.skip("the installed p4runtime wheel already has modern generated code")
    assert result.stdout.strip() == "upb"
    assert "Descriptors cannot be created directly" in result.stderr


def test_both_backends_encode_the_same_bytes() -> None:
    """The finder's modules give the same wire bytes on upb and on pure Python."""
    code = ("from p4runtime_lib.protos import p4runtime_pb2\n"
            "from google.protobuf.internal import api_implementation\n" + WRITE_REQUEST +
            "print(api_implementation.Type(), request.SerializeToString(deterministic=True)"
            ".hex())\n")
    upb = run(code)
    python = run(code, PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION="python")
    assert upb.returncode == 0, upb.stderr
    assert python.returncode == 0, python.stderr
    (upb_backend, upb_bytes), (py_backend, py_bytes) = upb.stdout.split(), python.stdout.split()
    assert (upb_backend, py_backend) == ("upb", "python")
    assert upb_bytes == py_bytes


def test_the_one_line_read_gives_the_blob_a_full_parse_gives() -> None:
    """The fast path (evaluating only the ``serialized_pb=`` line) must agree with
    parsing the whole installed module, for every old-style module of the wheel."""
    import ast
    import importlib.util

    from p4protos.finder import _stale_descriptor_blob

    names = ["p4.v1.p4runtime_pb2", "p4.v1.p4data_pb2", "p4.config.v1.p4info_pb2",
             "p4.config.v1.p4types_pb2"]
    checked = 0
    for name in names:
        origin = importlib.util.find_spec(name).origin
        source = Path(origin).read_text(encoding="utf-8")
        fast = _stale_descriptor_blob(source)
        if fast is None:  # a newer wheel in the modern style: nothing to rebuild
            continue
        call = next(node.value for node in ast.parse(source).body
                    if isinstance(node, ast.Assign) and any(
                        isinstance(t, ast.Name) and t.id == "DESCRIPTOR" for t in node.targets))
        full = next(ast.literal_eval(k.value) for k in call.keywords if k.arg == "serialized_pb")
        assert fast == full, name
        checked += 1
    assert checked == len(names)
