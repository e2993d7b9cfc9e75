"""Pieces shared by the model adapters: conditioning batches, finite checks, image conversion."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

_FP16_HINT = "this usually means float16 overflow; load the model with dtype=torch.bfloat16 (or torch.float32) instead"


def check_finite(x: torch.Tensor, what: str) -> torch.Tensor:
    """Raise ``FloatingPointError`` naming the likely cause (fp16) unless every value of ``x`` is finite."""
    if not torch.isfinite(x).all():
        raise FloatingPointError(f"{what} contains NaN or inf ({x.dtype}); {_FP16_HINT}")
    return x


class NonFiniteWatch:
    """Collects "was anything non-finite" over many model outputs without a device sync per step.

    ``observe`` keeps a device-side flag; ``check`` (once, at the end of an edit) raises
    ``FloatingPointError`` naming the likely cause if any observed output had NaN or inf.
    """

    def __init__(self, what: str):
        self.what, self.flag = what, None

    def observe(self, x: torch.Tensor) -> None:
        bad = ~torch.isfinite(x).all()
        self.flag = bad if self.flag is None else self.flag | bad

    def check(self) -> None:
        flag, self.flag = self.flag, None
        if flag is not None and bool(flag):
            raise FloatingPointError(f"{self.what} contained NaN or inf during the edit; {_FP16_HINT}")


@dataclass(frozen=True)
class Branch:
    """One prompt's conditioning, ready to be stacked into a batch.

    ``embeds`` (rows, L, D) and ``pooled`` (rows, P) hold ``[uncond, cond]`` rows when classifier-free
    guidance is on (``guidance > 1``) and ``[cond]`` otherwise; ``guidance`` is the scale.
    """

    embeds: torch.Tensor
    pooled: torch.Tensor
    guidance: float

    @property
    def rows(self) -> int:
        return self.embeds.shape[0]


def expand_rows(t: torch.Tensor, copies: int) -> torch.Tensor:
    """``(rows, ...) -> (rows * copies, ...)``, each row repeated ``copies`` times in a block."""
    return t.repeat_interleave(copies, dim=0)


def center_crop_to_multiple(image, multiple: int):
    """Center-crop a PIL image so both sides are multiples of ``multiple``, warning when it crops."""
    w, h = image.size
    new_w, new_h = w - w % multiple, h - h % multiple
    if new_w == 0 or new_h == 0:
        raise ValueError(f"image of size {w}x{h} is smaller than the model's factor {multiple}")
    if (new_w, new_h) == (w, h):
        return image
    warnings.warn(
        f"image size {w}x{h} is not a multiple of {multiple}: center-cropped to {new_w}x{new_h}", stacklevel=3
    )
    left, top = (w - new_w) // 2, (h - new_h) // 2
    return image.crop((left, top, left + new_w, top + new_h))
