"""Masks for local edits: a picture whose white marks where to edit, on the image and on the latent grid.

A pixel mask ``M`` (values in [0, 1], 1 = edit) becomes a latent mask ``m`` by area averaging onto the latent
grid (a latent cell is 0 only if every pixel it covers is 0), packed like the latents for packed families;
:func:`flowedit.flowedit` then scales each step's update by ``m``. After decoding, the result is composited
over the source with ``M`` (as diffusers' inpainting overlay), so pixels where ``M = 0`` are the input's own.

A mask is read by the luminance of its colour; its alpha channel is IGNORED (:func:`~flowedit.models._images.to_gray`),
whether it comes as a path, a PIL image or an array: a transparent pixel counts by the colour it holds.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from ._arguments import as_picture, check_feather
from ._images import ImageLimits, decode_frame, read_image_file, to_gray
from ._latents import PackedLayout


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


def latent_mask(mask: Any, x: torch.Tensor, layout: Any) -> torch.Tensor:
    """A mode-"L" pixel mask as a tensor broadcastable to the latents ``x``: ``(1, 1, h, w)`` for latents
    ``(B, C, h, w)``, or ``(1, L, 4C)`` for packed latents of ``layout`` (a :class:`PackedLayout`)."""
    pixels = torch.from_numpy(np.asarray(mask, dtype=np.float32) / 255.0)[None, None]  # (1, 1, H, W)
    if isinstance(layout, PackedLayout):
        small = torch.nn.functional.interpolate(pixels, size=(layout.height, layout.width), mode="area")
        return layout.pack(small.expand(1, layout.channels, -1, -1)).to(x)
    return torch.nn.functional.interpolate(pixels, size=tuple(x.shape[-2:]), mode="area").to(x)
