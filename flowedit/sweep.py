"""``flowedit sweep``: one image edited over a grid of ``n_max`` x target guidance (x seeds), on one contact sheet.

"My edit has no effect" and "it changed too much" have one answer: move ``n_max`` (where the edit starts) and
the target guidance. A sweep edits one image at every combination through the one edit path
(:meth:`~flowedit.models.Editor.render`), writes each cell as a PNG that carries its record (and a line in
``results.jsonl``), and draws them on a labelled contact sheet: the source in the top-left corner, a row per
``n_max``, a column per guidance (and seed), each cell captioned with its settings and its latent MSE. A
re-run skips every cell whose PNG was made by the same request, so an interrupted sweep resumes.

A video model (Wan) sweeps a video the same way: each cell is an MP4 carrying its record, and the sheet shows the
middle frame of the source and of every cell.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ._records import append_record, embedded_record, request_id, save_image
from .models._video import read_video, save_video

__all__ = ["SweepCell", "contact_sheet", "sweep"]

SHEET = "sheet.png"
RESULTS = "results.jsonl"
MAX_CELLS = 64  # one sheet, one run: a larger grid is several sweeps


@dataclass(frozen=True)
class SweepCell:
    """One edit of the grid: its settings, where its PNG is, its latent MSE and whether this run made it."""

    n_max: int
    tar_guidance: float
    seed: int
    path: Path
    latent_mse: float
    made: bool


def _cell_name(n_max: int, guidance: float, seed: int, suffix: str = ".png") -> str:
    return f"n_max-{n_max}_guidance-{guidance:g}_seed-{seed}{suffix}"


def sweep(
    editor,
    image,
    source_prompt: str,
    target_prompt: str,
    out_dir: str | Path,
    n_max: list[int],
    tar_guidance: list[float],
    seeds: list[int] | None = None,
    *,
    mask=None,
    feather: float = 0.0,
    progress: bool = True,
    title: str | None = None,
    **settings: Any,
) -> list[SweepCell]:
    """Edit ``image`` (PIL image or path; for a video model a video as :meth:`~flowedit.models.Editor.load_video`
    reads it) at every ``(n_max, tar_guidance, seed)``; write each cell (PNG, or MP4) and the sheet.

    A cell's request is the model family and dtype, the SHA-256 of the image (and mask) pixels, the prompts and
    every setting (``settings`` override the family's defaults for the settings not swept). ``title`` heads the
    sheet (default: the family and the prompts). Returns the cells in row-major order (rows: ``n_max``).
    """
    from tqdm.auto import tqdm

    if editor.video and mask is not None:
        raise ValueError(f"a mask applies to image families; {editor.family.name} edits videos")
    seeds = [editor.defaults.seed] if seeds is None else list(seeds)
    grid = list(itertools.product(n_max, tar_guidance, seeds))
    if not grid or len(grid) > MAX_CELLS:
        raise ValueError(f"a sweep has 1 to {MAX_CELLS} cells; {len(n_max)} x {len(tar_guidance)} x {len(seeds)} given")
    checked = [editor.settings(**settings, n_max=n, tar_guidance=g, seed=s) for n, g, s in grid]  # all fail first
    out = Path(out_dir)
    (out / "cells").mkdir(parents=True, exist_ok=True)
    picture = editor.load_video(image) if editor.video else editor.load_image(image)
    frames = picture.frames if editor.video else [picture]
    common = {"family": editor.family.name, "dtype": str(editor.adapter.dtype).removeprefix("torch.")}
    common |= {"image_sha256": _fingerprint(*frames), "source_prompt": source_prompt, "target_prompt": target_prompt}
    if mask is not None:
        mask = editor.load_mask(mask, picture, feather)  # checked before the first edit
        common |= {"mask_sha256": _fingerprint(mask), "feather": feather}
    cells = []
    for (n, g, s), cell_settings in tqdm(list(zip(grid, checked, strict=True)), desc="sweep", disable=not progress):
        path = out / "cells" / _cell_name(n, g, s, ".mp4" if editor.video else ".png")
        request = {**common, **asdict(cell_settings)}
        old = embedded_record(path)
        if old is not None and old.get("request_id") == request_id(request):
            cells.append(SweepCell(n, g, s, path, float(old["latent_mse"]), made=False))
            continue
        local = {} if mask is None else {"mask": mask}  # already feathered
        edited, result = editor.render(picture, source_prompt, target_prompt, cell_settings, **local)
        record = {"request_id": request_id(request), **request, **result.outcome}
        if editor.video:
            save_video(edited, path, picture.fps, record)
        else:
            save_image(edited, path, record)
        append_record(out / RESULTS, {**record, "output": str(path), "status": "ok"})
        cells.append(SweepCell(n, g, s, path, result.latent_mse, made=True))
    title = f"{editor.family.title}: '{source_prompt}' -> '{target_prompt}'" if title is None else title
    if editor.video:
        title += f" (middle frame of {len(frames)})"
    source = frames[len(frames) // 2]
    sheet = contact_sheet(source, cells, n_max, tar_guidance, seeds, steps=checked[0].steps, title=title)
    save_image(sheet, out / SHEET, {**common, "cells": [cell.path.name for cell in cells]})
    return cells


def _fingerprint(*pictures) -> str:
    """SHA-256 of PIL images' modes, sizes and pixels (one image, or a video's frames in order)."""
    digest = hashlib.sha256()
    for picture in pictures:
        digest.update(f"{picture.mode} {picture.size[0]}x{picture.size[1]}\n".encode() + picture.tobytes())
    return digest.hexdigest()


def contact_sheet(source, cells: list[SweepCell], n_max, tar_guidance, seeds, steps: int, title: str = ""):
    """The cells on one labelled PIL image: the source top-left, a row per ``n_max``, a column per guidance x seed;
    each cell captioned ``n_max / T``, target guidance, seed and latent MSE; ``title`` over the column heads."""
    from PIL import Image, ImageDraw

    width, height = source.size
    scale = max(1, -(-160 // width))  # small images are enlarged (nearest neighbour) so captions fit
    w, h = width * scale, height * scale
    caption = 30  # two lines of PIL's default font under each picture
    columns = [(g, s) for g in tar_guidance for s in seeds]
    sheet = Image.new("RGB", ((len(columns) + 1) * w, (len(n_max) + 1) * (h + caption)), "white")
    draw = ImageDraw.Draw(sheet)

    def place(picture, row: int, column: int, lines: list[str]) -> None:
        x, y = column * w, row * (h + caption)
        sheet.paste(picture.resize((w, h), Image.Resampling.NEAREST), (x, y))
        for k, line in enumerate(lines):
            draw.text((x + 3, y + h + 2 + 13 * k), line, fill="black")

    place(source, 0, 0, ["source", f"T = {steps} steps"])
    draw.text((w + 3, 3), _wrapped(draw, title, sheet.width - w - 6), fill="black")
    for c, (g, s) in enumerate(columns, start=1):
        draw.text((c * w + 3, h // 2), f"target guidance {g:g}\nseed {s}", fill="black")
    for r, n in enumerate(n_max, start=1):
        draw.text((3, r * (h + caption) + h // 2), f"n_max {n} of {steps}", fill="black")
    by_key = {(cell.n_max, cell.tar_guidance, cell.seed): cell for cell in cells}
    for (r, n), (c, (g, s)) in itertools.product(enumerate(n_max, start=1), enumerate(columns, start=1)):
        cell = by_key[n, g, s]
        with _picture(cell.path) as picture:
            place(
                picture.convert("RGB"),
                r,
                c,
                [f"n_max {n}, guidance {g:g}, seed {s}", f"latent MSE {cell.latent_mse:.4f}"],
            )
    return sheet


def _picture(path: Path):
    """A cell's picture: the PNG, or an MP4's middle frame (read back within the default limits)."""
    from PIL import Image

    if path.suffix == ".mp4":
        frames = read_video(path).frames
        return frames[len(frames) // 2]
    return Image.open(path)


def _wrapped(draw, text: str, width: float) -> str:
    """``text`` broken into lines at spaces so each fits ``width`` pixels in the draw's font."""
    lines: list[str] = []
    for word in text.split(" "):
        if lines and draw.textlength(f"{lines[-1]} {word}") <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return "\n".join(lines)
