"""Real-digit edits over all 90 ordered class pairs: the figures the README and notebook 04 state.

For every ordered pair of different digits, all held-out images of the source class are edited by
FlowEdit (T = 50, n_max = 40), editing by inversion (RK4, 50 steps, the full path) and the exact
Gaussian optimal-transport map, and the target-class probability, transport cost and style kept are
averaged per pair. Targets: FlowEdit's mean target probability at least 0.85, and FlowEdit moves
the images less than inversion in at least 95% of the pairs. Then the trade-off over n_max (FlowEdit,
Euler inversion and SDEdit on the same grid, ``--n`` images per pair) is written as a figure.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_digits.py [--out DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import flowtoy
from flowedit._files import write_atomically
from flowtoy import digits, plot

T = digits.STEPS  # the digits experiment's grid: FlowEdit edits its last N_MAX steps, inversion all of them


def pairs_table() -> dict[str, np.ndarray]:
    names = ("flowedit", "inversion (rk4)", "gaussian ot")
    prob, cost, style = ({n: [] for n in names} for _ in range(3))
    for s in tqdm(range(10), desc="source digits", unit="digit"):
        x = digits.load("test", s)[0]
        for t in range(10):
            if s == t:
                continue
            src, tar = digits.model(s), digits.model(t)
            edits = {
                "flowedit": flowtoy.edit(
                    x, src, tar, "flowedit", steps=T, n_max=digits.N_MAX, generator=torch.Generator().manual_seed(0)
                ),
                "inversion (rk4)": flowtoy.edit(x, src, tar, "inversion", steps=T, solver="rk4"),  # n_max: T
                "gaussian ot": digits.gaussian_ot_map(src, tar)(x),
            }
            for name, y in edits.items():
                row = digits.measure(name, x, y, s, t)
                prob[name].append(row.target_probability)
                cost[name].append(row.cost)
                style[name].append(row.style)
    return {
        "prob": {n: np.array(v) for n, v in prob.items()},
        "cost": {n: np.array(v) for n, v in cost.items()},
        "style": {n: np.array(v) for n, v in style.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=".", help="folder for tradeoff.png (default: .)")
    parser.add_argument("--n", type=int, default=20, help="held-out images per pair in the trade-off (default: 20)")
    args = parser.parse_args()

    start = time.perf_counter()
    r = pairs_table()
    fe, inv, ot = "flowedit", "inversion (rk4)", "gaussian ot"
    print(f"90 ordered pairs, all held-out images ({time.perf_counter() - start:.0f} s)")
    print(f"{'':<18} {'P(target)':>10} {'min P':>7} {'cost':>7} {'style kept':>11}")
    for name in (fe, inv, ot):
        p, c, s = r["prob"][name], r["cost"][name], r["style"][name]
        print(f"{name:<18} {p.mean():>10.3f} {p.min():>7.3f} {c.mean():>7.2f} {s.mean():>11.3f}")
    print(f"FlowEdit moves less than inversion in {(r['cost'][fe] < r['cost'][inv]).mean():.1%} of the pairs")
    print(
        f"FlowEdit moves less than the Gaussian OT map in {(r['cost'][fe] < r['cost'][ot]).mean():.1%} of the pairs "
        f"(mean cost ratio {np.mean(r['cost'][fe] / r['cost'][ot]):.2f})"
    )

    start = time.perf_counter()
    curve = digits.tradeoff(n_max=(10, 20, 25, 30, 35, 40, 45, 50), n=args.n)
    print(f"trade-off over n_max, {len(curve.pairs)} pairs x {args.n} images ({time.perf_counter() - start:.0f} s)")
    for method in curve.probability:
        print(f"  {method:<18} n_max {list(curve.n_max)}")
        print(f"  {'':<18} P(target) {np.round(curve.probability[method], 3).tolist()}")
        print(f"  {'':<18} cost      {np.round(curve.cost[method], 2).tolist()}")
        print(f"  {'':<18} style     {np.round(curve.style[method], 3).tolist()}")
    fig = plot.tradeoff_curve(curve)
    out = Path(args.out) / "tradeoff.png"
    write_atomically(out, lambda tmp: fig.savefig(tmp, dpi=110, bbox_inches="tight"))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
