"""The commands: ``edit`` (one request), ``run`` (a batch file's), ``sweep`` (a grid's) and ``models``; every edit
goes through :func:`flowedit.runs.edit_to_file`, and everything but the model is checked before it loads."""

from __future__ import annotations

import argparse
from pathlib import Path

from .context import Context, check_output, check_prompts, mask_of

__all__ = ["edit", "models", "run", "sweep"]


def edit(args: argparse.Namespace) -> int:
    """``flowedit edit``: one image or video."""
    from ..media.images import IMAGE_SUFFIXES
    from ..media.source import read_source
    from ..media.video import VIDEO_SUFFIXES, stored_fps
    from ..models._settings import check_local_edit
    from ..runs.request import EditRequest, edit_to_file

    context = Context.of(args)
    video = args.video is not None
    media = "video" if video else "image"
    context.check_media(video)
    given, out = Path(args.video if video else args.image), Path(args.out)
    check_output(out, given, VIDEO_SUFFIXES if video else IMAGE_SUFFIXES)
    check_prompts(args)
    defaults = context.defaults
    settings = None if defaults is None else defaults.replace(**context.options, seed=args.seed)
    source = read_source(given, media, context.limits)
    if video:
        stored_fps(out, source.fps)  # a rate the output cannot hold is refused now, not after the edit
    mask = mask_of(args, context.limits)
    method = settings.method if settings is not None else args.method or "flowedit"
    check_local_edit(media, method, mask is not None, args.feather)
    editor = context.load(video)
    if settings is None or editor.defaults != defaults:
        settings = editor.defaults.replace(**context.options, seed=args.seed)
    request = EditRequest.of(
        context.model, context.dtype_name, source, args.source, args.target, settings, mask, args.feather
    )
    record, result = edit_to_file(editor, request, source, out, mask=mask)
    size = source.picture.size
    what = f"{record['frames']} frames of {size[0]}x{size[1]} at {record['fps']:g} fps; " if video else ""
    print(
        f"wrote {out} ({what}{settings.method}, {settings.steps} steps, n_max {settings.n_max}, seed {settings.seed}, "
        f"{result.model_calls} model calls, {result.seconds:.1f} s, latent MSE {result.latent_mse:.4f})"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    """``flowedit run``: every entry of a batch file, this process's share under a launcher."""
    from .._text import printable
    from ..models._settings import MAX_SEED
    from ..runs import load_jobs, process_shard, run_jobs
    from .launch import failures_of_all_processes, join_process_group

    context = Context.of(args)  # the run's own options first: they fail at once, before a large batch file is read
    run_seed = 0 if args.seed is None else args.seed
    if not 0 <= run_seed <= MAX_SEED:
        raise ValueError(f"--seed must lie in [0, {MAX_SEED}], got {run_seed}")
    jobs = load_jobs(args.edits, args.out_dir)
    media = context.media
    wrong = next((job for job in jobs if media is not None and job.media != media), None)
    if wrong is not None:
        key = "input_img" if media == "image" else "input_video"
        raise ValueError(f"{wrong.where}: {args.model} edits {media}s; give the entry's input as {key}")
    rank, world, _ = process_shard()
    if world > 1:
        join_process_group()
    summary = run_jobs(
        jobs,
        context.load,
        args.out_dir,
        run_seed,
        context.options,
        model=context.model,
        dtype=context.dtype_name,
        defaults=context.defaults,
        overwrite=args.overwrite,
        limits=context.limits,
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
        failed = failures_of_all_processes(failed)
    return 1 if failed else 0


def sweep(args: argparse.Namespace) -> int:
    """``flowedit sweep``: one source over a grid of ``n_max`` x target guidance (x seeds), on a contact sheet."""
    from ..runs.sweeps import SHEET, check_grid, run_sweep

    context = Context.of(args)
    check_grid(args.n_max_values, args.tar_guidance_values, args.seeds)  # from the lists' lengths, before any work
    video = args.video is not None
    context.check_media(video)
    check_prompts(args)
    mask = mask_of(args, context.limits)
    others = {k: v for k, v in context.options.items() if k not in ("n_max", "tar_guidance")}
    cells = run_sweep(
        lambda: context.load(video),
        args.video if video else args.image,
        args.source,
        args.target,
        args.out_dir,
        args.n_max_values,
        args.tar_guidance_values,
        args.seeds,
        model=context.model,
        dtype=context.dtype_name,
        media=context.media,
        defaults=context.defaults,
        limits=context.limits,
        options=others,
        mask=mask,
        feather=args.feather,
        overwrite=args.overwrite,
        title=f"{args.model}: '{args.source}' -> '{args.target}'",
    )
    made = sum(cell.made for cell in cells)
    print(f"wrote {Path(args.out_dir) / SHEET}: {len(cells)} cells, {made} edited now, {len(cells) - made} kept")
    return 0


def models(args: argparse.Namespace) -> int:
    """``flowedit models``: the families, how they differ, their defaults."""
    from ..models._families import describe

    print(describe())
    return 0
