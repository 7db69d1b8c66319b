#!/usr/bin/env python3
"""``make bench``: every benchmark, one table, anchors measured in the same run.

Writes bench/results/latest.json.  Needs root (namespaces); the forwarding sender needs
numpy (installed with matplotlib).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import controlplane  # noqa: E402
import engine  # noqa: E402
import forwarding  # noqa: E402
import live_changes  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-forwarding", action="store_true")
    parser.add_argument("--output", type=Path, default=common.REPO / "bench/results/latest.json")
    args = parser.parse_args()
    if os.geteuid() != 0 and not args.skip_forwarding:
        print("error: the forwarding benchmark needs root (or use --skip-forwarding)",
              file=sys.stderr)
        return 1
    figures: list[common.Figure] = []
    details: dict = {}
    print("control plane ...", flush=True)
    controlplane.run(figures)
    print("engine ...", flush=True)
    engine.run(figures)
    if not args.skip_forwarding:
        print("forwarding (about a minute) ...", flush=True)
        forwarding.run(figures, details)
        print("live load balancer under 20 kpps (about 30 s) ...", flush=True)
        live_changes.run(figures, details)
    data = common.write_results(figures, args.output)
    data["details"] = details
    args.output.write_text(__import__("json").dumps(data, indent=1))
    print()
    print(common.table(figures))
    print(f"\nmachine: {data['machine']}")
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
