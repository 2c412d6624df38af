"""`make bench`: run every benchmark module in this package; each prints ratios from one run.

Run one: `python -m benchmarks NAME` (module name without .py).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    names = argv or sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        if not hasattr(module, "main"):  # a helper (the clip builder), not a benchmark
            if argv:
                print(f"benchmarks.{name} is not a benchmark (it has no main())", file=sys.stderr)
                return 2
            continue
        print(f"\n===== benchmark: {name} =====", flush=True)
        module.main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
