"""The editors after FlowEdit side by side, exactly: the README's table and the strength curves.

1. The paper's 2-D toy (:mod:`flowtoy.paper`, 2,000 points, seed 0, T = 10 and T = 50, every method on
   its whole grid, ``n_max = T``): crossing fraction, transport cost, exact target log-likelihood, and
   the round trip ``source -> target -> source`` (mean squared distance from where each point started).
2. Real 8x8 digits over all 90 ordered class pairs (the first ``--n`` held-out images of each source
   class, T = 50, n_max = 40 for every method as in ``flowtoy digits``): target probability, cost,
   style kept and exact target log-likelihood, means over images then over pairs.
3. Cost against target probability over each method's strength setting (digits, 90 pairs), each at its
   official schedule: FlowEdit over ``n_max``; FlowAlign (from the first step) over ``zeta``; DVRF (all
   steps, progressive shift) over ``eta``; UniEdit-Flow (``alpha = 0.6``: n_max 30) over ``omega``.

Prints the two tables as Markdown (the README's section "After FlowEdit" is this output) and the curves;
with ``--out DIR`` also writes ``after_curves.png`` and ``round_trip.png``.

Run:  OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_after.py [--n 20] [--out DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import flowtoy
from flowtoy import digits, metrics, paper

TOY = {  # row -> flowtoy.edit keyword arguments
    "flowedit": {"method": "flowedit"},
    "flowalign": {"method": "flowalign"},
    "dvrf": {"method": "dvrf"},
    "dds": {"method": "dds"},
    "uniedit (omega 5)": {"method": "uniedit"},
    "uniedit (omega 1)": {"method": "uniedit", "omega": 1.0},
    "inversion (euler)": {"method": "inversion", "solver": "euler"},
    "inversion (rf-solver)": {"method": "inversion", "solver": "rf-solver"},
    "inversion (fireflow)": {"method": "inversion", "solver": "fireflow"},
    "inversion (uni-inv)": {"method": "inversion", "solver": "uni-inv"},
    "sdedit": {"method": "sdedit"},
}
DIGIT_ROWS = (
    "flowedit",
    "flowalign",
    "dvrf",
    "dds",
    "uniedit",
    "inversion (euler)",
    "inversion (rf-solver)",
    "inversion (fireflow)",
    "inversion (uni-inv)",
    "sdedit",
)
CURVES = {  # method -> (flowtoy.edit options, strength setting, values from weak to strong)
    "flowedit": ({"method": "flowedit"}, "n_max", (10, 20, 30, 40, 50)),
    "flowalign": ({"method": "flowalign", "n_max": 50}, "zeta", (0.03, 0.01, 0.003, 0.001, 0.0)),
    "dvrf": ({"method": "dvrf", "n_max": 50}, "eta", (0.0, 0.25, 0.5, 0.75, 1.0)),
    "uniedit": ({"method": "uniedit", "n_max": 30, "pixels": True}, "omega", (0.0, 0.25, 0.5, 1.0, 2.0)),
}
PAIRS = tuple((s, t) for s in range(10) for t in range(10) if s != t)


def toy(steps: int, n: int = 2000, seed: int = 0) -> dict[str, dict[str, float]]:
    source, target = paper.source(), paper.target()
    x = source.sample(n, torch.Generator().manual_seed(seed))
    rows = {}
    for name, options in TOY.items():
        started = time.perf_counter()
        y, back = flowtoy.round_trip(
            x, source, target, steps=steps, generator=torch.Generator().manual_seed(seed + 1), **options
        )
        rows[name] = {
            "crossing": metrics.crossing_fraction(x, y, source, target),
            "cost": metrics.transport_cost(x, y),
            "log p": metrics.target_log_likelihood(y, target),
            "round trip": metrics.transport_cost(x, back),
            "seconds": time.perf_counter() - started,
        }
    return rows


def _digit_edit(s: int, t: int, n: int, seed: int, **options) -> digits.Row:
    x = digits.load("test", s)[0][:n]
    y = flowtoy.edit(x, digits.model(s), digits.model(t), generator=torch.Generator().manual_seed(seed), **options)
    return digits.measure("", x, y, s, t)


def digit_table(n: int, seed: int = 0) -> dict[str, dict[str, float]]:
    sums = {name: np.zeros(4) for name in DIGIT_ROWS}
    for s, t in tqdm(PAIRS, desc="digit pairs (table)", unit="pair"):
        for name in DIGIT_ROWS:
            options = {**digits.METHODS[name], "steps": digits.STEPS, "n_max": digits.N_MAX}
            r = _digit_edit(s, t, n, seed, **options)
            sums[name] += (r.target_probability, r.cost, r.style, r.log_likelihood)
    keys = ("P(target)", "cost", "style kept", "log p")
    return {name: dict(zip(keys, (total / len(PAIRS)).tolist(), strict=True)) for name, total in sums.items()}


def curves(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Per method an array ``(len(values), 2)``: mean target probability and mean cost over the 90 pairs."""
    out = {}
    for method, (options, name, values) in CURVES.items():
        total = np.zeros((len(values), 2))
        for s, t in tqdm(PAIRS, desc=f"digit pairs ({method} over {name})", unit="pair"):
            for j, value in enumerate(values):
                r = _digit_edit(s, t, n, seed, steps=digits.STEPS, **{**options, name: value})
                total[j] += (r.target_probability, r.cost)
        out[method] = total / len(PAIRS)
    return out


