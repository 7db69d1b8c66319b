"""bench/build_worker.py builds what it says: the same updates from every library and
value form, equal to updates written out here with protobuf field by field."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from p4runtime_lib.protos import p4runtime_pb2

REPO = Path(__file__).resolve().parent.parent
P4INFO = REPO / "build/load_balance.p4.p4info.txtpb"
FINSY_PYTHON = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / \
    "p4lb-test-finsy/venv/bin/python"


def expected_digest(count: int) -> str:
    """sha256 over the serialized INSERTs of 10.x.y.0/24 -> set_ecmp_select(0, 2)."""
    digest = hashlib.sha256()
    for i in range(count):
        update = p4runtime_pb2.Update(type=p4runtime_pb2.Update.INSERT)
        entry = update.entity.table_entry
        entry.table_id = 41423289
        entry.match.add(field_id=1, lpm=p4runtime_pb2.FieldMatch.LPM(
            value=((10 << 24) | (i << 8)).to_bytes(4, "big"), prefix_len=24))
        entry.action.action.action_id = 28332005
        entry.action.action.params.add(param_id=1, value=b"\x00")
        entry.action.action.params.add(param_id=2, value=b"\x02")
        digest.update(update.SerializeToString(deterministic=True))
    return digest.hexdigest()


def run_worker(python: Path | str, library: str, form: str, count: int = 300) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([str(python), str(REPO / "bench/build_worker.py"), library,
                          str(P4INFO), str(count), "2", form], capture_output=True,
                         text=True, env=env, cwd="/", timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.parametrize("library", ["ours", "ours-single"])
@pytest.mark.parametrize("form", ["int", "text"])
def test_our_worker_builds_the_expected_updates(library: str, form: str) -> None:
    result = run_worker(sys.executable, library, form)
    assert result["digest"] == expected_digest(300)
    assert len(result["rates"]) == 2 and all(rate > 0 for rate in result["rates"])
    assert result["protobuf"] == "upb"


@pytest.mark.skipif(not FINSY_PYTHON.exists(), reason="finsy's venv is made by "
                    "tests/test_finsy_client.py (or make bench); not there yet")
def test_finsy_builds_the_same_bytes() -> None:
    assert run_worker(FINSY_PYTHON, "finsy", "text")["digest"] == expected_digest(300)
