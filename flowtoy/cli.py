"""The ``flowtoy`` command line: the paper's 2-D experiment, exact, in seconds."""

from __future__ import annotations

import argparse
import sys
import time

import torch

from flowedit import edit_by_inversion, flowedit, linear_timesteps, sdedit, velocity_pair

from . import metrics, paper

__all__ = ["compare", "main"]


def compare(
    n: int = 4000,
    std: float = 1.0,
    weights: list[float] | None = None,
    steps: int = 50,
    n_max: int | None = None,
    n_avg: int = 1,
    seed: int = 0,
) -> list[dict]:
    """Edit ``n`` source points of the paper's experiment with each method; one row of metrics per method."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    source, target = paper.source(std, weights), paper.target(std, weights)
    ts = linear_timesteps(steps)
    n_max = steps if n_max is None else n_max
    generator = torch.Generator().manual_seed(seed)
    x = source.sample(n, generator)
    pair = velocity_pair(source.velocity, target.velocity)
    methods = {
        "flowedit": lambda: flowedit(x, pair, ts, n_max, n_avg=n_avg, generator=generator),
        "inversion (euler)": lambda: edit_by_inversion(x, source, target, ts, n_max, method="euler"),
        "inversion (rk4)": lambda: edit_by_inversion(x, source, target, ts, n_max, method="rk4"),
        "sdedit": lambda: sdedit(x, target, ts, n_max, generator=generator),
    }
    rows = []
    for name, run in methods.items():
        start = time.perf_counter()
        y = run()
        rows.append(
            {
                "method": name,
                "cost": metrics.transport_cost(x, y),
                "crossing": metrics.crossing_fraction(x, y, source, target),
                "target_loglik": metrics.target_log_likelihood(y, target),
                "seconds": time.perf_counter() - start,
            }
        )
    return rows


def _table(rows: list[dict]) -> str:
    lines = [f"{'method':<20} {'cost E|y-x|^2':>14} {'crossing':>9} {'target log p':>13} {'time [s]':>9}"]
    for r in rows:
        lines.append(
            f"{r['method']:<20} {r['cost']:>14.2f} {r['crossing']:>9.3f} {r['target_loglik']:>13.3f} {r['seconds']:>9.3f}"
        )
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flowtoy",
        description="Exact rectified flows of Gaussian mixtures: FlowEdit vs editing by inversion on the paper's 2-D toy.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "compare",
        help="edit source points with each method and print a metrics table",
        description="Sample the paper's source mixture (modes at (+-15/sqrt2, +-15/sqrt2)), edit towards the target "
        "(modes at (-15, 0) and (0, 15)) with FlowEdit, inversion and SDEdit, and print transport cost, the fraction "
        "of points sent to a non-nearest target mode, and the mean target log-likelihood.",
    )
    p.add_argument("--n", type=int, default=4000, help="number of source points (default: 4000)")
    p.add_argument("--std", type=float, default=1.0, help="standard deviation of every mode (default: 1)")
    p.add_argument(
        "--weights", type=float, nargs=2, metavar=("W1", "W2"), help="mode weights, summing to 1 (default: equal)"
    )
    p.add_argument("--steps", type=int, default=50, help="Euler steps T on a uniform grid from t=1 to 0 (default: 50)")
    p.add_argument(
        "--n-max", type=int, help="steps that edit, <= steps; inversion and SDEdit start at t = n_max/T (default: T)"
    )
    p.add_argument("--n-avg", type=int, default=1, help="FlowEdit noise draws averaged per step (default: 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the source sample and of all noise (default: 0)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        rows = compare(args.n, args.std, args.weights, args.steps, args.n_max, args.n_avg, args.seed)
    except ValueError as err:
        print(f"flowtoy: error: {err}", file=sys.stderr)
        return 2
    print(_table(rows))
    return 0
