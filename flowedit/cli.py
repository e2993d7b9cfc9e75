"""The ``flowedit`` command line: one edit (``flowedit edit``) or a batch file (``flowedit run``).

Bad input (settings, batch file, image, output path, device, unloadable model) exits with status 2
and one line on stderr, before any model is loaded where possible; ``flowedit run`` exits with 1 if
any edit failed and lists them; Ctrl-C exits with 130 and leaves no partial output.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import warnings
from dataclasses import fields
from pathlib import Path

from ._cli_inputs import _check_output, _image_options

__all__ = ["main"]

DTYPES = ("float32", "bfloat16", "float16")
MAX_MESSAGE = 500  # characters of an error line


def _options(args) -> dict:
    from .models import EditSettings

    return {f.name: getattr(args, f.name, None) for f in fields(EditSettings) if f.name != "seed"}


def media_of(model: str, editor=None) -> str | None:
    """``"image"`` or ``"video"``: what the model edits (from the loaded ``editor``, else from its name; None if
    only loading it will tell)."""
    from .models._families import family_of_name

    family = editor.family if editor is not None else family_of_name(model)
    return None if family is None else family.media


def check_media(model: str, video: bool, editor=None) -> None:
    """One line when ``--image`` goes to a video model or ``--video`` to an image model."""
    media = media_of(model, editor)
    if media == "video" and not video:
        raise ValueError(f"{model} edits videos: give the source with --video (a GIF, an MP4 or a folder of frames)")
    if media == "image" and video:
        raise ValueError(f"{model} edits images: give the source with --image, or use a video model (tiny-wan, Wan)")


def _family_defaults(model: str):
    """The model family's default settings if the name tells the family, else None (known after loading)."""
    from .models._families import family_of_name

    family = family_of_name(model)
    return None if family is None else family.defaults


def _limits(args):
    from .models._images import ImageLimits

    checked = (("--max-pixels", args.max_pixels), ("--max-file-size", args.max_file_size))
    for name, value in checked + (("--max-frames", args.max_frames), ("--max-video-pixels", args.max_video_pixels)):
        if not (0 < value < float("inf")):
            raise ValueError(f"{name} must be a positive number, got {value}")
    max_bytes = int(args.max_file_size * 1024 * 1024)
    if max_bytes < 1:
        raise ValueError(f"--max-file-size {args.max_file_size} MB is less than one byte")
    return ImageLimits(args.max_pixels, max_bytes, args.max_frames, args.max_video_pixels)


def _device_and_dtype(args):
    """Checked before any model loads: the device exists here; one GPU per process under a launcher."""
    import torch

    from .batch import process_shard
    from .models._editor import default_dtype, resolve_device

    device = resolve_device(args.device)
    if device.type == "cuda" and device.index is None:
        device = resolve_device(f"cuda:{process_shard()[2]}")
    return device, (getattr(torch, args.dtype) if args.dtype else default_dtype(device))


def _loader(args, device, dtype, limits):
    def load():
        from .models import load as load_model

        editor = load_model(args.model, device=device, dtype=dtype, offload=args.offload)
        editor.limits = limits
        return editor

    return load