def markdown(rows: dict[str, dict[str, float]], keys: tuple[str, ...], formats: tuple[str, ...]) -> str:
    lines = ["| method | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys)]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(format(row[k], f) for k, f in zip(keys, formats, strict=True)) + " |")
    return "\n".join(lines)


def plot_curves(found: dict[str, np.ndarray], path: Path, n: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for method, values in found.items():
        name, settings = CURVES[method][1], CURVES[method][2]
        ax.plot(values[:, 1], values[:, 0], "o-", label=f"{method} over {name} {settings[0]:g}..{settings[-1]:g}")
    ax.set_xscale("symlog", linthresh=10)
    ax.set(
        xlabel="transport cost E|y - x|^2 (64 pixels)",
        ylabel="P(target class)",
        title=f"real digits, 90 class pairs, {n} images each, T = 50 Euler steps\n"
        "each method at its official schedule, over its strength setting",
    )
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_round_trip(path: Path, steps: int = 50, n: int = 300) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    source, target = paper.source(), paper.target()
    x = source.sample(n, torch.Generator().manual_seed(0))
    shown = ("flowedit", "flowalign", "dvrf", "dds", "inversion (fireflow)", "sdedit")
    fig, axes = plt.subplots(1, len(shown), figsize=(3.2 * len(shown), 3.4), sharex=True, sharey=True)
    for ax, name in zip(axes, shown, strict=True):
        _, back = flowtoy.round_trip(
            x, source, target, steps=steps, generator=torch.Generator().manual_seed(1), **TOY[name]
        )
        ax.plot(*np.stack([x.numpy(), back.numpy()], 0).transpose(2, 0, 1), color="0.6", lw=0.6)
        ax.scatter(*x.T, s=4, label="source x")
        ax.scatter(*back.T, s=4, label="edited and edited back")
        ax.set_title(f"{name}\nround trip {metrics.transport_cost(x, back):.3g}", fontsize=9)
        ax.set_xlabel("x1")
    axes[0].set_ylabel("x2")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(
        f"source -> target -> source on the paper's toy, T = {steps} Euler steps (mean squared distance)", y=1.08
    )
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="held-out images per digit pair (default: 20)")
    parser.add_argument("--out", type=Path, help="folder for after_curves.png and round_trip.png")
    args = parser.parse_args()
    started = time.perf_counter()
    toy_keys, toy_formats = ("crossing", "cost", "log p", "round trip"), (".3f", ".4g", ".4g", ".3g")
    for steps in (10, 50):
        print(f"\nThe paper's 2-D toy, 2,000 points, T = {steps} Euler steps, n_max = T, seed 0 (edits: seed 1)\n")
        print(markdown(toy(steps), toy_keys, toy_formats))
    print(f"\nReal digits, 90 class pairs, the first {args.n} held-out images of each, T = 50, n_max = 40\n")
    print(markdown(digit_table(args.n), ("P(target)", "cost", "style kept", "log p"), (".3f", ".3g", ".3f", ".3g")))
    found = curves(args.n)
    print("\nStrength curves (digits, 90 pairs): setting value -> mean P(target) / mean cost")
    for method, values in found.items():
        name, settings = CURVES[method][1], CURVES[method][2]
        cells = ", ".join(f"{v:g}: {p:.3f} / {c:.3g}" for v, (p, c) in zip(settings, values, strict=True))
        print(f"  {method} over {name}: {cells}")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        plot_curves(found, args.out / "after_curves.png", args.n)
        plot_round_trip(args.out / "round_trip.png")
        print(f"wrote {args.out / 'after_curves.png'} and {args.out / 'round_trip.png'}")
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
