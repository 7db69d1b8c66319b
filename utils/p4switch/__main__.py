"""``python -m p4switch``: run the switch (see p4switch.cli)."""

import sys

from .cli import main

sys.exit(main())
