"""FLUX.2 ([dev] and [klein]) as velocities for the shared integrator.

Latents are the VAE's, patchified 2x2 into channels, normalised by the VAE's batch-norm running statistics
and flattened into tokens, shape ``(B, L, 4C)``, float32 (the token layout is FLUX.1's, so
:class:`~flowedit.models.PackedLayout` unpacks them). The prompt is the text encoder's hidden states of three
layers, stacked, at a fixed length (Mistral 3 for [dev], Qwen3 for [klein]). Guidance: [dev] is guidance
distilled (the scale is an input of the transformer, one row per prompt); [klein] uses classifier-free
guidance with an empty negative prompt (none for its distilled checkpoints). The transformer takes ``t``
itself; the grid shifts by the pipelines' empirical ``mu(L, T)``.
"""

from __future__ import annotations

import numpy as np
import torch

from ._common import Branch, Encoded, check_finite, expand_rows, guided_velocities, stack_rows
from ._flux import FluxAdapter, PackedLayout

__all__ = ["Flux2Adapter", "flux2_timestep"]


def flux2_timestep(t: float) -> float:
    """FLUX.2's transformer takes the sigma ``t`` itself (the pipeline passes ``timestep / 1000``)."""
    return t


class Flux2Adapter(FluxAdapter):
    """Wraps a ``diffusers.Flux2Pipeline`` or ``Flux2KleinPipeline``: batch-norm-normalised packed latents,
    embedded guidance ([dev]) or CFG ([klein]), one call per step."""

    kind = "flux2"

    def _statistics(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch norm's running mean and standard deviation over the 4C patchified channels, float32."""
        vae = self.pipe.vae
        mean = vae.bn.running_mean.float().to(device)
        std = torch.sqrt(vae.bn.running_var.float() + vae.config.batch_norm_eps).to(device)
        return mean, std

    @torch.no_grad()
    def encode_image(self, pixels: torch.Tensor) -> Encoded:
        """``pixels`` (B, 3, H, W) in [-1, 1] -> normalised packed float32 latents (B, L, 4C) and their layout."""
        self.refresh()
        vae = self.pipe.vae
        x = vae.encode(pixels.to(self.device, vae.dtype)).latent_dist.mode().float()  # (B, C, h, w)
        layout = PackedLayout(*x.shape)
        mean, std = self._statistics(x.device)
        packed = self.pipe._pack_latents(self.pipe._patchify_latents(x))  # (B, L, 4C): FLUX.1's token layout
        packed = (packed - mean) / std  # the batch norm's channels are a token's 4C features
        return Encoded(check_finite(packed, "the VAE latent of the source image", vae.dtype), layout)

    @torch.no_grad()
    def decode_latents(self, x: torch.Tensor, layout=None) -> torch.Tensor:
        """Packed latents (B, L, 4C) of ``layout`` -> pixels (B, 3, H, W) in [-1, 1]."""
        vae = self.pipe.vae
        mean, std = self._statistics(x.device)
        latents = self._layout(layout).unpack(x * std + mean)  # (B, C, h, w)
        pixels = vae.decode(latents.to(vae.dtype), return_dict=False)[0].float()
        return check_finite(pixels, "the decoded image", vae.dtype)

    def timesteps(self, steps: int, x: torch.Tensor) -> torch.Tensor:
        """The scheduler's sigmas for ``linspace(1, 1/steps, steps)`` shifted by the pipeline's empirical
        ``mu(L, steps)``, plus 0: shape (steps + 1,)."""
        from diffusers.pipelines.flux2.pipeline_flux2_klein import compute_empirical_mu

        mu = compute_empirical_mu(image_seq_len=x.shape[1], num_steps=steps)
        self.pipe.scheduler.set_timesteps(sigmas=np.linspace(1.0, 1 / steps, steps), mu=mu, device="cpu")
        return self.pipe.scheduler.sigmas.double()

    @torch.no_grad()
    def encode_prompt(self, prompt: str, guidance: float) -> Branch:
        """Embeddings (1, 512, 3D); for [dev] the scale goes to the guidance embedding; for [klein] with guidance
        on (``> 1``, not distilled) the rows are ``["", prompt]``."""
        if self.guidance_embeds:
            return Branch(self.pipe.encode_prompt(prompt=prompt, device=self.device)[0], None, guidance)
        cfg = guidance > 1 and not getattr(self.pipe.config, "is_distilled", False)
        prompts = ["", prompt] if cfg else [prompt]
        embeds = torch.cat([self.pipe.encode_prompt(prompt=p, device=self.device)[0] for p in prompts])
        return Branch(embeds, None, guidance if cfg else 1.0)

    def _forward(
        self, latents: list[torch.Tensor], branches: list[Branch], t: float, cache: dict, layout=None
    ) -> list[torch.Tensor]:
        """One transformer call for every row of every branch; returns each branch's guided velocity (float32)."""
        n = [z.shape[0] for z in latents]  # rows of each branch: n_draws * batch
        if "conditioning" not in cache or cache["conditioning"][0] != n:
            shape = self._layout(layout)
            embeds = torch.cat([expand_rows(b.embeds, k) for b, k in zip(branches, n, strict=True)])
            rows = embeds.shape[0]
            text_ids = self.pipe._prepare_text_ids(embeds[:1]).to(self.device).expand(rows, -1, -1)
            grid = torch.empty(1, 1, shape.height // 2, shape.width // 2)
            image_ids = self.pipe._prepare_latent_ids(grid).to(self.device).expand(rows, -1, -1)
            guidance = None
            if self.guidance_embeds:  # one scale per row, each branch its own
                scales = [torch.full((k * b.rows,), b.guidance) for b, k in zip(branches, n, strict=True)]
                guidance = torch.cat(scales).to(self.device)
            cache["conditioning"] = (n, embeds, text_ids, image_ids, guidance)
        _, embeds, text_ids, image_ids, guidance = cache["conditioning"]
        hidden = stack_rows(latents, branches)
        timestep = torch.full((hidden.shape[0],), flux2_timestep(t), device=self.device, dtype=self.dtype)
        with torch.no_grad():
            out = self.pipe.transformer(
                hidden_states=hidden.to(self.device, self.dtype),
                encoder_hidden_states=embeds,
                timestep=timestep,
                img_ids=image_ids,
                txt_ids=text_ids,
                guidance=guidance,
                return_dict=False,
            )[0].float()
        return guided_velocities(out, n, branches)
