"""Run every benchmark module that exists, in order (`make bench`)."""

from __future__ import annotations

import importlib
import sys

MODULES = ("submission", "tally", "codes", "workbook")


def main(argv: list[str]) -> int:
    """Run the benchmarks named on the command line, or all of them."""
    names = argv or list(MODULES)
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"\n=== {name} ===", flush=True)
        module.main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