def _dtype_name(dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _prompts_and_feather(args) -> None:
    """The options a model does not decide, named as the command line spells them."""
    from .models._arguments import check_feather, check_prompt

    check_prompt(args.source, "--source")
    check_prompt(args.target, "--target")
    check_feather(args.feather, "--feather")
    if args.feather and args.mask is None:
        raise ValueError(f"--feather {args.feather:g} softens a mask's edge; give --mask too, or leave --feather out")


def _edit(args) -> int:
    """One image or video through the one request-to-file path; everything but the model is checked first."""
    from ._media import read_mask, read_source
    from ._request import EditRequest, check_local_edit, edit_to_file
    from .models._video import VIDEO_SUFFIXES, stored_fps

    limits = _limits(args)
    video = args.video is not None
    media = "video" if video else "image"
    check_media(args.model, video)
    given, out = Path(args.video if video else args.image), Path(args.out)
    _check_output(out, given, VIDEO_SUFFIXES if video else ())
    _prompts_and_feather(args)
    defaults, options = _family_defaults(args.model), _options(args)
    settings = None if defaults is None else defaults.replace(**options, seed=args.seed)  # before the model loads
    source = read_source(given, media, limits)
    if video:
        stored_fps(out, source.fps)  # a rate the output cannot hold is refused now, not after the edit
    mask = None if args.mask is None else read_mask(args.mask, limits)
    method = settings.method if settings is not None else args.method or "flowedit"
    check_local_edit(media, method, mask is not None, args.feather)
    device, dtype = _device_and_dtype(args)
    editor = _loader(args, device, dtype, limits)()
    check_media(args.model, video, editor)
    if settings is None or editor.defaults != defaults:
        settings = editor.defaults.replace(**options, seed=args.seed)
    request = EditRequest.of(
        args.model, _dtype_name(dtype), source, args.source, args.target, settings, mask, args.feather
    )
    record, result = edit_to_file(editor, request, source, out, mask=mask)
    what = "" if not video else f"{record['frames']} frames of {source.picture.size[0]}x{source.picture.size[1]}"
    what += "" if not video else f" at {record['fps']:g} fps; "
    print(
        f"wrote {out} ({what}{settings.method}, {settings.steps} steps, n_max {settings.n_max}, seed {settings.seed}, "
        f"{result.model_calls} model calls, {result.seconds:.1f} s, latent MSE {result.latent_mse:.4f})"
    )
    return 0


def _run(args) -> int:
    from ._text import printable
    from .batch import load_jobs, process_shard, run_jobs
    from .models._settings import MAX_SEED

    limits = _limits(args)  # the run's own options first: they fail at once, before a large batch file is read
    run_seed = 0 if args.seed is None else args.seed
    if not 0 <= run_seed <= MAX_SEED:
        raise ValueError(f"--seed must lie in [0, {MAX_SEED}], got {run_seed}")
    device, dtype = _device_and_dtype(args)
    jobs = load_jobs(args.edits, args.out_dir)
    media = media_of(args.model)
    wrong = next((job for job in jobs if media is not None and job.media != media), None)
    if wrong is not None:
        key = "input_img" if media == "image" else "input_video"
        raise ValueError(f"{wrong.where}: {args.model} edits {media}s; give the entry's input as {key}")
    defaults, options = _family_defaults(args.model), _options(args)
    if defaults is not None:
        for job in jobs:
            try:
                defaults.replace(**{**options, **job.overrides})
            except ValueError as err:
                raise ValueError(f"{job.where}: {err}") from None
    rank, world, _ = process_shard()
    if world > 1:
        _join_process_group()
    summary = run_jobs(
        jobs,
        _loader(args, device, dtype, limits),
        args.out_dir,
        run_seed,
        options,
        model=args.model,
        dtype=_dtype_name(dtype),
        defaults=defaults,
        overwrite=args.overwrite,
        limits=limits,
    )
    who = f"process {rank + 1}/{world}: " if world > 1 else ""
    for failure in summary.failed:
        print(printable(f"{who}failed: {failure.get('where', '')} -> {failure['output']}: {failure['error']}"))
    busy = f", {summary.busy} being edited by another run" if summary.busy else ""
    print(
        f"{who}{summary.done} edited, {summary.skipped} already done, {len(summary.failed)} failed{busy}; "
        f"see {Path(args.out_dir) / 'results.jsonl'}"
    )
    failed = len(summary.failed)
    if world > 1:
        failed = _failures_of_all_processes(failed)
    return 1 if failed else 0


def _join_process_group() -> None:
    """A CPU (gloo) group used only to wait for every process at the end: a launcher stops all
    processes as soon as one exits non-zero, which must not cut the others' edits short."""
    from datetime import timedelta

    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo", timeout=timedelta(days=30))


def _failures_of_all_processes(failed: int) -> int:
    import torch
    import torch.distributed as dist

    total = torch.tensor([failed])
    dist.all_reduce(total)  # also a barrier: returns once every process has finished its edits
    dist.destroy_process_group()
    return int(total.item())


def _values(kind):
    """An argparse type: comma-separated values of ``kind``, one to :data:`~flowedit.sweep.MAX_CELLS` of them
    (counted before any is parsed)."""
    from .sweep import MAX_CELLS

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


def _sweep(args) -> int:
    from .sweep import SHEET, check_grid, run_sweep

    limits = _limits(args)
    check_grid(args.n_max_values, args.tar_guidance_values, args.seeds)  # from the lists' lengths, before any work
    video = args.video is not None
    check_media(args.model, video)
    _prompts_and_feather(args)
    device, dtype = _device_and_dtype(args)
    load = _loader(args, device, dtype, limits)

    def load_checked():
        editor = load()
        check_media(args.model, video, editor)
        return editor

    others = {k: v for k, v in _options(args).items() if k not in ("n_max", "tar_guidance", "method")}
    cells = run_sweep(
        load_checked,
        args.video if video else args.image,
        args.source,
        args.target,
        args.out_dir,
        args.n_max_values,
        args.tar_guidance_values,
        args.seeds,
        model=args.model,
        dtype=_dtype_name(dtype),
        media=media_of(args.model),
        defaults=_family_defaults(args.model),
        limits=limits,
        options=others,
        mask=args.mask,
        feather=args.feather,
        overwrite=args.overwrite,
        title=f"{args.model}: '{args.source}' -> '{args.target}'",
    )
    made = sum(cell.made for cell in cells)
    print(f"wrote {Path(args.out_dir) / SHEET}: {len(cells)} cells, {made} edited now, {len(cells) - made} kept")
    return 0


def _settings_options(p: argparse.ArgumentParser, seed_help: str = "", skip: tuple[str, ...] = ()) -> None:
    """One option per :class:`~flowedit.models.EditSettings` field, its help and defaults derived from it."""
    from .models import FAMILIES, EditSettings
    from .models._images import MAX_BYTES, MAX_FRAMES, MAX_PIXELS, MAX_VIDEO_PIXELS

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
        p.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f.name,
            type=meta["kind"],
            choices=meta["choices"],
            help=f"{meta['help']} (default: the model family's: {defaults}{bounds})",
        )
    p.add_argument("--dtype", choices=DTYPES, help="model dtype (default: bfloat16 on CUDA, float32 on CPU)")
    p.add_argument("--device", help="torch device: cpu, cuda, cuda:N (default: cuda if available, else cpu)")
    p.add_argument("--offload", action="store_true", help="model CPU offload (diffusers), for small GPUs")
    side, megabytes = math.isqrt(MAX_PIXELS), MAX_BYTES / 2**20
    p.add_argument(
        "--max-pixels",
        type=int,
        default=MAX_PIXELS,
        help=f"largest input image, width x height (default: {side}x{side})",
    )
    p.add_argument(
        "--max-file-size",
        type=float,
        default=megabytes,
        help=f"largest input image file in megabytes (default: {megabytes:g})",
    )
    p.add_argument(
        "--max-frames", type=int, default=MAX_FRAMES, help=f"longest input video in frames (default: {MAX_FRAMES})"
    )
    p.add_argument(
        "--max-video-pixels",
        type=int,
        default=MAX_VIDEO_PIXELS,
        help=f"largest input video, frames x width x height (default: {MAX_VIDEO_PIXELS})",
    )


