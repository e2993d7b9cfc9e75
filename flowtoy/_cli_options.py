"""The ``flowtoy`` command line's options, derived from :class:`flowtoy.Settings`, and their checks.

Each option takes its type, help and bounds from the setting of the same name; a command only
chooses its defaults (:data:`COMMAND_DEFAULTS`). :func:`check_args` checks every option before the
command computes, creates or writes anything.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import digits, paper
from ._checks import check_int
from ._settings import DEFAULT, Settings, check_setting, check_work, setting

__all__ = ["COMMAND_DEFAULTS", "STRENGTHS", "check_args", "common_options", "edit_options", "option"]

# What each command shows by default (every other setting: flowtoy.Settings' default). figure3 and
# the explorer use 10 steps, where Euler inversion intermixes the modes; digits edits 40 of 50 steps.
COMMAND_DEFAULTS = {
    "figure3": {"n": 2000, "steps": 10},
    "sweep": {"n": 2000},
    "animate": {"n": 500},
    "digits": {"n": 8, "steps": digits.STEPS, "n_max": digits.N_MAX},
    "compare": {"n": 4000},
}
STRENGTHS = ("zeta", "guidance", "eta", "omega")  # FlowAlign's, DVRF's and UniEdit-Flow's settings
PER_MODE = ("figure3", "animate")  # their --n counts points per mode: 2N in all
IMAGE_EXAMPLE = {"figure3": "png", "digits": "png", "animate": "gif"}
ANIMATIONS = (".gif", ".png", ".webp")  # what Pillow writes as an animation


def option(p: argparse.ArgumentParser, name: str, command: str, help: str = "", **kwargs) -> None:
    """``--name`` from :class:`flowtoy.Settings`: its type and help, the command's default."""
    meta = setting(name)
    default = COMMAND_DEFAULTS[command].get(name, getattr(DEFAULT, name))
    shown = "T" if default is None else (f"{default:g}" if isinstance(default, float) else default)
    text = help or meta.help
    text = text if "(default:" in text else f"{text} (default: {shown})"
    p.add_argument(f"--{name.replace('_', '-')}", type=meta.kind, default=default, help=text, **kwargs)


def common_options(p: argparse.ArgumentParser, command: str) -> None:
    per_mode = command in PER_MODE
    what = "half the source points: 2N in all, split between the modes by the weights" if per_mode else ""
    option(p, "n", command, what)
    option(p, "std", command)
    option(p, "seed", command)


def edit_options(p: argparse.ArgumentParser, command: str, why: str = "") -> None:
    p.add_argument(
        "--weights", type=float, nargs=2, metavar=("W1", "W2"), help="source mode weights summing to 1 (default: equal)"
    )
    steps = COMMAND_DEFAULTS[command].get("steps", DEFAULT.steps)
    option(p, "steps", command, f"{setting('steps').help} (default: {steps}{why})")
    option(p, "n_max", command)
    option(p, "n_avg", command)
    for name in STRENGTHS:  # the editors after FlowEdit
        option(p, name, command)


def check_args(args) -> None:
    """Every option, checked before anything is computed, created or written (the first bad one raises)."""
    if args.command in PER_MODE:  # points per mode: half the bound
        check_int(args.n, "--n", 1, int(setting("n").high) // 2, setting("n").why)
    for name in ("n", "std", "seed", "steps", "n_max", "n_avg", "pairs", "dpi", "fps", *STRENGTHS):
        values = getattr(args, name, None)
        for value in values if isinstance(values, list) else [values]:
            if value is not None:
                check_setting(name, value, f"--{name.replace('_', '-')}")
    if args.command == "sweep":
        for w in args.weights:
            check_setting("weight", w, "--weights")
    else:
        Settings(steps=args.steps, n_max=args.n_max)  # n_max <= steps
    if args.command in ("figure3", "compare", "animate"):
        steps = args.steps or COMMAND_DEFAULTS[args.command].get("steps", DEFAULT.steps)
        points = (args.n or DEFAULT.n) * (2 if args.command in PER_MODE else 1)  # the paper's two source modes
        check_work(steps, args.n_avg or DEFAULT.n_avg, points, 2)
    if args.command in ("figure3", "animate", "compare"):
        paper.source(args.std, args.weights)  # weights: two, positive, summing to 1
    if args.command == "digits":
        for name in ("source", "target"):
            digits.check_label(getattr(args, name))
        if args.source == args.target:
            raise ValueError(f"--source and --target are both {args.source}; an edit needs two different digits")
    if hasattr(args, "out"):
        check_out(args)


def check_out(args) -> None:
    """``--out`` names what the command writes: a folder for ``sweep``, else a file whose suffix says its format."""
    out = Path(args.out)
    if args.command == "sweep":
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out} is a file; the sweep writes a folder (regime_maps.png and sweep.json)")
        return
    if args.command == "animate":
        formats = [suffix[1:] for suffix in ANIMATIONS]
    else:
        from matplotlib.backend_bases import FigureCanvasBase

        formats = sorted(FigureCanvasBase.get_supported_filetypes())
    suffix = out.suffix.lower()[1:]
    example = out.with_name(f"{out.name}.{IMAGE_EXAMPLE[args.command]}")
    if not suffix:
        raise ValueError(
            f"--out {out} has no suffix; the suffix names the format: use e.g. {example} (one of {', '.join(formats)})"
        )
    if suffix not in formats:
        raise ValueError(f"--out {out}: cannot write .{suffix} files; use a suffix among {', '.join(formats)}")
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; name the file to write, e.g. {out / example.name}")
