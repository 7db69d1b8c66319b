"""Run a top-level script (mycontroller.py, lbctl.py) under the project's .venv.

The scripts are started as ``./mycontroller.py``, i.e. by whatever ``python3``
is on PATH; grpc and the p4runtime messages are installed in ``.venv`` by
``make setup``.  Standard library only: it runs before any of that is importable.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

GUARD = "LB_VENV_REEXEC"  # set once: a broken venv cannot loop


def use_project_venv(script: str) -> None:
    """Re-exec ``script`` under ``<repo>/.venv/bin/python`` unless already there; one
    line and exit 1 if the interpreter that ends up running it has no grpc."""
    root = Path(script).resolve().parent
    python = root / ".venv" / "bin" / "python"
    in_venv = Path(sys.prefix).resolve() == (root / ".venv").resolve()
    if not in_venv and python.exists() and not os.environ.get(GUARD):
        os.environ[GUARD] = "1"
        os.execv(str(python), [str(python), str(Path(script).resolve()), *sys.argv[1:]])
    if importlib.util.find_spec("grpc") is None:
        sys.exit(f"{sys.executable} has no grpc module. Have you run 'make setup'?")
