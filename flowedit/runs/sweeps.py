"""``flowedit sweep``: one image edited over a grid of ``n_max`` x target guidance (x seeds), on one contact sheet.

"My edit has no effect" and "it changed too much" have one answer: move ``n_max`` (where the edit starts) and
the target guidance. A sweep edits one image at every combination as the cells of a batch run
(:func:`flowedit.runs.run_jobs`, with its safeguards: outputs confined to the out-dir, no write through a link,
one claim per cell, resume only the same request, ``--overwrite`` otherwise), writes each cell as a PNG that
carries its record (and a line in ``results.jsonl``), and draws them on a labelled contact sheet: the source in the
top-left corner, a row per ``n_max``, a column per guidance (and seed), each cell captioned with its settings and
its latent MSE. A re-run skips every cell whose PNG was made by the same request, so an interrupted sweep resumes.

A video model (Wan) sweeps a video the same way: each cell is an MP4 carrying its record, and the sheet shows the
middle frame of the source and of every cell.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .._files import temporaries_of
from ..media.images import ImageLimits
from ..media.source import embedded_record, read_mask, read_source, save_image
from ..models._arguments import check_prompt
from ..models._settings import check_local_edit
from .batch import prepare_out_dir, run_jobs
from .jobs import EditJob
from .locks import claim
from .request import request_id

__all__ = ["MAX_CELLS", "SweepCell", "cell_name", "check_grid", "contact_sheet", "run_sweep", "sweep"]

SHEET = "sheet.png"
CELLS = "cells"
MAX_CELLS = 64  # one sheet, one run: a larger grid is several sweeps


@dataclass(frozen=True)
class SweepCell:
    """One edit of the grid: its settings, where its file is, its latent MSE and whether this run made it."""

    n_max: int
    tar_guidance: float
    seed: int
    path: Path
    latent_mse: float
    made: bool


def cell_name(n_max: int, guidance: float, seed: int, suffix: str = ".png") -> str:
    """A cell's file name; the guidance is written exactly (``repr``), so two values never share a name."""
    return f"n_max-{n_max}_guidance-{float(guidance)!r}_seed-{seed}{suffix}"


def check_grid(n_max_values: Sequence, tar_guidance_values: Sequence, seeds: Sequence | None) -> None:
    """Refuse a grid that is not 1 to :data:`MAX_CELLS` cells of distinct values, from the lists' lengths alone
    (before any work that grows with their product)."""
    lists = {"n_max": n_max_values, "tar_guidance": tar_guidance_values, "seeds": [0] if seeds is None else seeds}
    for name, values in lists.items():
        if isinstance(values, str | bytes) or not (isinstance(values, Sequence) or _is_vector(values)):
            raise ValueError(f"{name} must be a list of values, got {type(values).__name__}")
    count = math.prod(len(values) for values in lists.values())
    if not 1 <= count <= MAX_CELLS:
        sizes = " x ".join(str(len(values)) for values in lists.values())
        raise ValueError(f"a sweep has 1 to {MAX_CELLS} cells; {sizes} = {count} given")
    for name, values in lists.items():
        seen = set()
        for value in values:
            if value in seen:
                raise ValueError(f"{name} lists {value!r} twice; give each value once")
            seen.add(value)


def _is_vector(values: Any) -> bool:
    """A one-dimensional numpy array or torch tensor (a list of values in all but type)."""
    return type(values).__module__.split(".")[0] in ("numpy", "torch") and getattr(values, "ndim", None) == 1


