"""Wan 2.1 and Wan 2.2 (text-to-video) as velocities for the shared integrator.

Latents are the causal 3-D VAE's, normalised per channel, ``(mode - latents_mean) / latents_std``, shape
``(B, C, F', h, w)`` with ``F' = (F - 1) / 4 + 1`` latent frames for ``F = 4k + 1`` video frames, float32. FlowEdit
needs nothing else from a video: the integrator moves this tensor exactly as it moves 2-D points.

Wan 2.2 TI2V 5B (``expand_timesteps``) is given one timestep per token by its pipeline; for text-to-video they
are all the step's, which the transformer computes the same way from one timestep per row, as here.

Guidance is classifier-free with ``[negative, prompt]`` rows (the pipeline's default negative prompt is empty);
every prompt's embeddings are zero-padded to 512 tokens, as ``WanPipeline`` does, so all rows stack without a
mask. The transformer takes ``timestep = 1000 t`` (:func:`wan_timestep`).

Wan 2.2's A14B models have two experts: ``transformer`` for the high-noise steps and ``transformer_2`` for the
low-noise ones, switched where ``1000 t`` falls below ``boundary_ratio * num_train_timesteps`` (the pipeline's
rule). Each step's single call goes to the expert that owns its ``t``; both use the branch's guidance scale
(the pipeline's own default when ``guidance_scale_2`` is not given).
"""

from __future__ import annotations

import torch

from ._common import (
    Adapter,
    Branch,
    Encoded,
    check_finite,
    expand_rows,
    guided_velocities,
    latent_statistics,
    stack_rows,
)

__all__ = ["WanAdapter", "expert_boundary", "wan_timestep"]

NEGATIVE_PROMPT = ""  # WanPipeline's default negative prompt
TEXT_TOKENS = 512  # WanPipeline's max_sequence_length: embeddings are zero-padded to it


def wan_timestep(t: float) -> float:
    """Wan's transformer takes ``timestep = 1000 t`` (the scheduler's ``num_train_timesteps`` scale).

    diffusers' ``UniPCMultistepScheduler`` hands the pipeline these values rounded down to integers; here the
    exact ``1000 t`` is passed (at most one unit, 0.1% of the range, apart)."""
    return 1000.0 * t


def expert_boundary(boundary_ratio, transformer_2) -> float | None:
    """Wan 2.2's switch point: ``boundary_ratio`` when the pipeline has a second expert (``transformer_2``: a
    module, or its entry in ``model_index.json``) and a ratio; None for one transformer (Wan 2.1, 2.2 TI2V)."""
    return None if boundary_ratio is None or not transformer_2 else float(boundary_ratio)


class WanAdapter(Adapter):
    """Wraps a ``diffusers.WanPipeline`` (Wan 2.1, or Wan 2.2 with ``transformer_2`` and ``boundary_ratio``):
    per-channel normalised video latents, the scheduler's sigma grid, CFG, ONE call per step to the expert
    that owns the step's ``t``.

    ``encode_image`` takes a video, pixels ``(B, 3, F, H, W)``; ``decode_latents`` returns one.
    """

    kind = "wan"

    def __init__(self, pipe):
        super().__init__(pipe, pipe.vae_scale_factor_spatial * self._first(pipe).config.patch_size[1])
        self.temporal_factor = pipe.vae_scale_factor_temporal

    @staticmethod
    def _first(pipe):
        """The transformer that runs first (its config and dtype speak for both experts)."""
        return pipe.transformer if pipe.transformer is not None else pipe.transformer_2

    def refresh(self) -> None:
        self.device, self.dtype = self.pipe._execution_device, self._first(self.pipe).dtype

    @property
    def boundary(self) -> float | None:
        """The ``t`` at and above which ``transformer`` (the high-noise expert) runs; None for one transformer."""
        return expert_boundary(self.pipe.config.get("boundary_ratio"), self.pipe.transformer_2 is not None)

    def expert(self, t: float):
        """The transformer that owns ``t``: ``transformer`` for Wan 2.1 and for ``1000 t >= boundary_ratio *
        num_train_timesteps``, else ``transformer_2`` (WanPipeline's rule)."""
        if self.boundary is None:
            return self.pipe.transformer
        threshold = self.boundary * self.pipe.scheduler.config.num_train_timesteps
        return self.pipe.transformer if wan_timestep(t) >= threshold else self.pipe.transformer_2

    @torch.no_grad()
    def encode_image(self, pixels: torch.Tensor) -> Encoded:
        """A video, ``pixels`` (B, 3, F, H, W) in [-1, 1] with ``F = 4k + 1`` -> float32 latents (B, C, k + 1, h, w)."""
        self.refresh()
        vae = self.pipe.vae
        mode = vae.encode(pixels.to(self.device, vae.dtype)).latent_dist.mode().float()
        mean, std = latent_statistics(vae, mode.device)
        return Encoded(check_finite((mode - mean) / std, "the VAE latent of the source video", vae.dtype), None)

    @torch.no_grad()
    def decode_latents(self, x: torch.Tensor, layout=None) -> torch.Tensor:
        """Latents (B, C, F', h, w) -> a video, pixels (B, 3, F, H, W) in [-1, 1]."""
        vae = self.pipe.vae
        mean, std = latent_statistics(vae, x.device)
        pixels = vae.decode((x * std + mean).to(vae.dtype), return_dict=False)[0].float()
        return check_finite(pixels, "the decoded video", vae.dtype)

    def timesteps(self, steps: int, x: torch.Tensor) -> torch.Tensor:
        """The pipeline scheduler's own sigmas for ``steps`` steps, plus the final 0: shape (steps + 1,)."""
        scheduler = self.pipe.scheduler
        scheduler.set_timesteps(steps, device="cpu")
        return scheduler.sigmas.double()

    @torch.no_grad()
    def encode_prompt(self, prompt: str, guidance: float) -> Branch:
        """UMT5 embeddings zero-padded to 512 tokens, (rows, 512, D): ``[negative, prompt]`` for ``guidance > 1``,
        else ``[prompt]``."""
        cfg = guidance > 1
        embeds, negative = self.pipe.encode_prompt(
            prompt=prompt,
            negative_prompt=NEGATIVE_PROMPT if cfg else None,
            do_classifier_free_guidance=cfg,
            max_sequence_length=TEXT_TOKENS,
            device=self.device,
        )
        rows = torch.cat([negative, embeds]) if cfg else embeds
        return Branch(rows.to(self.dtype), None, guidance)

    def _forward(
        self, latents: list[torch.Tensor], branches: list[Branch], t: float, cache: dict, layout=None
    ) -> list[torch.Tensor]:
        """One call of the expert that owns ``t`` for every row of every branch; each branch's guided velocity."""
        n = [z.shape[0] for z in latents]  # rows of each branch: n_draws * batch
        key = tuple(n)
        if key not in cache:
            cache[key] = torch.cat([expand_rows(b.embeds, k) for b, k in zip(branches, n, strict=True)])
        hidden = stack_rows(latents, branches)
        timestep = torch.full((hidden.shape[0],), wan_timestep(t), device=self.device, dtype=torch.float32)
        with torch.no_grad():
            out = self.expert(t)(
                hidden_states=hidden.to(self.device, self.dtype),
                timestep=timestep,
                encoder_hidden_states=cache[key],
                return_dict=False,
            )[0].float()
        return guided_velocities(out, n, branches)
