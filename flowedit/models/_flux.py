"""FLUX.1 (dev, schnell) as velocities for the shared integrator.

FLUX is guidance-distilled: a branch's guidance scale goes into the transformer's guidance
embedding (no unconditional pass). Latents are ``(mode - shift_factor) * scaling_factor`` packed
2x2 into tokens, shape ``(B, L, 4 C)`` with ``L = (H / 2f) (W / 2f)``, in float32; every edit, noise
draw and ODE step happens on packed latents, as in the reference. The transformer takes ``t``
itself (:func:`flux_timestep`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .._grid import flux_mu
from ._common import Adapter, Branch, Encoded, expand_rows

__all__ = ["FluxAdapter", "PackedLayout", "flux_timestep"]


@dataclass(frozen=True)
class PackedLayout:
    """The unpacked latent shape ``(batch, channels, height, width)`` behind packed latents ``(B, L, 4C)``.

    Packing turns each 2x2 patch of the ``(B, C, h, w)`` latent into one token, ``L = (h / 2)(w / 2)``;
    the token count alone does not say ``h`` and ``w``, which unpacking and the position ids need.
    """

    batch: int
    channels: int
    height: int
    width: int

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """(b, C, h, w) -> packed (b, L, 4C): each 2x2 patch a token of features (C, 2, 2); ``b`` may be 1."""
        b, C, h, w = x.shape[0], self.channels, self.height, self.width
        return x.reshape(b, C, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, (h // 2) * (w // 2), 4 * C)

    def unpack(self, x: torch.Tensor) -> torch.Tensor:
        """Packed (B, L, 4C) -> (B, C, h, w)."""
        B, C, h, w = self.batch, self.channels, self.height, self.width
        return x.reshape(B, h // 2, w // 2, C, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(B, C, h, w)


def flux_timestep(t: float) -> float:
    """FLUX's transformer takes the sigma ``t`` itself (the pipeline passes ``timestep / 1000``)."""
    return t


class FluxAdapter(Adapter):
    """Wraps a ``diffusers.FluxPipeline``: packed latents, prompts, the dynamically shifted grid, velocities.

    :meth:`encode_image` returns the packed latents with their :class:`PackedLayout`, which
    :meth:`decode_latents` and the velocities of that image take: the adapter keeps no per-image state.
    """

    kind = "flux"

    def __init__(self, pipe):
        # The VAE's factor times the 2x2 packing.
        super().__init__(pipe, pipe.vae_scale_factor * 2)
        self.guidance_embeds = bool(pipe.transformer.config.guidance_embeds)

    def encode_image(self, pixels: torch.Tensor) -> Encoded:
        """``pixels`` (B, 3, H, W) in [-1, 1] -> packed float32 latents (B, L, 4C) and their :class:`PackedLayout`."""
        x = self._vae_encode(pixels)
        layout = PackedLayout(*x.shape)
        return Encoded(self.pipe._pack_latents(x, *x.shape), layout)  # (B, h/2 * w/2, 4C)

    @staticmethod
    def _layout(layout) -> PackedLayout:
        if not isinstance(layout, PackedLayout):
            raise TypeError(
                f"FLUX latents are packed: pass the PackedLayout that encode_image returned with them, got {layout!r}"
            )
        return layout

    def decode_latents(self, x: torch.Tensor, layout=None) -> torch.Tensor:
        """Packed latents (B, L, 4C) of ``layout`` (from :meth:`encode_image`) -> pixels (B, 3, H, W) in [-1, 1]."""
        return self._vae_decode(self._layout(layout).unpack(x))

    def timesteps(self, steps: int, x: torch.Tensor) -> torch.Tensor:
        """The scheduler's sigmas for ``linspace(1, 1/steps, steps)`` shifted by ``mu(L)``, plus 0: (steps + 1,)."""
        config = self.pipe.scheduler.config
        mu = flux_mu(
            x.shape[1],
            base_seq_len=config.get("base_image_seq_len", 256),
            max_seq_len=config.get("max_image_seq_len", 4096),
            base_shift=config.get("base_shift", 0.5),
            max_shift=config.get("max_shift", 1.15),
        )
        self.pipe.scheduler.set_timesteps(sigmas=np.linspace(1.0, 1 / steps, steps), mu=mu, device="cpu")
        return self.pipe.scheduler.sigmas.double()

    # -- prompts and velocities -------------------------------------------------------------------
    @torch.no_grad()
    def encode_prompt(self, prompt: str, guidance: float) -> Branch:
        """T5 embeddings (1, L, D) and the pooled CLIP vector (1, P); ``guidance`` goes to the guidance embedding."""
        embeds, pooled, _ = self.pipe.encode_prompt(prompt=prompt, prompt_2=None, device=self.device)
        return Branch(embeds, pooled, guidance)

    def _conditioning(self, branches: list[Branch], n: list[int], cache: dict):
        """Embeddings, pooled vectors, guidance scales and text ids for ``n[i]`` rows per branch, built once."""
        key = tuple(n)
        if key not in cache:
            embeds = torch.cat([expand_rows(b.embeds, k) for b, k in zip(branches, n, strict=True)])
            pooled = torch.cat([expand_rows(b.pooled, k) for b, k in zip(branches, n, strict=True)])
            guidance = None
            if self.guidance_embeds:
                scales = [torch.full((k,), b.guidance, dtype=torch.float32) for b, k in zip(branches, n, strict=True)]
                guidance = torch.cat(scales).to(self.device)
            text_ids = torch.zeros(embeds.shape[1], 3, device=self.device, dtype=self.dtype)
            cache[key] = (embeds, pooled, guidance, text_ids)
        return cache[key]

    def _forward(
        self, latents: list[torch.Tensor], branches: list[Branch], t: float, cache: dict, layout=None
    ) -> list[torch.Tensor]:
        if "image_ids" not in cache:  # (L, 3) position ids of the tokens, from the unpacked latent's size
            shape = self._layout(layout)
            ids = self.pipe._prepare_latent_image_ids(1, shape.height // 2, shape.width // 2, self.device, self.dtype)
            cache["image_ids"] = ids
        n = [z.shape[0] for z in latents]
        hidden = torch.cat(latents).to(self.device, self.dtype)
        embeds, pooled, guidance, text_ids = self._conditioning(branches, n, cache)
        timestep = torch.full((hidden.shape[0],), flux_timestep(t), device=self.device, dtype=self.dtype)
        with torch.no_grad():
            out = self.pipe.transformer(
                hidden_states=hidden,
                timestep=timestep,
                guidance=guidance,
                pooled_projections=pooled,
                encoder_hidden_states=embeds,
                txt_ids=text_ids,
                img_ids=cache["image_ids"],
                return_dict=False,
            )[0].float()
        return list(out.split(n))
