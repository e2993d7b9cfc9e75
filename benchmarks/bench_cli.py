"""Wall time of the flowtoy command line in fresh processes, against a bare import of torch and pyplot.

Targets: ``flowtoy figure3`` (N = 2000 per mode) at most 2x the bare import; ``flowtoy digits`` at
most 3x; default ``flowtoy sweep`` at most 20 s. Each command runs ``--repeats`` times (default 3) and the best time is reported.

Run:  .venv/bin/python benchmarks/bench_cli.py
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def best_wall_time(cmd: list[str], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        cases = {
            "bare import (torch, matplotlib.pyplot)": [py, "-c", "import torch, matplotlib.pyplot"],
            "flowtoy figure3": [py, "-m", "flowtoy", "figure3", "--out", str(out / "fig.png")],
            "flowtoy sweep": [py, "-m", "flowtoy", "sweep", "--out", str(out / "sweep")],
            "flowtoy digits": [py, "-m", "flowtoy", "digits", "--out", str(out / "digits.png")],
        }
        times = {name: best_wall_time(cmd, args.repeats) for name, cmd in cases.items()}
    base = times["bare import (torch, matplotlib.pyplot)"]
    print(f"{'command':<40} {'best [s]':>9} {'x import':>9}")
    for name, sec in times.items():
        print(f"{name:<40} {sec:>9.2f} {sec / base:>9.2f}")
    print(f"figure3 target: <= 2x import ({2 * base:.2f} s); digits: <= 3x import ({3 * base:.2f} s); sweep: <= 20 s")


if __name__ == "__main__":
    main()