def sweep(
    editor,
    image,
    source_prompt: str,
    target_prompt: str,
    out_dir: str | Path,
    n_max_values: Sequence[int],
    tar_guidance_values: Sequence[float],
    seeds: Sequence[int] | None = None,
    *,
    mask=None,
    feather: float = 0.0,
    overwrite: bool = False,
    progress: bool = True,
    title: str | None = None,
    **settings: Any,
) -> list[SweepCell]:
    """Edit ``image`` (PIL image or path; for a video model a video as :meth:`~flowedit.models.Editor.load_video`
    reads it) at every ``(n_max, tar_guidance, seed)``; write each cell (PNG, or MP4) and the sheet.

    Each cell is one edit request (:class:`flowedit.runs.EditRequest`: the model, dtype, source and mask
    fingerprints, prompts and every setting; ``settings`` override the family's defaults for the settings not
    swept) written by the batch path: confined to ``out_dir``, never through a link, claimed by one process (a
    concurrent sweep of the same request waits and reuses it), resumed only if its record is this request's.
    Cells or a sheet made with other settings stop the sweep before any edit unless ``overwrite``. ``title`` heads
    the sheet (default: the model and the prompts). Returns the cells in row-major order (rows: ``n_max``).
    """
    return run_sweep(
        lambda: editor,
        image,
        source_prompt,
        target_prompt,
        out_dir,
        n_max_values,
        tar_guidance_values,
        seeds,
        model=editor.model,
        dtype=str(editor.adapter.dtype).removeprefix("torch."),
        media=editor.family.media,
        defaults=editor.defaults,
        limits=editor.limits,
        options=settings,
        mask=mask,
        feather=feather,
        overwrite=overwrite,
        progress=progress,
        title=title,
    )


