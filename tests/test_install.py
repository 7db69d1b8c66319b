"""The project installs as Python expects (pyproject.toml, `make setup` = `pip install -e .`):
its packages import and the ``p4switch`` command runs without PYTHONPATH, from any
directory, and the declared dependencies are requirements.txt's."""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

from procs import REPO

BIN = Path(sys.executable).parent  # the venv `make setup` made
CLEAN_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def run(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env=CLEAN_ENV,
                          timeout=60, check=False)


def test_packages_import_without_pythonpath_from_anywhere(tmp_path: Path) -> None:
    code = ("import bootstrap, live, netrun, p4build, p4protos, p4runtime_lib, p4switch\n"
            "print(p4runtime_lib.__file__, p4switch.__file__)")
    result = run(sys.executable, "-c", code, cwd=tmp_path)
    assert result.returncode == 0, f"{result.stderr.strip()} (run `make setup`)"
    assert result.stdout.split() == [str(REPO / "utils/p4runtime_lib/__init__.py"),
                                     str(REPO / "utils/p4switch/__init__.py")]


def test_the_p4switch_command_and_both_module_forms_run(tmp_path: Path) -> None:
    command = BIN / "p4switch"
    assert command.is_file(), "no p4switch command in the venv (run `make setup`)"
    for argv, cwd in (([str(command), "--help"], tmp_path),
                      ([sys.executable, "-m", "p4switch", "--help"], tmp_path),
                      ([sys.executable, "-m", "utils.p4switch", "--help"], REPO)):
        result = run(*argv, cwd=cwd)
        assert result.returncode == 0, (argv, result.stderr)
        assert result.stdout.startswith("usage: p4switch "), argv
    bad = run(str(command), "--no-such-flag", cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == [
        "p4switch: error: unrecognized arguments: --no-such-flag "
        "(see 'python -m p4switch --help')"]


def test_declared_dependencies_are_requirements_txt() -> None:
    wanted = []
    for line in (REPO / "requirements.txt").read_text().splitlines():
        requirement = line.split("#", 1)[0].strip()
        if requirement:
            wanted.append(re.sub(r"\s+", "", requirement))
    declared = [re.sub(r"\s+", "", r) for r in importlib.metadata.requires("p4-load-balance")]
    assert declared == wanted
