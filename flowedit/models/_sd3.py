"""Stable Diffusion 3 (medium, 3.5) as velocities for the shared integrator.

Latents are the VAE's ``(mode - shift_factor) * scaling_factor``, shape ``(B, C, H/f, W/f)``,
kept in float32 whatever the model dtype. The transformer predicts the flow velocity
``v = eps - x0`` at ``timestep = 1000 t`` (:func:`sd3_timestep`, the one place that converts).
"""

from __future__ import annotations

import torch

from ._common import Adapter, Branch, Encoded, expand_rows, guided_velocities, stack_rows

__all__ = ["SD3Adapter", "sd3_timestep"]


def sd3_timestep(t: float) -> float:
    """SD3's transformer takes ``timestep = 1000 t`` (diffusers' ``num_train_timesteps`` scale)."""
    return 1000.0 * t


class SD3Adapter(Adapter):
    """Wraps a ``diffusers.StableDiffusion3Pipeline``: latents, prompts, sigma grid and batched velocities."""

    kind = "sd3"

    def __init__(self, pipe):
        super().__init__(pipe, pipe.vae_scale_factor * pipe.transformer.config.patch_size)

    def encode_image(self, pixels: torch.Tensor) -> Encoded:
        """``pixels`` (B, 3, H, W) in [-1, 1] -> float32 latents (B, C, H/f, W/f); their shape is their layout."""
        return Encoded(self._vae_encode(pixels), None)

    def decode_latents(self, x: torch.Tensor, layout=None) -> torch.Tensor:
        """Latents (B, C, h, w) -> pixels (B, 3, H, W) in [-1, 1]."""
        return self._vae_decode(x)

    def timesteps(self, steps: int, x: torch.Tensor) -> torch.Tensor:
        """The pipeline scheduler's own sigmas for ``steps`` steps, plus the final 0: shape (steps + 1,)."""
        scheduler = self.pipe.scheduler
        scheduler.set_timesteps(steps, device="cpu")
        return scheduler.sigmas.double()

    # -- prompts and velocities -------------------------------------------------------------------
    @torch.no_grad()
    def encode_prompt(self, prompt: str, guidance: float, negative_prompt: str = "") -> Branch:
        """Encode once per edit; with ``guidance > 1`` the rows are ``[negative, prompt]``, else ``[prompt]``."""
        cfg = guidance > 1
        embeds, neg, pooled, neg_pooled = self.pipe.encode_prompt(
            prompt=prompt,
            prompt_2=None,
            prompt_3=None,
            device=self.device,
            do_classifier_free_guidance=cfg,
            negative_prompt=negative_prompt if cfg else None,
        )
        if cfg:
            embeds, pooled = torch.cat([neg, embeds]), torch.cat([neg_pooled, pooled])
        return Branch(embeds, pooled, guidance)

    def _conditioning(self, branches: list[Branch], n: list[int], cache: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt embeddings for a batch of ``n[i]`` rows per branch, built once per batch layout."""
        key = tuple(n)
        if key not in cache:
            embeds = torch.cat([expand_rows(b.embeds, k) for b, k in zip(branches, n, strict=True)])
            pooled = torch.cat([expand_rows(b.pooled, k) for b, k in zip(branches, n, strict=True)])
            cache[key] = (embeds, pooled)
        return cache[key]

    def _forward(
        self, latents: list[torch.Tensor], branches: list[Branch], t: float, cache: dict, layout=None
    ) -> list[torch.Tensor]:
        """One transformer call for several branches; returns each branch's guided velocity (float32)."""
        n = [z.shape[0] for z in latents]  # rows of each branch: n_draws * batch
        hidden = stack_rows(latents, branches)
        embeds, pooled = self._conditioning(branches, n, cache)
        # float32 like diffusers' pipeline: the SD3 transformer embeds the timestep without casting it.
        timestep = torch.full((hidden.shape[0],), sd3_timestep(t), device=self.device, dtype=torch.float32)
        with torch.no_grad():
            out = self.pipe.transformer(
                hidden_states=hidden.to(self.device, self.dtype),
                timestep=timestep,
                encoder_hidden_states=embeds,
                pooled_projections=pooled,
                return_dict=False,
            )[0].float()
        return guided_velocities(out, n, branches)
