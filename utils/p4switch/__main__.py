"""``python -m p4switch``: run the switch (see p4switch.cli)."""

import os
import sys

# gRPC's C core logs its own copy of errors we already report in one line.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

from .cli import main  # noqa: E402

sys.exit(main())
