"""Shared fixtures: where the reference programs live, and the repo root."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


def reference_dir() -> Path:
    """p4c output for the public tutorial programs (../shared/reference/p4c-out)."""
    override = os.environ.get("P4_REFERENCE_DIR")
    if override:
        return Path(override)
    return REPO.parent / "shared" / "reference" / "p4c-out"


@pytest.fixture
def reference() -> Path:
    """Directory of reference BMv2 JSON / P4Info files; skips the test when absent."""
    path = reference_dir()
    if not (path / "load_balance.json").is_file():
        pytest.skip(f"reference programs not found in {path} (set P4_REFERENCE_DIR)")
    return path


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def served() -> Iterator[Any]:
    """Our P4Runtime server in this process on an ephemeral port (rawclient.Served)."""
    from rawclient import Served

    running = Served()
    yield running
    running.close()
