"""Pieces shared by the model adapters: conditioning batches, finite checks, image conversion."""

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

    ``embeds`` (rows, L, D), ``pooled`` (rows, P; None where the model has no pooled vector) and ``mask``
    (rows, L; 1 for real tokens, None where every prompt has the model's fixed length) hold ``[uncond,
    cond]`` rows when classifier-free guidance is on (``guidance > 1``) and ``[cond]`` otherwise;
    ``guidance`` is the scale.
    """

    embeds: torch.Tensor
    pooled: torch.Tensor | None
    guidance: float
    mask: torch.Tensor | None = None

    @property
    def rows(self) -> int:
        return self.embeds.shape[0]


class Encoded(NamedTuple):
    """An image's latents and their ``layout``: what decoding them and their velocities need besides the
    tensor (FLUX: the unpacked shape its tokens come from; None where the shape says it all, as for SD3).
    Pass the layout along with the latents; an adapter keeps no per-image state."""

    latents: torch.Tensor
    layout: Any = None


class Adapter:
    """What every family's adapter shares: velocities built on ``_forward``, and the VAE's shift/scale convention.

    Subclasses set ``kind`` and implement ``_forward(latents, branches, t, cache, layout) -> velocities``
    (one transformer call for all rows of all branches), ``encode_image`` (pixels -> :class:`Encoded`),
    ``decode_latents(x, layout)``, ``timesteps`` and ``encode_prompt``.
    """

    kind: str

    def __init__(self, pipe, vae_factor: int):
        self.pipe, self.vae_factor = pipe, vae_factor
        self.refresh()

    def refresh(self) -> None:
        """Read the pipeline's device and dtype (each lookup walks every module: done once per edit)."""
        self.device, self.dtype = self.pipe._execution_device, self.pipe.transformer.dtype

    @torch.no_grad()
    def _vae_encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """``pixels`` (B, 3, H, W) in [-1, 1] -> float32 latents ``(mode - shift) * scale`` (B, C, H/f, W/f)."""
        self.refresh()
        vae = self.pipe.vae
        mode = vae.encode(pixels.to(self.device, vae.dtype)).latent_dist.mode()
        x = (mode.float() - vae.config.shift_factor) * vae.config.scaling_factor
        return check_finite(x, "the VAE latent of the source image", vae.dtype)

    @torch.no_grad()
    def _vae_decode(self, x: torch.Tensor) -> torch.Tensor:
        """Latents (B, C, h, w) -> pixels (B, 3, H, W) in [-1, 1]."""
        vae = self.pipe.vae
        z = x / vae.config.scaling_factor + vae.config.shift_factor
        pixels = vae.decode(z.to(vae.dtype), return_dict=False)[0].float()
        return check_finite(pixels, "the decoded image", vae.dtype)

    def velocity_pair(self, source: Branch, target: Branch, layout: Any = None):
        """``(z_src, z_tar, t) -> (v_src, v_tar)`` for ``z`` of shape (n_avg, B, ...): both branches and all
        draws in ONE transformer call per step; ``z_src = None`` evaluates the target alone. ``layout`` is
        the :class:`Encoded` layout of the latents being edited."""
        cache: dict = {}

        def pair(z_src, z_tar, t):
            if z_src is None:
                (v_tar,) = self._forward([z_tar.flatten(0, 1)], [target], t, cache, layout)
                return None, v_tar.reshape(z_tar.shape)
            latents = [z_src.flatten(0, 1), z_tar.flatten(0, 1)]
            v_src, v_tar = self._forward(latents, [source, target], t, cache, layout)
            return v_src.reshape(z_src.shape), v_tar.reshape(z_tar.shape)

        return pair

    def velocity(self, branch: Branch, layout: Any = None):
        """A plain velocity ``v(z, t)`` for one prompt (for inversion and SDEdit), latents of ``layout``."""
        cache: dict = {}
        return lambda z, t: self._forward([z], [branch], t, cache, layout)[0]


def latent_statistics(vae, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The causal video VAE's per-channel ``latents_mean`` and ``latents_std`` (Qwen-Image, Wan), shaped
    (1, C, 1, 1, 1), float32: latents are ``(mode - mean) / std``."""
    config = vae.config
    mean = torch.tensor(config.latents_mean, dtype=torch.float32, device=device).view(1, -1, 1, 1, 1)
    std = torch.tensor(config.latents_std, dtype=torch.float32, device=device).view(1, -1, 1, 1, 1)
    return mean, std


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
    with two rows ``[uncond, cond]`` is combined by ``combine(uncond, cond, scale)``."""
    velocities, start = [], 0
    for k, b in zip(n, branches, strict=True):
        parts = out[start : start + k * b.rows].split(k)  # ([uncond,] cond), each (k, ...)
        start += k * b.rows
        velocities.append(combine(parts[0], parts[1], b.guidance) if b.rows == 2 else parts[0])
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