def run_sweep(
    load_editor: Callable[[], Any],
    image,
    source_prompt: str,
    target_prompt: str,
    out_dir: str | Path,
    n_max_values: Sequence[int],
    tar_guidance_values: Sequence[float],
    seeds: Sequence[int] | None,
    *,
    model: str,
    dtype: str,
    media: str | None,
    defaults,
    limits,
    options: dict[str, Any],
    mask=None,
    feather: float = 0.0,
    overwrite: bool = False,
    progress: bool = True,
    title: str | None = None,
) -> list[SweepCell]:
    """:func:`sweep` with the model loaded only when there is work (``load_editor``); every check that needs no
    model (grid, settings when the family's ``defaults`` are known, source, mask, out-dir, earlier cells and sheet)
    runs first. ``media`` and ``defaults`` may be None when only loading the model tells them."""
    check_grid(n_max_values, tar_guidance_values, seeds)
    n_max_values, tar_guidance_values = list(n_max_values), list(tar_guidance_values)
    check_prompt(source_prompt, "source_prompt")
    check_prompt(target_prompt, "target_prompt")
    options = {k: v for k, v in options.items() if v is not None}
    swept = {"n_max": "n_max_values", "tar_guidance": "tar_guidance_values", "seed": "seeds"}
    clash = sorted(set(options) & set(swept))
    if clash:
        raise ValueError(f"{clash[0]} is swept: give its values as {swept[clash[0]]}=[...], not {clash[0]}=...")
    if out_dir is None or not str(out_dir):
        raise ValueError(f"out_dir must name a folder for the cells and the sheet, got {out_dir!r}")
    editor = None
    if defaults is None or media is None:
        editor = load_editor()
        defaults, media = editor.defaults, editor.family.media
    seeds = [defaults.seed] if seeds is None else list(seeds)
    grid = list(itertools.product(n_max_values, tar_guidance_values, seeds))
    checked = [defaults.replace(**options, n_max=n, tar_guidance=g, seed=s) for n, g, s in grid]  # all fail first
    source = read_source(image, media, limits)
    mask_source = None if mask is None else read_mask(mask, limits)
    feather = check_local_edit(media, checked[0].method, mask is not None, feather)
    out = Path(out_dir)
    suffix = ".mp4" if media == "video" else ".png"
    jobs = [
        EditJob(
            source,
            source_prompt,
            target_prompt,
            code=cell_name(settings.n_max, settings.tar_guidance, settings.seed, ""),
            output=out / CELLS / cell_name(settings.n_max, settings.tar_guidance, settings.seed, suffix),
            overrides={"n_max": settings.n_max, "tar_guidance": settings.tar_guidance},
            where=f"cell n_max {settings.n_max}, guidance {settings.tar_guidance!r}, seed {settings.seed}",
            mask=mask_source,
            feather=feather,
            video=media == "video",
            seed=settings.seed,
        )
        for settings in checked
    ]
    written = {os.path.realpath(path) for path in [out / SHEET, *(job.output for job in jobs)]}
    for given in (source, mask_source):
        if given is not None and given.path is not None and os.path.realpath(given.path) in written:
            raise ValueError(
                f"the sweep would overwrite its input {given} in --out-dir {out}; choose another --out-dir"
            )
    # The sheet's request: everything its cells share (the settings as resolved, not as spelled) and the grid.
    shared = {k: v for k, v in asdict(checked[0]).items() if k not in swept}
    plan = {"model": model, "dtype": dtype, "media": media, "source_sha256": source.sha256}
    plan |= {"source_prompt": source_prompt, "target_prompt": target_prompt, "settings": shared}
    plan |= {"mask_sha256": mask_source and mask_source.sha256, "feather": feather}
    plan |= {"n_max": [s.n_max for s in checked[:: len(seeds) * len(tar_guidance_values)]]}
    plan |= {"tar_guidance": [s.tar_guidance for s in checked[: len(seeds) * len(tar_guidance_values) : len(seeds)]]}
    plan |= {"seeds": [s.seed for s in checked[: len(seeds)]]}
    sheet_record = {"sweep_id": request_id(plan), **plan, "cells": [job.output.name for job in jobs]}
    frames = source.frames
    if title is None:
        title = f"{model}: '{source_prompt}' -> '{target_prompt}'"
    if media == "video":
        title += f" (middle frame of {len(frames)})"
    prepare_out_dir(out, jobs)
    with _one_sweep_at_a_time(out):  # its check of the sheet, its cells and its sheet, as one
        _check_sheet(out / SHEET, sheet_record["sweep_id"], overwrite)
        shared_run = {"model": model, "dtype": dtype, "defaults": defaults, "overwrite": overwrite, "limits": limits}
        summary = run_jobs(
            jobs, load_editor, out, 0, options, **shared_run, progress=progress, editor=editor, wait=True, shard=False
        )
        if summary.failed:
            first = summary.failed[0]
            raise RuntimeError(
                f"{len(summary.failed)} of {len(jobs)} cells failed ({first['where']}: {first['error']}); "
                f"see {out / 'results.jsonl'}"
            )
        cells = [_cell(settings, job.output, summary) for settings, job in zip(checked, jobs, strict=True)]
        own = dataclasses.replace(limits, max_bytes=max(limits.max_bytes, ImageLimits().max_bytes))  # our outputs
        middle = frames[len(frames) // 2]
        grid = (n_max_values, tar_guidance_values, seeds)
        sheet = contact_sheet(middle, cells, *grid, steps=checked[0].steps, title=title, limits=own)
        for stale in temporaries_of(out / SHEET):  # a killed sweep's half-written sheet (the lock is ours)
            stale.unlink(missing_ok=True)
        save_image(sheet, out / SHEET, sheet_record)
    return cells


def _cell(settings, output: Path, summary) -> SweepCell:
    """A finished cell: its settings, its file, the latent MSE its record states, whether this run made it."""
    record = embedded_record(output) or {}
    latent_mse = float(record.get("latent_mse", math.nan))
    made = str(output) in summary.edited
    return SweepCell(settings.n_max, settings.tar_guidance, settings.seed, output, latent_mse, made)


@contextlib.contextmanager
def _one_sweep_at_a_time(out: Path) -> Iterator[None]:
    """Hold the out-dir's sweep lock (the sheet's claim), waiting, with a warning, for a sweep that holds it."""
    with claim(out, out / SHEET) as held:
        if held:
            yield
            return
    warnings.warn(f"another sweep is writing {out}; waiting for it to finish", stacklevel=3)
    with claim(out, out / SHEET, wait=True):
        yield


def _check_sheet(sheet: Path, sweep_id: str, overwrite: bool) -> None:
    """Refuse to replace a sheet that is not this sweep's (another grid or request, not flowedit's, a link)."""
    if os.path.isdir(sheet) and not os.path.islink(sheet):
        raise ValueError(f"{sheet} is a folder where the sweep's sheet goes; remove it or choose another --out-dir")
    if overwrite or not os.path.lexists(sheet):
        return
    record = None if os.path.islink(sheet) else embedded_record(sheet)
    if record is not None and record.get("sweep_id") == sweep_id:
        return
    why = (
        "a symbolic link"
        if os.path.islink(sheet)
        else "not a flowedit sweep's"
        if record is None
        else "another sweep's"
    )
    raise ValueError(
        f"{sheet} is {why}: pass --overwrite to replace it and redo cells made with other settings, "
        "or choose a fresh --out-dir"
    )


def contact_sheet(
    source, cells: list[SweepCell], n_max_values, tar_guidance_values, seeds, steps: int, title: str = "", limits=None
):
    """The cells on one labelled PIL image: the source top-left, a row per ``n_max``, a column per guidance x seed;
    each cell captioned ``n_max / T``, target guidance, seed and latent MSE; ``title`` over the column heads. Cells are
    read back within ``limits`` (:class:`~flowedit.models.ImageLimits`; default: the default limits)."""
    from PIL import Image, ImageDraw

    width, height = source.size
    scale = max(1, -(-160 // width))  # small images are enlarged (nearest neighbour) so captions fit
    w, h = width * scale, height * scale
    caption = 30  # two lines of PIL's default font under each picture
    columns = [(g, s) for g in tar_guidance_values for s in seeds]
    sheet = Image.new("RGB", ((len(columns) + 1) * w, (len(n_max_values) + 1) * (h + caption)), "white")
    draw = ImageDraw.Draw(sheet)

    def place(picture, row: int, column: int, lines: list[str]) -> None:
        x, y = column * w, row * (h + caption)
        sheet.paste(picture.resize((w, h), Image.Resampling.NEAREST), (x, y))
        for k, line in enumerate(lines):
            draw.text((x + 3, y + h + 2 + 13 * k), line, fill="black")

    place(source, 0, 0, ["source", f"T = {steps} steps"])
    draw.text((w + 3, 3), _wrapped(draw, title, sheet.width - w - 6), fill="black")
    for c, (g, s) in enumerate(columns, start=1):
        draw.text((c * w + 3, h // 2), f"target guidance {float(g)!r}\nseed {s}", fill="black")
    for r, n in enumerate(n_max_values, start=1):
        draw.text((3, r * (h + caption) + h // 2), f"n_max {n} of {steps}", fill="black")
    by_key = {(cell.n_max, cell.tar_guidance, cell.seed): cell for cell in cells}
    for (r, n), (c, (g, s)) in itertools.product(enumerate(n_max_values, start=1), enumerate(columns, start=1)):
        cell = by_key[n, g, s]
        media = "video" if cell.path.suffix.lower() == ".mp4" else "image"
        frames = read_source(cell.path, media, limits or ImageLimits()).frames
        lines = [f"n_max {n}, guidance {float(g)!r}, seed {s}", f"latent MSE {cell.latent_mse:.4f}"]
        place(frames[len(frames) // 2], r, c, lines)
    return sheet


def _wrapped(draw, text: str, width: float) -> str:
    """``text`` broken into lines at spaces so each fits ``width`` pixels in the draw's font."""
    lines: list[str] = []
    for word in text.split(" "):
        if lines and draw.textlength(f"{lines[-1]} {word}") <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return "\n".join(lines)
