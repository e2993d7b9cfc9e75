"""The inputs of ``flowedit edit`` and ``flowedit sweep``: the source and its options, the mask, the output path."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path


def _check_output(out: Path, image: Path, suffixes: tuple[str, ...] = ()) -> None:
    from .models._images import IMAGE_SUFFIXES

    kind = "video" if suffixes else "image"
    suffixes = suffixes or IMAGE_SUFFIXES
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give a file name such as {out / ('edit' + suffixes[0])}")
    if out.suffix.lower() not in suffixes:
        raise ValueError(
            f"--out {out}: not {'a' if kind == 'video' else 'an'} {kind} file name; end it with {', '.join(suffixes)}"
        )
    if os.path.realpath(out) == os.path.realpath(image):
        raise ValueError(f"--out {out} is the source {kind}; write the edit to another file")
    folder = out.parent
    if not folder.is_dir():
        raise ValueError(f"--out {out}: the folder {folder} does not exist; create it first")
    try:  # can a file be made there? (found now, not after the edit)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise ValueError(f"--out {out}: cannot write in {folder} ({err.strerror})") from None


def _image_options(p: argparse.ArgumentParser, video: bool = False) -> None:
    """The source image (or ``video``), the two prompts and the optional mask of one image's edits (edit, sweep)."""
    if video:
        source = p.add_mutually_exclusive_group(required=True)
        source.add_argument("--image", help="source image (image families)")
        source.add_argument(
            "--video",
            help="source video (video families): a GIF, an MP4 (or MOV, MKV, WebM, AVI) or a folder of frames",
        )
    else:
        p.add_argument("--image", required=True, help="source image")
    p.add_argument("--source", required=True, help="prompt describing the source image (or video)")
    p.add_argument("--target", required=True, help="prompt describing the edit")
    p.add_argument(
        "--mask",
        help="local edit: an image whose white marks where to edit (resized to the image if needed); black pixels "
        "keep the input's exactly (flowedit only)",
    )
    p.add_argument("--feather", type=float, default=0.0, help="soften the mask's edge by this many pixels (default: 0)")


def _read_mask(args, limits):
    """The ``--mask`` image as a mode-"L" image (alpha ignored), read within the limits and checked (not all black)
    with ``--feather`` (finite, >= 0, and only with a mask) before any model loads; None without one."""
    from .models._arguments import check_feather
    from .models._masks import open_mask, pixel_mask

    feather = check_feather(args.feather, "--feather")
    if args.mask is None:
        if feather:
            raise ValueError(f"--feather {feather:g} softens a mask's edge, and no --mask is given; give --mask too")
        return None
    if getattr(args, "method", None) not in (None, "flowedit"):
        raise ValueError(f"--mask applies to method flowedit only, not {args.method}")
    mask = open_mask(Path(args.mask), limits)
    pixel_mask(mask, mask.size)
    return mask