def _parser() -> argparse.ArgumentParser:
    from .models import FAMILIES

    parser = argparse.ArgumentParser(
        prog="flowedit",
        description="FlowEdit (inversion-free text-based editing) of images and videos with diffusers flow models.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("edit", help="edit one image or video")
    _image_options(p, video=True)
    p.add_argument(
        "--out",
        required=True,
        help="output image (.png carries the edit's settings; .jpg, .webp, ...) or video (.mp4, .gif)",
    )
    seeds = ", ".join(f"{name} {family.defaults.seed}" for name, family in FAMILIES.items())
    _settings_options(p, f"noise seed (default: the model family's: {seeds})")
    p.set_defaults(run=_edit)
    p = sub.add_parser("run", help="edit every entry of a batch file (reference format), resumable")
    p.add_argument("edits", help="YAML batch file: entries with input_img, source_prompt, target_prompts, target_codes")
    p.add_argument("--out-dir", required=True, help="output directory (<image stem>/<code>.png and results.jsonl)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="redo edits whose outputs were made with other settings (default: stop)",
    )
    _settings_options(p, "run seed: each edit's seed derives from it, the image and the prompts (default: 0)")
    p.set_defaults(run=_run)
    p = sub.add_parser(
        "sweep", help="one image (or video) over a grid of n_max x target guidance (x seeds), on a contact sheet"
    )
    _image_options(p, video=True)
    p.add_argument("--out-dir", required=True, help="output directory (sheet.png, cells/, results.jsonl)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="redo cells, and replace a sheet, made with other settings (default: stop)",
    )
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
    _settings_options(p, skip=("n_max", "tar_guidance", "seed", "method"))
    p.set_defaults(run=_sweep)
    p = sub.add_parser("models", help="the supported model families, how they differ and their default settings")
    p.set_defaults(run=_models)
    return parser


def _models(args) -> int:
    from .models._families import describe

    print(describe())
    return 0


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"flowedit: warning: {_bounded(str(message))}", file=sys.stderr)


def _bounded(text: str) -> str:
    lines = text.splitlines()
    text = lines[0] if lines else ""
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def main(argv: list[str] | None = None) -> int:
    # transformers and diffusers log warnings meant for developers (optional image processors, deprecated
    # arguments, prompts cut to the text encoder's length, one line per call): keep the console readable.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    try:
        args = _parser().parse_args(argv)
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning  # one line each, no source excerpt
            warnings.simplefilter("ignore", FutureWarning)  # deprecations inside libraries: not the user's to fix
            return args.run(args)
    except KeyboardInterrupt:
        print("flowedit: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, ImportError) as err:
        print(f"flowedit: error: {_bounded(str(err)) or type(err).__name__}", file=sys.stderr)
        return 2
    except (RuntimeError, FloatingPointError) as err:  # e.g. CUDA out of memory, NaN from the model
        print(f"flowedit: error: {type(err).__name__}: {_bounded(str(err))}", file=sys.stderr)
        return 1
