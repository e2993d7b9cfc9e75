"""Stable Diffusion 3 (medium, 3.5) as velocities for the shared integrator.

Latents are the VAE's ``(mode - shift_factor) * scaling_factor``, shape ``(B, C, H/f, W/f)``,
kept in float32 whatever the model dtype. The transformer predicts the flow velocity
``v = eps - x0`` at ``timestep = 1000 t`` (:func:`sd3_timestep`, the one place that converts).
"""

from __future__ import annotations

import torch

from .._edit import VelocityPair
from .._integrate import Velocity
from ._common import Branch, NonFiniteWatch, check_finite, expand_rows

__all__ = ["SD3Adapter", "sd3_timestep"]


def sd3_timestep(t: float) -> float:
    """SD3's transformer takes ``timestep = 1000 t`` (diffusers' ``num_train_timesteps`` scale)."""
    return 1000.0 * t


class SD3Adapter:
    """Wraps a ``diffusers.StableDiffusion3Pipeline``: latents, prompts, sigma grid and batched velocities."""

    kind = "sd3"

    def __init__(self, pipe):
        self.pipe = pipe
        self.vae_factor = pipe.vae_scale_factor * pipe.transformer.config.patch_size
        self.watch = NonFiniteWatch("the SD3 transformer output")
        self.refresh()

    def refresh(self) -> None:
        """Read the pipeline's device and dtype (each lookup walks every module: done once per edit)."""
        self.device, self.dtype = self.pipe._execution_device, self.pipe.transformer.dtype

    # -- latents ---------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        """``pixels`` (B, 3, H, W) in [-1, 1] -> float32 latents (B, C, H/f, W/f)."""
        self.refresh()
        vae = self.pipe.vae
        mode = vae.encode(pixels.to(self.device, vae.dtype)).latent_dist.mode()
        x = (mode.float() - vae.config.shift_factor) * vae.config.scaling_factor
        return check_finite(x, "the VAE latent of the source image")

    @torch.no_grad()
    def decode_latents(self, x: torch.Tensor) -> torch.Tensor:
        """Latents (B, C, h, w) -> pixels (B, 3, H, W) in [-1, 1]."""
        vae = self.pipe.vae
        z = x / vae.config.scaling_factor + vae.config.shift_factor
        return check_finite(vae.decode(z.to(vae.dtype), return_dict=False)[0].float(), "the decoded image")

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
        self, latents: list[torch.Tensor], branches: list[Branch], t: float, cache: dict
    ) -> list[torch.Tensor]:
        """One transformer call for several branches; returns each branch's guided velocity (float32)."""
        n = [z.shape[0] for z in latents]  # rows of each branch: n_draws * batch
        hidden = torch.cat([z.repeat(b.rows, *([1] * (z.ndim - 1))) for z, b in zip(latents, branches, strict=True)])
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
        self.watch.observe(out)  # checked once per edit: no device sync per step
        velocities, start = [], 0
        for k, b in zip(n, branches, strict=True):
            parts = out[start : start + k * b.rows].split(k)  # ([uncond,] cond), each (k, ...)
            start += k * b.rows
            v = parts[0] + b.guidance * (parts[1] - parts[0]) if b.rows == 2 else parts[0]
            velocities.append(v)
        return velocities

    def velocity_pair(self, source: Branch, target: Branch) -> VelocityPair:
        """``(z_src, z_tar, t) -> (v_src, v_tar)`` with ``z`` of shape (n_avg, B, C, h, w): ONE transformer
        call on the batch ``[src_uncond, src_cond, tar_uncond, tar_cond]`` (all draws), each branch with
        its own guidance scale; ``z_src = None`` evaluates the target alone."""
        cache: dict = {}

        def pair(z_src, z_tar, t):
            shape = z_tar.shape
            if z_src is None:
                (v_tar,) = self._forward([z_tar.flatten(0, 1)], [target], t, cache)
                return None, v_tar.reshape(shape)
            v_src, v_tar = self._forward([z_src.flatten(0, 1), z_tar.flatten(0, 1)], [source, target], t, cache)
            return v_src.reshape(z_src.shape), v_tar.reshape(shape)

        return pair

    def velocity(self, branch: Branch) -> Velocity:
        """A plain velocity ``v(z, t)`` for one prompt (for inversion and SDEdit)."""
        cache: dict = {}
        return lambda z, t: self._forward([z], [branch], t, cache)[0]
