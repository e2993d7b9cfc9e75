"""Masks on the latent grid: a pixel mask (:mod:`flowedit.media.masks`) as the latents' shape.

A pixel mask ``M`` (values in [0, 1], 1 = edit) becomes a latent mask ``m`` by area averaging onto the latent
grid (a latent cell is 0 only if every pixel it covers is 0), packed like the latents for packed families;
:func:`flowedit.flowedit` then scales each step's update by ``m``. After decoding, the result is composited
over the source with ``M`` (as diffusers' inpainting overlay), so pixels where ``M = 0`` are the input's own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ._latents import PackedLayout

__all__ = ["latent_mask"]


def latent_mask(mask: Any, x: torch.Tensor, layout: Any) -> torch.Tensor:
    """A mode-"L" pixel mask as a tensor broadcastable to the latents ``x``: ``(1, 1, h, w)`` for latents
    ``(B, C, h, w)``, or ``(1, L, 4C)`` for packed latents of ``layout`` (a :class:`PackedLayout`)."""
    pixels = torch.from_numpy(np.asarray(mask, dtype=np.float32) / 255.0)[None, None]  # (1, 1, H, W)
    if isinstance(layout, PackedLayout):
        small = torch.nn.functional.interpolate(pixels, size=(layout.height, layout.width), mode="area")
        return layout.pack(small.expand(1, layout.channels, -1, -1)).to(x)
    return torch.nn.functional.interpolate(pixels, size=tuple(x.shape[-2:]), mode="area").to(x)
