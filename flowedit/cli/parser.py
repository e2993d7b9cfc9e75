"""The options of every command, derived from the settings' and limits' declarations
(:class:`~flowedit.models.EditSettings`, :class:`~flowedit.media.ImageLimits`)."""

from __future__ import annotations

import argparse
import math
from dataclasses import fields

from . import commands

__all__ = ["parser"]

DTYPES = ("float32", "bfloat16", "float16")


class _Parser(argparse.ArgumentParser):
    """argparse, with its error line bounded (it quotes the value it refuses, which may be megabytes long)."""

    def error(self, message: str):
        from .._text import bounded

        super().error(bounded(message))


def _values(kind):
    """An argparse type: comma-separated values of ``kind``, one to :data:`~flowedit.runs.sweeps.MAX_CELLS` of them
    (counted before any is parsed)."""
    from ..runs.sweeps import MAX_CELLS

    def parse(text: str):
        if text.count(",") >= MAX_CELLS:
            raise argparse.ArgumentTypeError(f"give at most {MAX_CELLS} values (a sweep has at most {MAX_CELLS} cells)")
        try:
            values = [kind(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of {kind.__name__}s") from None
        if not values:
            raise argparse.ArgumentTypeError("give at least one value")
        return values

    return parse


def _source_options(p: argparse.ArgumentParser) -> None:
    """The source image or video, the two prompts and the optional mask of one source's edits (edit, sweep)."""
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", help="source image (image families)")
    source.add_argument(
        "--video",
        help="source video (video families): a GIF, an MP4 (or MOV, MKV, WebM, AVI) or a folder of frames",
    )
    p.add_argument("--source", required=True, help="prompt describing the source image (or video)")
    p.add_argument("--target", required=True, help="prompt describing the edit")
    p.add_argument(
        "--mask",
        help="local edit: an image whose white marks where to edit (resized to the image if needed; alpha is "
        "ignored); black pixels keep the input's exactly (image families, method flowedit)",
    )
    p.add_argument(
        "--feather",
        type=float,
        default=0.0,
        help="soften the mask's edge by this many pixels (default: 0; needs --mask)",
    )


def _limit_options(p: argparse.ArgumentParser) -> None:
    """One option per :class:`~flowedit.media.ImageLimits` field, in its unit, its default derived from it."""
    from ..media.images import ImageLimits

    for f in fields(ImageLimits):
        meta = f.metadata
        default = f.default / meta["unit"]
        shown = f"{math.isqrt(f.default)}x{math.isqrt(f.default)}" if f.name == "max_pixels" else f"{default:g}"
        unit = f" in {meta['unit_name']}" if meta["unit_name"] else ""
        p.add_argument(
            meta["option"],
            dest=f.name,
            type=float if meta["unit"] != 1 else int,
            help=f"{meta['help']}{unit} (default: {shown})",
        )


def _settings_options(p: argparse.ArgumentParser, seed_help: str = "", skip: tuple[str, ...] = ()) -> None:
    """One option per :class:`~flowedit.models.EditSettings` field, its help and defaults derived from it; then
    the model, its dtype and device, and the limits."""
    from ..models import FAMILIES, EditSettings

    tiny = " / ".join(f"tiny-{name}" for name in FAMILIES)
    p.add_argument("--model", required=True, help=f"hub id, local directory, or {tiny} (offline demo)")
    for f in fields(EditSettings):
        meta = f.metadata
        if f.name in skip:
            continue
        if f.name == "seed":
            p.add_argument("--seed", type=int, help=seed_help)
            continue
        defaults = ", ".join(f"{name} {getattr(family.defaults, f.name)}" for name, family in FAMILIES.items())
        bounds = f"; at most {meta['high']}" if meta["high"] is not None and f.name in ("steps", "n_avg") else ""
        shown = f" (default: the model family's: {defaults}{bounds})" if f.default is not None else ""
        p.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f.name,
            type=meta["kind"],
            choices=meta["choices"],
            help=meta["help"] + shown,
        )
    p.add_argument("--dtype", choices=DTYPES, help="model dtype (default: bfloat16 on CUDA, float32 on CPU)")
    p.add_argument("--device", help="torch device: cpu, cuda, cuda:N (default: cuda if available, else cpu)")
    p.add_argument("--offload", action="store_true", help="model CPU offload (diffusers), for small GPUs")
    _limit_options(p)


def _overwrite(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--overwrite", action="store_true", help=f"redo {what} made with other settings (default: stop)")


def parser() -> argparse.ArgumentParser:
    """The ``flowedit`` parser; each command's ``run`` is its function in :mod:`.commands`."""
    from ..models import FAMILIES

    parser = _Parser(
        prog="flowedit",
        description="FlowEdit (inversion-free text-based editing) of images and videos with diffusers flow models.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("edit", help="edit one image or video")
    _source_options(p)
    p.add_argument(
        "--out",
        required=True,
        help="output image (.png carries the edit's settings; .jpg, .webp, ...) or video (.mp4, .gif)",
    )
    seeds = ", ".join(f"{name} {family.defaults.seed}" for name, family in FAMILIES.items())
    _settings_options(p, f"noise seed (default: the model family's: {seeds})")
    p.set_defaults(run=commands.edit)

    p = sub.add_parser("run", help="edit every entry of a batch file (reference format), resumable")
    p.add_argument("edits", help="YAML batch file: entries with input_img, source_prompt, target_prompts, target_codes")
    p.add_argument("--out-dir", required=True, help="output directory (<image stem>/<code>.png and results.jsonl)")
    _overwrite(p, "edits whose outputs were")
    _settings_options(p, "run seed: each edit's seed derives from it, the image and the prompts (default: 0)")
    p.set_defaults(run=commands.run)

    p = sub.add_parser(
        "sweep", help="one image (or video) over a grid of n_max x target guidance (x seeds), on a contact sheet"
    )
    _source_options(p)
    p.add_argument("--out-dir", required=True, help="output directory (sheet.png, cells/, results.jsonl)")
    _overwrite(p, "cells, and replace a sheet,")
    p.add_argument(
        "--n-max",
        dest="n_max_values",
        required=True,
        type=_values(int),
        metavar="LIST",
        help="n_max values, e.g. 20,27,33",
    )
    p.add_argument(
        "--tar-guidance",
        dest="tar_guidance_values",
        required=True,
        type=_values(float),
        metavar="LIST",
        help="target guidance values, e.g. 7.5,10,13.5",
    )
    p.add_argument(
        "--seeds", type=_values(int), metavar="LIST", help="noise seeds, e.g. 1,2 (default: the family's seed)"
    )
    _settings_options(p, skip=("n_max", "tar_guidance", "seed"))
    p.set_defaults(run=commands.sweep)

    p = sub.add_parser("models", help="the supported model families, how they differ and their default settings")
    p.set_defaults(run=commands.models)
    return parser
