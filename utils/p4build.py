#!/usr/bin/env python3
"""Compile a P4 program with p4c, or use the committed output when p4c is absent.

p4c is in no package registry reachable from most machines, so its output is
committed next to a stamp holding the sha256 of the source it came from:

* p4c-bm2-ss installed (on PATH, or $P4C)  -> recompile, rewrite the stamp;
* not installed, stamp matches the source  -> use the committed files;
* not installed, source changed            -> refuse with one line and a hint.

Usage: p4build.py SOURCE.p4 [--out-dir build] [--check]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


class BuildError(Exception):
    """The build cannot be produced or trusted: one line, with a hint."""


@dataclass(frozen=True)
class BuildFiles:
    """Where p4c's output for one source lives."""

    source: Path
    out_dir: Path

    @property
    def json(self) -> Path:
        return self.out_dir / f"{self.source.stem}.json"

    @property
    def p4info(self) -> Path:
        return self.out_dir / f"{self.source.stem}.p4.p4info.txtpb"

    @property
    def stamp(self) -> Path:
        return self.out_dir / f"{self.source.stem}.p4.sha256"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def find_p4c() -> str | None:
    """The p4c BMv2 compiler to use, if any ($P4C wins over PATH)."""
    explicit = os.environ.get("P4C")
    if explicit:
        return explicit
    return shutil.which("p4c-bm2-ss")


def compile_program(files: BuildFiles, p4c: str) -> None:
    """Run ``p4c-bm2-ss --p4v 16`` as the tutorial Makefile does, then stamp."""
    files.out_dir.mkdir(parents=True, exist_ok=True)
    command = [p4c, "--p4v", "16", "--p4runtime-files", str(files.p4info),
               "-o", str(files.json), str(files.source)]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        sys.stderr.write(completed.stderr)
        raise BuildError(f"p4c failed on {files.source} (exit {completed.returncode}); "
                         "see the messages above")
    files.stamp.write_text(f"{sha256(files.source)}  {files.source.name}\n")


def check_stamp(files: BuildFiles) -> None:
    """BuildError unless the committed output was compiled from this exact source."""
    for path in (files.json, files.p4info, files.stamp):
        if not path.is_file():
            raise BuildError(f"{path} is missing and p4c-bm2-ss is not installed: "
                             "restore it with 'git checkout -- build/' or install p4c")
    recorded = files.stamp.read_text().split()[0] if files.stamp.read_text().strip() else ""
    current = sha256(files.source)
    if recorded != current:
        raise BuildError(f"{files.source.name} changed since {files.out_dir}/ was compiled "
                         f"(sha256 {current[:12]}... vs stamp {recorded[:12]}...) and "
                         "p4c-bm2-ss is not installed: install p4c to recompile, or undo the "
                         f"change with 'git checkout -- {files.source.name}'")


def build(files: BuildFiles, check_only: bool = False) -> str:
    """Make ``files`` current; returns what was done, for one line of output."""
    if not files.source.is_file():
        raise BuildError(f"{files.source} not found")
    p4c = None if check_only else find_p4c()
    if p4c is not None:
        compile_program(files, p4c)
        return f"compiled {files.source.name} with {p4c} into {files.out_dir}/"
    check_stamp(files)
    return (f"p4c not installed: using the committed {files.out_dir}/ "
            f"(matches {files.source.name})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("--out-dir", type=Path, default=Path("build"))
    parser.add_argument("--check", action="store_true",
                        help="only verify that the committed output matches the source")
    args = parser.parse_args(argv)
    try:
        print(build(BuildFiles(args.source, args.out_dir), args.check))
    except BuildError as exc:
        print(f"make build: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
