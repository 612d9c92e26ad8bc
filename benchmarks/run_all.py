"""Run every benchmark, each in its own process so timings and memory do not mix.

Usage: python -m benchmarks.run_all [NAME ...]   (names like bench_raster; default: all)
"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    names = sys.argv[1:] or sorted(p.stem for p in HERE.glob("bench_*.py"))
    failed = []
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        if subprocess.run([sys.executable, "-m", f"benchmarks.{name}"], check=False).returncode:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    from benchmarks.options import run_main

    sys.exit(run_main("run_all", main, "the benchmarks printed so far stand"))
