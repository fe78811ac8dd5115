"""Run every benchmark, or one by name: ``python -m benchmarks [name] [options for that benchmark]``."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def available() -> dict[str, str]:
    """Benchmark names (``bench_<name>.py`` files in this folder) -> module paths."""
    folder = Path(__file__).resolve().parent
    return {
        info.name.removeprefix("bench_"): f"benchmarks.{info.name}"
        for info in sorted(pkgutil.iter_modules([str(folder)]), key=lambda i: i.name)
        if info.name.startswith("bench_")
    }


def main(argv: list[str]) -> int:
    names = available()
    if argv and argv[0] in {"-h", "--help"}:
        print(__doc__)
        for name, module in names.items():
            print(f"  {name:<16} {importlib.import_module(module).DESCRIPTION}")
        return 0
    if argv and not argv[0].startswith("-"):
        name, options = argv[0], argv[1:]
        if name not in names:
            print(f"Unknown benchmark {name!r}; choose one of: {', '.join(names)}", file=sys.stderr)
            return 2
        importlib.import_module(names[name]).main(options)
        return 0
    if argv:
        print("Options need a benchmark name first, e.g. python -m benchmarks generation --prompts 4",
              file=sys.stderr)
        return 2
    for name, module in names.items():
        print(f"\n=== benchmark: {name} ===", flush=True)
        importlib.import_module(module).main([])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
