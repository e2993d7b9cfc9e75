"""Time of one recompute-and-redraw of ``flowtoy.explore`` after a control changes, at its defaults.

Each change (source weight, seed, n_avg, steps, back) recomputes both default methods (Euler inversion and
FlowEdit, 10 steps, 500 points) and renders the figure to PNG, as the notebook view does. Prints the median
and the slowest of all changes, and for comparison the edits alone.

Run:  OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_explore.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics

import flowtoy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="passes over the sequence of changes (default 5)")
    args = parser.parse_args()
    view = flowtoy.explore()
    changes = [("weight", 0.7), ("weight", 0.5), ("seed", 1), ("seed", 0), ("n_avg", 4), ("n_avg", 1)]
    changes += [("steps", 20), ("steps", 10)]
    redraws, edits = [], []
    for _ in range(args.rounds):
        for name, value in changes:
            view.controls[name].value = value
            redraws.append(view.seconds)
            edits.append(sum(m["seconds"] for m in view.metrics.values()))
    print(
        f"defaults: {', '.join(f'{k}={v}' for k, v in flowtoy._explore.DEFAULTS.items())}; methods inversion, flowedit"
    )
    print(
        f"{len(redraws)} changes: recompute + redraw median {statistics.median(redraws):.3f} s, "
        f"slowest {max(redraws):.3f} s; the edits alone median {statistics.median(edits):.3f} s"
    )


if __name__ == "__main__":
    main()
