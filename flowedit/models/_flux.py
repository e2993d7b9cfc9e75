"""FLUX.1 (dev, schnell) as velocities for the shared integrator.

FLUX is guidance-distilled: a branch's guidance scale goes into the transformer's guidance
embedding (no unconditional pass). Latents are ``(mode - shift_factor) * scaling_factor`` packed
2x2 into tokens, shape ``(B, L, 4 C)`` with ``L = (H / 2f) (W / 2f)``, in float32; every edit, noise
draw and ODE step happens on packed latents, as in the reference. The transformer takes ``t``
itself (:func:`flux_timestep`).
"""

from __future__ import annotations

import numpy as np
import torch

from .._grid import flux_mu
from ._common import Adapter, Branch, expand_rows

__all__ = ["FluxAdapter", "flux_timestep"]


def flux_timestep(t: float) -> float:
    """FLUX's transformer takes the sigma ``t`` itself (the pipeline passes ``timestep / 1000``)."""
    return t


class FluxAdapter(Adapter):
    """Wraps a ``diffusers.FluxPipeline``: packed latents, prompts, the dynamically shifted grid, velocities.

    Works on one image at a time: :meth:`encode_image` remembers its latent shape and image ids,
    which :meth:`decode_latents` and the velocities of that edit use.
    """

    kind = "flux"

    def __init__(self, pipe):
        # The VAE's factor times the 2x2 packing.
        super().__init__(pipe, pipe.vae_scale_factor * 2)
        self.guidance_embeds = bool(pipe.transformer.config.guidance_embeds)
        self._shape: tuple[int, int, int, int] | None = None  # unpacked latent shape of the current image
        self._image_ids: torch.Tensor | None = None

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        """``pixels`` (B, 3, H, W) in [-1, 1] -> packed float32 latents (B, L, 4C); remembers the image ids."""
        x = self._vae_encode(pixels)
        B, C, h, w = x.shape
        self._shape = (B, C, h, w)
        self._image_ids = self.pipe._prepare_latent_image_ids(B, h // 2, w // 2, self.device, self.dtype)
        return self.pipe._pack_latents(x, B, C, h, w)  # (B, h/2 * w/2, 4C)

    def image_context(self):
        """The unpacked latent shape of the current image (decoding needs it to unpack)."""
        return self._shape

    def decode_latents(self, x: torch.Tensor, context=None) -> torch.Tensor:
        """Packed latents (B, L, 4C) -> pixels (B, 3, H, W) in [-1, 1]; ``context`` is the
        :meth:`image_context` of the image they came from (default: the last encoded image)."""
        B, C, h, w = context or self._shape
        latents = x.reshape(B, h // 2, w // 2, C, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(B, C, h, w)  # unpack
        return self._vae_decode(latents)

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
        self, latents: list[torch.Tensor], branches: list[Branch], t: float, cache: dict
    ) -> list[torch.Tensor]:
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
                img_ids=self._image_ids,
                return_dict=False,
            )[0].float()
        return list(out.split(n))
