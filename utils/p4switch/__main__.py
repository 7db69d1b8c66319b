"""``python -m p4switch`` and the ``p4switch`` command: run the switch (see p4switch.cli)."""

import os
import sys

# gRPC's C core logs its own copy of errors we already report in one line.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

from .cli import main  # noqa: E402


def run() -> None:
    """The console script's entry point (pyproject.toml): exit with main()'s status."""
    sys.exit(main())


if __name__ == "__main__":
    run()
