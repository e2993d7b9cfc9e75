"""Pieces shared by the adapter and the editor: branches, conditioning batches, finite checks, cropping."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch


def non_finite_hint(dtype: torch.dtype) -> str:
    """What a NaN or inf from a model of this dtype usually means, and the fix."""
    if dtype == torch.float16:
        return (
            "this usually means float16 overflow; use bfloat16 or float32 instead "
            "(--dtype bfloat16; Python: dtype=torch.bfloat16)"
        )
    return f"the model runs in {str(dtype).removeprefix('torch.')}: check its weights and the input image"


def check_finite(x: torch.Tensor, what: str, model_dtype: torch.dtype) -> torch.Tensor:
    """Raise ``FloatingPointError`` naming the likely cause unless every value of ``x`` is finite."""
    if not torch.isfinite(x).all():
        raise FloatingPointError(f"{what} contains NaN or inf; {non_finite_hint(model_dtype)}")
    return x


@dataclass(frozen=True)
class Branch:
    """One prompt's conditioning, ready to be stacked into a batch.

    ``embeds`` (rows, L, D), ``pooled`` (rows, P; None where the model has no pooled vector), ``mask``
    (rows, L; 1 for real tokens, None where every prompt has the model's fixed length) and ``extra`` (more
    per-row tensors (rows, ...), e.g. a second text encoder's embeddings and mask) hold ``[negative, prompt]``
    rows when the family's classifier-free guidance is on for ``guidance`` and ``[prompt]`` otherwise;
    ``guidance`` is the scale. ``around``: the two rows are combined ``v_neg + around (v - v_neg)`` whatever the
    family's own guidance (FlowAlign's target guided around the source prompt), whose scale ``guidance`` then only
    enters an embedded family's rows.
    """

    embeds: torch.Tensor
    pooled: torch.Tensor | None
    guidance: float
    mask: torch.Tensor | None = None
    extra: tuple[torch.Tensor, ...] = ()
    around: float | None = None

    @property
    def rows(self) -> int:
        return self.embeds.shape[0]


class Encoded(NamedTuple):
    """An image's latents and their ``layout``: what decoding them and their velocities need besides the
    tensor (FLUX: the unpacked shape its tokens come from; None where the shape says it all, as for SD3).
    Pass the layout along with the latents; an adapter keeps no per-image state."""

    latents: torch.Tensor
    layout: Any = None


def classifier_free(uncond: torch.Tensor, cond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance (Ho & Salimans, 2022): ``v_uncond + w (v_cond - v_uncond)``."""
    return uncond + scale * (cond - uncond)


def stack_rows(latents: list[torch.Tensor], branches: list[Branch]) -> torch.Tensor:
    """One batch for a transformer call: branch ``i``'s latents ``(k_i, ...)`` repeated once per conditioning row,
    ``[z_0 (row 0), z_0 (row 1), z_1 (row 0), ...]``: shape ``(sum_i rows_i k_i, ...)``."""
    return torch.cat([z.repeat(b.rows, *([1] * (z.ndim - 1))) for z, b in zip(latents, branches, strict=True)])


def guided_velocities(
    out: torch.Tensor, n: list[int], branches: list[Branch], combine: Callable = classifier_free
) -> list[torch.Tensor]:
    """Split one call's output (laid out as :func:`stack_rows`) into each branch's velocity ``(k_i, ...)``; a branch
    with two rows ``[uncond, cond]`` is combined by ``combine(uncond, cond, scale)`` (by :func:`classifier_free` with
    its ``around`` scale where it has one)."""
    velocities, start = [], 0
    for k, b in zip(n, branches, strict=True):
        parts = out[start : start + k * b.rows].split(k)  # ([uncond,] cond), each (k, ...)
        start += k * b.rows
        if b.rows == 1:
            velocities.append(parts[0])
        elif b.around is not None:
            velocities.append(classifier_free(parts[0], parts[1], b.around))
        else:
            velocities.append(combine(parts[0], parts[1], b.guidance))
    return velocities


def expand_rows(t: torch.Tensor, copies: int) -> torch.Tensor:
    """``(rows, ...) -> (rows * copies, ...)``, each row repeated ``copies`` times in a block."""
    return t.repeat_interleave(copies, dim=0)


def center_crop_to_multiple(image, multiple: int, what: str = "image"):
    """Center-crop a PIL image so both sides are multiples of ``multiple``, warning when it crops (``what`` names
    it in the messages: image, frame)."""
    w, h = image.size
    new_w, new_h = w - w % multiple, h - h % multiple
    if new_w == 0 or new_h == 0:
        raise ValueError(f"{what} of size {w}x{h} is smaller than the model's factor {multiple}")
    if (new_w, new_h) == (w, h):
        return image
    warnings.warn(
        f"{what} size {w}x{h} is not a multiple of {multiple}: center-cropped to {new_w}x{new_h}", stacklevel=3
    )
    left, top = (w - new_w) // 2, (h - new_h) // 2
    return image.crop((left, top, left + new_w, top + new_h))


def from_pretrained(pipeline_class, model: str, dtype, **components):
    """``pipeline_class.from_pretrained(model, torch_dtype=dtype, **components)``. Newer diffusers call the keyword
    ``dtype`` and warn about ``torch_dtype``, which the oldest supported one still needs: the warning is not the
    user's to act on, so it is silenced here (and only it)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
        return pipeline_class.from_pretrained(model, torch_dtype=dtype, **components)
