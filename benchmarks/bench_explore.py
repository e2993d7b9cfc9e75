"""Time of one recompute-and-redraw of ``flowtoy.explore`` after a control changes, at its defaults.

Each change (source weight, seed, n_avg, steps, back) recomputes both default methods (Euler inversion and
FlowEdit, 10 steps, 500 points) and renders the figure to PNG, as the notebook view does. Prints the median
and the slowest of all changes, and for comparison the edits alone.

Scrubbing the time slider (also timed) only redraws. ``--n 2000`` times it at 2000 points.

Run:  OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_explore.py [--rounds 5] [--n 2000]
"""

from __future__ import annotations

import argparse
import statistics

import flowtoy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="passes over the sequence of changes (default 5)")
    parser.add_argument("--n", type=int, default=500, help="points (default 500, the explorer's)")
    args = parser.parse_args()
    view = flowtoy.explore(n=args.n)
    changes = [("weight", 0.7), ("weight", 0.5), ("seed", 1), ("seed", 0), ("n_avg", 4), ("n_avg", 1)]
    changes += [("steps", 20), ("steps", 10), ("time", 0.5), ("time", 0.2), ("time", 1.0)]
    redraws, edits = [], []
    for _ in range(args.rounds):
        for name, value in changes:
            view.controls[name].value = value
            redraws.append(view.seconds)
            if name != "time":  # scrubbing time redraws only
                edits.append(sum(m["seconds"] for m in view.metrics.values()))
    print(
        f"defaults: {', '.join(f'{k}={v}' for k, v in flowtoy._explore.DEFAULTS.items() if k != 'n')}, n={args.n};"
        " methods inversion, flowedit"
    )
    print(
        f"{len(redraws)} changes: recompute + redraw median {statistics.median(redraws):.3f} s, "
        f"slowest {max(redraws):.3f} s; the edits alone median {statistics.median(edits):.3f} s"
    )


if __name__ == "__main__":
    main()
