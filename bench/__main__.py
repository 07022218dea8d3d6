"""Run benchmarks: ``python -m bench`` runs them all, ``python -m bench offers [ARGS]`` one.

Every module ``bench/bench_<name>.py`` with a ``main(argv) -> int`` is a benchmark; they run
in name order. Arguments after the name go to that benchmark (``python -m bench offers -h``).
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path


def available() -> list[str]:
    """Names of the benchmarks present in bench/, sorted."""
    here = Path(__file__).resolve().parent
    # bench_export_xlsx.py is ``export-xlsx``: names are typed with hyphens.
    return sorted(path.stem.removeprefix("bench_").replace("_", "-")
                  for path in here.glob("bench_*.py"))


def run(name: str, argv: list[str]) -> int:
    """Run one benchmark's ``main(argv)`` and return its exit status."""
    module = importlib.import_module(f"bench.bench_{name.replace('-', '_')}")
    started = time.monotonic()
    print(f"== bench {name} ==", flush=True)
    status = module.main(argv) or 0
    print(f"== bench {name}: done in {time.monotonic() - started:.0f} s (exit {status}) ==",
          flush=True)
    return status


def main(argv: list[str]) -> int:
    """Dispatch to one named benchmark, or run every one in turn."""
    names = available()
    if argv and argv[0] in ("-h", "--help", "--list"):
        print(__doc__.strip())
        print("benchmarks: " + ", ".join(names))
        return 0
    if argv:
        name, rest = argv[0], argv[1:]
        if name not in names:
            print(f"no benchmark named {name!r}; present: {', '.join(names)}", file=sys.stderr)
            return 2
        return run(name, rest)
    statuses = [run(name, []) for name in names]
    return max(statuses, default=0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
