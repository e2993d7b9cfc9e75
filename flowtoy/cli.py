"""The ``flowtoy`` command line: the paper's 2-D experiment, exact, in seconds.

``flowtoy figure3`` (figure + metrics table), ``flowtoy sweep`` (regime maps), ``flowtoy animate``
(a GIF of an edit over t), ``flowtoy compare`` (table only) and ``flowtoy digits`` (real 8x8 digits
of one class edited into another by every method). The options derive from
:class:`flowtoy.Settings` (type, help, bounds); each command only chooses its defaults
(:data:`COMMAND_DEFAULTS`). Every option is checked before anything is computed or written: bad
input exits with status 2 and one line on stderr; a file that cannot be written, with status 1;
Ctrl-C with status 130 and one line (outputs are written atomically, so no partial file remains).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from flowedit._files import write_atomically

from . import metrics, paper
from ._cli_options import COMMAND_DEFAULTS, STRENGTHS, check_args, common_options, edit_options, option
from ._edit import METHODS, edit
from ._settings import DEFAULT, Settings

__all__ = ["COMMAND_DEFAULTS", "compare", "main"]

OT_POINTS = 800  # the exact assignment is O(N^3): the OT row uses this many points
AFTER = {  # the editors after FlowEdit and the inversion papers' solvers: rows after the paper's methods
    "flowalign": {"method": "flowalign"},
    "dvrf": {"method": "dvrf"},
    "dds": {"method": "dds"},
    "uniedit": {"method": "uniedit"},
    "inversion (rf-solver)": {"method": "inversion", "solver": "rf-solver"},
    "inversion (fireflow)": {"method": "inversion", "solver": "fireflow"},
    "inversion (uni-inv)": {"method": "inversion", "solver": "uni-inv"},
}
MAX_MESSAGE = 500  # characters of an error line


def _setup(n: int, std: float, weights, seed: int):
    source, target = paper.source(std, weights), paper.target(std)
    return source, target, source.sample(n, torch.Generator().manual_seed(seed))


def _row(name: str, x, y, source, target, seconds: float) -> dict:
    return {
        "method": name,
        "cost": metrics.transport_cost(x, y),
        "crossing": metrics.crossing_fraction(x, y, source, target),
        "target_loglik": metrics.target_log_likelihood(y, target),
        "seconds": seconds,
    }


def compare(
    n: int = COMMAND_DEFAULTS["compare"]["n"],
    std: float = DEFAULT.std,
    weights: list[float] | None = None,
    steps: int = DEFAULT.steps,
    n_max: int | None = DEFAULT.n_max,
    n_avg: int = DEFAULT.n_avg,
    seed: int = DEFAULT.seed,
    *,
    outputs: dict | None = None,
    **strengths: float,
) -> list[dict]:
    """Edit ``n`` source points of the paper's experiment with each method; one row of metrics per method.

    If ``outputs`` is a dict, it receives the edited points per method, the inverted noise
    (key ``"noise"``), the source points ``"x"`` and the mixtures ``"source"``, ``"target"``. The OT row
    pairs the first ``min(n, 800)`` points with fresh target samples; the rows after it are the editors
    after FlowEdit and the inversion papers' solvers (:data:`AFTER`, official strengths; UniEdit-Flow's
    mask is 0 on 2-D points, see :func:`flowtoy.edit`), whose ``strengths`` (``zeta``, ``guidance``,
    ``eta``, ``omega``) default to :class:`flowtoy.Settings`'. Every argument is checked first
    (:class:`flowtoy.Settings`).
    """
    unknown = sorted(set(strengths) - set(STRENGTHS))
    if unknown:
        raise TypeError(f"compare() got unknown setting(s) {', '.join(unknown)}; strengths are {', '.join(STRENGTHS)}")
    s = Settings(n=n, std=std, steps=steps, n_max=n_max, n_avg=n_avg, seed=seed, **strengths)
    strengths = {name: getattr(s, name) for name in STRENGTHS}
    n, std, steps, n_max, n_avg, seed = s.n, s.std, s.steps, s.n_max, s.n_avg, s.seed
    source, target, x = _setup(n, std, weights, seed)
    noise = []

    def keep_noise(info):
        if info["phase"] == "invert":  # the last inversion step ends at t_max
            noise[:] = [info["z"]]

    options = {"steps": steps, "n_max": n_max}
    runs = {
        "flowedit": dict(method="flowedit", n_avg=n_avg),
        "flowedit-mean": dict(method="flowedit-mean"),
        "inversion (euler)": dict(method="inversion", solver="euler", callback=keep_noise),
        "inversion (exact)": dict(method="inversion", solver="exact"),
        "sdedit": dict(method="sdedit"),
    }
    rows = []
    for name, kwargs in runs.items():
        start = time.perf_counter()
        y = edit(x, source, target, generator=torch.Generator().manual_seed(seed + 1), **options, **kwargs)
        rows.append(_row(name, x, y, source, target, time.perf_counter() - start))
        if outputs is not None:
            outputs[name] = y
    start = time.perf_counter()
    x_ot = x[:OT_POINTS]
    y_ot = edit(x_ot, source, target, "ot", generator=torch.Generator().manual_seed(seed + 1))
    rows.append(_row(f"ot ({len(x_ot)} pts)", x_ot, y_ot, source, target, time.perf_counter() - start))
    for name, kwargs in AFTER.items():
        start = time.perf_counter()
        y = edit(x, source, target, generator=torch.Generator().manual_seed(seed + 1), **options, **kwargs, **strengths)
        rows.append(_row(name, x, y, source, target, time.perf_counter() - start))
        if outputs is not None:
            outputs[name] = y
    if outputs is not None:
        outputs.update(noise=noise[-1] if noise else x, x=x, source=source, target=target)
    return rows


def _table(rows: list[dict]) -> str:
    lines = [f"{'method':<21} {'cost E|y-x|^2':>14} {'crossing':>9} {'target log p':>13} {'time [s]':>9}"]
    for r in rows:
        lines.append(
            f"{r['method']:<21} {r['cost']:>14.2f} {r['crossing']:>9.3f} {r['target_loglik']:>13.3f} "
            f"{r['seconds']:>9.3f}"
        )
    return "\n".join(lines)


def _save_figure(fig, path: Path, dpi: int) -> None:
    import matplotlib.pyplot as plt

    try:
        write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=dpi, bbox_inches="tight"))
    finally:
        plt.close(fig)


def _figure3(args) -> None:
    from . import plot

    outputs: dict = {}
    rows = compare(
        2 * args.n,
        args.std,
        args.weights,
        args.steps,
        args.n_max,
        args.n_avg,
        args.seed,
        outputs=outputs,
        **_strengths(args),
    )
    fig = plot.figure3(
        outputs["x"],
        outputs["noise"],
        outputs["inversion (euler)"],
        outputs["flowedit"],
        outputs["source"],
        outputs["target"],
        pairs=args.pairs,
        seed=args.seed,
        steps=args.steps,
        n_max=args.n_max,
    )
    _save_figure(fig, Path(args.out), args.dpi)
    print(_table(rows))
    print(_settings(2 * args.n, args))
    print(f"wrote {args.out}")


def _sweep(args) -> None:
    from . import plot
    from .sweep import sweep

    result = sweep(args.steps, args.weights, n=args.n, std=args.std, seed=args.seed)
    out = Path(args.out)
    fig = plot.regime_maps(result)
    _save_figure(fig, out / "regime_maps.png", args.dpi)
    numbers = {
        "steps": list(result.steps),
        "weights": list(result.weights),
        "std": result.std,
        "n": result.n,
        "crossing": {m: a.tolist() for m, a in result.crossing.items()},
        "cost": {m: a.tolist() for m, a in result.cost.items()},
    }
    write_atomically(out / "sweep.json", lambda tmp: Path(tmp).write_text(json.dumps(numbers, indent=1)))
    for m in result.methods:
        print(
            f"{m}: crossing fraction, rows = weight of lower-left mode {list(result.weights)}, columns = steps {list(result.steps)}"
        )
        for w, row in zip(result.weights, result.crossing[m], strict=True):
            print(f"  {w:4.2f}  " + " ".join(f"{v:6.3f}" for v in row))
    print(f"wrote {out / 'regime_maps.png'} and {out / 'sweep.json'}")


_PHASES = {
    ("inversion", "invert"): "inversion up (source ODE)",
    ("inversion", "sample"): "inversion down (target ODE)",
    ("flowedit", "edit"): "editing",
    ("flowedit", "sample"): "last n_min steps: target sampling",
    ("flowedit-mean", "edit"): "editing",
    ("sdedit", "sample"): "sampling the target",
    ("flowalign", "edit"): "editing",
    ("dvrf", "edit"): "editing",
    ("dds", "edit"): "editing",
    ("uniedit", "invert"): "Uni-Inv up (source ODE)",
    ("uniedit", "edit"): "editing down",
}


def _animate(args) -> None:
    from . import plot

    source, target, x = _setup(2 * args.n, args.std, args.weights, args.seed)
    # FlowEdit and SDEdit start from the source points at t = n_max / T; inversion starts at t = 0.
    n_max = args.steps if args.n_max is None else args.n_max
    inverts = args.method in ("inversion", "uniedit")  # these start at t = 0 and go up first
    frames, times = [x], [0.0 if inverts else n_max / max(args.steps, 1)]
    phases = ["source points"]

    def record(info):
        frames.append(info["z"])
        times.append(info["t_next"])
        phases.append(_PHASES.get((args.method, info["phase"]), ""))

    edit(
        x,
        source,
        target,
        args.method,
        steps=args.steps,
        n_max=args.n_max,
        n_avg=args.n_avg,
        generator=torch.Generator().manual_seed(args.seed + 1),
        callback=record,
        **_strengths(args),
    )
    labels = metrics.nearest_mode(x, source).numpy()
    title = {
        "inversion": f"inversion, {n_max} Euler steps up and {n_max} down",
        "flowedit": f"FlowEdit, {n_max} of {args.steps} Euler steps, n_avg = {args.n_avg}",
        "flowedit-mean": f"FlowEdit (mean over noise), {n_max} of {args.steps} Euler steps",
        "sdedit": f"SDEdit, noise to t = {n_max / max(args.steps, 1):g}, {n_max} Euler steps",
    }.get(args.method, args.method)
    plot.animate(
        torch.stack(frames),
        times,
        labels,
        args.out,
        fps=args.fps,
        source=source,
        target=target,
        title=title,
        phases=phases,
    )
    print(f"wrote {args.out} ({len(frames)} frames)")


def _digits(args) -> None:
    from . import digits, plot

    x, rows = digits.compare(args.source, args.target, steps=args.steps, n_max=args.n_max, seed=args.seed)
    grid = plot.digit_grid(
        x,
        rows,
        args.source,
        args.target,
        columns=args.n,
        title=f"real 8x8 digits, {args.source} -> {args.target}: T = {args.steps} steps on a uniform grid (Euler unless named), "
        f"n_max = {args.n_max}\nP({args.target}) and cost: means over all {len(x)} held-out {args.source}s",
    )
    _save_figure(grid, Path(args.out), args.dpi)
    print(digits.table(rows))
    print(f"{len(x)} held-out images of {args.source}; wrote {args.out}")


def _settings(n: int, args) -> str:
    """The settings a table was made with: commands differ in their defaults, so every table says them."""
    weights = "equal weights" if args.weights is None else f"weights {args.weights[0]:g}/{args.weights[1]:g}"
    n_max = args.steps if args.n_max is None else args.n_max
    return (
        f"({n} source points, {args.steps} steps on a uniform grid, n_max {n_max}, n_avg {args.n_avg}, std {args.std:g}, "
        f"{weights}, seed {args.seed})"
    )


def _strengths(args) -> dict[str, float]:
    return {name: getattr(args, name) for name in STRENGTHS}


def _compare(args) -> None:
    rows = compare(args.n, args.std, args.weights, args.steps, args.n_max, args.n_avg, args.seed, **_strengths(args))
    print(_table(rows))
    print(_settings(args.n, args))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flowtoy",
        description="Exact rectified flows of Gaussian mixtures: FlowEdit vs editing by inversion on the paper's 2-D toy "
        "(source modes at +-(15/sqrt2, 15/sqrt2), target modes at (-15, 0) and (0, 15)).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("figure3", help="the paper's Fig. 3 analogue (PNG) and a metrics table for every method")
    p.add_argument("--out", default="figure3.png", help="output image (default: figure3.png)")
    common_options(p, "figure3")
    edit_options(p, "figure3", "; coarse Euler inversion intermixes the modes, at 50 steps it hardly does")
    option(p, "pairs", "figure3")
    option(p, "dpi", "figure3")
    p.set_defaults(run=_figure3)

    p = sub.add_parser(
        "sweep", help="regime maps: crossing fraction and cost of inversion vs FlowEdit over steps and weights"
    )
    p.add_argument(
        "--out", default="sweep", help="output directory for regime_maps.png and sweep.json (default: sweep)"
    )
    common_options(p, "sweep")
    p.add_argument(
        "--steps", type=int, nargs="+", default=[2, 5, 10, 25, 50], help="step counts (default: 2 5 10 25 50)"
    )
    p.add_argument(
        "--weights",
        type=float,
        nargs="+",
        default=[0.5, 0.6, 0.7, 0.8, 0.9],
        help="weights of the lower-left source mode, each in (0, 1) (default: 0.5 ... 0.9)",
    )
    option(p, "dpi", "sweep")
    p.set_defaults(run=_sweep)

    p = sub.add_parser("animate", help="a GIF of one edit over t")
    p.add_argument("--out", default="edit.gif", help="output GIF (default: edit.gif)")
    p.add_argument("--method", default="flowedit", choices=[m for m in METHODS if m != "ot"])
    common_options(p, "animate")
    edit_options(p, "animate")
    option(p, "fps", "animate")
    p.set_defaults(run=_animate)

    p = sub.add_parser(
        "digits", help="edit real 8x8 digits of one class into another by every method (grid PNG + table)"
    )
    p.add_argument("--source", type=int, default=3, help="source digit 0-9 (default: 3)")
    p.add_argument("--target", type=int, default=8, help="target digit 0-9 (default: 8)")
    p.add_argument("--out", default="digits.png", help="output image (default: digits.png)")
    option(p, "n", "digits", "held-out images shown per method (default: 8; all are measured)")
    option(p, "steps", "digits", "steps T on a uniform grid from t=1 to 0")
    option(p, "n_max", "digits", "steps that edit, for every method (<= steps)")
    option(p, "seed", "digits", "seed of all noise")
    option(p, "dpi", "digits")
    p.set_defaults(run=_digits)

    p = sub.add_parser("compare", help="the metrics table only")
    common_options(p, "compare")
    edit_options(p, "compare")
    p.set_defaults(run=_compare)
    return parser


def _bounded(err: Exception) -> str:
    lines = str(err).splitlines()
    text = lines[0] if lines else type(err).__name__
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        check_args(args)
        args.run(args)
    except ValueError as err:
        print(f"flowtoy: error: {_bounded(err)}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"flowtoy: error: cannot write output: {_bounded(err)}", file=sys.stderr)
        return 1
    except (RuntimeError, ArithmeticError) as err:  # e.g. the adaptive solver failing, an overflow
        print(f"flowtoy: error: {type(err).__name__}: {_bounded(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # 128 + SIGINT, as a shell reports it
        print("flowtoy: interrupted", file=sys.stderr)
        return 130
    return 0
