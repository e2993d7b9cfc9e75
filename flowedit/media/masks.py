"""Masks of local edits on the image: a picture whose white marks where to edit, read bounded, as mode "L".

A pixel mask ``M`` (values in [0, 1], 1 = edit) is read by the luminance of its colour; its alpha channel is
IGNORED (:func:`~flowedit.media.images.to_gray`),
whether it comes as a path, a PIL image or an array: a transparent pixel counts by the colour it holds.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

from .._text import short
from .images import ImageLimits, decode_frame, read_image_file
from .modes import as_picture, to_gray

__all__ = ["MAX_FEATHER", "check_feather", "decode_mask", "open_mask", "pixel_mask"]

MAX_FEATHER = 4096  # pixels: the side of the largest image the default limits take (4096 x 4096)


def check_feather(value: Any, name: str = "feather") -> float:
    """``value`` as a feather radius in pixels (a finite number in [0, :data:`MAX_FEATHER`]), else ``ValueError``
    naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (0 <= value and math.isfinite(value)):
        raise ValueError(f"{name} must be a radius in pixels >= 0, got {short(value)}")
    if value > MAX_FEATHER:
        raise ValueError(
            f"{name} {value:g} is over {MAX_FEATHER} pixels, the widest edge a mask of the largest image has"
        )
    return float(value)


def decode_mask(data: bytes, limits: ImageLimits | None = None, name: str = "mask") -> Any:
    """A mask file's bytes as a mode-"L" image, decoded within ``limits`` (default: :class:`ImageLimits`'s) as a
    source image is, alpha ignored."""
    return to_gray(decode_frame(data, limits or ImageLimits(), name))


def open_mask(path, limits: ImageLimits | None = None) -> Any:
    """The mask image at ``path`` (read within ``limits``) as a mode-"L" image, alpha ignored; messages name it."""
    limits = limits or ImageLimits()
    return decode_mask(read_image_file(path, limits, "mask"), limits, str(path))


def pixel_mask(mask: Any, size: tuple[int, int], feather: float = 0.0) -> Any:
    """``mask`` (a PIL image of any mode, or a uint8 array (H, W), (H, W, 3) or (H, W, 4): the luminance of its
    colour counts, alpha is ignored) as a mode-"L" mask of ``size`` (width, height): resized with a warning if it
    differs, blurred by a Gaussian of radius ``feather`` pixels. ``ValueError`` if ``feather`` is negative or not
    finite, or if the mask is all black (nothing to edit)."""
    from PIL import Image, ImageFilter

    feather = check_feather(feather)
    gray = to_gray(as_picture(mask, "mask"))
    if gray.size != tuple(size):
        warnings.warn(
            f"mask of size {gray.size[0]}x{gray.size[1]} resized to the image's {size[0]}x{size[1]}", stacklevel=3
        )
        gray = gray.resize(tuple(size), Image.Resampling.BILINEAR)
    if feather > 0:
        gray = gray.filter(ImageFilter.GaussianBlur(feather))
    if gray.getextrema()[1] == 0:
        raise ValueError("the mask is all black, so nothing would be edited; paint the region to edit white")
    return gray
